"""softmax and log_softmax over the last dim of (rows, n_cols) float32 arrays, threads over rows.

    forward:   y = exp(x - max) / sum,  or  x - max - log(sum),  sum = sum of exp(x - max) in float64
    backward:  softmax:      dx = y * (dy - sum(dy * y))
               log_softmax:  dx = dy - exp(y) * sum(dy)
"""
import numpy as np
from numba import prange

from .float32_math import F32, exp32, exp_shifted, kernel, row_dot, row_max, row_sum


@kernel("void(ROWS, ROWS, boolean)")
def softmax_forward(x, out, log):
    n_rows, n_cols = x.shape
    for r in prange(n_rows):
        largest = row_max(x, r, n_cols)
        exp_shifted(x, r, n_cols, largest, out, r)
        total = row_sum(out, r, n_cols)
        if log:
            log_total = F32(np.log(total))
            for j in range(n_cols):
                out[r, j] = (x[r, j] - largest) - log_total
        else:
            total32 = F32(total)
            for j in range(n_cols):
                out[r, j] = out[r, j] / total32


@kernel("void(ROWS, ROWS, ROWS, boolean)")
def softmax_backward(grad_out, out, grad_x, log):
    n_rows, n_cols = out.shape
    for r in prange(n_rows):
        if log:
            total = F32(row_sum(grad_out, r, n_cols))
            for j in range(n_cols):
                grad_x[r, j] = grad_out[r, j] - exp32(out[r, j]) * total
        else:
            dot = F32(row_dot(grad_out, out, r, n_cols))
            for j in range(n_cols):
                grad_x[r, j] = out[r, j] * (grad_out[r, j] - dot)
