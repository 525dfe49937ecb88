"""NumPy's OpenBLAS, told to let its threads sleep as soon as a matrix product is done, and held to one thread
while our kernels' own threads run products side by side (one_thread).

By default OpenBLAS's threads spin for about 0.1 s after each product (2^28 cycles), holding the cores that our
CPU kernels' threads would run on between products: there, two threads gained nothing over one, and with the
threads asleep a training step of the CPU recipe went from 56-64 to 52-54 ms (backend/cpu_kernels/numba_kernels.py).
OpenBLAS reads OPENBLAS_THREAD_TIMEOUT (2^value cycles, 4 to 30) when it loads, with NumPy: this module runs
first when tinygrad_tx is imported and sets it. Where NumPy was imported before (`import numpy` above `import
tinygrad_tx`, as in most scripts), OpenBLAS is told to read its environment again and its threads are restarted.
A value set in the environment wins.
"""
import ctypes
import os
import sys
from contextlib import contextmanager

_numpy_loaded_before = "numpy" in sys.modules
_set_by_user = "OPENBLAS_THREAD_TIMEOUT" in os.environ
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")


def _restart_threads():
    """NumPy loaded OpenBLAS before the setting: OpenBLAS reads its environment again and stops its threads, which
    read the timeout when they start again, at the next threaded product (as they do after a fork)."""
    library = _openblas()
    read_environment, stop_threads = (_symbol(library, name) if library is not None else None
                                      for name in ("openblas_read_env", "blas_thread_shutdown_"))
    if read_environment is None or stop_threads is None:
        return False
    read_environment()
    stop_threads()
    return True


def _sleeping():
    if _numpy_loaded_before and not _set_by_user and not _restart_threads():
        return False  # OpenBLAS read its environment before the setting, and cannot be told again: its threads spin
    try:
        return int(os.environ["OPENBLAS_THREAD_TIMEOUT"]) <= 16
    except ValueError:
        return False


def threads_sleep():
    """Whether OpenBLAS's threads sleep soon after a product, so that our kernels may spread over the cores."""
    return _THREADS_SLEEP


def can_limit_threads():
    """Whether one_thread() can hold OpenBLAS to the calling thread (its controls were found in this process)."""
    return _thread_controls() is not None


@contextmanager
def one_thread():
    """OpenBLAS's products on their calling thread alone for the time of the block, so that threads of our own may
    each run products side by side (two callers of OpenBLAS's threaded products slow each other down). The count
    is global to the process: the block is for a kernel's own threads, which do nothing else meanwhile."""
    controls = _thread_controls()
    if controls is None:
        yield
        return
    set_threads, get_threads = controls
    before = get_threads()
    set_threads(1)
    try:
        yield
    finally:
        set_threads(before)


_controls = []


def _thread_controls():
    """(set_num_threads, get_num_threads) of NumPy's OpenBLAS, or None where it is not found."""
    if not _controls:
        _controls.append(_find_thread_controls())
    return _controls[0]


def _find_thread_controls():
    library = _openblas()
    if library is None:
        return None
    set_threads = _symbol(library, "openblas_set_num_threads")
    get_threads = _symbol(library, "openblas_get_num_threads")
    if set_threads is None or get_threads is None:
        return None
    set_threads.argtypes, set_threads.restype, get_threads.restype = [ctypes.c_int], None, ctypes.c_int
    return set_threads, get_threads


def _symbol(library, name):
    """library's function `name`, as it is called there: wheels rename OpenBLAS's interface (scipy-openblas's
    openblas_set_num_threads is scipy_openblas_set_num_threads64_), not its internals."""
    for prefix, suffix in (("scipy_", "64_"), ("", ""), ("", "64_"), ("scipy_", "")):
        function = getattr(library, f"{prefix}{name}{suffix}", None)
        if function is not None:
            return function
    return None


_library = []


def _openblas():
    """The OpenBLAS NumPy loaded, through ctypes, or None where it is not found (another BLAS, another system)."""
    if not _library:
        _library.append(_find_openblas())
    return _library[0]


def _find_openblas():
    import numpy  # noqa: F401  (loads OpenBLAS)
    try:
        with open("/proc/self/maps") as maps:  # the libraries this process has loaded (Linux)
            paths = sorted({line.split()[-1] for line in maps}, key=lambda path: "numpy" not in path)  # NumPy's first
    except OSError:
        return None
    for path in paths:
        if "openblas" not in os.path.basename(path).lower():
            continue
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        if _symbol(library, "openblas_set_num_threads") is not None:
            return library
    return None


_THREADS_SLEEP = _sleeping()  # fixed from here on: OpenBLAS has read the setting
