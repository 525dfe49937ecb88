"""Gradient clipping."""
import math

from ..autograd import no_grad
from ..dtype import bfloat16, float32


@no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so their global norm is at most max_norm.
    Returns the norm before clipping as a 0-d tensor of the gradients' dtype, as PyTorch."""
    from ..tensor import Tensor
    parameters = [parameters] if isinstance(parameters, Tensor) else parameters
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return Tensor(0.0)
    norm_type = float(norm_type)
    first = grads[0]
    squared_norm = getattr(first.backend.kernels, "squared_norm", None)  # the CPU kernels: one pass over them all
    if norm_type == 2.0 and squared_norm is not None and all(g.device == first.device and g.dtype is float32
                                                             for g in grads):
        total = first.backend.asarray(math.sqrt(squared_norm([g.array for g in grads])), float32)  # summed in float64
        total_value = float(total)
    else:
        parts = [_norm_part(g, norm_type) for g in grads if g.numel()]
        if not parts:
            return Tensor(0.0, dtype=first.dtype, device=first.device)
        if any(g.device != first.device for g in grads):  # combine on the host (one sync per gradient)
            parts = [first.backend.asarray(float(part)) for part in parts]
        # one stacked reduction keeps the sum on the device: a single sync below, not one per gradient
        stacked = first.backend.stack(parts, 0)
        if norm_type == math.inf:
            total = first.backend.max(stacked, None, False)
        else:
            total = first.backend.sum(stacked, None, False) ** (1.0 / norm_type)
        total_value = float(total)
    if error_if_nonfinite and not math.isfinite(total_value):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total_value}, "
                           "so they cannot be clipped; pass error_if_nonfinite=False to skip this check")
    scale = max_norm / (total_value + 1e-6)
    if scale < 1:
        # new arrays rather than in-place *=: a gradient may be a broadcast (one element repeated), or share memory
        # with another parameter's gradient (a + b hands both the same array), which in place would scale twice
        for g in {id(g): g for g in grads}.values():
            g.array = g.array * scale
    return Tensor._make(total, first.device).to(first.dtype)


def _norm_part(grad, norm_type):
    """The per-gradient piece of the global norm: sum |g|^p, or max |g| for the infinity norm."""
    backend, array = grad.backend, grad.array
    if grad.dtype is bfloat16:  # summed in float32, as PyTorch's: NumPy would add in bfloat16, rounding every sum
        array = backend.astype(array, float32)
    if norm_type == math.inf:
        return backend.max(backend.abs(array), None, False)
    if norm_type == 2.0:
        return backend.sum(array * array, None, False)
    if norm_type == 1.0:
        return backend.sum(backend.abs(array), None, False)
    return backend.sum(backend.abs(array) ** norm_type, None, False)
