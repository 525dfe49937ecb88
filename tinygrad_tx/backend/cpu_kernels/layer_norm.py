"""Layer normalization over the last dim of (rows, n_cols) float32 arrays, threads over rows.

    forward:   mean, rstd = 1 / sqrt(var + eps) per row (the mean summed in float64, as the array code);
               out = (x - mean) * rstd * weight + bias
    backward:  xhat = (x - mean) * rstd, g = dy * weight,
               dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
               dweight = sum over rows of dy * xhat, dbias = sum over rows of dy
The backward reads x, dy, mean and rstd once: each block of rows adds its share of dweight and dbias into its
own partial sums, which are added in block order at the end (the same result whatever the thread count).
"""
import numpy as np
from numba import prange

from .float32_math import F32, ONE, kernel, row_dot, row_sum
from .numba_kernels import LAYER_NORM_ROWS_PER_BLOCK as ROWS_PER_BLOCK  # blocks are shared out there


@kernel("void(ROWS, VECTOR, VECTOR, boolean, boolean, float32, ROWS, VECTOR, VECTOR)")
def layer_norm_forward(x, weight, bias, has_weight, has_bias, eps, out, mean, rstd):
    n_rows, n_cols = x.shape
    for r in prange(n_rows):
        row_mean = F32(row_sum(x, r, n_cols) / n_cols)
        for j in range(n_cols):
            out[r, j] = x[r, j] - row_mean
        row_rstd = ONE / np.sqrt(F32(row_dot(out, out, r, n_cols) / n_cols) + eps)
        mean[r], rstd[r] = row_mean, row_rstd
        for j in range(n_cols):
            y = out[r, j] * row_rstd
            if has_weight:
                y = y * weight[j]
            if has_bias:
                y = y + bias[j]
            out[r, j] = y


@kernel("void(ROWS, ROWS, VECTOR, boolean, VECTOR, VECTOR, ROWS, ROWS, ROWS)")
def layer_norm_backward(grad_out, x, weight, has_weight, mean, rstd, grad_x, partial_weight, partial_bias):
    """grad_x, and each block of ROWS_PER_BLOCK rows' sums of dweight and dbias in its row of the partial arrays
    (zeros on entry), for sum_blocks to add."""
    n_rows, n_cols = x.shape
    for block in prange(partial_weight.shape[0]):
        xhat = np.empty((1, n_cols), dtype=np.float32)  # the block's scratch rows
        g = np.empty((1, n_cols), dtype=np.float32)
        for r in range(block * ROWS_PER_BLOCK, min(n_rows, (block + 1) * ROWS_PER_BLOCK)):
            row_mean, row_rstd = mean[r], rstd[r]
            for j in range(n_cols):
                xhat[0, j] = (x[r, j] - row_mean) * row_rstd
            if has_weight:
                for j in range(n_cols):
                    g[0, j] = grad_out[r, j] * weight[j]
            else:
                for j in range(n_cols):
                    g[0, j] = grad_out[r, j]
            for j in range(n_cols):
                partial_weight[block, j] += grad_out[r, j] * xhat[0, j]
                partial_bias[block, j] += grad_out[r, j]
            mean_g, mean_g_xhat = F32(row_sum(g, 0, n_cols) / n_cols), F32(row_dot(g, xhat, 0, n_cols) / n_cols)
            for j in range(n_cols):
                grad_x[r, j] = row_rstd * (g[0, j] - mean_g - xhat[0, j] * mean_g_xhat)


@kernel("void(ROWS, ROWS, VECTOR, VECTOR)")
def sum_blocks(partial_weight, partial_bias, grad_weight, grad_bias):
    """The blocks' sums added in block order, in float64 (the same result however the blocks were shared out)."""
    n_blocks, n_cols = partial_weight.shape
    for j in prange(n_cols):
        total_weight = total_bias = 0.0
        for block in range(n_blocks):
            total_weight += partial_weight[block, j]
            total_bias += partial_bias[block, j]
        grad_weight[j], grad_bias[j] = total_weight, total_bias
