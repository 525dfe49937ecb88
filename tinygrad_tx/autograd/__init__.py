"""Reverse-mode automatic differentiation: Function, the backward walk, grad modes, gradcheck."""
from .anomaly_mode import detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from .engine import run_backward
from .function import AccumulateGrad, Function
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                        set_grad_enabled)
from .gradcheck import gradcheck


def _as_tuple(x):
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


def default_grad_outputs(outputs, grad_outputs, op_name):
    """Implicit gradient 1 for scalar outputs; a non-scalar output needs an explicit one."""
    from ..tensor import Tensor
    grad_outputs = _as_tuple(grad_outputs) if grad_outputs is not None else (None,) * len(outputs)
    result = []
    for output, grad in zip(outputs, grad_outputs):
        if not output.requires_grad:
            raise RuntimeError(f"{op_name}: tensor of shape {tuple(output.shape)} does not require grad and has no "
                               "grad_fn (was it computed under no_grad, or from tensors without requires_grad?)")
        if grad is None:
            if output.numel() != 1:
                raise RuntimeError(f"{op_name}: grad can be implicitly created only for scalar outputs, got shape "
                                   f"{tuple(output.shape)}; pass gradient= with that shape")
            grad = Tensor._make(output.backend.full(output.shape, 1, output.dtype), output.device)
        elif not isinstance(grad, Tensor):
            grad = Tensor(grad, dtype=output.dtype, device=output.device)
        if grad.shape != output.shape:
            raise RuntimeError(f"{op_name}: gradient of shape {tuple(grad.shape)} given for output of shape "
                               f"{tuple(output.shape)}")
        result.append(grad)
    return result


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    """Accumulate d(tensors)/d(leaf) into each leaf's .grad."""
    tensors = _as_tuple(tensors)
    grads = default_grad_outputs(tensors, grad_tensors, "backward")
    retain_graph = create_graph if retain_graph is None else retain_graph
    run_backward(tensors, grads, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Return d(outputs)/d(inputs) without touching any .grad.

    With create_graph=True the returned gradients carry a graph of their own, so they can be
    differentiated again (Hessian-vector products, gradient penalties).
    """
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    grads = default_grad_outputs(outputs, grad_outputs, "grad")
    retain_graph = create_graph if retain_graph is None else retain_graph
    nodes = []
    for position, tensor in enumerate(inputs):
        if not tensor.requires_grad:
            raise RuntimeError(f"grad: input {position} (shape {tuple(tensor.shape)}) does not require grad")
        nodes.append(tensor.grad_fn if tensor.grad_fn is not None else tensor._grad_accumulator())
    captured, _ = run_backward(outputs, grads, retain_graph, create_graph, capture=dict.fromkeys(nodes))
    result = []
    for position, node in enumerate(nodes):
        value = captured[node]
        if value is None and not allow_unused:
            raise RuntimeError(f"grad: input {position} (shape {tuple(inputs[position].shape)}) was not used to "
                               "compute the outputs; pass allow_unused=True to get None for it")
        result.append(value)
    return tuple(result)


__all__ = ["Function", "AccumulateGrad", "backward", "grad", "gradcheck", "no_grad", "enable_grad",
           "is_grad_enabled", "set_grad_enabled", "inference_mode", "is_inference_mode_enabled", "detect_anomaly",
           "set_detect_anomaly", "is_anomaly_enabled"]
