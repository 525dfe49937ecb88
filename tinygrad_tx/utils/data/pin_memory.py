"""pin_memory=True: batches in page-locked host memory, which copies to a GPU faster than pageable memory.

On a machine with a CUDA device (CuPy installed), each CPU tensor of a batch is copied into pinned memory
from CuPy's pinned pool, in the main process, as the batch is handed out. Without one there is nothing to
pin for: the DataLoader warns once, as PyTorch does, and loads normally.
"""
import warnings

from ... import cuda
from ...tensor import Tensor
from .collate import map_structure

NO_ACCELERATOR_WARNING = ("'pin_memory' argument is set as true but no accelerator is found, "
                          "then device pinned memory won't be used.")


def pinning_available(pin_memory):
    """Whether to pin; warns when pinning was asked for on a machine without a GPU."""
    if not pin_memory:
        return False
    if not cuda.is_available():
        warnings.warn(NO_ACCELERATOR_WARNING)
        return False
    return True


def _pin_tensor(tensor):
    if not isinstance(tensor, Tensor) or tensor.device != "cpu":
        return tensor
    return tensor.pin_memory()


def pin_memory(data):
    """The batch with every CPU tensor in it copied to pinned memory; containers rebuilt as default_convert does."""
    return map_structure(_pin_tensor, data)
