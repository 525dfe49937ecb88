"""A dropout mask kept as its place in the device's random stream rather than as an array.

On a GPU the generator is counter-based (backend/philox.py): any word of the stream can be made again from
the seed and its position. Attention's dropout mask is (..., L, S), as large as the attention matrix the
kernel never stores, so it reserves the mask's words and lets the kernel regenerate each element where it
needs it, in forward and in backward. The array code (and `composed`, for higher derivatives) makes the same
mask from the same words: an element is kept where the float32 uniform from its word is at least p.
"""
import math

import numpy as np

from ..backend.philox import uniform_from_words


class RegeneratedDropout:
    def __init__(self, backend, shape, p, dtype, position):
        self.backend, self.shape, self.p, self.dtype = backend, tuple(shape), p, dtype
        self.seed, self.first_block = position

    @classmethod
    def reserve(cls, backend, shape, p, dtype):
        """The mask's words reserved in the backend's stream; None where the generator is not counter-based
        (the CPU's), or where there is nothing to regenerate (p of 0 or 1)."""
        if not 0 < p < 1:
            return None
        position = backend.reserve_random_words(math.prod(shape))
        return None if position is None else cls(backend, shape, p, dtype, position)

    @property
    def kernel_arguments(self):
        return self.p, self.seed, self.first_block

    def keep_array(self):
        """0 where dropped, 1 / (1 - p) where kept, in the tensor's dtype: what F.dropout's mask holds."""
        backend = self.backend
        words = backend.random_words(math.prod(self.shape), self.seed, self.first_block)
        kept = uniform_from_words(words) >= np.float32(self.p)
        return backend.where(kept, 1 / (1 - self.p), 0).astype(self.dtype.numpy_name).reshape(self.shape)
