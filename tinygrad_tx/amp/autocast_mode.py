"""autocast: run matrix products in half precision, keep everything else float32.

    with tinygrad_tx.autocast("cuda", dtype=tinygrad_tx.float16):
        logits, loss = model(x, y)        # weights stay float32 ("master weights")

Inside a region, on tensors of its device type ('cuda' or 'cpu'), as in PyTorch's autocast:
  - matmul, F.linear and scaled_dot_product_attention cast float32 operands to the half dtype: the
    products run on half inputs (on a GPU, cuBLAS accumulates them in float32) and return half;
  - softmax, log_softmax, layer_norm and cross_entropy cast half inputs to float32: reductions whose
    sums lose too much in float16 run in float32 (and return float32);
  - every other op runs in the dtype of its inputs (float32 + float16 promotes to float32).
The casts are ordinary Cast ops, so backward hands float32 gradients to the float32 weights.
float64 tensors are never cast. Casts are not cached across ops (PyTorch caches a weight's cast
within a region): a weight used twice is cast twice.

bfloat16 is not supported: NumPy and CuPy, the array libraries under every tinygrad_tx tensor, have no
bfloat16 dtype. Asking for it raises an error rather than silently running float16 or float32.
"""
import functools

from ..dtype import DType, float16, float32

_active = {}  # device type -> half dtype, while a region for that device type is open

_NO_BFLOAT16 = ("autocast: bfloat16 is not supported: NumPy and CuPy, the array libraries under tinygrad_tx, "
                "have no bfloat16 dtype. Use dtype=tinygrad_tx.float16 (with tinygrad_tx.amp.GradScaler for "
                "training), or float32 with tinygrad_tx.cuda.set_tf32(True) on a GPU")


class autocast:
    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
        if isinstance(device_type, DType):  # autocast(tinygrad_tx.float16): the dtype given first
            device_type, dtype = "cuda", device_type
        if device_type not in ("cuda", "cpu"):
            raise ValueError(f"autocast: device_type must be 'cuda' or 'cpu', got {device_type!r}")
        self.device_type = device_type
        self.fast_dtype = _half_dtype(dtype)
        self.enabled = bool(enabled)

    def __enter__(self):
        self._previous = _active.get(self.device_type)
        if self.enabled:
            _active[self.device_type] = self.fast_dtype
        else:  # autocast(enabled=False) inside a region turns it off for the block, as in PyTorch
            _active.pop(self.device_type, None)
        return self

    def __exit__(self, *exc):
        if self._previous is None:
            _active.pop(self.device_type, None)
        else:
            _active[self.device_type] = self._previous
        return False

    def __call__(self, function):
        @functools.wraps(function)
        def wrapped(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self.enabled):
                return function(*args, **kwargs)
        return wrapped


def _half_dtype(dtype):
    name = getattr(dtype, "name", dtype)
    if dtype is None or name in ("float16", "half"):
        return float16
    if name == "bfloat16" or str(dtype).endswith("bfloat16"):
        raise TypeError(_NO_BFLOAT16)
    raise TypeError(f"autocast: dtype must be tinygrad_tx.float16, got {dtype!r}")


def is_autocast_enabled(device_type="cuda"):
    return device_type in _active


def autocast_dtype(device):
    """The half dtype ops on this device ('cpu', 'cuda:0') run in, or None outside a region."""
    if not _active:
        return None
    return _active.get(device.split(":")[0])


def cast_to_half(*tensors):
    """The operands of a matrix product: float32 tensors become the region's half dtype (None passes)."""
    if not _active:
        return tensors
    return tuple(_cast(t, float32, autocast_dtype(t.device)) if t is not None else None for t in tensors)


def cast_to_float32(*tensors):
    """The inputs of a reduction that needs float32: half tensors become float32 (None passes)."""
    if not _active:
        return tensors
    return tuple(_cast(t, autocast_dtype(t.device), float32 if autocast_dtype(t.device) else None)
                 if t is not None else None for t in tensors)


def _cast(tensor, source, target):
    return tensor.to(target) if target is not None and tensor.dtype is source else tensor
