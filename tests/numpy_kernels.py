"""NumpyKernels: the CudaKernels interface (backend/kernels/launch.py) implemented in NumPy.

A test double that lets the CPU exercise everything around the CUDA kernels: which arrays the fused
ops save, how they reshape, what they pass back, and the kernels' algorithms themselves. attention
follows attention.cu step by step (online softmax over key tiles of 32, query blocks of 8 rows, the
causal bounds each block uses, backward recomputing probabilities from the saved logsumexp), so a
mistake in that scheme shows on the CPU; only the CUDA code itself needs a GPU to check.
Each method counts its calls in `calls`, so a test can assert the kernel path ran.
"""
import math
from collections import Counter

import numpy as np

TILE, ROWS, MAX_HEAD_DIM = 32, 8, 128  # attention.cu's constants


class NumpyKernels:
    def __init__(self):
        self.calls = Counter()

    @staticmethod
    def supports(*arrays):
        dtypes = {a.dtype.name for a in arrays if a is not None}
        return len(dtypes) == 1 and dtypes <= {"float32", "float16"} and all(a is None or a.size for a in arrays)

    def supports_attention(self, q, k, v):
        return (self.supports(q, k, v) and q.ndim >= 2 and q.shape[:-2] == k.shape[:-2] == v.shape[:-2]
                and q.shape[-1] == k.shape[-1] == v.shape[-1] <= MAX_HEAD_DIM and k.shape[-2] == v.shape[-2])

    # --- layer norm: float32 math, mean and rstd per row --------------------------------------------------------
    def layer_norm_forward(self, x, weight, bias, eps):
        self.calls["layer_norm_forward"] += 1
        rows = x.reshape(-1, x.shape[-1]).astype(np.float32)
        mean = rows.mean(axis=1)
        centered = rows - mean[:, None]
        rstd = 1 / np.sqrt((centered * centered).mean(axis=1) + np.float32(eps))
        out = centered * rstd[:, None]
        if weight is not None:
            out = out * weight.astype(np.float32)
        if bias is not None:
            out = out + bias.astype(np.float32)
        return out.astype(x.dtype).reshape(x.shape), mean.astype(np.float32), rstd.astype(np.float32)

    def layer_norm_backward(self, grad_out, x, weight, mean, rstd, need_weight, need_bias):
        self.calls["layer_norm_backward"] += 1
        dy = grad_out.reshape(-1, x.shape[-1]).astype(np.float32)
        xhat = (x.reshape(-1, x.shape[-1]).astype(np.float32) - mean[:, None]) * rstd[:, None]
        dxhat = dy * weight.astype(np.float32) if weight is not None else dy
        dx = rstd[:, None] * (dxhat - dxhat.mean(axis=1, keepdims=True)
                              - xhat * (dxhat * xhat).mean(axis=1, keepdims=True))
        grad_weight = (dy * xhat).sum(axis=0).astype(x.dtype) if need_weight else None
        grad_bias = dy.sum(axis=0).astype(x.dtype) if need_bias else None
        return dx.astype(x.dtype).reshape(x.shape), grad_weight, grad_bias

    # --- softmax --------------------------------------------------------------------------------------------------
    def softmax_forward(self, x, log):
        self.calls["softmax_forward"] += 1
        a = x.astype(np.float32)
        shifted = a - a.max(axis=-1, keepdims=True)
        total = np.exp(shifted).sum(axis=-1, keepdims=True)
        return (shifted - np.log(total) if log else np.exp(shifted) / total).astype(x.dtype)

    def softmax_backward(self, grad_out, out, log):
        self.calls["softmax_backward"] += 1
        dy, y = grad_out.astype(np.float32), out.astype(np.float32)
        if log:
            return (dy - np.exp(y) * dy.sum(axis=-1, keepdims=True)).astype(out.dtype)
        return (y * (dy - (dy * y).sum(axis=-1, keepdims=True))).astype(out.dtype)

    # --- gelu ----------------------------------------------------------------------------------------------------------
    def gelu_forward(self, x, approximate_tanh):
        self.calls["gelu_forward"] += 1
        v = x.astype(np.float32)
        if approximate_tanh:
            return (0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))).astype(x.dtype)
        return (v * _normal_cdf(v)).astype(x.dtype)

    def gelu_backward(self, grad_out, x, approximate_tanh):
        self.calls["gelu_backward"] += 1
        v = x.astype(np.float32)
        if approximate_tanh:
            c = math.sqrt(2 / math.pi)
            t = np.tanh(c * (v + 0.044715 * v ** 3))
            derivative = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * c * (1 + 3 * 0.044715 * v * v)
        else:
            derivative = _normal_cdf(v) + v * np.exp(-0.5 * v * v) / math.sqrt(2 * math.pi)
        return (grad_out.astype(np.float32) * derivative).astype(x.dtype)

    # --- cross-entropy ---------------------------------------------------------------------------------------------------
    def cross_entropy_forward(self, logits, target, ignore_index, label_smoothing):
        self.calls["cross_entropy_forward"] += 1
        x = logits.astype(np.float32)
        row_max = x.max(axis=1)
        lse = row_max + np.log(np.exp(x - row_max[:, None]).sum(axis=1))
        valid = target != ignore_index
        picked = x[np.arange(len(x)), np.where(valid, target, 0)]
        losses = (1 - label_smoothing) * (lse - picked)
        if label_smoothing:
            losses = losses + label_smoothing * (lse - x.mean(axis=1))
        return np.where(valid, losses, 0).astype(np.float32), lse.astype(np.float32)

    def cross_entropy_backward(self, logits, target, lse, row_scale, ignore_index, label_smoothing):
        self.calls["cross_entropy_backward"] += 1
        x = logits.astype(np.float32)
        grad = np.exp(x - lse[:, None]) - label_smoothing / x.shape[1]
        valid = target != ignore_index
        grad[np.arange(len(x)), np.where(valid, target, 0)] -= 1 - label_smoothing
        grad = np.where(valid[:, None], grad * np.asarray(row_scale, np.float32)[:, None], 0)
        return grad.astype(logits.dtype)

    # --- attention, as attention.cu computes it ----------------------------------------------------------------------------
    @np.errstate(invalid="ignore", divide="ignore")  # exp(-inf - -inf) in masked slots, discarded by np.where
    def attention_forward(self, q, k, v, scale, causal):
        self.calls["attention_forward"] += 1
        q3, k3, v3 = (_heads(a) for a in (q, k, v))
        n, length, head_dim = q3.shape
        source_length = k3.shape[1]
        out = np.zeros(q3.shape, np.float32)
        lse = np.full((n, length), -np.inf, np.float32)
        for block_start in range(0, length, ROWS):
            rows = np.arange(block_start, min(block_start + ROWS, length))
            query = q3[:, rows] * np.float32(scale)                                  # (n, r, D)
            key_end = min(source_length, rows[-1] + 1) if causal else source_length
            running_max = np.full((n, len(rows)), -np.inf, np.float32)
            running_sum = np.zeros((n, len(rows)), np.float32)
            acc = np.zeros((n, len(rows), head_dim), np.float32)
            for start in range(0, key_end, TILE):
                keys = np.arange(start, min(start + TILE, source_length))
                scores = query @ k3[:, keys].transpose(0, 2, 1)                       # (n, r, tile)
                visible = (keys[None, :] <= rows[:, None]) if causal else np.ones(scores.shape[1:], bool)
                scores = np.where(visible, scores, -np.inf)
                new_max = np.maximum(running_max, scores.max(axis=-1))
                p = np.where(visible, np.exp(scores - new_max[..., None]), 0)
                correction = np.where(running_max == -np.inf, 0, np.exp(running_max - new_max))
                running_sum = running_sum * correction + p.sum(axis=-1)
                acc = acc * correction[..., None] + p @ v3[:, keys]
                running_max = new_max
            has_keys = running_sum > 0
            out[:, rows] = acc / np.where(has_keys, running_sum, 1)[..., None] * has_keys[..., None]
            lse[:, rows] = np.where(has_keys, running_max + np.log(np.where(has_keys, running_sum, 1)), -np.inf)
        return out.astype(q.dtype).reshape(q.shape), lse.reshape(q.shape[:-1])

    @np.errstate(invalid="ignore", divide="ignore")
    def attention_backward(self, grad_out, q, k, v, out, lse, scale, causal):
        self.calls["attention_backward"] += 1
        q3, k3, v3, dout, o3 = (_heads(a) for a in (q, k, v, grad_out.astype(q.dtype), out))
        n, length, head_dim = q3.shape
        source_length = k3.shape[1]
        lse = lse.reshape(n, length)
        delta = (dout * o3).sum(axis=-1)                                             # (n, L)
        scale = np.float32(scale)

        def probabilities(query_rows, key_rows):
            scores = (q3[:, query_rows] * scale) @ k3[:, key_rows].transpose(0, 2, 1)
            visible = (key_rows[None, :] <= query_rows[:, None]) if causal else np.ones(scores.shape[1:], bool)
            visible = visible & (lse[:, query_rows, None] != -np.inf)
            p = np.where(visible, np.exp(scores - lse[:, query_rows, None]), 0)
            grad_scores = p * (dout[:, query_rows] @ v3[:, key_rows].transpose(0, 2, 1) - delta[:, query_rows, None])
            return p, grad_scores

        grad_q = np.zeros(q3.shape, np.float32)
        for block_start in range(0, length, ROWS):                                   # attention_backward_query
            rows = np.arange(block_start, min(block_start + ROWS, length))
            key_end = min(source_length, rows[-1] + 1) if causal else source_length
            for start in range(0, key_end, TILE):
                keys = np.arange(start, min(start + TILE, source_length))
                _, grad_scores = probabilities(rows, keys)
                grad_q[:, rows] += grad_scores @ k3[:, keys]
        grad_q *= scale
        grad_k, grad_v = np.zeros(k3.shape, np.float32), np.zeros(v3.shape, np.float32)
        for block_start in range(0, source_length, ROWS):                            # attention_backward_key_value
            keys = np.arange(block_start, min(block_start + ROWS, source_length))
            for start in range(block_start if causal else 0, length, TILE):
                rows = np.arange(start, min(start + TILE, length))
                p, grad_scores = probabilities(rows, keys)
                grad_v[:, keys] += p.transpose(0, 2, 1) @ dout[:, rows]
                grad_k[:, keys] += grad_scores.transpose(0, 2, 1) @ (q3[:, rows] * scale)
        return (grad_q.astype(q.dtype).reshape(q.shape), grad_k.astype(k.dtype).reshape(k.shape),
                grad_v.astype(v.dtype).reshape(v.shape))

    # --- AdamW -----------------------------------------------------------------------------------------------------------------
    def adamw_step(self, params, grads, exp_avgs, exp_avg_sqs, lr, beta1, beta2, eps, weight_decay, step):
        self.calls["adamw_step"] += 1
        f = np.float32
        correction1, correction2_sqrt = f(1 - beta1 ** step), f(math.sqrt(1 - beta2 ** step))
        for p, g, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
            m[...] = f(beta1) * m + f(1 - beta1) * g
            v[...] = f(beta2) * v + f(1 - beta2) * g * g
            p[...] = p * f(1 - lr * weight_decay) - f(lr) / correction1 * m / (np.sqrt(v) / correction2_sqrt + f(eps))


def _heads(array):
    return np.ascontiguousarray(array).reshape(-1, array.shape[-2], array.shape[-1]).astype(np.float32)


def _normal_cdf(v):
    return 0.5 * (1 + np.vectorize(math.erf, otypes=[np.float32])(v / math.sqrt(2)))
