"""tinygrad_tx.cuda: what torch.cuda offers, for the CuPy backend.

Nothing here imports CuPy until a function needs it, so `import tinygrad_tx` never requires it;
is_available() and device_count() answer False / 0 instead of raising when CuPy or a GPU is missing.

Memory statistics come from CuPy's default memory pool (the one every array of this backend uses):
memory_allocated() is the pool's bytes in use; max_memory_allocated() is tracked by a CuPy memory
hook that records the bytes in use after every pool allocation (exact, as usage only grows at an
allocation), installed on the thread that first uses a CUDA device.
"""
from contextlib import contextmanager

from . import random as _random
from .backend import get_backend
from .backend.kernels import kernels_enabled, set_kernels_enabled

__all__ = ["is_available", "device_count", "current_device", "device", "synchronize", "manual_seed",
           "manual_seed_all", "memory_allocated", "max_memory_allocated", "reset_peak_memory_stats",
           "set_tf32", "tf32_enabled", "use_kernels", "kernels_enabled"]


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
    try:
        import cupy
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # ImportError, CUDARuntimeError (no driver, driver too old), anything CuPy raises at init
        return 0


def current_device():
    return int(_cupy().cuda.runtime.getDevice())


@contextmanager
def device(index):
    """Make CUDA device `index` current: operators on arrays of cuda:index launch there."""
    with _cupy().cuda.Device(_index(index)):
        yield


def synchronize(device=None):
    """Wait for every kernel queued on the device (all of them when device is None) to finish."""
    cupy = _cupy()
    indices = range(device_count()) if device is None else [_index(device)]
    for index in indices:
        cupy.cuda.Device(index).synchronize()


def manual_seed(seed):
    """Seed every CUDA device's generator, including devices first used later (tinygrad_tx.manual_seed
    seeds the CPU and CUDA alike; this one leaves the CPU generator alone)."""
    _random.manual_seed_device_type("cuda", seed)


manual_seed_all = manual_seed


def memory_allocated(device=None):
    """Bytes the device's arrays occupy now (CuPy's pool: bytes in use, not bytes cached)."""
    return _backend(device).nbytes_in_use()


def max_memory_allocated(device=None):
    """The most bytes in use at once since the device was first used or since reset_peak_memory_stats()."""
    backend = _backend(device)
    from .backend.cupy_backend import peak_memory
    return max(peak_memory.peaks.get(backend.index, 0), backend.nbytes_in_use())


def reset_peak_memory_stats(device=None):
    backend = _backend(device)
    from .backend.cupy_backend import peak_memory
    peak_memory.peaks[backend.index] = backend.nbytes_in_use()


def set_tf32(enabled):
    """Let cuBLAS run float32 matrix products on TF32 tensor cores (Ampere, sm_80, and newer): about 8x the
    float32 throughput with a 10-bit mantissa in the products, accumulation still float32. Off by default,
    as in PyTorch. Older GPUs ignore it (CuPy warns). Same switch as CuPy's CUPY_TF32=1 at startup."""
    cupy = _cupy()
    from cupy._core import _routines_linalg as linalg  # CuPy's compute-type table for its cuBLAS calls
    compute_type = linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT
    linalg.set_compute_type(cupy.float32, compute_type)


def tf32_enabled():
    cupy = _cupy()
    from cupy._core import _routines_linalg as linalg
    return linalg.get_compute_type(cupy.float32) == linalg.COMPUTE_TYPE_TF32


def use_kernels(enabled=True):
    """Run the fused ops with our CUDA kernels (True, the default) or with plain CuPy array code (False).
    The environment variable TINYGRAD_TX_CUDA_KERNELS=0 sets False at startup."""
    set_kernels_enabled(enabled)


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
