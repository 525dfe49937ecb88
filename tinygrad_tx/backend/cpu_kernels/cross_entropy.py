"""Cross-entropy of (rows, n_classes) float32 logits against int64 class indices, threads over rows. Keeps each
row's logsumexp for backward, never the (rows, n_classes) log-probabilities.

    loss = (1 - eps) (lse - x[target]) + eps (lse - mean(x)),  0 where target == ignore_index
    grad = scale[row] * (exp(x - lse) - eps / n_classes - (1 - eps) [c == target])
scale folds in the incoming gradient, the ignore mask and the 1/n of a 'mean' (the caller computes it).
"""
import numpy as np
from numba import prange

from .float32_math import F32, ONE, ZERO, exp32, exp_shifted, kernel, row_max, row_sum

ROWS_PER_BLOCK = 64


@kernel("void(ROWS, INDICES, int64, float32, VECTOR, VECTOR)")
def cross_entropy_forward(logits, target, ignore_index, label_smoothing, losses, lse):
    n_rows, n_classes = logits.shape
    for block in prange((n_rows + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK):
        exps = np.empty((1, n_classes), dtype=np.float32)  # the block's scratch row
        for r in range(block * ROWS_PER_BLOCK, min(n_rows, (block + 1) * ROWS_PER_BLOCK)):
            largest = row_max(logits, r, n_classes)
            exp_shifted(logits, r, n_classes, largest, exps, 0)
            row_lse = largest + F32(np.log(row_sum(exps, 0, n_classes)))
            loss = ZERO
            t = target[r]
            if t != ignore_index:
                loss = (ONE - label_smoothing) * (row_lse - logits[r, t])
                if label_smoothing != ZERO:
                    loss += label_smoothing * (row_lse - F32(row_sum(logits, r, n_classes) / n_classes))
            losses[r], lse[r] = loss, row_lse


@kernel("void(ROWS, INDICES, VECTOR, VECTOR, int64, float32, ROWS)")
def cross_entropy_backward(logits, target, lse, scale, ignore_index, label_smoothing, grad):
    n_rows, n_classes = logits.shape
    smoothing = label_smoothing / F32(n_classes)
    for r in prange(n_rows):
        t = target[r]
        if t == ignore_index:
            for c in range(n_classes):
                grad[r, c] = ZERO
            continue
        row_lse, row_scale = lse[r], scale[r]
        for c in range(n_classes):
            grad[r, c] = (exp32(logits[r, c] - row_lse) - smoothing) * row_scale
        grad[r, t] = (exp32(logits[r, t] - row_lse) - smoothing - (ONE - label_smoothing)) * row_scale
