"""CudaKernels: Python entry points to the .cu kernels for one device, on CuPy arrays.

Every method takes and returns cupy arrays, checks what its kernel supports (`supports*` methods,
which the fused ops ask before choosing the kernel over the array code) and launches with explicit
NumPy scalar types: CuPy passes a bare Python int as int64 and a float as double, which would not
match the kernels' int / float parameters.
"""
import math

import numpy as np

from . import load_module

BLOCK = 256            # threads per block of the row kernels: enough to stream a row of a few thousand values
ROWS_PER_BLOCK = 8     # attention.cu's ROWS: one warp per row
MAX_HEAD_DIM = 128     # attention.cu's MAX_HEAD_DIM
MAX_GRID_X = 65535 * 16  # grid-stride loops cover the rest: more blocks than this only queue up
MAX_GRID_Y = 65535       # the hardware's limit for gridDim.y and gridDim.z (gridDim.x goes to 2**31 - 1)
SUFFIXES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}  # the kernels' storage types


class CudaKernels:
    def __init__(self, cupy, device_index):
        self.cp = cupy
        self.device_index = device_index
        self._functions = {}

    def _function(self, family, name):
        key = (family, name)
        if key not in self._functions:
            self._functions[key] = load_module(family, self.device_index).get_function(name)
        return self._functions[key]

    def _launch(self, family, name, grid, block, args):
        with self.cp.cuda.Device(self.device_index):
            self._function(family, name)(grid, block, args)

    # --- what the kernels take ---------------------------------------------------------------------------------
    @staticmethod
    def suffix(array):
        return SUFFIXES[array.dtype.name]

    @staticmethod
    def supports(*arrays):
        """float32, float16 or bfloat16 arrays of one dtype, with at least one element."""
        dtypes = {a.dtype.name for a in arrays if a is not None}
        return len(dtypes) == 1 and dtypes <= SUFFIXES.keys() and all(a is None or a.size for a in arrays)

    def _contiguous(self, array):
        return self.cp.ascontiguousarray(array)

    def _rows(self, array):
        """(rows, last dim) view of a C-contiguous copy."""
        array = self._contiguous(array)
        return array.reshape(-1, array.shape[-1])

    # --- layer norm ------------------------------------------------------------------------------------------------
    def layer_norm_forward(self, x, weight, bias, eps):
        """Over the last dim; weight and bias may be None. -> (out, mean, rstd), mean and rstd float32 per row."""
        rows = self._rows(x)
        n_rows, n_cols = rows.shape
        out = self.cp.empty_like(rows)
        mean = self.cp.empty(n_rows, dtype=np.float32)
        rstd = self.cp.empty(n_rows, dtype=np.float32)
        self._launch("layer_norm", f"layer_norm_forward_{self.suffix(rows)}", (n_rows,), (BLOCK,), (
            rows, self._or(weight, rows), self._or(bias, rows), out, mean, rstd, np.int64(n_cols), np.float32(eps),
            np.int32(weight is not None), np.int32(bias is not None)))
        return out.reshape(x.shape), mean, rstd

    def layer_norm_backward(self, grad_out, x, weight, mean, rstd, need_weight, need_bias):
        """-> (grad_x, grad_weight or None, grad_bias or None)."""
        rows = self._rows(x)
        grad_rows = self._rows(grad_out.astype(rows.dtype, copy=False))  # the kernel reads both as one type
        n_rows, n_cols = rows.shape
        suffix = self.suffix(rows)
        grad_x = self.cp.empty_like(rows)
        self._launch("layer_norm", f"layer_norm_backward_input_{suffix}", (n_rows,), (BLOCK,), (
            grad_rows, rows, self._or(weight, rows), mean, rstd, grad_x, np.int64(n_cols),
            np.int32(weight is not None)))
        grad_weight = grad_bias = None
        if need_weight or need_bias:
            n_chunks = max(1, min(256, n_rows // 64))
            rows_per_chunk = -(-n_rows // n_chunks)
            partial_weight = self.cp.empty((n_chunks, n_cols), dtype=np.float32)
            partial_bias = self.cp.empty((n_chunks, n_cols), dtype=np.float32)
            self._launch("layer_norm", f"layer_norm_backward_params_{suffix}", (-(-n_cols // 32), n_chunks), (32, 8), (
                grad_rows, rows, mean, rstd, partial_weight, partial_bias, np.int64(n_rows), np.int64(n_cols),
                np.int64(rows_per_chunk)))
            if need_weight:
                grad_weight = partial_weight.sum(axis=0).astype(rows.dtype)
            if need_bias:
                grad_bias = partial_bias.sum(axis=0).astype(rows.dtype)
        return grad_x.reshape(x.shape), grad_weight, grad_bias

    # --- softmax ------------------------------------------------------------------------------------------------------
    def softmax_forward(self, x, log):
        """softmax (or log_softmax) over the last dim."""
        rows = self._rows(x)
        out = self.cp.empty_like(rows)
        self._launch("softmax", f"softmax_forward_{self.suffix(rows)}", (rows.shape[0],), (BLOCK,), (
            rows, out, np.int64(rows.shape[1]), np.int32(log)))
        return out.reshape(x.shape)

    def softmax_backward(self, grad_out, out, log):
        out_rows = self._rows(out)
        grad_rows = self._rows(grad_out.astype(out_rows.dtype, copy=False))
        grad_x = self.cp.empty_like(out_rows)
        self._launch("softmax", f"softmax_backward_{self.suffix(out_rows)}", (out_rows.shape[0],), (BLOCK,), (
            grad_rows, out_rows, grad_x, np.int64(out_rows.shape[1]), np.int32(log)))
        return grad_x.reshape(out.shape)

    # --- gelu ------------------------------------------------------------------------------------------------------------
    def _elementwise_grid(self, n):
        return (max(1, min(-(-n // BLOCK), MAX_GRID_X)),)

    def gelu_forward(self, x, approximate_tanh):
        x = self._contiguous(x)
        out = self.cp.empty_like(x)
        self._launch("gelu", f"gelu_forward_{self.suffix(x)}", self._elementwise_grid(x.size), (BLOCK,), (
            x, out, np.int64(x.size), np.int32(approximate_tanh)))
        return out

    def gelu_backward(self, grad_out, x, approximate_tanh):
        x, grad_out = self._contiguous(x), self._contiguous(grad_out.astype(x.dtype, copy=False))
        grad_x = self.cp.empty_like(x)
        self._launch("gelu", f"gelu_backward_{self.suffix(x)}", self._elementwise_grid(x.size), (BLOCK,), (
            grad_out, x, grad_x, np.int64(x.size), np.int32(approximate_tanh)))
        return grad_x

    # --- cross-entropy -------------------------------------------------------------------------------------------------
    def cross_entropy_forward(self, logits, target, ignore_index, label_smoothing):
        """(N, C) logits, (N,) int64 targets -> (losses, lse): float32 per row."""
        logits = self._contiguous(logits)
        target = self._contiguous(target.astype(np.int64, copy=False))
        n_rows, n_classes = logits.shape
        losses = self.cp.empty(n_rows, dtype=np.float32)
        lse = self.cp.empty(n_rows, dtype=np.float32)
        self._launch("cross_entropy", f"cross_entropy_forward_{self.suffix(logits)}", (n_rows,), (BLOCK,), (
            logits, target, losses, lse, np.int64(n_classes), np.int64(ignore_index), np.float32(label_smoothing)))
        return losses, lse

    def cross_entropy_backward(self, logits, target, lse, row_scale, ignore_index, label_smoothing):
        """row_scale: float32 (N,), the incoming gradient of each row's loss (0 for ignored rows)."""
        logits = self._contiguous(logits)
        target = self._contiguous(target.astype(np.int64, copy=False))
        row_scale = self._contiguous(row_scale.astype(np.float32, copy=False))
        n_rows, n_classes = logits.shape
        grad = self.cp.empty_like(logits)
        self._launch("cross_entropy", f"cross_entropy_backward_{self.suffix(logits)}", (n_rows,), (BLOCK,), (
            logits, target, lse, row_scale, grad, np.int64(n_classes), np.int64(ignore_index),
            np.float32(label_smoothing)))
        return grad

    # --- attention -----------------------------------------------------------------------------------------------------
    def supports_attention(self, q, k, v):
        """(..., L, D) queries, (..., S, D) keys and values of one float dtype, head dim at most 128, and lengths
        whose blocks of rows fit gridDim.y (L and S up to about 524,000)."""
        return (self.supports(q, k, v) and q.ndim >= 2 and q.shape[:-2] == k.shape[:-2] == v.shape[:-2]
                and q.shape[-1] == k.shape[-1] == v.shape[-1] <= MAX_HEAD_DIM and k.shape[-2] == v.shape[-2]
                and max(q.shape[-2], k.shape[-2]) <= ROWS_PER_BLOCK * MAX_GRID_Y)

    def _heads(self, array):
        """(..., T, D) -> contiguous (N, T, D)."""
        array = self._contiguous(array)
        return array.reshape(-1, array.shape[-2], array.shape[-1])

    @staticmethod
    def _dropout_args(dropout):
        """dropout: None, or (p, seed, first_block) of the device generator's stream (see attention.cu)."""
        if dropout is None:
            return np.float32(0), np.float32(1), np.uint64(0), np.uint64(0)
        p, seed, first_block = dropout
        return np.float32(p), np.float32(1 / (1 - p)), np.uint64(seed), np.uint64(first_block)

    def attention_forward(self, q, k, v, scale, causal, dropout=None):
        """-> (out like q, lse float32 (..., L)): all the backward needs besides q, k, v (and the same dropout)."""
        q3, k3, v3 = self._heads(q), self._heads(k), self._heads(v)
        n, length, head_dim = q3.shape
        out = self.cp.empty_like(q3)
        lse = self.cp.empty((n, length), dtype=np.float32)
        grid = (n, -(-length // ROWS_PER_BLOCK))  # heads along x: batch * heads may pass gridDim.y's 65,535
        self._launch("attention", f"attention_forward_{self.suffix(q3)}", grid, (32 * ROWS_PER_BLOCK,), (
            q3, k3, v3, out, lse, np.int64(length), np.int64(k3.shape[1]), np.int32(head_dim), np.float32(scale),
            np.int32(causal)) + self._dropout_args(dropout))
        return out.reshape(q.shape), lse.reshape(q.shape[:-1])

    def attention_backward(self, grad_out, q, k, v, out, lse, scale, causal, dropout=None):
        """-> (grad_q, grad_k, grad_v), recomputing the probabilities tile by tile from lse."""
        q3, k3, v3 = self._heads(q), self._heads(k), self._heads(v)
        grad3, out3 = self._heads(grad_out.astype(q3.dtype, copy=False)), self._heads(out)
        lse2 = self._contiguous(lse).reshape(q3.shape[0], q3.shape[1])
        n, length, head_dim = q3.shape
        source_length = k3.shape[1]
        suffix = self.suffix(q3)
        block = (32 * ROWS_PER_BLOCK,)
        query_grid = (n, -(-length // ROWS_PER_BLOCK))
        delta = self.cp.empty((n, length), dtype=np.float32)
        self._launch("attention", f"attention_backward_delta_{suffix}", query_grid, block, (
            grad3, out3, delta, np.int64(length), np.int32(head_dim)))
        grad_q, grad_k, grad_v = self.cp.empty_like(q3), self.cp.empty_like(k3), self.cp.empty_like(v3)
        shape_args = (np.int64(length), np.int64(source_length), np.int32(head_dim), np.float32(scale),
                      np.int32(causal)) + self._dropout_args(dropout)
        self._launch("attention", f"attention_backward_query_{suffix}", query_grid, block, (
            q3, k3, v3, grad3, lse2, delta, grad_q) + shape_args)
        self._launch("attention", f"attention_backward_key_value_{suffix}", (n, -(-source_length // ROWS_PER_BLOCK)),
                     block, (q3, k3, v3, grad3, lse2, delta, grad_k, grad_v) + shape_args)
        return grad_q.reshape(q.shape), grad_k.reshape(k.shape), grad_v.reshape(v.shape)

    # --- random words ---------------------------------------------------------------------------------------------------
    def philox_words(self, n, seed, first_block):
        """Words first_block * 4 ... + n - 1 of the seed's Philox4x32-10 stream, as uint32 (see random.cu)."""
        out = self.cp.empty(n, dtype=np.uint32)
        if n:
            self._launch("random", "philox_words", self._elementwise_grid(-(-n // 4)), (BLOCK,), (
                out, np.int64(n), np.uint64(seed), np.uint64(first_block)))
        return out

    # --- AdamW -------------------------------------------------------------------------------------------------------------
    def adamw_step(self, params, grads, exp_avgs, exp_avg_sqs, lr, beta1, beta2, eps, weight_decay, step):
        """One AdamW step over lists of float32 C-contiguous arrays, in place, in one launch."""
        cp = self.cp
        # every scalar in double, rounded once, as torch.optim.AdamW hands them to its float32 ops
        scalars = tuple(np.float32(value) for value in (
            beta1, 1 - beta1, beta2, 1 - beta2, eps, 1 - lr * weight_decay, lr / (1 - beta1 ** step),
            math.sqrt(1 - beta2 ** step)))
        for start in range(0, len(params), MAX_GRID_Y):  # gridDim.y (one parameter each) stops at 65535
            chunk = slice(start, start + MAX_GRID_Y)
            with cp.cuda.Device(self.device_index):
                # the pointer tables are freed right after the launch: CuPy's pool reuses memory in stream order
                pointers = [cp.asarray(np.array([a.data.ptr for a in arrays[chunk]], dtype=np.uint64))
                            for arrays in (params, grads, exp_avgs, exp_avg_sqs)]
                sizes = cp.asarray(np.array([a.size for a in params[chunk]], dtype=np.int64))
            largest = max(a.size for a in params[chunk])
            grid = (max(1, min(-(-largest // BLOCK), 1024)), len(params[chunk]))
            self._launch("adamw", "adamw_step_f32", grid, (BLOCK,), (*pointers, sizes) + scalars)

    def _or(self, array, placeholder):
        """An optional array argument: a kernel flag says it is absent, but the slot needs some pointer."""
        return placeholder if array is None else self._contiguous(array)
