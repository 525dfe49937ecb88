"""softmax and log_softmax, shifted by the row maximum so exp never overflows."""
from .fused import FusedFunction


class Softmax(FusedFunction):
    @staticmethod
    def forward(ctx, x, dim):
        backend = x.backend
        ctx.dim, ctx.kernels = dim, _row_kernels(backend, x, dim)
        if ctx.kernels is not None:
            ctx.saved_arrays = (ctx.kernels.softmax_forward(x.array, log=False),)
            return ctx.saved_arrays[0]
        exps = backend.exp(x.array - backend.max(x.array, dim, True))
        out = exps / backend.sum(exps, dim, True)
        ctx.saved_arrays = (out,)
        return out

    @staticmethod
    def backward_arrays(ctx, grad_output):
        # dx = y * (dy - sum(dy * y))
        (out,) = ctx.saved_arrays
        if ctx.kernels is not None:
            return ctx.kernels.softmax_backward(grad_output, out, log=False), None
        return out * (grad_output - (grad_output * out).sum(axis=ctx.dim, keepdims=True)), None

    @staticmethod
    def composed(ctx, x, dim):
        exps = (x - x.amax(dim, keepdim=True).detach()).exp()
        return exps / exps.sum(dim, keepdim=True)


class LogSoftmax(FusedFunction):
    @staticmethod
    def forward(ctx, x, dim):
        backend = x.backend
        ctx.dim, ctx.backend, ctx.kernels = dim, backend, _row_kernels(backend, x, dim)
        if ctx.kernels is not None:
            ctx.saved_arrays = (ctx.kernels.softmax_forward(x.array, log=True),)
            return ctx.saved_arrays[0]
        shifted = x.array - backend.max(x.array, dim, True)
        out = shifted - backend.log(backend.sum(backend.exp(shifted), dim, True))
        ctx.saved_arrays = (out,)
        return out

    @staticmethod
    def backward_arrays(ctx, grad_output):
        # dx = dy - softmax(x) * sum(dy)
        (out,) = ctx.saved_arrays
        if ctx.kernels is not None:
            return ctx.kernels.softmax_backward(grad_output, out, log=True), None
        return grad_output - ctx.backend.exp(out) * grad_output.sum(axis=ctx.dim, keepdims=True), None

    @staticmethod
    def composed(ctx, x, dim):
        shifted = x - x.amax(dim, keepdim=True).detach()
        return shifted - shifted.exp().sum(dim, keepdim=True).log()


def _row_kernels(backend, x, dim):
    """The backend's kernels when they can take this softmax: over the last dim of a float32/float16 array."""
    kernels = backend.kernels
    return kernels if kernels is not None and dim == x.ndim - 1 and kernels.supports(x.array) else None
