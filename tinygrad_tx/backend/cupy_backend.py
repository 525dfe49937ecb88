"""The GPU backend: CuPy on one NVIDIA device, plus our own CUDA kernels for the fused ops.

Importing this module imports CuPy (get_backend turns a missing CuPy into an install hint).
Arrays are made inside `cupy.cuda.Device(index)` so 'cuda:1' allocates on device 1. Operators on
existing arrays (a + b) launch on CuPy's *current* device, which is device 0 unless the caller
switched: to compute on cuda:N for N > 0, run inside `with tinygrad_tx.cuda.device(N):`.

Randomness is counter-based: one PhiloxGenerator per device (philox.py), whose every value is a pure
function of the seed and the value's position in the stream. Its state is two integers (JSON-friendly),
and a seed gives the same numbers on every GPU model; CuPy's own generators keep megabytes of cuRAND
state whose values depend on the GPU's multiprocessor count.
"""
import cupy
import cupyx
import numpy as np
import cupyx.scipy.special

from . import batched_gemm
from .array_backend import ArrayBackend
from .kernels import kernels_enabled
from .kernels.launch import CudaKernels
from .philox import PhiloxGenerator


class PeakMemoryHook(cupy.cuda.MemoryHook):
    """Records the memory pool's bytes in use after every allocation: the exact peak, since usage
    only grows at an allocation. CuPy calls hooks on the thread that installed them (the one that
    first used a CUDA device); allocations made on other threads are not seen."""
    name = "tinygrad_tx_peak_memory"

    def __init__(self):
        self.peaks = {}  # device index -> bytes

    def malloc_postprocess(self, **kwargs):
        device = kwargs["device_id"]
        used = cupy.get_default_memory_pool().used_bytes()
        if used > self.peaks.get(device, 0):
            self.peaks[device] = used


peak_memory = PeakMemoryHook()
_hook_installed = {"value": False}


def _install_peak_memory_hook():
    if not _hook_installed["value"]:
        peak_memory.__enter__()  # CuPy's hooks are context managers; this one stays on for the process
        _hook_installed["value"] = True


class CupyBackend(ArrayBackend):
    name = "cupy"

    def __init__(self, index=0):
        count = device_count_or_error(index)
        if index >= count:
            raise RuntimeError(f"device 'cuda:{index}' does not exist: {count} CUDA device(s) visible")
        self.index = index
        self.cuda_device = cupy.cuda.Device(index)
        self._kernels = CudaKernels(cupy, index)
        self.generator = PhiloxGenerator(cupy, self._kernels.philox_words)
        _install_peak_memory_hook()
        with self.cuda_device:
            super().__init__(cupy, f"cuda:{index}")

    @property
    def kernels(self):
        """Our CUDA kernels, or None when switched off (the fused ops then run their CuPy array code)."""
        return self._kernels if kernels_enabled() else None

    # --- allocation and conversion -----------------------------------------------------------------------
    def asarray(self, data, dtype=None):
        """Python data, NumPy arrays (copied to the device) and CuPy arrays."""
        with self.cuda_device:
            return cupy.asarray(data, dtype=dtype.numpy_name if dtype else None)

    def to_numpy(self, array):
        return array.get()

    def empty(self, shape, dtype):
        with self.cuda_device:
            return cupy.empty(shape, dtype=dtype.numpy_name)

    def full(self, shape, value, dtype):
        with self.cuda_device:
            return cupy.full(shape, value, dtype=dtype.numpy_name)

    def arange(self, start, stop, step, dtype):
        with self.cuda_device:
            return cupy.arange(start, stop, step, dtype=dtype.numpy_name)

    # --- randomness: Philox4x32-10 words from our kernel (also when the fused ops' kernels are switched off) -------
    def seed(self, seed):
        self.generator.seed(seed)

    def get_rng_state(self):
        return self.generator.get_state()

    def set_rng_state(self, state):
        self.generator.set_state(state)

    def reserve_random_words(self, n):
        return self.generator.reserve(n)

    def random_words(self, n, seed, first_block):
        with self.cuda_device:
            return self._kernels.philox_words(n, seed, first_block)

    def randn(self, shape, dtype):
        with self.cuda_device:
            return self.generator.randn(shape, dtype.numpy_name)

    def rand(self, shape, dtype):
        with self.cuda_device:
            return self.generator.rand(shape, dtype.numpy_name)

    def randint(self, low, high, shape, dtype):
        with self.cuda_device:
            return self.generator.randint(low, high, shape, dtype.numpy_name)

    # --- matrix products: batched ones through our strided-batched GEMM call (batched_gemm.py) ----------------------
    def matmul(self, a, b):
        if batched_gemm.supports(a, b) and not (a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous):
            with self.cuda_device:  # (the exception, (B, T, C) @ (C, N), is one 2-D product in ArrayBackend)
                return batched_gemm.batched_matmul(cupy, self._gemm, a, b, tf32=_tf32_on())
        return super().matmul(a, b)

    @staticmethod
    def _gemm(call):
        from cupy_backends.cuda.libs import cublas
        scalar = np.float64 if call.compute_type == batched_gemm.COMPUTE_64F else np.float32
        one, zero = np.ones((), scalar), np.zeros((), scalar)  # host scalars: cuBLAS's default pointer mode
        cublas.gemmStridedBatchedEx(
            cupy.cuda.device.get_cublas_handle(), call.transa, call.transb, call.m, call.n, call.k, one.ctypes.data,
            call.a, call.data_type, call.lda, call.stride_a, call.b, call.data_type, call.ldb, call.stride_b,
            zero.ctypes.data, call.c, call.data_type, call.ldc, call.stride_c, call.batch, call.compute_type,
            -1)  # CUBLAS_GEMM_DEFAULT: cuBLAS picks the algorithm, tensor cores included

    # --- the primitives NumPy lacks or spells differently ------------------------------------------------------------
    def library_erf(self, a):
        return cupyx.scipy.special.erf(a)  # types e->d, f->f, d->d: ArrayBackend.erf casts back

    def index_add(self, target, index, values):
        from ..determinism import alert_not_deterministic
        alert_not_deterministic("index_add on CUDA (scatter_add's atomic additions, in a different order each run)")
        cupyx.scatter_add(target, index, values)

    def nbytes_in_use(self):
        with self.cuda_device:
            return cupy.get_default_memory_pool().used_bytes()


def _tf32_on():
    """CuPy's own float32 compute-type setting, which tinygrad_tx.cuda.set_tf32 sets: one switch for both paths."""
    from cupy._core import _routines_linalg as linalg
    return linalg.get_compute_type(cupy.dtype("float32")) == linalg.COMPUTE_TYPE_TF32


def device_count_or_error(index):
    """The number of visible devices; a RuntimeError naming the device when CUDA itself cannot start."""
    try:
        return cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDARuntimeError: no driver, a driver too old for this CuPy, no device
        raise RuntimeError(f"device 'cuda:{index}': CuPy is installed but CUDA cannot start here ({error}). "
                           "Check `nvidia-smi` and that the CuPy package matches the CUDA driver "
                           '(tinygrad_tx[cuda] is for CUDA 13, tinygrad_tx[cuda12] for CUDA 12)') from error
