"""Page-locked ("pinned") host memory: NumPy arrays a GPU copies from faster than from ordinary memory.

CuPy allocates it from its pinned memory pool. Without a GPU there is none, and pin() raises PyTorch's
error; nothing is pinned then, so is_pinned() is False.
"""
import sys

from .devices import NO_ACCELERATOR, cuda_device_count


def pin(array):
    """A copy of a NumPy array in pinned memory (a NumPy array over it)."""
    if cuda_device_count() == 0:
        raise RuntimeError(NO_ACCELERATOR)
    import cupyx  # present: CuPy sees a GPU
    pinned = cupyx.empty_pinned(array.shape, dtype=array.dtype)  # a NumPy array whose base is the pinned block
    pinned[...] = array
    return pinned


def is_pinned(array):
    """Whether an array lives in pinned memory: it, or an array it views, was made by pin()."""
    cupy = sys.modules.get("cupy")  # pin() imports CuPy: where it was never imported, nothing is pinned
    if cupy is None:
        return False
    base = array
    while base is not None:
        if isinstance(base, cupy.cuda.PinnedMemoryPointer):
            return True
        base = getattr(base, "base", None)
    return False
