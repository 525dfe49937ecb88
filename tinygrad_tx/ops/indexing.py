"""Indexing: x[index], x[index] = v, gather. Each backward is the other half of a pair:
reading at an index scatters the gradient back (adding where an index repeats), and the
scatter's backward reads at the index again, so higher-order gradients work."""
from ..autograd import Function, is_grad_enabled


def is_basic(index):
    """Ints, slices, None and Ellipsis only: NumPy then returns a view, and no index repeats."""
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in index)


def pytorch_dim_order(index, ndim, result_ndim):
    """Where PyTorch and NumPy place the dims of an advanced index differently, the permutation that takes
    NumPy's result (of result_ndim dims) to PyTorch's; None where they agree.

    Both put the dims of the index arrays in place of the arrays when the arrays are adjacent, and first
    when something separates them. They differ on what separates: NumPy counts an int beside an array as
    one more array, PyTorch first selects with it and drops the dim; and NumPy sees an Ellipsis that stands
    for no dims as a separator, PyTorch does not. So for x of shape (3, 1, 4), x[2, :, [0, 3]] is (2, 1) in
    NumPy (int and array separated) and (1, 2) in PyTorch (x[2] is (1, 4), then [:, [0, 3]])."""
    layout = _array_dims_layout(index, ndim)
    if layout is None:
        return None
    before, n_basic = layout
    n_array_dims = result_ndim - n_basic
    return tuple(range(n_array_dims, n_array_dims + before)) + tuple(range(n_array_dims)) + \
        tuple(range(n_array_dims + before, n_array_dims + n_basic))


def reorders_dims(index, ndim):
    """Whether PyTorch places the index arrays' dims elsewhere than NumPy (see pytorch_dim_order)."""
    return _array_dims_layout(index, ndim) is not None


def _array_dims_layout(index, ndim):
    """None where NumPy and PyTorch agree; else (how many dims PyTorch puts before the index arrays' dims,
    how many dims of the result come from slices, None and unindexed dims)."""
    consumed = sum(_dims_consumed(item) for item in index)
    has_ellipsis = any(item is Ellipsis for item in index)
    kinds = []  # per index item: "int", "array" or "basic" (a slice, None, or a dim an Ellipsis stands for)
    for item in index:
        if item is Ellipsis:  # NumPy sees a separator even where the Ellipsis stands for no dim
            kinds += ["basic"] * (ndim - consumed) or ["empty ellipsis"]
        elif isinstance(item, int):
            kinds.append("int")
        elif item is None or isinstance(item, slice):
            kinds.append("basic")
        else:
            kinds.append("array")
    if "array" not in kinds:
        return None
    advanced = [i for i, kind in enumerate(kinds) if kind in ("int", "array")]
    arrays = [i for i, kind in enumerate(k for k in kinds if k in ("basic", "array")) if kind == "array"]
    if advanced[-1] - advanced[0] == len(advanced) - 1 or arrays[-1] - arrays[0] != len(arrays) - 1:
        return None  # NumPy keeps them in place, or PyTorch too puts them first
    before = kinds[:kinds.index("array")].count("basic")  # PyTorch puts the array dims after these
    n_basic = kinds.count("basic") + (0 if has_ellipsis else ndim - consumed)  # unindexed trailing dims count too
    return before, n_basic


def takes_a_view_first(index, shape):
    """Whether PyTorch's setitem writes through a view it takes of the tensor (an int, None, a bool, a slice that
    is not the whole dim) rather than into the tensor itself (an Ellipsis, whole slices, index arrays). Taking the
    view makes autograd's record of the tensor current, which decides PyTorch's leaf check."""
    ellipsis_dims = len(shape) - sum(_dims_consumed(item) for item in index)
    dim = 0
    for item in index:
        if item is None or isinstance(item, int) or (_is_array(item) and item.ndim == 0):
            return True
        if isinstance(item, slice):
            # PyTorch skips slicing only for start 0 (as written), a stop at the end or past it, and step 1
            whole = item.start in (None, 0) and (item.stop is None or item.stop >= shape[dim]) \
                and item.step in (None, 1)
            if not whole:
                return True
        dim += ellipsis_dims if item is Ellipsis else _dims_consumed(item)
    return False


def _is_array(item):
    return not (item is None or item is Ellipsis or isinstance(item, (int, slice)))


def _dims_consumed(item):
    """How many of the indexed tensor's dims an index item stands for (an Ellipsis: none of its own)."""
    if item is None or item is Ellipsis:
        return 0
    if isinstance(item, (int, slice)):
        return 1
    return item.ndim if item.dtype == bool else 1


