"""The collectives on NCCL (torch's "nccl" backend): GPU arrays, through CuPy's bindings (cupy.cuda.nccl).

One NCCL communicator per process group, made at the first GPU collective on the device of that tensor
(call tinygrad_tx.cuda.set_device(local_rank) first, as with torch). Rank 0 draws the NCCL unique id and MPI
broadcasts it.

A collective runs on a stream of its own, after the work queued so far on the current stream (an event
orders them), so that gradient buckets travel while backward computes on the current stream. wait() polls
the stream's completion event on the host, so that the group's timeout and the watchdog can stop a wait for
a dead rank (NCCL itself would wait forever), then makes the current stream wait for that event too.

Everything CUDA-specific goes through a runtime object (CupyRuntime below), so the tests can run this file's
logic against a stand-in NCCL on the CPU.
"""
import math

from .reduce_op import ReduceOp
from .work import Work


class CupyRuntime:
    """What NcclCollectives needs from CUDA, through CuPy."""

    def __init__(self):
        import cupy
        from cupy.cuda import nccl
        self.cupy, self.nccl = cupy, nccl

    def pointer(self, array):
        return array.data.ptr

    def use_device(self, index):
        return self.cupy.cuda.Device(index)

    def new_stream(self):
        return self.cupy.cuda.Stream(non_blocking=True)

    def current_stream(self):
        return self.cupy.cuda.get_current_stream()

    def record_event(self, stream):
        event = self.cupy.cuda.Event(block=False, disable_timing=True)
        event.record(stream)
        return event

    def is_done(self, event):
        return event.done

    def contiguous(self, array):
        return self.cupy.ascontiguousarray(array)

    def empty(self, shape, dtype):
        return self.cupy.empty(shape, dtype)


class NcclCollectives:
    def __init__(self, group, comm, runtime, device_index):
        self.group, self.runtime, self.device_index = group, runtime, device_index
        nccl = runtime.nccl
        unique_id = comm.bcast(nccl.get_unique_id() if group.rank == 0 else None, root=0)
        with runtime.use_device(device_index):
            self.communicator = nccl.NcclCommunicator(group.world_size, unique_id, group.rank)
            self.stream = runtime.new_stream()
        self._ops = {ReduceOp.SUM: nccl.NCCL_SUM, ReduceOp.AVG: nccl.NCCL_SUM, ReduceOp.PRODUCT: nccl.NCCL_PROD,
                     ReduceOp.MAX: nccl.NCCL_MAX, ReduceOp.MIN: nccl.NCCL_MIN}
        self._types = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64,
                       "int32": nccl.NCCL_INT32, "int64": nccl.NCCL_INT64, "uint8": nccl.NCCL_UINT8}
        if hasattr(nccl, "NCCL_BFLOAT16"):  # NCCL 2.10 and later; before, bfloat16 is reduced in float32
            self._types["bfloat16"] = nccl.NCCL_BFLOAT16

    def all_reduce(self, array, backend, op, op_name="all_reduce"):
        """Reduce `array` over the ranks, in place."""
        buffer = self._reducible(array)
        pointer = self.runtime.pointer(buffer)
        done = self._launch(lambda stream: self.communicator.allReduce(
            pointer, pointer, buffer.size, self._types[buffer.dtype.name], self._ops[op], stream))

        def finish():
            self._follow(done)
            result = buffer / self.group.world_size if op is ReduceOp.AVG else buffer
            if result is not array:
                array[...] = result.astype(array.dtype, copy=False)
        return Work(op_name, self.group, lambda: self.runtime.is_done(done), finish)

    def broadcast(self, array, backend, src, op_name="broadcast"):
        """Rank src's values into `array`, in place, as raw bytes (any dtype)."""
        buffer = self._check_device(self.runtime.contiguous(array))
        raw = buffer.reshape(-1).view("uint8")
        pointer = self.runtime.pointer(raw)
        done = self._launch(lambda stream: self.communicator.broadcast(
            pointer, pointer, raw.size, self._types["uint8"], src, stream))

        def finish():
            self._follow(done)
            if buffer is not array:
                array[...] = buffer
        return Work(op_name, self.group, lambda: self.runtime.is_done(done), finish)

    def all_gather(self, array, backend, op_name="all_gather"):
        """Every rank's `array` stacked: shape (world_size, *array.shape)."""
        buffer = self._check_device(self.runtime.contiguous(array))
        raw = buffer.reshape(-1).view("uint8")
        gathered = self.runtime.empty((self.group.world_size,) + tuple(array.shape), array.dtype)
        source, target = self.runtime.pointer(raw), self.runtime.pointer(gathered)
        done = self._launch(lambda stream: self.communicator.allGather(
            source, target, raw.size, self._types["uint8"], stream))

        def finish():
            self._follow(done)
            return gathered
        return Work(op_name, self.group, lambda: self.runtime.is_done(done), finish)

    def reduce_scatter(self, stacked, backend, op, op_name="reduce_scatter"):
        """stacked (world_size, *shape): rank r gets the reduction of every rank's stacked[r]."""
        buffer = self._reducible(stacked)
        received = self.runtime.empty(tuple(buffer.shape[1:]), buffer.dtype)
        source, target = self.runtime.pointer(buffer), self.runtime.pointer(received)
        count = math.prod(buffer.shape[1:])
        done = self._launch(lambda stream: self.communicator.reduceScatter(
            source, target, count, self._types[buffer.dtype.name], self._ops[op], stream))

        def finish():
            self._follow(done)
            result = received / self.group.world_size if op is ReduceOp.AVG else received
            return result.astype(stacked.dtype, copy=False)
        return Work(op_name, self.group, lambda: self.runtime.is_done(done), finish)

    # --- streams -----------------------------------------------------------------------------------------------
    def _launch(self, call):
        """Run call(stream pointer) on the communication stream after what the current stream has queued;
        return the event recorded after it."""
        with self.runtime.use_device(self.device_index):
            self.stream.wait_event(self.runtime.record_event(self.runtime.current_stream()))
            call(self.stream.ptr)
            return self.runtime.record_event(self.stream)

    def _follow(self, done):
        """The current stream waits for the collective before it reads the result."""
        self.runtime.current_stream().wait_event(done)

    def _reducible(self, array):
        """A contiguous array in a type NCCL reduces (bfloat16 widened to float32 where NCCL lacks it)."""
        buffer = self._check_device(self.runtime.contiguous(array))
        if buffer.dtype.name not in self._types:
            if buffer.dtype.name != "bfloat16":
                raise TypeError(f"NCCL cannot reduce {buffer.dtype.name} arrays")
            buffer = buffer.astype("float32")
        return buffer

    def _check_device(self, array):
        device = getattr(getattr(array, "device", None), "id", self.device_index)
        if device != self.device_index:
            raise RuntimeError(f"NCCL: this process group's communicator is on cuda:{self.device_index}, the tensor "
                               f"on cuda:{device}; one process drives one GPU (set_device(local_rank) before the "
                               "first collective)")
        return array

    def abort(self):
        self.communicator.abort()

    def destroy(self):
        self.communicator.destroy()
