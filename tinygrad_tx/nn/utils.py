"""Gradient clipping."""
import math

from ..autograd import no_grad


@no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so their global norm is at most max_norm.
    Returns the norm before clipping as a 0-d tensor."""
    from ..tensor import Tensor
    grads = [p.grad for p in ([parameters] if isinstance(parameters, Tensor) else parameters) if p.grad is not None]
    if not grads:
        return Tensor(0.0)
    backend = grads[0].backend
    if norm_type == float("inf"):
        total = max(float(backend.abs(g.array).max()) for g in grads)
    else:
        total = sum(float(backend.sum(backend.abs(g.array) ** norm_type, None, False)) for g in grads) \
            ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of the gradients is {total}")
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g.array *= scale
    return Tensor(total, device=grads[0].device)
