"""DistributedDataParallel: one copy of the model per process, each on its own part of the batch, kept equal by
averaging the gradients over the processes during backward (reducer.py), as torch.nn.parallel's.

    model = DistributedDataParallel(model)          # after init_process_group; rank 0's weights everywhere
    loss = model(x, y)[1]; loss.backward()          # .grad is now the average over the ranks
    optimizer.step()                                # every rank takes the same step
    with model.no_sync(): ...                       # accumulate locally; the next synchronized backward averages
"""
import contextlib
import hashlib

from ...autograd import is_grad_enabled, no_grad
from ...distributed.errors import CollectiveMismatch
from ...distributed.process_group import default_group
from ..module import Module
from .reducer import Reducer

DEFAULT_BUCKET_CAP_MB = 25


class DistributedDataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False, **unsupported):
        super().__init__()
        if unsupported:
            raise TypeError(f"DistributedDataParallel: unsupported argument(s) {', '.join(sorted(unsupported))}")
        if device_ids is not None and len(device_ids) != 1:
            raise ValueError(f"DistributedDataParallel: device_ids={device_ids!r}; one process drives one device, "
                             "so give one (its local rank) or None")
        if dim != 0:
            raise ValueError(f"DistributedDataParallel: dim={dim}; the batch is split along dim 0 only")
        self.module = module
        group = default_group("DistributedDataParallel", process_group)
        object.__setattr__(self, "process_group", group)
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True
        named = [(name, parameter) for name, parameter in module.named_parameters() if parameter.requires_grad]
        if not named:
            raise RuntimeError("DistributedDataParallel: the module has no parameter that requires grad")
        self._check_same_parameters(group, named)
        self._broadcast_from_rank_0([parameter for _, parameter in named] + list(module.buffers()))
        cap_mb = DEFAULT_BUCKET_CAP_MB if bucket_cap_mb is None else bucket_cap_mb
        object.__setattr__(self, "reducer", Reducer(named, group, int(cap_mb * 1024 * 1024),
                                                    find_unused_parameters))

    def forward(self, *inputs, **kwargs):
        if is_grad_enabled() and self.require_backward_grad_sync:
            self.reducer.prepare_for_backward()
        if self.broadcast_buffers and is_grad_enabled():
            buffers = list(self.module.buffers())
            if buffers:  # as torch: rank 0's buffers (running statistics) at the start of each training forward
                self._broadcast_from_rank_0(buffers)
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Inside, forward and backward accumulate gradients locally; the first synchronized backward after
        averages the accumulated gradients."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    # --- construction ---------------------------------------------------------------------------------------
    @staticmethod
    def _check_same_parameters(group, named):
        """Every rank must hold the same parameters, or the buckets would not line up."""
        description = ";".join(f"{name}:{tuple(parameter.shape)}:{parameter.dtype.name}" for name, parameter in named)
        digest = hashlib.sha256(description.encode()).hexdigest()[:16]
        try:  # a short fingerprint first: it goes through the group's timeout and watchdog
            group.agree("DistributedDataParallel", f"parameters {digest}")
        except CollectiveMismatch:
            everyone = group.comm.allgather(description)  # every rank is here: the details, to say what differs
            mine = everyone[group.rank].split(";")
            for rank, theirs in enumerate(everyone):
                theirs = theirs.split(";")
                if theirs != mine:
                    first = next((a, b) for a, b in zip(mine + ["(none)"], theirs + ["(none)"]) if a != b)
                    raise CollectiveMismatch(f"DistributedDataParallel: the ranks' models differ: rank {group.rank} has "
                                       f"{len(mine)} parameters, rank {rank} has {len(theirs)}; first difference: "
                                       f"{first[0]} here, {first[1]} on rank {rank} (name:shape:dtype)")

    @staticmethod
    @no_grad()
    def _broadcast_from_rank_0(tensors):
        """Copy rank 0's values into every rank's tensors, one flat array per dtype and device."""
        group = default_group("DistributedDataParallel")
        by_kind = {}
        for tensor in tensors:
            by_kind.setdefault((tensor.dtype.name, str(tensor.device)), []).append(tensor)
        for same_kind in by_kind.values():
            backend = same_kind[0].backend
            flat = backend.concatenate([backend.contiguous(t.array).reshape(-1) for t in same_kind], 0)
            group.collectives_for(same_kind[0], "DistributedDataParallel").broadcast(
                flat, backend, 0, "DistributedDataParallel broadcast of rank 0's parameters").wait()
            offset = 0
            for tensor in same_kind:
                size = tensor.numel()
                tensor.array[...] = flat[offset:offset + size].reshape(tuple(tensor.shape))
                tensor._version.value += 1
                offset += size
