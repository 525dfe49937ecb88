"""The few CuPy names launch.py's CudaKernels uses, on NumPy arrays that stand where a kernel's mistakes show.

Every array this module makes lives in its own mapping: its last byte is followed by a page no one may touch
(a read or write past the end faults, and the executor reports it), and preceded by canary bytes (a write
before the start is caught after the launch). New arrays start filled with 0xff bytes, NaN in every float
type: an output element the kernel never wrote stays NaN.
"""
import contextlib
import ctypes
import mmap

import numpy as np

from .executor import KernelError

PAGE = mmap.PAGESIZE
CANARY = b"\xa5" * 64
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


class _Allocation:
    def __init__(self, nbytes):
        data_pages = -(-(nbytes + len(CANARY)) // PAGE)
        self.mapping = mmap.mmap(-1, (data_pages + 1) * PAGE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self.mapping))
        guard = base + data_pages * PAGE
        if _libc.mprotect(guard, PAGE, 0) != 0:
            raise OSError(ctypes.get_errno(), "mprotect of the guard page failed")
        self.offset = data_pages * PAGE - nbytes  # the array ends where the guard page starts
        self.start, self.nbytes = guard - nbytes, nbytes
        self.mapping[self.offset - len(CANARY):self.offset] = CANARY
        self.mapping[self.offset:self.offset + nbytes] = b"\xff" * nbytes

    def check_canary(self, kernel):
        if self.mapping[self.offset - len(CANARY):self.offset] != CANARY:
            raise KernelError(f"{kernel}: wrote before the start of an array of {self.nbytes} bytes")


class DeviceArray(np.ndarray):
    """A NumPy array that answers `.data.ptr` as a CuPy array does."""

    def __array_finalize__(self, obj):
        self._allocation = getattr(obj, "_allocation", None)

    @property
    def data(self):
        return _MemoryPointer(self.ctypes.data)

    def astype(self, dtype, copy=True, **kwargs):
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        return asarray(np.asarray(self).astype(dtype, **kwargs))

    def check_canary(self, kernel):
        allocation = self._allocation
        if allocation is not None and allocation.start <= self.ctypes.data <= allocation.start + allocation.nbytes:
            allocation.check_canary(kernel)


class _MemoryPointer:
    def __init__(self, ptr):
        self.ptr = ptr


def empty(shape, dtype=np.float32):
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    allocation = _Allocation(nbytes)
    flat = np.frombuffer(allocation.mapping, dtype=np.uint8, count=nbytes, offset=allocation.offset)
    array = flat.view(dtype).reshape(shape).view(DeviceArray)
    array._allocation = allocation
    return array


def empty_like(array):
    return empty(array.shape, array.dtype)


def asarray(array):
    if isinstance(array, DeviceArray):
        return array
    array = np.asarray(array)
    copy = empty(array.shape, array.dtype)
    copy[...] = array
    return copy


def broadcast_to(array, shape):
    return np.broadcast_to(array, shape).view(DeviceArray) if isinstance(array, DeviceArray) else np.broadcast_to(
        array, shape)


def ascontiguousarray(array):
    if isinstance(array, DeviceArray) and array.flags.c_contiguous:
        return array
    return asarray(np.ascontiguousarray(array))


class cuda:  # noqa: N801 (the name CuPy gives it)
    @staticmethod
    @contextlib.contextmanager
    def Device(index):  # noqa: N802
        yield
