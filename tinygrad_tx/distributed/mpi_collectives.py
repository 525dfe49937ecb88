"""The collectives on MPI (torch's "gloo" and "mpi" backends here): non-blocking MPI calls on host arrays.

Each call starts an MPI non-blocking collective (Iallreduce, Ibcast, ...) and returns a Work whose wait()
finishes it. A CPU tensor's memory is sent as it is when it is contiguous; a GPU tensor goes through a host
copy. MPI has no 16-bit floats: float16 and bfloat16 are reduced in float32 (and rounded back once), and are
moved (broadcast, all_gather) as their raw 16-bit patterns.
"""
import numpy as np

from .reduce_op import ReduceOp
from .work import Work


class MpiCollectives:
    def __init__(self, group, comm):
        from mpi4py import MPI
        self.group, self.comm = group, comm
        self._ops = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
                     ReduceOp.MAX: MPI.MAX, ReduceOp.MIN: MPI.MIN}
        self._in_place = MPI.IN_PLACE

    def all_reduce(self, array, backend, op, op_name="all_reduce"):
        """Reduce `array` over the ranks, in place."""
        host, write_back = _reduction_buffer(array, backend)
        request = self.comm.Iallreduce(self._in_place, host, self._ops[op])

        def finish():
            if op is ReduceOp.AVG:
                host[...] /= self.group.world_size
            write_back(host)
        return Work(op_name, self.group, request.Test, finish)

    def broadcast(self, array, backend, src, op_name="broadcast"):
        """Rank src's values into `array` on every rank, in place."""
        host, write_back = _raw_buffer(array, backend)
        request = self.comm.Ibcast(host, root=src)
        return Work(op_name, self.group, request.Test, lambda: write_back(host))

    def all_gather(self, array, backend, op_name="all_gather"):
        """Every rank's `array`, stacked: the result has shape (world_size, *array.shape)."""
        host, _ = _raw_buffer(array, backend)
        gathered = np.empty(self.group.world_size * host.size, np.uint8)
        request = self.comm.Iallgather(host, gathered)

        def finish():
            values = gathered.view(np.dtype(array.dtype.name)).reshape((self.group.world_size,) + array.shape)
            return backend.asarray(values)
        return Work(op_name, self.group, request.Test, finish)

    def reduce_scatter(self, stacked, backend, op, op_name="reduce_scatter"):
        """stacked has shape (world_size, *shape): rank r gets the reduction of every rank's stacked[r]."""
        host, _ = _reduction_buffer(stacked, backend)
        received = np.empty(host.shape[1:], host.dtype)
        request = self.comm.Ireduce_scatter_block(host, received, self._ops[op])

        def finish():
            if op is ReduceOp.AVG:
                received[...] /= self.group.world_size
            return backend.asarray(received.astype(stacked.dtype, copy=False))
        return Work(op_name, self.group, request.Test, finish)

    def barrier(self, op_name="barrier"):
        return Work(op_name, self.group, self.comm.Ibarrier().Test)


def _host_contiguous(array, backend):
    """The array as a C-contiguous NumPy array: the array itself when it already is one."""
    if isinstance(array, np.ndarray) and array.flags.c_contiguous:
        return array
    return np.ascontiguousarray(backend.to_numpy(array))


def _reduction_buffer(array, backend):
    """(host array MPI can reduce, write_back(host)): 16-bit floats widened to float32."""
    host = _host_contiguous(array, backend)
    if host.dtype.name in ("float16", "bfloat16"):
        host = host.astype(np.float32)
    return host, _writer(array, backend, host)


def _raw_buffer(array, backend):
    """(the array's bytes as a flat uint8 host array, write_back(bytes)): any dtype moves unchanged."""
    host = _host_contiguous(array, backend)
    return host.reshape(-1).view(np.uint8), _writer(array, backend, host)


def _writer(array, backend, host):
    def write_back(values):
        if host is array:  # MPI wrote into the tensor's own memory
            return
        values = values.view(np.dtype(array.dtype.name)) if values.dtype == np.uint8 else values
        array[...] = backend.asarray(values.reshape(array.shape).astype(array.dtype, copy=False))
    return write_back
