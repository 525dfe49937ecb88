"""Numerical gradient check: compare backward() against central differences in float64."""


def numerical_jacobian_vector(fn, inputs, grad_output, eps):
    """d<fn(inputs), grad_output>/d inputs by central differences, one element at a time.

    fn runs in the caller's grad mode, as in PyTorch: a fn that itself calls autograd.grad (to check
    second derivatives) needs the graph. The graph of each evaluation is dropped right away.
    """
    grads = []
    for tensor in inputs:
        if not tensor.requires_grad:
            grads.append(None)
            continue
        flat = tensor.array.reshape(-1)  # a view: editing it edits the input
        grad = tensor.backend.full((flat.size,), 0.0, tensor.dtype)
        for i in range(flat.size):
            original = float(flat[i])
            flat[i] = original + eps
            plus = (fn(*inputs).detach() * grad_output).sum().item()
            flat[i] = original - eps
            minus = (fn(*inputs).detach() * grad_output).sum().item()
            flat[i] = original
            grad[i] = (plus - minus) / (2 * eps)
        grads.append(grad.reshape(tensor.shape))
    return grads


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Check fn's analytic gradients against central differences.

    inputs: a tensor or a sequence of tensors; those with requires_grad are checked. They should be
    float64 (a float32 check is too noisy to mean anything) and are converted with a warning-free copy.
    A random grad_output projects a non-scalar output to a scalar, so the whole Jacobian is exercised.
    Returns True, or raises (or returns False) naming the worst element.
    """
    from ..tensor import Tensor
    from ..dtype import float64
    from .engine import run_backward
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(t.detach().to(float64).requires_grad_(t.requires_grad) if isinstance(t, Tensor)
                   and t.dtype.is_floating else t for t in inputs)
    output = fn(*inputs)
    rng = output.backend.xp.random.default_rng(seed)
    grad_output = Tensor(rng.standard_normal(output.shape), device=output.device)
    checked = [t for t in inputs if isinstance(t, Tensor)]
    for t in checked:
        t.grad = None
    run_backward([output], [grad_output], retain_graph=False, create_graph=False)
    numerical = numerical_jacobian_vector(fn, checked, grad_output, eps)
    for position, (t, expected) in enumerate(zip(checked, numerical)):
        if expected is None:
            continue
        analytic = t.grad.array if t.grad is not None else t.backend.full(t.shape, 0.0, float64)
        xp = t.backend.xp
        error = xp.abs(analytic - expected) - (atol + rtol * xp.abs(expected))
        if error.size and float(error.max()) > 0:
            worst = int(error.argmax())
            index = tuple(int(i) for i in xp.unravel_index(worst, t.shape))
            message = (f"gradcheck failed for input {position} (shape {tuple(t.shape)}): at index {index} "
                       f"analytic {float(analytic.reshape(-1)[worst]):.8g} vs numerical "
                       f"{float(expected.reshape(-1)[worst]):.8g}")
            if raise_exception:
                raise AssertionError(message)
            return False
    return True
