"""AdamW's step for a whole parameter group as one kernel call: one CUDA launch on a GPU
(backend/kernels/adamw.cu), one multi-threaded Numba call on the CPU (backend/cpu_kernels/parameters.py).

Adam.step asks this first and runs its per-parameter array code when the answer is no: where the backend
has no kernels (the CPU without Numba), with them switched off (tinygrad_tx.cuda.use_kernels(False),
tinygrad_tx.cpu.use_kernels(False)), for a group made with fused=False,
and for options the kernel does not implement (amsgrad, maximize, L2-style weight decay, non-float32
parameters, parameters on several devices or at different step counts).
"""
from ..tensor import Tensor


def fused_adamw_step(optimizer, group):
    """Update the group with one kernel call; False (nothing changed) when the kernel does not apply."""
    if group.get("fused") is False:  # asked for the per-parameter code (a group loaded from an older state dict
        return False                  # has no "fused": None, the default)
    if group["amsgrad"] or group["maximize"] or (group["weight_decay"] and not group["decoupled_weight_decay"]):
        return False
    params = [p for p in group["params"] if p.grad is not None]
    if not params:
        return False
    first = params[0]
    kernels = first.backend.kernels
    if kernels is None:
        return False
    if any(p.device != first.device or p.dtype.name != "float32" or p.grad.dtype.name != "float32"
           or not p.array.flags.c_contiguous for p in params):
        return False
    if len({optimizer.state[p].get("step", 0) for p in params}) != 1:  # the bias corrections are per step
        return False
    backend = first.backend
    for p in params:
        state = optimizer.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = Tensor._make(backend.full(p.shape, 0, p.dtype), p.device)
            state["exp_avg_sq"] = Tensor._make(backend.full(p.shape, 0, p.dtype), p.device)
        state["step"] += 1
    beta1, beta2 = group["betas"]
    kernels.adamw_step([p.array for p in params],
                       [backend.contiguous(p.grad.array) for p in params],  # a gradient may be a broadcast view
                       [optimizer.state[p]["exp_avg"].array for p in params],
                       [optimizer.state[p]["exp_avg_sq"].array for p in params],
                       group["lr"], beta1, beta2, group["eps"], group["weight_decay"], optimizer.state[first]["step"])
    for p in params:
        p._version.value += 1  # as the array code's in-place update does
    return True
