"""Checking and normalizing dimension arguments and shapes, with errors that name the op."""


def normalize_dim(dim, ndim, op_name):
    """A possibly negative dim -> an index in [0, ndim)."""
    size = max(ndim, 1)
    if not isinstance(dim, int) or not -size <= dim < size:
        raise IndexError(f"{op_name}: dim {dim!r} is out of range for a tensor of {ndim} dimensions "
                         f"(expected an int in [{-size}, {size - 1}])")
    return dim % size


def normalize_dims(dim, ndim, op_name):
    """None or () (all dims, as PyTorch's reductions), an int or a sequence -> a sorted tuple of non-negative dims."""
    if not (dim is None or isinstance(dim, (int, tuple, list))):
        raise TypeError(f"{op_name}: dim must be an int or a tuple of ints, got {dim!r}")
    if dim is None or (not isinstance(dim, int) and len(dim) == 0):
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    normalized = sorted({normalize_dim(d, ndim, op_name) for d in dims})
    if len(normalized) != len(dims):
        raise RuntimeError(f"{op_name}: dim {dim!r} names a dimension twice")
    return tuple(normalized) if ndim else ()


def broadcast_shape(op_name, *shapes):
    """The shape NumPy-style broadcasting gives, or an error that names the op and the shapes."""
    ndim = max(len(s) for s in shapes)
    result = []
    for i in range(ndim):
        sizes = {s[i - ndim + len(s)] for s in shapes if i - ndim + len(s) >= 0} - {1}
        if len(sizes) > 1:
            listed = " and ".join(str(tuple(s)) for s in shapes)
            raise RuntimeError(f"{op_name}: shapes {listed} cannot be broadcast together "
                               f"(dimension {i - ndim} differs)")
        result.append(sizes.pop() if sizes else 1)
    return tuple(result)


def keepdim_shape(shape, dims):
    return tuple(1 if i in dims else n for i, n in enumerate(shape))


def count_over(shape, dims):
    """How many elements a reduction over dims combines."""
    count = 1
    for d in dims:
        count *= shape[d]
    return count
