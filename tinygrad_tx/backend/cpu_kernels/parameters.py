"""Kernels over a whole list of parameters at once: AdamW's step and the gradients' squared norm.

The arrays arrive as a table of addresses and sizes (as the CUDA AdamW kernel takes them), so one call covers
every parameter whatever their number. The work is cut into blocks of at most BLOCK values, numbered across
the arrays; threads take blocks, so a large parameter is shared between threads and small ones go together.
"""
import numpy as np
from numba import prange

from .float32_math import float32_array_at, helper, kernel, row_dot

BLOCK = 1 << 15


@helper
def _block_starts(sizes):
    """Per array, the number of its first block; the last entry is the total count of blocks."""
    starts = np.zeros(sizes.size + 1, dtype=np.int64)
    for i in range(sizes.size):
        starts[i + 1] = starts[i] + (sizes[i] + BLOCK - 1) // BLOCK
    return starts


@kernel("void(ADDRESSES, ADDRESSES, ADDRESSES, ADDRESSES, INDICES, "
        "float32, float32, float32, float32, float32, float32, float32, float32)")
def adamw_step(params, grads, exp_avgs, exp_avg_sqs, sizes, beta1, one_minus_beta1, beta2, one_minus_beta2, eps,
               decay, step_size, bias_correction2_sqrt):
    """p = p * decay; m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
    p = p - m / (sqrt(v) / bias_correction2_sqrt + eps) * step_size: the array code's float32 operations in its
    order, so both give the same bits."""
    starts = _block_starts(sizes)
    for block in prange(starts[-1]):
        i = np.searchsorted(starts, block, side="right") - 1
        first = (block - starts[i]) * BLOCK
        count = min(sizes[i] - first, BLOCK)
        offset = 4 * first  # bytes: the block's own arrays, each looped over from 0 (see gelu.py)
        param, grad = float32_array_at(params[i] + offset, count), float32_array_at(grads[i] + offset, count)
        exp_avg = float32_array_at(exp_avgs[i] + offset, count)
        exp_avg_sq = float32_array_at(exp_avg_sqs[i] + offset, count)
        for j in range(count):
            g = grad[j]
            m = exp_avg[j] * beta1 + one_minus_beta1 * g
            v = exp_avg_sq[j] * beta2 + one_minus_beta2 * (g * g)
            exp_avg[j], exp_avg_sq[j] = m, v
            param[j] = param[j] * decay - m / (np.sqrt(v) / bias_correction2_sqrt + eps) * step_size


@kernel("float64(ADDRESSES, INDICES)")
def squared_norm(arrays, sizes):
    """The sum of every value squared over all the arrays, in float64, added block by block in order."""
    starts = _block_starts(sizes)
    partial = np.zeros(starts[-1], dtype=np.float64)
    for block in prange(starts[-1]):
        i = np.searchsorted(starts, block, side="right") - 1
        first = (block - starts[i]) * BLOCK
        count = min(sizes[i] - first, BLOCK)
        values = float32_array_at(arrays[i] + 4 * first, count).reshape(1, count)  # 4 bytes a float32
        partial[block] = row_dot(values, values, 0, count)
    total = 0.0
    for block in range(partial.size):
        total += partial[block]
    return total
