"""Scaled dot-product attention, softmax(Q K^T * scale) V, causal or unmasked: the row work between the products.

The products themselves are BLAS calls (NumbaKernels makes them, batched over heads); these kernels do what lies
between them in one pass over each row of scores, threads over rows:

forward:  scores (heads, L, S) = Q K^T  ->  softmax_rows  ->  probabilities in place, and each row's
          lse = max + log(sum), the only thing kept for backward besides q, k, v.
backward: scores = Q K^T again  ->  score_gradients: P = exp(scores * scale - lse), then with dP = dO V^T
          dS = P (dP - sum_j dP P) * scale, in place of dP; P in place of the scores (for dV = P^T dO).
Causal means key j is visible from query i when j <= i (the top-left triangle, as tril(ones(L, S))); hidden
entries come out 0 in P and dS, so the products after these kernels need no mask.
"""
import numpy as np
from numba import prange

from .float32_math import F32, ZERO, exp_shifted, kernel, row_dot, row_max, row_sum


@kernel("void(HEADS, float32, boolean, ROWS)")
def softmax_rows(scores, scale, causal, lse):
    n_heads, length, source_length = scores.shape
    s = scores.reshape(n_heads * length, source_length)  # a row per query, as lse
    row_lse = lse.reshape(n_heads * length)
    for r in prange(n_heads * length):
        visible = min(r % length + 1, source_length) if causal else source_length
        for j in range(visible):
            s[r, j] *= scale
        largest = row_max(s, r, visible)
        exp_shifted(s, r, visible, largest, s, r)
        total = row_sum(s, r, visible)
        total32 = F32(total)
        for j in range(visible):
            s[r, j] = s[r, j] / total32
        for j in range(visible, source_length):
            s[r, j] = ZERO
        row_lse[r] = largest + F32(np.log(total))


@kernel("void(HEADS, HEADS, float32, boolean, ROWS)")
def score_gradients(scores, grad_probs, scale, causal, lse):
    n_heads, length, source_length = scores.shape
    p = scores.reshape(n_heads * length, source_length)
    dp = grad_probs.reshape(n_heads * length, source_length)
    row_lse = lse.reshape(n_heads * length)
    for r in prange(n_heads * length):
        visible = min(r % length + 1, source_length) if causal else source_length
        for j in range(visible):
            p[r, j] *= scale
        exp_shifted(p, r, visible, row_lse[r], p, r)
        delta = F32(row_dot(dp, p, r, visible))
        for j in range(visible):
            dp[r, j] = p[r, j] * (dp[r, j] - delta) * scale
        for j in range(visible, source_length):
            p[r, j] = ZERO
            dp[r, j] = ZERO
