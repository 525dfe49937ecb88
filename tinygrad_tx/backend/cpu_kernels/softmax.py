"""softmax and log_softmax over the last dim of (rows, n_cols) float32 arrays, threads over rows.

    forward:   y = exp(x - max) / sum,  or  x - max - log(sum),  sum = sum of exp(x - max) in float64
    backward:  softmax:      dx = y * (dy - sum(dy * y))
               log_softmax:  dx = dy - exp(y) * sum(dy)
"""
import numpy as np
from numba import prange

from .float32_math import F32, exp32, exp_shifted, kernel, row_dot, row_max, row_sum


@kernel
def softmax_forward(x, out, log):
    n_rows, n_cols = x.shape
    for r in prange(n_rows):
        row, result = x[r], out[r]
        largest = row_max(row)
        exp_shifted(row, largest, result)
        total = row_sum(result)
        if log:
            log_total = F32(np.log(total))
            for j in range(n_cols):
                result[j] = (row[j] - largest) - log_total
        else:
            total32 = F32(total)
            for j in range(n_cols):
                result[j] = result[j] / total32


@kernel
def softmax_backward(grad_out, out, grad_x, log):
    n_rows, n_cols = out.shape
    for r in prange(n_rows):
        dy, y, dx = grad_out[r], out[r], grad_x[r]
        if log:
            total = F32(row_sum(dy))
            for j in range(n_cols):
                dx[j] = dy[j] - exp32(y[j]) * total
        else:
            dot = F32(row_dot(dy, y))
            for j in range(n_cols):
                dx[j] = y[j] * (dy[j] - dot)
