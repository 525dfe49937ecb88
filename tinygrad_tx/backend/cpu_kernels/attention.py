"""Scaled dot-product attention, softmax(Q K^T * scale) V, causal or unmasked: the row work between the products.

The products themselves are BLAS calls (NumbaKernels makes them, batched over heads); these kernels do what lies
between them in one pass over each row of scores, threads over rows:

forward:  scores (heads, L, S) = Q K^T  ->  softmax_rows  ->  probabilities in place, and each row's
          lse = max + log(sum), the only thing kept for backward besides q, k, v.
backward: scores = Q K^T again  ->  score_gradients: P = exp(scores * scale - lse), then with dP = dO V^T
          dS = P (dP - sum_j dP P) * scale, in place of dP; P in place of the scores (for dV = P^T dO).
Causal means key j is visible from query i when j <= i (the top-left triangle, as tril(ones(L, S))); hidden
entries come out 0 in P and dS, so the products after these kernels need no mask. The scores may be those of a
band of queries, first_query on, against the keys up to the band's last query (NumbaKernels cuts long causal
attention so, to skip the products' hidden half); lse holds every query's.
"""
import numpy as np
from numba import prange

from .float32_math import F32, ZERO, exp_shifted, kernel, row_dot, row_max, row_sum


@kernel("void(HEADS, float32, boolean, ROWS, int64)")
def softmax_rows(scores, scale, causal, lse, first_query):
    n_heads, n_queries, n_keys = scores.shape
    s = scores.reshape(n_heads * n_queries, n_keys)  # a row per query
    for r in prange(n_heads * n_queries):
        head, query = r // n_queries, first_query + r % n_queries
        visible = min(query + 1, n_keys) if causal else n_keys
        for j in range(visible):
            s[r, j] *= scale
        largest = row_max(s, r, visible)
        exp_shifted(s, r, visible, largest, s, r)
        total = row_sum(s, r, visible)
        total32 = F32(total)
        for j in range(visible):
            s[r, j] = s[r, j] / total32
        for j in range(visible, n_keys):
            s[r, j] = ZERO
        lse[head, query] = largest + F32(np.log(total))


@kernel("void(HEADS, HEADS, float32, boolean, ROWS, int64)")
def score_gradients(scores, grad_probs, scale, causal, lse, first_query):
    n_heads, n_queries, n_keys = scores.shape
    p = scores.reshape(n_heads * n_queries, n_keys)
    dp = grad_probs.reshape(n_heads * n_queries, n_keys)
    for r in prange(n_heads * n_queries):
        head, query = r // n_queries, first_query + r % n_queries
        visible = min(query + 1, n_keys) if causal else n_keys
        for j in range(visible):
            p[r, j] *= scale
        exp_shifted(p, r, visible, lse[head, query], p, r)
        delta = F32(row_dot(dp, p, r, visible))
        for j in range(visible):
            dp[r, j] = p[r, j] * (dp[r, j] - delta) * scale
        for j in range(visible, n_keys):
            p[r, j] = ZERO
            dp[r, j] = ZERO
