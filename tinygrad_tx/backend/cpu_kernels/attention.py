"""Scaled dot-product attention, softmax(Q K^T * scale) V, causal or unmasked, a thread per head at a time.

Layout: q (N, L, D), k and v (N, S, D), contiguous float32; N = batch * heads. Causal means key j is visible
from query i when j <= i (the top-left triangle, as tril(ones(L, S))).

forward:  for each query row, its scores against the visible keys (a row of at most S floats), their
          softmax and the weighted sum of the values; keeps only O and lse = max + log(sum) per row.
backward: recomputes each row's probabilities P from lse, then
            delta_i = dO_i . O_i,  dS_ij = P_ij (dO_i . v_j - delta_i)
            dQ_i = scale sum_j dS_ij k_j,  dK_j = scale sum_i dS_ij q_i,  dV_j = sum_i P_ij dO_i
          A head's dK and dV are its thread's alone: no two threads add into one row.
The inner loops run along rows of K^T and V^T (the keys' dim last), so they are elementwise and vectorize.
"""
import numpy as np
from numba import prange

from .float32_math import F32, ZERO, exp_shifted, helper, kernel, row_dot, row_max, row_sum


@kernel
def attention_forward(q, k, v, scale, causal, out, lse):
    n_heads, length, head_dim = q.shape
    source_length = k.shape[1]
    for n in prange(n_heads):
        keys_t = np.ascontiguousarray(k[n].T)                   # (D, S)
        scores = np.empty(source_length, dtype=np.float32)
        weighted = np.empty(head_dim, dtype=np.float32)
        for i in range(length):
            visible = min(i + 1, source_length) if causal else source_length
            _scores(q[n, i], keys_t, visible, scale, scores)
            largest = row_max(scores[:visible])
            exp_shifted(scores[:visible], largest, scores)
            total = row_sum(scores[:visible])
            weighted[:] = ZERO
            for j in range(visible):
                p, values = scores[j], v[n, j]
                for d in range(head_dim):
                    weighted[d] += p * values[d]
            total32 = F32(total)
            for d in range(head_dim):
                out[n, i, d] = weighted[d] / total32
            lse[n, i] = largest + F32(np.log(total))


@kernel
def attention_backward(grad_out, q, k, v, out, lse, scale, causal, grad_q, grad_k, grad_v):
    n_heads, length, head_dim = q.shape
    source_length = k.shape[1]
    for n in prange(n_heads):
        keys_t = np.ascontiguousarray(k[n].T)                   # (D, S)
        values_t = np.ascontiguousarray(v[n].T)                 # (D, S)
        probs = np.empty(source_length, dtype=np.float32)
        grad_probs = np.empty(source_length, dtype=np.float32)
        grad_keys = np.zeros((source_length, head_dim), dtype=np.float32)
        grad_values = grad_v[n]
        grad_values[:] = ZERO
        for i in range(length):
            visible = min(i + 1, source_length) if causal else source_length
            dy = grad_out[n, i]
            delta = F32(row_dot(dy, out[n, i]))
            _scores(q[n, i], keys_t, visible, scale, probs)
            exp_shifted(probs[:visible], lse[n, i], probs)
            _scores(dy, values_t, visible, F32(1), grad_probs)  # dO_i . v_j
            query, grad_query = q[n, i], grad_q[n, i]
            grad_query[:] = ZERO
            for j in range(visible):
                grad_score = probs[j] * (grad_probs[j] - delta)
                keys, rows = k[n, j], grad_keys[j]
                for d in range(head_dim):
                    grad_query[d] += grad_score * keys[d]
                    rows[d] += grad_score * query[d]
                p, grad_value = probs[j], grad_values[j]
                for d in range(head_dim):
                    grad_value[d] += p * dy[d]
            for d in range(head_dim):
                grad_query[d] *= scale
        for j in range(source_length):
            for d in range(head_dim):
                grad_k[n, j, d] = grad_keys[j, d] * scale


@helper
def _scores(query, keys_t, visible, scale, scores):
    """scores[j] = (query . keys_t[:, j]) * scale for j < visible: a row of Q K^T, built one dim at a time."""
    scores[:visible] = ZERO
    for d in range(keys_t.shape[0]):
        qd = query[d]
        row = keys_t[d]
        for j in range(visible):
            scores[j] += qd * row[j]
    for j in range(visible):
        scores[j] *= scale
