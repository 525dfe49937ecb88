"""autocast: run matrix products in a 16-bit float, keep the rest as PyTorch's autocast keeps it.

    with tinygrad_tx.autocast("cuda", dtype=tinygrad_tx.float16):
        logits, loss = model(x, y)        # weights stay float32 ("master weights")
    with tinygrad_tx.autocast("cpu", dtype=tinygrad_tx.bfloat16):   # the CPU's default dtype, as PyTorch's
        logits, loss = model(x, y)

Inside a region, on tensors of its device type ('cuda' or 'cpu'), as PyTorch's autocast op lists say:
  - matmul (and @, mm, bmm, einsum), F.linear and scaled_dot_product_attention cast float32 operands to the
    region's dtype, float16 or bfloat16: the products run on 16-bit inputs with float32 sums and return
    the 16-bit dtype;
  - on a GPU, softmax, log_softmax, layer_norm and cross_entropy cast 16-bit inputs to float32 (reductions
    whose sums lose too much in float16 run in float32, and return float32); on the CPU only cross_entropy
    does, as PyTorch's CPU list says: softmax, log_softmax and layer_norm run in their input's dtype there;
  - every other op runs in the dtype of its inputs (float32 + bfloat16 promotes to float32).
The casts are ordinary Cast ops, so backward hands float32 gradients to the float32 weights.
float64 tensors are never cast. Casts are not cached across ops (PyTorch caches a weight's cast
within a region): a weight used twice is cast twice.

bfloat16 has float32's range, so its gradients need no loss scaling (a GradScaler may stay, disabled or not);
it needs ml_dtypes (pip install "tinygrad_tx[bf16]").
"""
import functools

from ..dtype import DType, bfloat16, float16, float32, require_bfloat16

_active = {}  # device type -> 16-bit dtype, while a region for that device type is open

# the ops that run in float32 inside a region, per device type (PyTorch's autocast float32 lists, for the ops we have)
_FLOAT32_OPS = {"cuda": frozenset({"softmax", "log_softmax", "layer_norm", "cross_entropy"}),
                "cpu": frozenset({"cross_entropy"})}
_DEFAULT_DTYPES = {"cuda": float16, "cpu": bfloat16}  # as PyTorch's


class autocast:
    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
        if isinstance(device_type, DType):  # autocast(tinygrad_tx.float16): the dtype given first
            device_type, dtype = "cuda", device_type
        if device_type not in ("cuda", "cpu"):
            raise ValueError(f"autocast: device_type must be 'cuda' or 'cpu', got {device_type!r}")
        self.device_type = device_type
        self.enabled = bool(enabled)
        self.fast_dtype = _fast_dtype(dtype, device_type, self.enabled)

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


def _fast_dtype(dtype, device_type, enabled):
    name = getattr(dtype, "name", None) or str(dtype).rpartition(".")[2]  # a DType, its name, or torch's dtype
    if dtype is None:
        fast = _DEFAULT_DTYPES[device_type]
    elif name in ("float16", "half"):
        fast = float16
    elif name == "bfloat16":
        fast = bfloat16
    else:
        raise TypeError(f"autocast: dtype must be tinygrad_tx.float16 or tinygrad_tx.bfloat16, got {dtype!r}")
    if fast is bfloat16 and enabled:
        require_bfloat16()  # the ImportError that says how to install ml_dtypes
    return fast


def is_autocast_enabled(device_type="cuda"):
    return device_type in _active


def autocast_dtype(device):
    """The half dtype ops on this device ('cpu', 'cuda:0') run in, or None outside a region."""
    if not _active:
        return None
    return _active.get(device.split(":")[0])


def cast_to_half(*tensors):
    """The operands of a matrix product: float32 tensors become the region's 16-bit dtype (None passes)."""
    if not _active:
        return tensors
    return tuple(_cast(t, float32, autocast_dtype(t.device)) if t is not None else None for t in tensors)


def cast_to_float32(op_name, *tensors):
    """The inputs of op_name, where the region's device type runs it in float32: 16-bit tensors of the region's
    dtype become float32 (None passes)."""
    if not _active:
        return tensors
    return tuple(_cast(t, autocast_dtype(t.device), float32 if op_name in _FLOAT32_OPS[t.device.type] else None)
                 if t is not None else None for t in tensors)


def _cast(tensor, source, target):
    return tensor.to(target) if target is not None and source is not None and tensor.dtype is source else tensor
