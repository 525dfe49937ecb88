"""tinygrad_tx.distributed: several processes training one model, with torch.distributed's names.

    import tinygrad_tx.distributed as dist
    dist.init_process_group("gloo")          # or "nccl" for GPU tensors; ranks from the launcher or mpiexec
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    dist.destroy_process_group()

Start the processes with `python -m tinygrad_tx.distributed.run --nproc-per-node N script.py` (torchrun's
flags and environment) or with `mpiexec -n N python script.py`. The communication is MPI's (mpi4py) for CPU
tensors and for start-up, and NCCL's (CuPy) for GPU tensors: docs/distributed.md tells the whole story.
"""
from .collectives import (all_gather, all_gather_into_tensor, all_reduce, barrier, broadcast, reduce_scatter,
                          reduce_scatter_tensor)
from .errors import CollectiveMismatch, DistBackendError, DistError, RankFailure
from .process_group import (ProcessGroup, destroy_process_group, get_backend, get_rank, get_world_size,
                            init_process_group, is_available, is_initialized)
from .reduce_op import ReduceOp
from .work import Work

__all__ = ["CollectiveMismatch", "DistBackendError", "DistError", "ProcessGroup", "RankFailure", "ReduceOp", "Work",
           "all_gather", "all_gather_into_tensor", "all_reduce", "barrier", "broadcast", "destroy_process_group",
           "get_backend", "get_rank", "get_world_size", "init_process_group", "is_available", "is_initialized",
           "reduce_scatter", "reduce_scatter_tensor"]
