"""The gradient reducer behind DistributedDataParallel: average the gradients over the ranks in buckets,
each launched as soon as backward has produced all of its gradients, while backward goes on.

Buckets. The parameters are taken in reverse order (backward reaches the last layers first) and packed into
buckets of about bucket_cap bytes (the first one small, so that communication starts early), one dtype and
device per bucket. Every rank builds the same buckets from the same parameter list.

One backward, with gradient synchronization on (DDP's forward armed the reducer):
1. each parameter's post-accumulate-grad hook marks it ready;
2. when every parameter of a bucket is ready, and every bucket before it has been launched (all ranks must
   start their collectives in the same order), its gradients are copied into one flat array and a
   non-blocking all-reduce (average) starts on it; later hooks poll the buckets in flight, which moves them on;
3. when backward ends (autograd's queue_callback), the reducer waits for every bucket and points each
   parameter's .grad at its slice of the averaged flat array.
A parameter that received no gradient blocks its bucket: with find_unused_parameters=False this is an error
naming the parameters; with True, it contributes zeros, and a parameter no rank used keeps .grad as it was.
"""
from ...autograd.engine import queue_callback
from ...distributed.reduce_op import ReduceOp
from ...tensor import Tensor

FIRST_BUCKET_BYTES = 1024 * 1024  # torch's: a small first bucket starts communication early


class Bucket:
    def __init__(self, index, parameters):
        self.index = index
        self.parameters = parameters  # [(position in the reducer's list, name, parameter)]
        self.pending = len(parameters)
        self.work = None
        self.flat = None


def assign_buckets(parameters, bucket_cap_bytes, first_bucket_bytes=FIRST_BUCKET_BYTES):
    """[[positions]]: parameters (in order) packed, from the last one back, into buckets up to the caps,
    each bucket holding one dtype and device."""
    buckets, open_buckets = [], {}  # (dtype, device) -> (positions, bytes so far)
    for position in reversed(range(len(parameters))):
        parameter = parameters[position]
        key = (parameter.dtype.name, str(parameter.device))
        positions, size = open_buckets.get(key, ([], 0))
        positions.append(position)
        size += parameter.numel() * parameter.dtype.itemsize
        cap = min(first_bucket_bytes, bucket_cap_bytes) if not buckets else bucket_cap_bytes
        if size >= cap:
            buckets.append(positions)
            open_buckets.pop(key, None)
        else:
            open_buckets[key] = (positions, size)
    buckets.extend(positions for positions, _ in open_buckets.values() if positions)
    return buckets


class Reducer:
    def __init__(self, named_parameters, group, bucket_cap_bytes, find_unused_parameters):
        self.names = [name for name, _ in named_parameters]
        self.parameters = [parameter for _, parameter in named_parameters]
        self.group = group
        self.find_unused_parameters = find_unused_parameters
        self.bucket_positions = assign_buckets(self.parameters, bucket_cap_bytes)
        self.bucket_of = {position: index for index, positions in enumerate(self.bucket_positions)
                          for position in positions}
        self.armed = False
        self.buckets = None
        self.launches = []  # (bucket index, whether backward was still running) for the last backward: tests read it
        self._handles = [parameter.register_post_accumulate_grad_hook(
            lambda parameter, position=position: self._on_gradient(position))
            for position, parameter in enumerate(self.parameters)]

    def prepare_for_backward(self):
        """Called by DDP's forward with synchronization on: the next backward averages the gradients."""
        if self.buckets is not None and self.armed_backward_started:
            raise RuntimeError("DistributedDataParallel: the previous backward pass did not finish its gradient "
                               "reduction (an exception inside backward?); the gradients are not synchronized")
        self.buckets = [Bucket(index, [(position, self.names[position], self.parameters[position])
                                       for position in positions])
                        for index, positions in enumerate(self.bucket_positions)]
        self.used = [False] * len(self.parameters)
        self.next_to_launch = 0
        self.armed, self.armed_backward_started = True, False
        self.launches = []

    def _on_gradient(self, position):
        if not self.armed:  # no_sync(), or a backward through the module outside DDP's forward
            return
        if not self.armed_backward_started:
            self.armed_backward_started = True
            queue_callback(self._finish_backward)
        if self.used[position]:  # a second gradient in the same backward (retain_graph): already counted
            return
        self.used[position] = True
        bucket = self.buckets[self.bucket_of[position]]
        bucket.pending -= 1
        self._launch_ready_buckets(backward_running=True)
        for bucket in self.buckets[:self.next_to_launch]:
            bucket.work.is_completed()  # MPI moves a non-blocking collective on only inside MPI calls

    def _launch_ready_buckets(self, backward_running):
        while self.next_to_launch < len(self.buckets) and self.buckets[self.next_to_launch].pending == 0:
            self._launch(self.buckets[self.next_to_launch], backward_running)
            self.next_to_launch += 1

    def _launch(self, bucket, backward_running):
        first = bucket.parameters[0][2]
        backend = first.backend
        pieces = [_gradient_or_zeros(parameter).array.reshape(-1) for _, _, parameter in bucket.parameters]
        bucket.flat = backend.concatenate(pieces, 0)
        carrier = self.group.collectives_for(first, "DistributedDataParallel")
        bucket.work = carrier.all_reduce(bucket.flat, backend, ReduceOp.AVG, "DistributedDataParallel gradient "
                                         f"all_reduce (bucket {bucket.index} of {len(self.buckets)})")
        self.launches.append((bucket.index, backward_running))

    def _finish_backward(self):
        self.armed = False
        missing = [position for position, used in enumerate(self.used) if not used]
        if missing and not self.find_unused_parameters:
            self.buckets = None
            names = ", ".join(self.names[position] for position in missing)
            raise RuntimeError(
                f"DistributedDataParallel: on rank {self.group.rank}, {len(missing)} parameter(s) received no "
                f"gradient in this backward pass: {names} (indices {', '.join(map(str, missing))}). They were not "
                "used to compute the loss, so the gradient reduction could not finish. Pass "
                "find_unused_parameters=True to DistributedDataParallel (their gradients are then averaged as "
                "zeros), or make every parameter take part in the loss.")
        for position in missing:
            self.buckets[self.bucket_of[position]].pending -= 1
        self._launch_ready_buckets(backward_running=False)
        # after the buckets: every rank starts its collectives in the same order
        used_anywhere = self._used_anywhere() if self.find_unused_parameters else None
        for bucket in self.buckets:
            bucket.work.wait()
            offset = 0
            for position, _, parameter in bucket.parameters:
                size = parameter.numel()
                if used_anywhere is None or used_anywhere[position]:
                    averaged = bucket.flat[offset:offset + size].reshape(tuple(parameter.shape))
                    parameter.grad = Tensor._make(averaged, parameter.device)
                offset += size
        self.buckets = None

    def _used_anywhere(self):
        """Which parameters some rank gave a gradient (a max over the ranks of the local flags)."""
        import numpy as np
        flags = np.array(self.used, dtype=np.int32)
        self.group.mpi.all_reduce(flags, None, ReduceOp.MAX, "DistributedDataParallel unused-parameter check").wait()
        return flags.astype(bool).tolist()

    def remove_hooks(self):
        for handle in self._handles:
            handle.remove()


def _gradient_or_zeros(parameter):
    if parameter.grad is not None:
        return parameter.grad
    return Tensor._make(parameter.backend.full(tuple(parameter.shape), 0, parameter.dtype), parameter.device)
