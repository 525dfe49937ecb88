"""Factories: tensor, zeros, ones, full, empty, arange, linspace, eye, randn, rand, randint, randperm and their
*_like forms; from_numpy and as_tensor, which share memory where they can."""
from . import dtype as dtypes
from .backend import get_backend, normalize_device
from .tensor import Tensor, _shape_arg


def tensor(data, dtype=None, device=None, requires_grad=False):
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


_SHAREABLE = {d.numpy_name for d in dtypes.ALL}  # NumPy dtypes a tensor can use without a conversion


def from_numpy(array):
    """A CPU tensor over the NumPy array's own memory: a write to either shows in the other (as PyTorch)."""
    backend = get_backend("cpu")
    if not isinstance(array, backend.array_type):
        raise TypeError(f"from_numpy: expected a NumPy ndarray, got {type(array).__name__}")
    if array.dtype.name not in _SHAREABLE:
        raise TypeError(f"from_numpy: cannot share an array of dtype {array.dtype}; supported: "
                        f"{', '.join(d.name for d in dtypes.ALL)} (tensor() converts a copy)")
    return Tensor._make(array, "cpu")


def as_tensor(data, dtype=None, device=None):
    """data as a tensor without a copy where none is needed: a tensor already of this dtype and device is
    returned as it is, a NumPy array of a supported dtype is shared (for the CPU); anything else is copied."""
    dtype = dtypes.to_dtype(dtype)
    if isinstance(data, Tensor):
        return data.to(device=device or data.device, dtype=dtype)
    device = normalize_device(device)
    shareable = isinstance(data, get_backend("cpu").array_type) and data.dtype.name in _SHAREABLE
    if device == "cpu" and shareable and (dtype is None or dtype.numpy_name == data.dtype.name):
        return from_numpy(data)
    return Tensor(data, dtype=dtype, device=device)


def is_tensor(obj):
    return isinstance(obj, Tensor)


def _filled(shape, value, dtype, device, requires_grad, default=None):
    device = normalize_device(device)
    dtype = dtypes.to_dtype(dtype) or default or dtypes.default_float  # read now: set_default_dtype may change it
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


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """steps evenly spaced values from start to end, both included."""
    if steps < 0:
        raise RuntimeError(f"linspace: the number of steps must be non-negative, got {steps}")
    device = normalize_device(device)
    dtype = dtypes.to_dtype(dtype) or dtypes.default_float
    return Tensor._make(get_backend(device).linspace(start, end, steps, dtype), device).requires_grad_(requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """The (n, m) matrix with ones on the diagonal (m defaults to n)."""
    m = n if m is None else m
    if n < 0 or m < 0:
        raise RuntimeError(f"eye: sizes must be non-negative, got n={n}, m={m}")
    device = normalize_device(device)
    dtype = dtypes.to_dtype(dtype) or dtypes.default_float
    return Tensor._make(get_backend(device).eye(n, m, dtype), device).requires_grad_(requires_grad)


def randperm(n, dtype=None, device=None, requires_grad=False):
    """A random permutation of 0..n-1 (int64), drawn from the device's generator (manual_seed repeats it)."""
    if n < 0:
        raise RuntimeError(f"randperm: n must be non-negative, got {n}")
    device = normalize_device(device)
    backend = get_backend(device)
    _, order = backend.sort(backend.rand((n,), dtypes.float64), 0, False)  # the order of n uniform draws
    dtype = dtypes.to_dtype(dtype) or dtypes.int64
    return Tensor._make(backend.astype(order, dtype), device).requires_grad_(requires_grad)


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
