"""NumPy's OpenBLAS, told to let its threads sleep as soon as a matrix product is done.

By default they spin for about 0.1 s after each product (2^28 cycles), holding the cores that our CPU kernels'
threads would run on between products: there, two threads gained nothing over one, and with the threads asleep
a training step of the CPU recipe went from 56-64 to 52-54 ms (backend/cpu_kernels/numba_kernels.py).
OpenBLAS reads OPENBLAS_THREAD_TIMEOUT (2^value cycles, 4 to 30) when it loads, with NumPy: this module runs
first when tinygrad_tx is imported, and its setting holds where NumPy was not imported before. A value set in
the environment wins.
"""
import os
import sys

_numpy_loaded_before = "numpy" in sys.modules
_set_by_user = "OPENBLAS_THREAD_TIMEOUT" in os.environ
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")


def _sleeping():
    if _numpy_loaded_before and not _set_by_user:
        return False  # NumPy loaded OpenBLAS before the setting: its threads spin
    try:
        return int(os.environ["OPENBLAS_THREAD_TIMEOUT"]) <= 16
    except ValueError:
        return False


_THREADS_SLEEP = _sleeping()  # fixed from here on: OpenBLAS read the setting when NumPy loaded it


def threads_sleep():
    """Whether OpenBLAS's threads sleep soon after a product, so that our kernels may spread over the cores."""
    return _THREADS_SLEEP
