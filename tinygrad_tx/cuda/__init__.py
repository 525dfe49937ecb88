"""tinygrad_tx.cuda: what torch.cuda offers, for the CuPy backend.

Nothing here imports CuPy until a function needs it, so `import tinygrad_tx` never requires it;
is_available() and device_count() answer False / 0 instead of raising when CuPy or a GPU is missing.

Memory statistics come from CuPy's default memory pool (the one every array of this backend uses):
memory_allocated() is the pool's bytes in use; max_memory_allocated() is tracked by a CuPy memory
hook that records the bytes in use after every pool allocation (exact, as usage only grows at an
allocation), installed on the thread that first uses a CUDA device; both are 0 where no GPU is.

Float32 matrix products run in full float32 ("highest", the default, as in PyTorch) or on TF32 tensor
cores: set_tf32(True), tinygrad_tx.set_float32_matmul_precision("high") and
tinygrad_tx.backends.cuda.matmul.allow_tf32 = True are one switch.

tinygrad_tx.cuda.amp holds PyTorch's old spellings of autocast and GradScaler.
"""
import os
import warnings
from contextlib import contextmanager

from .. import random as _random
from ..backend import cuda_device_count, get_backend
from ..backend.devices import cuda_unavailable_reason
from ..backend.kernels import kernels_enabled, set_kernels_enabled

__all__ = ["is_available", "device_count", "current_device", "device", "set_device", "get_device_name", "is_bf16_supported",
           "synchronize", "manual_seed", "manual_seed_all", "memory_allocated", "max_memory_allocated",
           "reset_peak_memory_stats", "set_tf32", "tf32_enabled", "use_kernels", "kernels_enabled", "amp"]


def _cupy():
    try:
        import cupy
    except ImportError as error:
        raise RuntimeError('tinygrad_tx.cuda needs CuPy, which is not installed: pip install "tinygrad_tx[cuda]" '
                           '(or "tinygrad_tx[cuda12]" for CUDA 12)') from error
    return cupy


def is_available():
    """True when CuPy imports and sees at least one CUDA device. Never raises."""
    return device_count() > 0


def device_count():
    """Visible CUDA devices; 0 without CuPy, a driver or a GPU."""
    return cuda_device_count()


def current_device():
    return int(_gpu().cuda.runtime.getDevice())


@contextmanager
def device(index):
    """Make CUDA device `index` current: operators on arrays of cuda:index launch there."""
    with _gpu().cuda.Device(_index(index)):
        yield


def set_device(device):
    """Make a CUDA device current for this thread, as torch.cuda.set_device (DDP scripts call it per rank)."""
    _gpu().cuda.Device(_index(device)).use()


def get_device_name(device=None):
    """The GPU's name, as the driver reports it ('NVIDIA H100 80GB HBM3')."""
    name = _gpu().cuda.runtime.getDeviceProperties(_index(device))["name"]
    return name.decode() if isinstance(name, bytes) else name


def is_bf16_supported(including_emulation=True):
    """As PyTorch's: True on a GPU of compute capability 8.0 (Ampere) or newer, whose tensor cores multiply
    bfloat16; with including_emulation, also on an older GPU that can hold bfloat16 arrays. False without a
    GPU, and where CuPy cannot store bfloat16 (before CuPy 14, or without ml_dtypes)."""
    if not is_available() or not _stores_bfloat16():
        return False
    major = _gpu().cuda.runtime.getDeviceProperties(current_device())["major"]
    return int(major) >= 8 or bool(including_emulation)


def _stores_bfloat16():
    """Whether CuPy makes bfloat16 arrays: CuPy 14 does, with ml_dtypes installed (tinygrad_tx.dtype imports it)."""
    from .. import dtype
    if dtype.ml_dtypes is None:
        return False
    try:
        _gpu().zeros(1, dtype=dtype.ml_dtypes.bfloat16)
    except (TypeError, ValueError, NotImplementedError):  # an older CuPy: "Unsupported dtype bfloat16"
        return False
    return True


def synchronize(device=None):
    """Wait for every kernel queued on the device (all of them when device is None) to finish."""
    cupy = _gpu()
    indices = range(device_count()) if device is None else [_index(device)]
    for index in indices:
        cupy.cuda.Device(index).synchronize()


