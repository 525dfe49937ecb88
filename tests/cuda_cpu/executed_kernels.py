"""launch.py's CudaKernels with every kernel run by the CPU executor: what the fake GPU of the tests uses."""
from collections import Counter

import numpy as np

from tinygrad_tx.backend.kernels.launch import CudaKernels

from . import fake_cupy
from .executor import compile_family

ENTRY_METHODS = ("layer_norm_forward", "layer_norm_backward", "softmax_forward", "softmax_backward", "gelu_forward",
                 "gelu_backward", "cross_entropy_forward", "cross_entropy_backward", "attention_forward",
                 "attention_backward", "adamw_step", "philox_words")


class ExecutedKernels(CudaKernels):
    """`modules(family)` gives the compiled family (the real source by default; a mutant in the mutation tests).
    `calls` counts each entry method's calls, so a test can tell the kernel path ran."""

    def __init__(self, modules=compile_family):
        super().__init__(fake_cupy, 0)
        self.modules = modules
        self.calls = Counter()

    def _function(self, family, name):
        return self.modules(family).get_function(name)


def _on_device(value):
    """Lists of NumPy arrays (AdamW's parameters) as device arrays, which have `.data.ptr`; memory is shared."""
    if isinstance(value, list):
        return [a if isinstance(a, fake_cupy.DeviceArray) else a.view(fake_cupy.DeviceArray) for a in value]
    return value


def _plain(value):
    """Results as plain NumPy arrays (views of the same memory): the rest of the program sees no difference."""
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return np.asarray(value) if isinstance(value, np.ndarray) else value


def _counted(name):
    method = getattr(CudaKernels, name)

    def run(self, *args, **kwargs):
        self.calls[name] += 1
        return _plain(method(self, *(_on_device(a) for a in args), **kwargs))
    run.__name__ = name
    return run


for _name in ENTRY_METHODS:
    setattr(ExecutedKernels, _name, _counted(_name))
