"""Reductions over dimensions, and the running sum. Backward broadcasts the gradient back over what was reduced."""
from ..autograd import Function
from .dims import keepdim_shape
from .elementwise import constant


class Sum(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.dims = dims
        return x.backend.astype(x.backend.sum(x.array, dims, keepdim), x.dtype)  # NumPy sums int32 as int64

    @staticmethod
    def backward(ctx, grad_output):
        ((shape, _), _, _) = ctx._input_meta
        return grad_output.reshape(keepdim_shape(shape, ctx.dims)).expand(shape), None, None


class Cumsum(Function):
    """Running sums along dim: out[i] = x[0] + ... + x[i]."""
    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        return x.backend.astype(x.backend.cumsum(x.array, dim), x.dtype)  # NumPy sums int32 as int64

    @staticmethod
    def backward(ctx, grad_output):
        # x[j] is in every out[i] with i >= j: its gradient is the sum of grad_output from j to the end
        dim = ctx.dim
        return grad_output.flip(dim).cumsum(dim).flip(dim), None


class _Extreme(Function):
    """max or min over dims; ties share the gradient evenly (PyTorch's amax/amin rule)."""
    reduce = None
    saves_output = True

    @classmethod
    def forward(cls, ctx, x, dims, keepdim):
        ctx.save_for_backward(x)
        result = getattr(x.backend, cls.reduce)(x.array, dims, True)
        hits = x.array == result
        ctx.share = hits / x.backend.sum(hits, dims, True)
        ctx.share = ctx.share.astype(x.array.dtype)
        ctx.dims = dims
        return result if keepdim else result.reshape(tuple(n for i, n in enumerate(x.shape) if i not in dims))

    @staticmethod
    def backward(ctx, grad_output):
        # the tie shares were taken in forward; read the input and output anyway, as PyTorch's backward
        # does, so that editing either in place is the same error here as there
        ctx.saved_tensors, ctx.output
        ((shape, _), _, _) = ctx._input_meta
        spread = grad_output.reshape(keepdim_shape(shape, ctx.dims)).expand(shape)
        return spread * constant(grad_output, ctx.share), None, None


class Amax(_Extreme):
    reduce = "max"


class Amin(_Extreme):
    reduce = "min"
