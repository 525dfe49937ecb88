"""NumbaKernels: the CPU backend's fused kernels, with CudaKernels' interface (backend/kernels/launch.py).

Every method takes and returns NumPy arrays. The fused ops ask `supports` / `supports_attention` first and run
their array code where the answer is no: float64, float16 and bfloat16 (which the ops then compute in float32,
through these kernels), 0-d and empty arrays. Inputs are made C-contiguous before a kernel reads them, and every
scalar is passed with one fixed type, the kernel's signature (float32_math.Kernel). Each call picks the
kernel's build by the amount of work: the threaded one from Numba's JIT, or the one-thread one from the module
built ahead of time (or the JIT where there is none).
"""
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import jit_kernels
from ... import openblas

FLOAT32 = np.dtype(np.float32)
SCORES_PER_GROUP = 1 << 22  # attention's scores and their gradients in groups of heads of at most 16 MB each
# Threads, two ways. From SPLIT_WORK values, a kernel over independent rows (or elements) is cut into a part per
# core, and the parts run side by side on a pool of Python threads (each kernel's one-thread build lets go of the
# GIL). That needs OpenBLAS's threads to sleep soon after a product (tinygrad_tx/openblas.py): with OpenBLAS's
# default they spin on the second core for about 0.1 s after each one, and a 128 x 512 product followed by GELU
# over its 393K values took as long in parts as on one thread (3.2 against 3.1 ms), against 2.1 and 3.3 ms once
# they sleep. Handing a part to a thread and taking it back costs 20 to 60 microseconds (a sleeping core must
# wake): parts gained nothing at 98K values (LayerNorm, 100 against 102 microseconds) and much from 196K (softmax,
# 242 against 398; GELU over 393K, 407 against 725). benchmarks/cpu_threads.py --kernels measures both. From
# THREADED_WORK values every kernel, those whose rows add into shared sums included, runs its JIT build on
# Numba's threads (parallel=True): there a kernel's own time dwarfs the waking of threads.
SPLIT_WORK = 1 << 17
THREADED_WORK = 1 << 22
# OpenBLAS runs a product of at most this many multiply-adds (M * N * K) on the calling thread alone
BLAS_ONE_THREAD_PRODUCT = 4 * 65536
QUERIES_PER_BAND = 64  # causal attention's products in bands of this many queries (_bands)
LAYER_NORM_ROWS_PER_BLOCK = 32  # layer_norm.ROWS_PER_BLOCK


