"""softmax and log_softmax, shifted by the row maximum so exp never overflows.

Both backwards read only the output (as PyTorch's), so the input may be edited in place after
the forward; an edit of the output is caught by its version check."""
from .fused import FusedFunction


class Softmax(FusedFunction):
    saves_output = True

    @staticmethod
    def computes_bfloat16_itself(x, dim):
        return _row_kernels(x.backend, x, dim) is not None  # the kernel reads bfloat16 and sums in float32

    @staticmethod
    def forward(ctx, x, dim):
        backend = x.backend
        ctx.dim, ctx.kernels = dim, _row_kernels(backend, x, dim)
        if ctx.kernels is not None:
            return ctx.kernels.softmax_forward(x.array, log=False)
        if x.ndim and x.shape[dim] == 0:  # nothing to normalize: an empty result (the max below has no identity)
            return backend.copy(x.array)
        exps = backend.exp(x.array - backend.max(x.array, dim, True))
        return backend.contiguous(exps / backend.sum(exps, dim, True))  # C order whatever x's, as PyTorch

    @staticmethod
    def backward_arrays(ctx, grad_output):
        # dx = y * (dy - sum(dy * y))
        out = ctx.output.array
        if ctx.kernels is not None:
            return ctx.kernels.softmax_backward(grad_output, out, log=False), None
        return out * (grad_output - (grad_output * out).sum(axis=ctx.dim, keepdims=True)), None

    @staticmethod
    def backward_with_graph(ctx, grad_output):
        out = ctx.output
        return out * (grad_output - (grad_output * out).sum(ctx.dim, keepdim=True)), None

    @staticmethod
    def composed(ctx, x, dim):
        exps = (x - x.amax(dim, keepdim=True).detach()).exp()
        return exps / exps.sum(dim, keepdim=True)


class LogSoftmax(FusedFunction):
    saves_output = True

    @staticmethod
    def computes_bfloat16_itself(x, dim):
        return _row_kernels(x.backend, x, dim) is not None  # the kernel reads bfloat16 and sums in float32

    @staticmethod
    def forward(ctx, x, dim):
        backend = x.backend
        ctx.dim, ctx.backend, ctx.kernels = dim, backend, _row_kernels(backend, x, dim)
        if ctx.kernels is not None:
            return ctx.kernels.softmax_forward(x.array, log=True)
        if x.ndim and x.shape[dim] == 0:
            return backend.copy(x.array)
        shifted = x.array - backend.max(x.array, dim, True)
        return backend.contiguous(shifted - backend.log(backend.sum(backend.exp(shifted), dim, True)))

    @staticmethod
    def backward_arrays(ctx, grad_output):
        # dx = dy - softmax(x) * sum(dy)
        out = ctx.output.array
        if ctx.kernels is not None:
            return ctx.kernels.softmax_backward(grad_output, out, log=True), None
        return grad_output - ctx.backend.exp(out) * grad_output.sum(axis=ctx.dim, keepdims=True), None

    @staticmethod
    def backward_with_graph(ctx, grad_output):
        return grad_output - ctx.output.exp() * grad_output.sum(ctx.dim, keepdim=True), None

    @staticmethod
    def composed(ctx, x, dim):
        shifted = x - x.amax(dim, keepdim=True).detach()
        return shifted - shifted.exp().sum(dim, keepdim=True).log()


def _row_kernels(backend, x, dim):
    """The backend's kernels when they can take this softmax: over the last dim of a float32/float16/bfloat16 array."""
    kernels = backend.kernels
    return kernels if kernels is not None and dim == x.ndim - 1 and kernels.supports(x.array) else None
