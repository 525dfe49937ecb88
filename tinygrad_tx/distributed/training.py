"""What a training program needs to run data-parallel, and the same interface when it runs alone.

Started as several processes (by tinygrad_tx.distributed.run or mpiexec), DataParallelRun joins the process
group (NCCL for a GPU run, MPI on the CPU), puts each GPU run on the GPU of its local rank, and wraps the model
in DistributedDataParallel. Started alone, it is rank 0 of 1 and changes nothing. The program asks it who
evaluates, logs and saves (rank 0 alone: `is_main`), and whether any rank wants to stop (`any_rank`), so that
all stop at the same iteration.
"""
from .environment import launched_world_size


class DataParallelRun:
    def __init__(self, device):
        self.world_size = launched_world_size()
        self.rank, self.local_rank, self.device = 0, 0, device
        if self.world_size > 1:
            from . import process_group
            if not process_group.is_initialized():
                process_group.init_process_group("nccl" if str(device).startswith("cuda") else "gloo")
            group = process_group.default_group("DataParallelRun")
            self.rank, self.local_rank, self.world_size = group.rank, group.local_rank, group.world_size
            if device == "cuda":  # one GPU per process on each machine
                self.device = f"cuda:{self.local_rank}"

    @property
    def is_main(self):
        return self.rank == 0

    def wrap(self, model):
        """The model that trains: DistributedDataParallel over it when there are several ranks."""
        if self.world_size == 1:
            return model
        from ..nn.parallel import DistributedDataParallel
        return DistributedDataParallel(model)

    def any_rank(self, flag):
        """Whether flag is true on some rank (every rank gets the same answer)."""
        if self.world_size == 1:
            return flag
        from ..tensor import Tensor
        from .collectives import all_reduce
        from .reduce_op import ReduceOp
        answer = Tensor([1 if flag else 0])
        all_reduce(answer, op=ReduceOp.MAX)
        return bool(answer.item())

    def close(self):
        if self.world_size > 1:
            from . import process_group
            if process_group.is_initialized():
                process_group.destroy_process_group()
