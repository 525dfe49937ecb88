"""Layer normalization over the trailing dimensions, with its backward derived by hand."""
from .dims import count_over
from .fused import FusedFunction


class LayerNorm(FusedFunction):
    @staticmethod
    def computes_bfloat16_itself(x, weight, bias, n_dims, eps):
        return _kernels_for(x, weight, bias) is not None  # the kernel reads bfloat16 and sums in float32

    @staticmethod
    def forward(ctx, x, weight, bias, n_dims, eps):
        backend, a = x.backend, x.array
        ctx.save_for_backward(x, weight, bias)
        dims = tuple(range(x.ndim - n_dims, x.ndim))
        ctx.kernels = _kernels_for(x, weight, bias)
        if ctx.kernels is not None:
            # the trailing dims as one row of `count` values; keeps the rows' mean and rstd, not xhat
            count = count_over(x.shape, dims)
            out, mean, rstd = ctx.kernels.layer_norm_forward(
                backend.reshape(a, (-1, count)), _flat(backend, weight, count), _flat(backend, bias, count), eps)
            ctx.saved_arrays, ctx.dims = (mean, rstd), dims
            return backend.reshape(out, x.shape)
        ctx.kernels = None
        inverse_count = 1 / max(count_over(x.shape, dims), 1)  # an empty normalized shape: empty rows
        centered = a - _row_means(backend, a, dims)
        variance = backend.sum(centered * centered, dims, True) * inverse_count
        rstd = 1 / backend.sqrt(variance + eps)
        normalized = centered * rstd
        ctx.saved_arrays = (normalized, rstd)
        ctx.dims = dims
        if weight is None and bias is None:
            return backend.copy(normalized)  # the user's to edit in place (backward reads `normalized`); C order
        out = normalized
        if weight is not None:
            out = out * weight.array
        if bias is not None:
            out = out + bias.array
        return backend.contiguous(out)  # C order whatever x's, as PyTorch's

    @staticmethod
    def backward_arrays(ctx, grad_output):
        # y = xhat * w + b, xhat = (x - mean) * rstd
        # dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        x, weight, bias, _, _ = ctx.arguments
        if ctx.kernels is not None:
            return _kernel_backward(ctx, grad_output)
        normalized, rstd = ctx.saved_arrays
        batch_dims = tuple(range(x.ndim - len(ctx.dims)))
        grad_weight = grad_bias = None
        if weight is not None and ctx.needs_input_grad[1]:
            grad_weight = (grad_output * normalized).sum(axis=batch_dims)
        if bias is not None and ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(axis=batch_dims)
        grad_normalized = grad_output * weight.array if weight is not None else grad_output
        inverse_count = 1 / max(count_over(x.shape, ctx.dims), 1)
        mean_grad = grad_normalized.sum(axis=ctx.dims, keepdims=True) * inverse_count
        mean_grad_dot = (grad_normalized * normalized).sum(axis=ctx.dims, keepdims=True) * inverse_count
        grad_x = rstd * (grad_normalized - mean_grad - normalized * mean_grad_dot)
        return grad_x, grad_weight, grad_bias, None, None

    @staticmethod
    def composed(ctx, x, weight, bias, n_dims, eps):
        dims = tuple(range(x.ndim - n_dims, x.ndim))
        centered = x - x.mean(dims, keepdim=True)
        out = centered * ((centered * centered).mean(dims, keepdim=True) + eps).rsqrt()
        if weight is not None:
            out = out * weight
        if bias is not None:
            out = out + bias
        return out


def _kernels_for(x, weight, bias):
    """The backend's kernels when they take x, weight and bias: arrays of one dtype they support."""
    kernels = x.backend.kernels
    arrays = (p.array for p in (weight, bias) if p is not None)
    return kernels if kernels is not None and kernels.supports(x.array, *arrays) else None


def _row_means(backend, a, dims):
    """Each row's mean. Rows narrower than float64 are summed in float64: the sum of a row of one repeated value
    is then exact, so its mean is that value and its centered values exactly 0 (PyTorch's CPU kernel, a running
    mean, gives the same), where a float32 sum would round and leave noise that rstd then magnifies."""
    count = max(count_over(a.shape, dims), 1)
    if a.dtype.itemsize >= 8:
        return backend.sum(a, dims, True) / count
    return (a.sum(axis=dims, keepdims=True, dtype="float64") / count).astype(a.dtype)


def _flat(backend, parameter, count):
    return None if parameter is None else backend.reshape(parameter.array, (count,))


def _kernel_backward(ctx, grad_output):
    x, weight, bias, _, _ = ctx.arguments
    backend = x.backend
    mean, rstd = ctx.saved_arrays
    count = count_over(x.shape, ctx.dims)
    grad_x, grad_weight, grad_bias = ctx.kernels.layer_norm_backward(
        backend.reshape(grad_output, (-1, count)), backend.reshape(x.array, (-1, count)), _flat(backend, weight, count),
        mean, rstd, weight is not None and ctx.needs_input_grad[1], bias is not None and ctx.needs_input_grad[2])
    return (backend.reshape(grad_x, x.shape), _unflat(backend, grad_weight, weight), _unflat(backend, grad_bias, bias),
            None, None)


def _unflat(backend, grad, parameter):
    return None if grad is None else backend.reshape(grad, parameter.shape)
