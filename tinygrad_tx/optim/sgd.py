"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay, as torch.optim.SGD."""
from ..autograd import no_grad
from ..tensor import Tensor
from .optimizer import Optimizer


class SGD(Optimizer):
    """PyTorch's rule, with g the gradient of parameter p:

        g = g + weight_decay * p
        buf = g                                         (first step)
        buf = momentum * buf + (1 - dampening) * g      (later steps)
        g = g + momentum * buf  if nesterov  else  buf  (when momentum != 0)
        p = p - lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False):
        if lr < 0:
            raise ValueError(f"SGD: invalid learning rate {lr}")
        if momentum < 0:
            raise ValueError(f"SGD: invalid momentum {momentum}")
        if weight_decay < 0:
            raise ValueError(f"SGD: invalid weight_decay {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    @no_grad()
    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.array
                if maximize:
                    grad = -grad
                if weight_decay:
                    grad = grad + weight_decay * p.array
                if momentum:
                    state = self.state[p]
                    buffer = state.get("momentum_buffer")
                    if buffer is None:
                        buffer = state["momentum_buffer"] = Tensor._make(p.backend.copy(grad), p.device)
                    else:
                        buf = buffer.array
                        buf *= momentum
                        buf += (1 - dampening) * grad if dampening else grad
                    grad = grad + momentum * buffer.array if nesterov else buffer.array
                p.array -= lr * grad
                p._version.value += 1
        return loss