class Getitem(Function):
    only_moves_values = True

    @staticmethod
    def forward(ctx, x, index):
        ctx.index = index
        result = x.backend.getitem(x.array, index)
        # the layout PyTorch's has, for a later view to see the same: NumPy's where the index arrays come first,
        # C order where NumPy had to move the selected dims to the front
        return result if _is_array(index[0]) else x.backend.contiguous(result)

    @staticmethod
    def backward(ctx, grad_output):
        ((shape, _), _) = ctx._input_meta
        grad = IndexAdd.apply(grad_output, ctx.index, shape)
        if is_basic(ctx.index) and not is_grad_enabled():
            # zeros but for grad_output at the index, in an array only the engine holds: it may add the next
            # gradient of a slice of the same tensor into it in place (autograd/engine.py)
            grad._scattered = (ctx.index, grad_output.array)
        return grad, None


class BasicGetitem(Getitem):
    returns_view = True
    gradient_is_a_slice = True  # the engine may add its gradient into x's pending one in place of backward

    @staticmethod
    def forward(ctx, x, index):
        ctx.index = index
        if not any(item is Ellipsis for item in index):
            index = index + (Ellipsis,)  # all ints: a 0-d view of x, not a NumPy scalar copied out of it
        return x.backend.getitem(x.array, index)


class CopySlices(Function):
    """The base of a view after an in-place edit of the view: the view's elements (at flat `positions`
    of the base) now come from `value`, the rest from the base as it was. The memory is already written;
    this node only gives the base its new place in the graph, as PyTorch's CopySlices does."""
    only_moves_values = True

    @staticmethod
    def forward(ctx, base, value, positions, repeats):
        # repeats: the view is expanded, some of its elements one location of the base
        ctx.positions, ctx.repeats = positions, repeats
        return base.array

    @staticmethod
    def backward(ctx, grad_output):
        ((shape, _), _, _, _) = ctx._input_meta
        flat = grad_output.reshape(-1)
        grad_base = grad_value = None
        if ctx.needs_input_grad[0]:
            if ctx.repeats:  # as PyTorch's, which writes the base's gradient through the view and refuses it here
                raise RuntimeError("CopySlices: unsupported operation: more than one element of the written-to "
                                   "tensor (an expanded view, edited in place) refers to a single memory location; "
                                   "clone() it before the in-place edit")
            grad_base = SetItem.apply(flat, flat.new_zeros(()), (ctx.positions,)).reshape(shape)
        if ctx.needs_input_grad[1]:
            grad_value = Getitem.apply(flat, (ctx.positions,))
        return grad_base, grad_value, None, None


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
            return backend.embedding_backward(ids, grad.array.reshape(ids.shape[0], shape[1]), shape[0])
        out = backend.full(shape, 0, grad.dtype)
        backend.index_add(out, index, grad.array)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        getitem = BasicGetitem if is_basic(ctx.index) else Getitem
        return getitem.apply(grad_output, ctx.index), None, None


class SetItem(Function):
    """A copy of x with value written at index (x[index] = value, made differentiable)."""
    only_moves_values = True

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
            getitem = BasicGetitem if is_basic(ctx.index) else Getitem  # NumPy's order, as forward wrote it
            grad_value = unbroadcast(getitem.apply(grad_output, ctx.index), value_shape)
        return grad_x, grad_value, None


class Gather(Function):
    """out[i][j][k] = x[i][index[i][j][k]][k] for dim=1 (PyTorch's gather)."""
    only_moves_values = True

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.dim, ctx.index = dim, index
        ctx.save_for_backward(x, index)
        return x.backend.take_along_axis(x.array, index.array, dim)

    @staticmethod
    def backward(ctx, grad_output):
        ctx.saved_tensors  # PyTorch's gather saves both: an in-place edit of either is the same error here as there
        ((shape, _), _, _) = ctx._input_meta
        return ScatterAdd.apply(grad_output, ctx.dim, ctx.index, shape), None, None


class SelectAlong(Gather):
    """gather at the indices max(dim), min(dim), sort and topk found: their backward reads only the indices."""
    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.dim, ctx.index = dim, index
        ctx.save_for_backward(index)
        return x.backend.take_along_axis(x.array, index.array, dim)


class ScatterAdd(Function):
    """zeros(shape) with values added at index along dim: the adjoint of gather."""
    @staticmethod
    def forward(ctx, values, dim, index, shape):
        ctx.dim, ctx.index = dim, index
        return values.backend.scatter_add_along_axis(shape, index.array, values.array, dim, values.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        return Gather.apply(grad_output, ctx.dim, ctx.index), None, None, None


