"""Our CPU kernels: the fused ops compiled by Numba into multi-threaded machine code.

One module per kernel family (layer_norm, softmax, gelu, cross_entropy, attention, embedding, and parameters:
AdamW and the gradients' norm), each a few functions compiled by `numba.njit(parallel=True, fastmath=False,
cache=True)` (float32_math.Kernel: also once without threads, for work too small to share): threads over rows
or blocks of values, one pass over memory where the math allows, float32 math in the array code's order.
Attention's matrix products stay BLAS calls; its kernels do the row work between them. NumbaKernels
(numba_kernels.py) gives them CudaKernels' interface, so the fused ops ask the CPU backend for `kernels`
exactly as they ask the GPU's. docs/performance.md has the measurements behind the choices.

Numba is optional (pip install "tinygrad_tx[cpu]"): without it `kernels()` is None and the fused ops run their
NumPy array code, which is also what float64 and anything else the kernels do not take runs. Set
TINYGRAD_TX_CPU_KERNELS=0 before starting, or call tinygrad_tx.cpu.use_kernels(False), to run the array
code with Numba installed.

The one-thread kernels (all that small work runs) are built ahead of time into an extension module on first use
(ahead_of_time.py: about 30 s, once per machine), so that training runs them without loading Numba: Numba and
its JIT's code add about 110 MB to the resident set. The threaded builds, and every kernel where that build
fails, come from Numba's JIT: each kernel compiles on its first call, and the machine code is cached on disk (in
__pycache__ beside the sources, or NUMBA_CACHE_DIR), so later processes load it instead (about a second).

Threads: Numba's own thread pool ("workqueue"), unless NUMBA_THREADING_LAYER names another. Its threads sleep
between kernels; OpenMP's spin, taking the cores from NumPy's BLAS and the Python thread between kernels, and
on a busy 2-core machine a parallel region measured 29 ms with OpenMP against 0.4 ms with the workqueue.
"""
import hashlib
import importlib.util
import os

HERE = os.path.dirname(os.path.abspath(__file__))
_switch = {"enabled": os.environ.get("TINYGRAD_TX_CPU_KERNELS", "1") != "0"}
_loaded = {}


def kernels_enabled():
    return _switch["enabled"]


def set_kernels_enabled(enabled):
    """Turn the CPU kernels on or off (off: the fused ops run their NumPy array code)."""
    _switch["enabled"] = bool(enabled)


def numba_available():
    if "numba" not in _loaded:
        _loaded["numba"] = importlib.util.find_spec("numba") is not None
    return _loaded["numba"]


def kernels():
    """The NumbaKernels, or None where Numba is missing or the kernels are switched off."""
    if not _switch["enabled"] or not numba_available():
        return None
    if "kernels" not in _loaded:
        from . import ahead_of_time
        from .numba_kernels import NumbaKernels
        _loaded["kernels"] = NumbaKernels(ahead_of_time.load())
    return _loaded["kernels"]


def jit_kernels():
    """name -> float32_math.Kernel, every kernel, from Numba's JIT (importing Numba: about half a second, once)."""
    if "jit" not in _loaded:
        import numba
        if "NUMBA_THREADING_LAYER" not in os.environ:
            numba.config.THREADING_LAYER = "workqueue"  # see above; takes effect at the first parallel kernel
        _clear_stale_cache()
        from . import attention, cross_entropy, embedding, gelu, layer_norm, parameters, softmax  # noqa: F401
        from .float32_math import KERNELS
        _loaded["jit"] = KERNELS
    return _loaded["jit"]


def sources_digest():
    """A sha256 of every kernel source here: machine code built from them is stale when it changes."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(HERE)):
        if name.endswith(".py"):
            with open(os.path.join(HERE, name), "rb") as f:
                digest.update(name.encode() + f.read())
    return digest


def _clear_stale_cache():
    """Numba keys a cached kernel on its own source file alone: a kernel whose helpers changed (float32_math.py)
    would load its old machine code. A digest of every source here, kept beside the cache, empties the cache when
    any of them changes. (Where __pycache__ here is not writable, Numba caches elsewhere, and an installed
    package's files change together, which Numba sees.)"""
    cache, stamp = os.path.join(HERE, "__pycache__"), sources_digest().hexdigest()
    stamp_path = os.path.join(cache, "numba_sources.sha256")
    try:
        with open(stamp_path) as f:
            if f.read() == stamp:
                return
    except OSError:
        pass
    try:
        os.makedirs(cache, exist_ok=True)
        for name in os.listdir(cache):
            if name.endswith((".nbi", ".nbc")):
                os.remove(os.path.join(cache, name))
        with open(stamp_path, "w") as f:
            f.write(stamp)
    except OSError:  # a read-only install: nothing cached here
        pass
