"""Adam and AdamW (Kingma & Ba, 2015; Loshchilov & Hutter, 2019), as torch.optim.Adam and torch.optim.AdamW.

The two share one update and differ only in how weight decay enters it:
Adam adds weight_decay * p to the gradient (L2 regularization, scaled by the adaptive step),
AdamW shrinks the parameter itself, p *= 1 - lr * weight_decay, before the update (decoupled decay).
"""
import math

from ..autograd import no_grad
from ..tensor import Tensor
from .fused_adamw import fused_adamw_step
from .optimizer import Optimizer


class Adam(Optimizer):
    """PyTorch's rule, with g the gradient of parameter p at step t (counted from 1):

        p = p * (1 - lr * weight_decay)          if decoupled_weight_decay (AdamW)
        g = g + weight_decay * p                 otherwise
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                    if amsgrad (and v_max replaces v below)
        denom = sqrt(v) / sqrt(1 - beta2 ** t) + eps
        p = p - lr / (1 - beta1 ** t) * m / denom
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, fused=None, decoupled_weight_decay=False):
        """foreach and fused choose how PyTorch runs the same update. Here fused=False keeps every step on the
        per-parameter array code; None and True use the one-call kernel (CUDA, or Numba on the CPU) where it
        applies; foreach changes nothing."""
        name = type(self).__name__
        if foreach and fused:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        if not 0.0 <= lr:
            raise ValueError(f"{name}: invalid learning rate {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"{name}: invalid epsilon {eps}")
        for index, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name}: invalid beta parameter at index {index}: {beta} (expected 0 <= beta < 1)")
        if not 0.0 <= weight_decay:
            raise ValueError(f"{name}: invalid weight_decay {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach, fused=fused,
                                      decoupled_weight_decay=decoupled_weight_decay))

    @no_grad()
    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            if fused_adamw_step(self, group):  # one kernel call for the whole group, when the kernels apply
                continue
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            amsgrad, maximize, decoupled = group["amsgrad"], group["maximize"], group["decoupled_weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad, param, backend = p.grad.array, p.array, p.backend
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = Tensor._make(backend.full(param.shape, 0, p.dtype), p.device)
                    state["exp_avg_sq"] = Tensor._make(backend.full(param.shape, 0, p.dtype), p.device)
                step = state["step"] = state["step"] + 1
                if maximize:
                    grad = -grad
                if weight_decay:
                    if decoupled:
                        param *= 1 - lr * weight_decay
                    else:
                        grad = grad + weight_decay * param
                exp_avg, exp_avg_sq = state["exp_avg"].array, state["exp_avg_sq"].array
                exp_avg *= beta1
                exp_avg += (1 - beta1) * grad
                exp_avg_sq *= beta2
                exp_avg_sq += (1 - beta2) * (grad * grad)
                if amsgrad:
                    max_exp_avg_sq = state.get("max_exp_avg_sq")
                    if max_exp_avg_sq is None:  # made on the first step with amsgrad
                        max_exp_avg_sq = state["max_exp_avg_sq"] = Tensor._make(backend.full(param.shape, 0, p.dtype),
                                                                                 p.device)
                    max_exp_avg_sq.array = second_moment = backend.maximum(max_exp_avg_sq.array, exp_avg_sq)
                else:
                    second_moment = exp_avg_sq
                denom = backend.sqrt(second_moment)
                denom /= math.sqrt(1 - beta2 ** step)
                denom += eps
                update = exp_avg / denom
                update *= lr / (1 - beta1 ** step)
                param -= update
                p._version.value += 1
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay before each update."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, foreach=foreach,
                         fused=fused, decoupled_weight_decay=True)
