"""Factories: tensor, zeros, ones, full, empty, arange, randn, rand, randint and their *_like forms."""
from . import dtype as dtypes
from .backend import get_backend, normalize_device
from .tensor import Tensor, _shape_arg


def tensor(data, dtype=None, device=None, requires_grad=False):
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def _filled(shape, value, dtype, device, requires_grad, default=dtypes.default_float):
    device = normalize_device(device)
    dtype = dtypes.to_dtype(dtype) or default
    array = get_backend(device).full(_shape_arg(shape), value, dtype)
    return Tensor._make(array, device).requires_grad_(requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad=False):
    return _filled(shape, 0, dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False):
    return _filled(shape, 1, dtype, device, requires_grad)


def empty(*shape, dtype=None, device=None, requires_grad=False):
    # zero-filled: reading uninitialized memory would make runs irreproducible
    return _filled(shape, 0, dtype, device, requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad=False):
    default = dtypes.bool_ if isinstance(fill_value, bool) else \
        dtypes.int64 if isinstance(fill_value, int) else dtypes.default_float
    return _filled(shape, fill_value, dtype, device, requires_grad, default)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    integral = all(isinstance(v, int) for v in (start, end, step))
    dtype = dtypes.to_dtype(dtype) or (dtypes.int64 if integral else dtypes.default_float)
    device = normalize_device(device)
    return Tensor._make(get_backend(device).arange(start, end, step, dtype), device).requires_grad_(requires_grad)


def _random(draw, shape, dtype, device, requires_grad):
    device = normalize_device(device)
    dtype = dtypes.to_dtype(dtype) or dtypes.default_float
    array = draw(get_backend(device), _shape_arg(shape), dtype)
    return Tensor._make(array, device).requires_grad_(requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False):
    return _random(lambda backend, s, d: backend.randn(s, d), shape, dtype, device, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False):
    return _random(lambda backend, s, d: backend.rand(s, d), shape, dtype, device, requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None):
    """randint(high, size) or randint(low, high, size), as PyTorch: integers in [low, high)."""
    if isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if low >= high:
        raise ValueError(f"randint: low ({low}) must be less than high ({high})")
    device = normalize_device(device)
    dtype = dtypes.to_dtype(dtype) or dtypes.int64
    return Tensor._make(get_backend(device).randint(low, high, _shape_arg(size), dtype), device)


def _like(factory):
    def like(input, dtype=None, device=None, requires_grad=False, **kwargs):
        return factory(*input.shape, dtype=dtype or input.dtype, device=device or input.device,
                       requires_grad=requires_grad, **kwargs)
    like.__name__ = factory.__name__ + "_like"
    like.__doc__ = f"{factory.__name__} with the shape, dtype and device of `input`."
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
randn_like = _like(randn)
rand_like = _like(rand)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return full(input.shape, fill_value, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)


def randint_like(input, low, high=None, dtype=None, device=None):
    return randint(low, high, input.shape, dtype=dtype or input.dtype, device=device or input.device)


def one_hot(tensor, num_classes=-1):
    """Integer class indices -> int64 one-hot rows (no gradient)."""
    if tensor.dtype.is_floating:
        raise RuntimeError(f"one_hot: expected an integer tensor of class indices, got {tensor.dtype}")
    if num_classes == -1:
        num_classes = int(tensor.array.max()) + 1 if tensor.numel() else 0
    if tensor.numel() and (int(tensor.array.min()) < 0 or int(tensor.array.max()) >= num_classes):
        raise RuntimeError(f"one_hot: class values must be in [0, {num_classes}), got values in "
                           f"[{int(tensor.array.min())}, {int(tensor.array.max())}]")
    classes = tensor.backend.arange(0, num_classes, 1, dtypes.int64)
    return Tensor._make((tensor.array[..., None] == classes).astype("int64"), tensor.device)
