"""The CPU backend: NumPy, plus our Numba kernels for the fused ops where Numba is installed."""
import math

import numpy as np

from . import cpu_kernels
from .array_backend import ArrayBackend

_FROM_THE_SWITCH = object()  # kernels: whatever cpu_kernels says at each use


class NumpyBackend(ArrayBackend):
    name = "numpy"

    def __init__(self):
        super().__init__(np, "cpu")
        self._erf = np.frompyfunc(math.erf, 1, 1)
        self._kernels = _FROM_THE_SWITCH

    @property
    def kernels(self):
        """The Numba kernels (cpu_kernels.NumbaKernels), or None where Numba is missing or they are switched off
        (tinygrad_tx.cpu.use_kernels): the fused ops then run their NumPy array code. Assigning replaces them
        for this backend alone (the tests' fake GPU runs the CUDA kernels' source this way)."""
        return cpu_kernels.kernels() if self._kernels is _FROM_THE_SWITCH else self._kernels

    @kernels.setter
    def kernels(self, kernels):
        self._kernels = kernels

    def asarray(self, data, dtype=None):
        if hasattr(data, "__cuda_array_interface__"):  # a CuPy array: NumPy refuses to convert it implicitly
            data = data.get()
        return super().asarray(data, dtype)

    def to_numpy(self, array):
        return array

    def get_rng_state(self):
        return self.generator.bit_generator.state

    def set_rng_state(self, state):
        self.generator.bit_generator.state = state

    def library_erf(self, a):
        # NumPy has no erf; math.erf is exact to double precision (the tanh form of GELU is the fast one)
        a = np.asarray(a)  # a 0-d result arrives as a NumPy scalar, which frompyfunc turns into a Python float
        return np.asarray(self._erf(a)).astype(a.dtype)

    def index_add(self, target, index, values):
        np.add.at(target, index, values)

    def embedding_backward(self, indices, grad, num_embeddings):
        kernels = self.kernels
        if kernels is not None and hasattr(kernels, "embedding_backward") and kernels.supports(grad):
            return kernels.embedding_backward(indices, grad, num_embeddings)  # one pass, no one-hot matrix
        return super().embedding_backward(indices, grad, num_embeddings)
