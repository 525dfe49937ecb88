"""tinygrad_tx.utils.data: datasets, samplers and the DataLoader, with torch.utils.data's names and semantics.

    from tinygrad_tx.utils.data import DataLoader, TensorDataset, random_split
    train, val = random_split(TensorDataset(x, y), [0.9, 0.1], generator=tinygrad_tx.Generator().manual_seed(0))
    for xb, yb in DataLoader(train, batch_size=64, shuffle=True, num_workers=2):
        ...

The modules mirror PyTorch's: dataset.py, sampler.py, dataloader.py, plus collate.py, fetch.py,
worker.py and pin_memory.py for what torch keeps in torch.utils.data._utils.

distributed.py has DistributedSampler, which splits the indices among the processes of a data-parallel
run (tinygrad_tx.distributed). Not here yet: StackDataset, the DataPipes, and shared memory between
workers and the main process (batches travel pickled through a pipe instead).
"""
from .collate import default_collate, default_convert
from .dataloader import DataLoader
from .dataset import ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split
from .distributed import DistributedSampler
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                      WeightedRandomSampler)
from .worker import WorkerInfo, get_worker_info

__all__ = ["BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset", "DistributedSampler",
           "IterableDataset",
           "RandomSampler", "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset",
           "WeightedRandomSampler", "WorkerInfo", "default_collate", "default_convert", "get_worker_info",
           "random_split"]
