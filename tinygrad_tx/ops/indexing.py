"""Indexing: x[index], x[index] = v, gather. Each backward is the other half of a pair:
reading at an index scatters the gradient back (adding where an index repeats), and the
scatter's backward reads at the index again, so higher-order gradients work."""
from ..autograd import Function


def is_basic(index):
    """Ints, slices, None and Ellipsis only: NumPy then returns a view, and no index repeats."""
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in index)


class Getitem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.index = index
        return x.backend.getitem(x.array, index)

    @staticmethod
    def backward(ctx, grad_output):
        ((shape, _), _) = ctx._input_meta
        return IndexAdd.apply(grad_output, ctx.index, shape), None


class BasicGetitem(Getitem):
    returns_view = True


class IndexAdd(Function):
    """zeros(shape) with grad added at index: the adjoint of x[index]."""
    @staticmethod
    def forward(ctx, grad, index, shape):
        ctx.index = index
        backend = grad.backend
        if is_basic(index):
            out = backend.full(shape, 0, grad.dtype)
            backend.setitem(out, index, grad.array)
            return out
        if len(index) == 1 and len(shape) == 2 and index[0].ndim >= 1 and index[0].dtype != bool:
            # an embedding lookup table[ids]: sum the rows of grad by id (negative ids count from the end)
            ids = index[0].reshape(-1)
            ids = backend.where(ids < 0, ids + shape[0], ids)
            return backend.embedding_backward(ids, grad.array.reshape(-1, shape[1]), shape[0])
        out = backend.full(shape, 0, grad.dtype)
        backend.index_add(out, index, grad.array)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        getitem = BasicGetitem if is_basic(ctx.index) else Getitem
        return getitem.apply(grad_output, ctx.index), None, None


class SetItem(Function):
    """A copy of x with value written at index (x[index] = value, made differentiable)."""
    @staticmethod
    def forward(ctx, x, value, index):
        ctx.index = index
        out = x.backend.copy(x.array)
        x.backend.setitem(out, index, value.array)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (_, (value_shape, _), _) = ctx._input_meta
        grad_x = grad_value = None
        if ctx.needs_input_grad[0]:
            grad_x = SetItem.apply(grad_output, grad_output.new_zeros(()), ctx.index)
        if ctx.needs_input_grad[1]:
            from .elementwise import unbroadcast
            grad_value = unbroadcast(grad_output[ctx.index], value_shape)
        return grad_x, grad_value, None


class Gather(Function):
    """out[i][j][k] = x[i][index[i][j][k]][k] for dim=1 (PyTorch's gather)."""
    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.dim, ctx.index = dim, index
        return x.backend.take_along_axis(x.array, index.array, dim)

    @staticmethod
    def backward(ctx, grad_output):
        ((shape, _), _, _) = ctx._input_meta
        return ScatterAdd.apply(grad_output, ctx.dim, ctx.index, shape), None, None


class ScatterAdd(Function):
    """zeros(shape) with values added at index along dim: the adjoint of gather."""
    @staticmethod
    def forward(ctx, values, dim, index, shape):
        ctx.dim, ctx.index = dim, index
        return values.backend.scatter_add_along_axis(shape, index.array, values.array, dim, values.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        return Gather.apply(grad_output, ctx.dim, ctx.index), None, None, None


