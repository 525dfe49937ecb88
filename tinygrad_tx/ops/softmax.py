"""softmax and log_softmax, shifted by the row maximum so exp never overflows."""
from .fused import FusedFunction


class Softmax(FusedFunction):
    @staticmethod
    def forward(ctx, x, dim):
        backend = x.backend
        exps = backend.exp(x.array - backend.max(x.array, dim, True))
        out = exps / backend.sum(exps, dim, True)
        ctx.saved_arrays = (out,)
        ctx.dim = dim
        return out

    @staticmethod
    def backward_arrays(ctx, grad_output):
        # dx = y * (dy - sum(dy * y))
        (out,) = ctx.saved_arrays
        return out * (grad_output - (grad_output * out).sum(axis=ctx.dim, keepdims=True)), None

    @staticmethod
    def composed(ctx, x, dim):
        exps = (x - x.amax(dim, keepdim=True).detach()).exp()
        return exps / exps.sum(dim, keepdim=True)


class LogSoftmax(FusedFunction):
    @staticmethod
    def forward(ctx, x, dim):
        backend = x.backend
        shifted = x.array - backend.max(x.array, dim, True)
        out = shifted - backend.log(backend.sum(backend.exp(shifted), dim, True))
        ctx.saved_arrays = (out,)
        ctx.dim, ctx.backend = dim, backend
        return out

    @staticmethod
    def backward_arrays(ctx, grad_output):
        # dx = dy - softmax(x) * sum(dy)
        (out,) = ctx.saved_arrays
        return grad_output - ctx.backend.exp(out) * grad_output.sum(axis=ctx.dim, keepdims=True), None

    @staticmethod
    def composed(ctx, x, dim):
        shifted = x - x.amax(dim, keepdim=True).detach()
        return shifted - shifted.exp().sum(dim, keepdim=True).log()
