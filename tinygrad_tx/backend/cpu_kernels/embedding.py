"""The gradient of an embedding lookup table[ids]: the rows of grad summed by id, in row order.

    out[ids[r], :] += grad[r, :]
Threads over blocks of columns: each column's sums are one thread's alone, added in row order, so no two threads
touch one element and the result does not depend on the thread count.
"""
import numpy as np
from numba import prange

from .float32_math import kernel

COLUMNS_PER_BLOCK = 64


@kernel("void(INDICES, ROWS, ROWS)")
def embedding_backward(ids, grad, out):
    n_rows, n_cols = grad.shape
    out[:] = 0
    for block in prange((n_cols + COLUMNS_PER_BLOCK - 1) // COLUMNS_PER_BLOCK):
        first = block * COLUMNS_PER_BLOCK
        count = min(n_cols - first, COLUMNS_PER_BLOCK)
        for r in range(n_rows):
            row = ids[r]
            for j in range(count):
                out[row, first + j] += grad[r, first + j]
