"""A stand-in for CuPy's NCCL bindings and streams, on host memory over MPI, so that NcclCollectives' own logic
(buffers, counts, datatypes, ops, averaging, bfloat16, write-back) runs on CPU ranks. It mirrors the documented
API of cupy.cuda.nccl.NcclCommunicator: raw pointers, element counts, NCCL datatype and op codes, a stream."""
import contextlib
import ctypes

import numpy as np
from mpi4py import MPI

CODES = dict(NCCL_INT32=2, NCCL_INT64=4, NCCL_UINT8=1, NCCL_FLOAT16=6, NCCL_FLOAT32=7, NCCL_FLOAT64=8,
             NCCL_BFLOAT16=9, NCCL_SUM=0, NCCL_PROD=1, NCCL_MAX=2, NCCL_MIN=3)
DTYPES = {2: "int32", 4: "int64", 1: "uint8", 6: "float16", 7: "float32", 8: "float64", 9: "bfloat16"}
MPI_OPS = {0: MPI.SUM, 1: MPI.PROD, 2: MPI.MAX, 3: MPI.MIN}


class FakeNcclModule:
    def __init__(self, comm, with_bfloat16=True):
        self.comm, self.calls = comm, []
        for name, code in CODES.items():
            if name != "NCCL_BFLOAT16" or with_bfloat16:
                setattr(self, name, code)

    def get_unique_id(self):
        return b"fake-nccl-id"

    def NcclCommunicator(self, ndev, unique_id, rank):
        assert (ndev, rank) == (self.comm.Get_size(), self.comm.Get_rank()) and unique_id == b"fake-nccl-id"
        return FakeCommunicator(self)


def _array(pointer, count, datatype):
    dtype = np.dtype(DTYPES[datatype])
    return np.ctypeslib.as_array((ctypes.c_ubyte * (count * dtype.itemsize)).from_address(pointer)).view(dtype)


def _reducible(values):
    return values.astype(np.float32) if values.dtype.name in ("float16", "bfloat16") else values.copy()


class FakeCommunicator:
    def __init__(self, module):
        self.module, self.comm = module, module.comm

    def allReduce(self, send, receive, count, datatype, op, stream):
        self.module.calls.append(("allReduce", count, datatype, op, send == receive))
        values = _reducible(_array(send, count, datatype))
        self.comm.Allreduce(MPI.IN_PLACE, values, MPI_OPS[op])
        _array(receive, count, datatype)[...] = values

    def broadcast(self, send, receive, count, datatype, root, stream):
        self.module.calls.append(("broadcast", count, datatype, root))
        target = _array(receive, count, datatype)
        target[...] = _array(send, count, datatype)
        self.comm.Bcast(target, root=root)

    def allGather(self, send, receive, count, datatype, stream):
        self.module.calls.append(("allGather", count, datatype))
        self.comm.Allgather(_array(send, count, datatype).copy(),
                            _array(receive, count * self.comm.Get_size(), datatype))

    def reduceScatter(self, send, receive, count, datatype, op, stream):
        self.module.calls.append(("reduceScatter", count, datatype, op))
        values = _reducible(_array(send, count * self.comm.Get_size(), datatype))
        result = np.empty(count, values.dtype)
        self.comm.Reduce_scatter_block(values, result, MPI_OPS[op])
        _array(receive, count, datatype)[...] = result

    def abort(self):
        self.module.calls.append(("abort",))

    def destroy(self):
        self.module.calls.append(("destroy",))


class _Stream:
    ptr = 0

    def wait_event(self, event):
        pass


class HostRuntime:
    """CupyRuntime's interface on NumPy arrays."""

    def __init__(self, nccl):
        self.nccl = nccl
        self.stream = _Stream()

    def pointer(self, array):
        return array.ctypes.data

    def use_device(self, index):
        return contextlib.nullcontext()

    def new_stream(self):
        return _Stream()

    def current_stream(self):
        return self.stream

    def record_event(self, stream):
        return object()

    def is_done(self, event):
        return True

    def contiguous(self, array):
        return np.ascontiguousarray(array)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)
