"""DistributedSampler: each process of a data-parallel run visits its own share of a dataset's indices, as
torch.utils.data.distributed's.

Every rank draws the same permutation (seeded by seed + epoch, so call set_epoch(epoch) at the start of each
epoch for a new order), pads it by repeating its start until it divides evenly (or, with drop_last, cuts the
tail), and keeps every num_replicas-th index from its rank on. The ranks' shares are disjoint and equally
long, so every rank runs the same number of steps. The permutation is tinygrad_tx's (NumPy's generator), not
the one torch would draw for the same seed.
"""
import math

from ...generator import Generator, randperm
from .sampler import Sampler


class DistributedSampler(Sampler):
    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from ... import distributed
            if not distributed.is_initialized():
                raise RuntimeError("DistributedSampler: num_replicas and rank default to the process group's world "
                                   "size and rank, and no process group is initialized (call "
                                   "init_process_group() first, or pass both)")
            num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        if not isinstance(num_replicas, int) or num_replicas <= 0:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive integer, got {num_replicas!r}")
        if not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0
        if drop_last and len(dataset) % num_replicas:
            self.num_samples = math.ceil((len(dataset) - num_replicas) / num_replicas)  # the tail is dropped
        else:
            self.num_samples = math.ceil(len(dataset) / num_replicas)  # the start is repeated to fill up
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = list(randperm(n, Generator().manual_seed(self.seed + self.epoch)))
        else:
            indices = list(range(n))
        if self.drop_last:
            indices = indices[:self.total_size]
        else:
            padding = self.total_size - n
            indices += (indices * math.ceil(padding / n))[:padding] if n else []
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """A new permutation for this epoch, the same on every rank."""
        self.epoch = epoch