def manual_seed(seed):
    """Seed every CUDA device's generator, including devices first used later (tinygrad_tx.manual_seed
    seeds the CPU and CUDA alike; this one leaves the CPU generator alone)."""
    _random.manual_seed_device_type("cuda", seed)


manual_seed_all = manual_seed


def memory_allocated(device=None):
    """Bytes the device's arrays occupy now (CuPy's pool: bytes in use, not bytes cached); 0 without a GPU."""
    if not is_available():
        return 0
    return _backend(device).nbytes_in_use()


def max_memory_allocated(device=None):
    """The most bytes in use at once since the device was first used or since reset_peak_memory_stats();
    0 without a GPU."""
    if not is_available():
        return 0
    backend = _backend(device)
    from ..backend.cupy_backend import peak_memory
    return max(peak_memory.peaks.get(backend.index, 0), backend.nbytes_in_use())


def reset_peak_memory_stats(device=None):
    backend = _backend(device)
    from ..backend.cupy_backend import peak_memory
    peak_memory.peaks[backend.index] = backend.nbytes_in_use()


MATMUL_PRECISIONS = ("highest", "high", "medium")
_matmul_precision = "high" if os.environ.get("CUPY_TF32") == "1" else "highest"  # CuPy reads CUPY_TF32 too


def set_float32_matmul_precision(precision):
    """torch.set_float32_matmul_precision: "highest" runs float32 matrix products in float32; "high" and
    "medium" let cuBLAS run them on TF32 tensor cores (PyTorch's "medium" may split float32 products into
    bfloat16 ones: here it is TF32 too). Another name warns and changes nothing, as PyTorch's."""
    if precision not in MATMUL_PRECISIONS:
        warnings.warn(f"{precision} is not one of 'highest', 'high', or 'medium'; the current "
                      "set_float32_matmul_precision call has no effect.", stacklevel=2)
        return
    global _matmul_precision
    _matmul_precision = precision
    _apply_tf32(precision != "highest")


def get_float32_matmul_precision():
    return _matmul_precision


def set_tf32(enabled):
    """Let cuBLAS run float32 matrix products on TF32 tensor cores (Ampere, sm_80, and newer): about 8x the
    float32 throughput with a 10-bit mantissa in the products, accumulation still float32. Off by default,
    as in PyTorch. Older GPUs ignore it (CuPy warns). Same switch as CuPy's CUPY_TF32=1 at startup, and as
    set_float32_matmul_precision("high") (True) or ("highest") (False)."""
    set_float32_matmul_precision("high" if enabled else "highest")


def tf32_enabled():
    return get_float32_matmul_precision() != "highest"


def _apply_tf32(enabled):
    try:
        import cupy
        from cupy._core import _routines_linalg as linalg  # CuPy's compute-type table for its cuBLAS calls
    except ImportError:  # no CuPy, so no GPU products: the setting is only recorded
        return
    linalg.set_compute_type(cupy.float32, linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT)


def use_kernels(enabled=True):
    """Run the fused ops with our CUDA kernels (True, the default) or with plain CuPy array code (False).
    The environment variable TINYGRAD_TX_CUDA_KERNELS=0 sets False at startup."""
    set_kernels_enabled(enabled)


def _gpu():
    """CuPy, where it sees a GPU; otherwise a RuntimeError that says what is missing (never CuPy's raw
    CUDARuntimeError)."""
    cupy = _cupy()
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"tinygrad_tx.cuda: no CUDA GPU can be used: {reason}")
    return cupy


def _index(device):
    if device is None:
        return current_device()
    if isinstance(device, int):
        return device
    name = str(device)
    if name == "cuda":
        return 0
    if name.startswith("cuda:") and name[5:].isdigit():
        return int(name[5:])
    raise ValueError(f"expected a CUDA device index, 'cuda' or 'cuda:N', got {device!r}")


def _backend(device):
    return get_backend(f"cuda:{_index(device)}")


from . import amp  # noqa: E402  (tinygrad_tx.cuda.amp: the old spellings)