class NumbaKernels:
    # cross-entropy's backward reads a copy of the logits made in forward, so the caller may edit the logits in
    # place after the forward, as PyTorch's CPU op allows (it keeps log_softmax's output, not the logits)
    copies_logits = True

    def __init__(self, compiled=None):
        self.compiled = compiled  # the module ahead_of_time.py built, or None: every kernel from the JIT

    def _kernel(self, name, work):
        """The build of kernel `name` for a call of that much work."""
        if work >= THREADED_WORK and _jit_threads() > 1:  # NUMBA_NUM_THREADS=1: never wake a pool
            return jit_kernels()[name].threaded
        return self._one_thread(name)

    def _one_thread(self, name):
        return getattr(self.compiled, name) if self.compiled is not None else jit_kernels()[name].one_thread

    def _over_rows(self, name, work, arguments, split, blocks=(), rows_per_block=1):
        """kernel(*arguments), where the kernel treats each row (index along the first dim) of the arguments at the
        positions in `split` on its own: from SPLIT_WORK values each core runs it on its share of the rows. A kernel
        that works in blocks of rows_per_block rows, each with its row in the arguments at the positions in
        `blocks`, is shared out in whole blocks."""
        n_blocks = -(-arguments[split[0]].shape[0] // rows_per_block)
        parts = min(_cores(), n_blocks)
        if not SPLIT_WORK <= work < THREADED_WORK or parts < 2 or not openblas.threads_sleep():
            return self._kernel(name, work)(*arguments)
        kernel, bounds = self._one_thread(name), [n_blocks * part // parts for part in range(parts + 1)]

        def run(part):
            block_share = slice(bounds[part], bounds[part + 1])
            row_share = slice(bounds[part] * rows_per_block, bounds[part + 1] * rows_per_block)
            kernel(*(a[row_share] if i in split else a[block_share] if i in blocks else a
                     for i, a in enumerate(arguments)))
        _in_parallel(run, parts)

    # --- what the kernels take ---------------------------------------------------------------------------------
    @staticmethod
    def supports(*arrays):
        """float32 arrays of at least one dim and one element (None: an absent optional argument)."""
        return all(a is None or (a.dtype == FLOAT32 and a.ndim and a.size) for a in arrays)

    @staticmethod
    def _rows(array):
        """(rows, last dim) view of a C-contiguous copy."""
        array = _contiguous(array)
        return array.reshape(-1, array.shape[-1])

    # --- layer norm --------------------------------------------------------------------------------------------
    def layer_norm_forward(self, x, weight, bias, eps):
        """Over the last dim; weight and bias may be None. -> (out, mean, rstd), mean and rstd float32 per row."""
        rows = self._rows(x)
        out = np.empty_like(rows)
        mean = np.empty(rows.shape[0], dtype=np.float32)
        rstd = np.empty(rows.shape[0], dtype=np.float32)
        self._over_rows("layer_norm_forward", rows.size, (rows, self._or(weight, rows), self._or(bias, rows),
                        weight is not None, bias is not None, np.float32(eps), out, mean, rstd), split=(0, 6, 7, 8))
        return out.reshape(x.shape), mean, rstd

    def layer_norm_backward(self, grad_out, x, weight, mean, rstd, need_weight, need_bias):
        """-> (grad_x, grad_weight or None, grad_bias or None)."""
        rows = self._rows(x)
        grad_rows = self._rows(grad_out.astype(FLOAT32, copy=False))
        grad_x = np.empty_like(rows)
        n_blocks = -(-rows.shape[0] // LAYER_NORM_ROWS_PER_BLOCK)
        partial_weight = np.zeros((n_blocks, rows.shape[1]), dtype=np.float32)
        partial_bias = np.zeros((n_blocks, rows.shape[1]), dtype=np.float32)
        self._over_rows("layer_norm_backward", rows.size, (grad_rows, rows, self._or(weight, rows), weight is not None,
                        mean, rstd, grad_x, partial_weight, partial_bias), split=(0, 1, 4, 5, 6),
                        blocks=(7, 8), rows_per_block=LAYER_NORM_ROWS_PER_BLOCK)
        grad_weight = np.empty(rows.shape[1], dtype=np.float32)
        grad_bias = np.empty(rows.shape[1], dtype=np.float32)
        self._kernel("sum_blocks", partial_weight.size)(partial_weight, partial_bias, grad_weight, grad_bias)
        return grad_x.reshape(x.shape), grad_weight if need_weight else None, grad_bias if need_bias else None

    # --- softmax -----------------------------------------------------------------------------------------------
    def softmax_forward(self, x, log):
        """softmax (or log_softmax) over the last dim."""
        rows = self._rows(x)
        out = np.empty_like(rows)
        self._over_rows("softmax_forward", rows.size, (rows, out, bool(log)), split=(0, 1))
        return out.reshape(x.shape)

    def softmax_backward(self, grad_out, out, log):
        out_rows = self._rows(out)
        grad_x = np.empty_like(out_rows)
        grad_rows = self._rows(grad_out.astype(FLOAT32, copy=False))
        self._over_rows("softmax_backward", out_rows.size, (grad_rows, out_rows, grad_x, bool(log)), split=(0, 1, 2))
        return grad_x.reshape(out.shape)

    # --- gelu --------------------------------------------------------------------------------------------------
    def gelu_forward(self, x, approximate_tanh):
        x = _contiguous(x)
        out = np.empty_like(x)
        self._over_rows("gelu_forward", x.size, (x.reshape(-1), out.reshape(-1), bool(approximate_tanh)), split=(0, 1))
        return out

    def gelu_backward(self, grad_out, x, approximate_tanh):
        x = _contiguous(x)
        grad_out = _contiguous(grad_out.astype(FLOAT32, copy=False))
        grad_x = np.empty_like(x)
        self._over_rows("gelu_backward", x.size, (grad_out.reshape(-1), x.reshape(-1), grad_x.reshape(-1),
                                                  bool(approximate_tanh)), split=(0, 1, 2))
        return grad_x

    # --- cross-entropy -----------------------------------------------------------------------------------------
    def cross_entropy_forward(self, logits, target, ignore_index, label_smoothing):
        """(N, C) logits, (N,) integer targets -> (losses, lse): float32 per row."""
        logits = _contiguous(logits)
        target = self._targets(target, ignore_index, logits.shape[1])
        losses = np.empty(logits.shape[0], dtype=np.float32)
        lse = np.empty(logits.shape[0], dtype=np.float32)
        self._over_rows("cross_entropy_forward", logits.size, (logits, target, np.int64(ignore_index),
                        np.float32(label_smoothing), losses, lse), split=(0, 1, 4, 5))
        return losses, lse

    def cross_entropy_backward(self, logits, target, lse, row_scale, ignore_index, label_smoothing):
        """row_scale: float32 (N,), the incoming gradient of each row's loss (0 for ignored rows)."""
        logits = _contiguous(logits)
        target = self._targets(target, ignore_index, logits.shape[1])
        row_scale = np.ascontiguousarray(row_scale, dtype=np.float32)
        grad = np.empty_like(logits)
        self._over_rows("cross_entropy_backward", logits.size, (logits, target, lse, row_scale,
                        np.int64(ignore_index), np.float32(label_smoothing), grad), split=(0, 1, 2, 3, 6))
        return grad

    @staticmethod
    def _targets(target, ignore_index, n_classes):
        """int64, contiguous, each a class or ignore_index: the kernels index rows with them unchecked."""
        target = np.ascontiguousarray(target, dtype=np.int64)
        valid = target[target != ignore_index]
        if valid.size and (valid.min() < 0 or valid.max() >= n_classes):
            raise IndexError(f"cross_entropy: target values must be in [0, {n_classes}) or ignore_index "
                             f"({ignore_index}), got values in [{valid.min()}, {valid.max()}]")
        return target

    # --- attention ---------------------------------------------------------------------------------------------
    def supports_attention(self, q, k, v):
        """What PyTorch's fused CPU kernel takes, so that the same edits after the forward are errors (the kernel
        keeps q, k and v, as PyTorch's does, where PyTorch's other path keeps at most v): float32 (B, H, L, D)
        queries and (B, H, S, D) keys and values, each with a unit stride along D."""
        return (self.supports(q, k, v) and q.ndim == k.ndim == v.ndim == 4 and q.shape[:2] == k.shape[:2] ==
                v.shape[:2] and q.shape[-1] == k.shape[-1] == v.shape[-1] and k.shape[-2] == v.shape[-2]
                and all(a.shape[-1] == 1 or a.strides[-1] == a.itemsize for a in (q, k, v)))

    def attention_forward(self, q, k, v, scale, causal, dropout=None):
        """-> (out like q, lse float32 (B, H, L)): all the backward needs besides q, k, v. The products read q, k
        and v where they are (heads split off by a transpose are strided, which BLAS takes as they are)."""
        self._no_dropout(dropout)
        out = np.empty(q.shape, dtype=np.float32)
        lse = np.empty(q.shape[:-1], dtype=np.float32)

        def forward(batch, softmax_rows):
            for queries, keys in _bands(q.shape[2], k.shape[2], causal):
                scores = np.matmul(q[batch, :, queries], _transposed(k[batch, :, keys]))   # (b, H, queries, keys)
                softmax_rows(_heads(scores), np.float32(scale), bool(causal), _heads(lse[batch]), queries.start)
                np.matmul(scores, v[batch, :, keys], out=out[batch, :, queries])
        self._over_batch_groups(forward, "softmax_rows", q, k)
        return out, lse

    def attention_backward(self, grad_out, q, k, v, out, lse, scale, causal, dropout=None):
        """-> (grad_q, grad_k, grad_v), recomputing the probabilities from lse (out is not needed here)."""
        self._no_dropout(dropout)
        grad_out = grad_out.astype(FLOAT32, copy=False)
        lse = _contiguous(lse)
        # each gradient laid out as its input (as PyTorch's): heads split off (B, T, H, D) by a transpose get theirs
        # in (B, T, H, D) order, which the backward of the transpose and of the split into heads then only view
        grad_q, grad_k, grad_v = (np.empty_like(a, dtype=np.float32) for a in (q, k, v))

        def backward(batch, score_gradients):
            done = 0  # keys whose grad_k and grad_v the bands so far have written
            for queries, keys in _bands(q.shape[2], k.shape[2], causal):
                scores = np.matmul(q[batch, :, queries], _transposed(k[batch, :, keys]))   # (b, H, queries, keys)
                grad_scores = np.matmul(grad_out[batch, :, queries], _transposed(v[batch, :, keys]))  # dP, then dS
                score_gradients(_heads(scores), _heads(grad_scores), np.float32(scale), bool(causal),
                                _heads(lse[batch]), queries.start)
                np.matmul(grad_scores, k[batch, :, keys], out=grad_q[batch, :, queries])   # dS K
                _add_into(grad_v[batch], np.matmul(_transposed(scores), grad_out[batch, :, queries]), done)  # P^T dO
                _add_into(grad_k[batch], np.matmul(_transposed(grad_scores), q[batch, :, queries]), done)  # dS^T Q
                done = keys.stop
            grad_k[batch, :, done:] = grad_v[batch, :, done:] = 0  # keys after every query: none sees them
        self._over_batch_groups(backward, "score_gradients", q, k)
        return grad_q, grad_k, grad_v

    @staticmethod
    def _no_dropout(dropout):
        # the CPU's generator is not counter-based: its dropout masks are arrays, which the array code applies
        if dropout is not None:
            raise ValueError("NumbaKernels: attention with a regenerated dropout mask runs only on a GPU")

    # --- embedding -----------------------------------------------------------------------------------------------
    def embedding_backward(self, ids, grad, num_embeddings):
        """(N,) integer ids in [0, num_embeddings), float32 (N, D) -> the (num_embeddings, D) table's gradient."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= num_embeddings):
            raise IndexError(f"embedding_backward: ids must be in [0, {num_embeddings}), got values in "
                             f"[{ids.min()}, {ids.max()}]")
        grad = self._rows(grad)
        out = np.empty((num_embeddings, grad.shape[1]), dtype=np.float32)
        self._kernel("embedding_backward", grad.size)(ids, grad, out)
        return out

    # --- lists of parameters -------------------------------------------------------------------------------------
    def adamw_step(self, params, grads, exp_avgs, exp_avg_sqs, lr, beta1, beta2, eps, weight_decay, step):
        """One AdamW step over lists of float32 C-contiguous arrays, in place, in one call."""
        tables = [self._addresses(arrays, "adamw_step") for arrays in (params, grads, exp_avgs, exp_avg_sqs)]
        sizes = tables[0][1]
        if any(not np.array_equal(table_sizes, sizes) for _, table_sizes in tables[1:]):
            raise ValueError("NumbaKernels.adamw_step: parameters, gradients and moments differ in size")
        # every scalar in double, rounded once to float32, as the array code's float32 operations take them
        scalars = (np.float32(value) for value in (
            beta1, 1 - beta1, beta2, 1 - beta2, eps, 1 - lr * weight_decay, lr / (1 - beta1 ** step),
            math.sqrt(1 - beta2 ** step)))
        self._kernel("adamw_step", sizes.sum())(*(addresses for addresses, _ in tables), sizes, *scalars)

    def squared_norm(self, arrays):
        """The sum of the squares of every value of a list of float32 arrays, as a Python float (summed in
        float64); arrays that are not C-contiguous are copied first."""
        arrays = [_contiguous(a) for a in arrays]
        addresses, sizes = self._addresses(arrays, "squared_norm")
        return float(self._kernel("squared_norm", sizes.sum())(addresses, sizes))

    @staticmethod
    def _addresses(arrays, caller):
        """(addresses, sizes) of float32 C-contiguous arrays: the kernels read them as raw memory, so anything
        else is refused here rather than misread there."""
        for a in arrays:
            if a.dtype != FLOAT32 or not a.flags.c_contiguous:
                raise ValueError(f"NumbaKernels.{caller}: expected C-contiguous float32 arrays, got {a.dtype} "
                                 f"of shape {a.shape} (contiguous: {a.flags.c_contiguous})")
        return (np.array([a.ctypes.data for a in arrays], dtype=np.int64),
                np.array([a.size for a in arrays], dtype=np.int64))

    @staticmethod
    def _or(array, placeholder):
        """An optional array argument: a flag says it is absent, but the slot needs an array of the same type."""
        return placeholder[0] if array is None else _contiguous(array)

    def _over_batch_groups(self, work, kernel, q, k):
        """work(batch slice, the row kernel `kernel`) over groups of attention's batch whose (H, L, S) scores fit
        in SCORES_PER_GROUP floats (at least one batch entry), so that the scores never take more memory than that
        whatever the length. With work enough and threads to spare, the groups go to a pool of Python threads, a
        group per thread, each with the kernel's one-thread build, and OpenBLAS runs each product on the thread
        that asks for it: the products then run side by side too, both release the GIL. (Two callers of
        OpenBLAS's threaded products slow each other down: at nanoGPT's GPU recipe's shapes, heads of 256 x 64,
        groups side by side made attention 2.5x slower, 43.9 against 17.8 ms forward; one thread each made it
        faster than the groups in turn, benchmarks/cpu_threads.py --kernels.) Otherwise the groups run in turn."""
        batch, scores_per_entry = q.shape[0], q.shape[1] * q.shape[2] * k.shape[2]
        per_group = max(1, SCORES_PER_GROUP // scores_per_entry)
        one_thread_products = q.shape[2] * k.shape[2] * q.shape[3] <= BLAS_ONE_THREAD_PRODUCT
        if (batch > 1 and batch * scores_per_entry >= SPLIT_WORK and _cores() > 1 and openblas.threads_sleep()
                and (one_thread_products or openblas.can_limit_threads())):
            per_group = min(per_group, -(-batch // _cores()))
            groups = [slice(start, start + per_group) for start in range(0, batch, per_group)]
            one_thread = self._one_thread(kernel)
            with openblas.one_thread():
                _in_parallel(lambda group: work(groups[group], one_thread), len(groups))
            return
        for start in range(0, batch, per_group):
            group = slice(start, start + per_group)
            work(group, self._kernel(kernel, min(per_group, batch - start) * scores_per_entry))


def _jit_threads():
    import numba
    return numba.get_num_threads()


def _cores():
    """The cores this process may run on (asked once: every kernel call reads it)."""
    if not _core_count:
        _core_count.append(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return _core_count[0]


_core_count = []


_pool = []


def _in_parallel(run, parts):
    """run(0), ..., run(parts - 1) side by side: the last on this thread, the others on a pool's threads; raises
    what any of them raised."""
    if not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=max(1, _cores() - 1), thread_name_prefix="tinygrad_tx-kernels"))
    others = [_pool[0].submit(run, part) for part in range(parts - 1)]
    try:
        run(parts - 1)
    finally:
        for done in others:
            done.result()


def _bands(n_queries, n_keys, causal):
    """[(queries, keys)], slices that cut attention's products: all of it in one, or, for the causal mask and
    QUERIES_PER_BAND queries or more, bands of that many queries, each against the keys up to its last query, so
    that the products skip what no query of the band sees (at 256 queries they do 5/8 of the whole products' work)."""
    if not causal or n_queries < 2 * QUERIES_PER_BAND:
        return [(slice(0, n_queries), slice(0, n_keys))]
    return [(slice(start, min(start + QUERIES_PER_BAND, n_queries)),
             slice(0, min(start + QUERIES_PER_BAND, n_queries, n_keys)))
            for start in range(0, n_queries, QUERIES_PER_BAND)]


def _add_into(total, part, done):
    """total[:, :, :n] += part, n = part's rows, of which total's first `done` hold earlier bands' sums and the rest
    nothing yet (a band's keys are those of the band before and its own)."""
    done = min(done, part.shape[2])
    total[:, :, :done] += part[:, :, :done]
    total[:, :, done:part.shape[2]] = part[:, :, done:]


def _transposed(array):
    return array.swapaxes(-1, -2)


def _heads(array):
    """(b, H, ...) C-contiguous -> (b * H, ...): a view."""
    return array.reshape((-1,) + array.shape[2:])


def _contiguous(array):
    # np.ascontiguousarray would also turn a 0-d array into a 1-d one
    return array if array.flags.c_contiguous else np.ascontiguousarray(array)
