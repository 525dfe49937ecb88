"""Ops that move data without changing values: reshape, permute, expand, flip, roll, copy, cat, device transfer."""
from ..autograd import Function
from .elementwise import unbroadcast


class Reshape(Function):
    only_moves_values = True
    returns_view = True

    @staticmethod
    def forward(ctx, x, shape):
        return x.backend.reshape(x.array, shape)

    @staticmethod
    def backward(ctx, grad_output):
        ((shape, _), _) = ctx._input_meta
        return grad_output.reshape(shape), None


class Permute(Function):
    only_moves_values = True
    returns_view = True

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return x.backend.transpose(x.array, dims)

    @staticmethod
    def backward(ctx, grad_output):
        inverse = [0] * len(ctx.dims)
        for position, dim in enumerate(ctx.dims):
            inverse[dim] = position
        return grad_output.permute(*inverse), None


class Expand(Function):
    only_moves_values = True
    returns_view = True

    @staticmethod
    def forward(ctx, x, shape):
        return x.backend.broadcast_to(x.array, shape)

    @staticmethod
    def backward(ctx, grad_output):
        ((shape, _), _) = ctx._input_meta
        return unbroadcast(grad_output, shape), None


class Flip(Function):
    """The elements in reverse order along dims (a copy, as PyTorch's flip)."""
    only_moves_values = True

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return x.backend.copy(x.backend.flip(x.array, dims))

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.flip(ctx.dims), None


class Roll(Function):
    """Elements shifted along dims, those pushed off one end coming back at the other; with dims None, along
    the flattened tensor (PyTorch's roll)."""
    only_moves_values = True

    @staticmethod
    def forward(ctx, x, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        return x.backend.roll(x.array, shifts, dims)

    @staticmethod
    def backward(ctx, grad_output):
        unshift = -ctx.shifts if ctx.dims is None else tuple(-s for s in ctx.shifts)
        return Roll.apply(grad_output, unshift, ctx.dims), None, None


class CheckUnchanged(Function):
    """The same tensor, whose backward checks that it was not edited in place since. A composite method (var,
    logsumexp) whose PyTorch counterpart is one op that saves its input or output raises where PyTorch does."""
    only_moves_values = True
    returns_view = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.array

    @staticmethod
    def backward(ctx, grad_output):
        ctx.saved_tensors
        return grad_output


class Copy(Function):
    """A fresh copy: C-contiguous (contiguous), or in the source's memory order (clone, as PyTorch's
    preserve_format: a later view of the copy then sees what a view of the source would)."""
    only_moves_values = True

    @staticmethod
    def forward(ctx, x, keep_layout):
        return x.backend.copy(x.array, keep_layout)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None


class Cat(Function):
    only_moves_values = True

    @staticmethod
    def forward(ctx, dim, *tensors):
        ctx.dim = dim
        # C order whatever the inputs' (NumPy follows theirs, PyTorch does not): a later view must see it as PyTorch's
        return tensors[0].backend.contiguous(tensors[0].backend.concatenate([t.array for t in tensors], dim))

    @staticmethod
    def backward(ctx, grad_output):
        sizes = [shape[ctx.dim] for shape, _ in ctx._input_meta[1:]]
        return (None, *grad_output.split(sizes, dim=ctx.dim))


class ToDevice(Function):
    only_moves_values = True

    @staticmethod
    def forward(ctx, x, device):
        from ..backend import get_backend
        ctx.output_device = device
        return get_backend(device).asarray(x.backend.to_numpy(x.array))

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.to(ctx._device), None


class PinMemory(Function):
    """A copy of a CPU tensor in page-locked memory; the gradient passes through unchanged."""
    only_moves_values = True

    @staticmethod
    def forward(ctx, x):
        from ..backend import pinned
        return pinned.pin(x.array)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output
