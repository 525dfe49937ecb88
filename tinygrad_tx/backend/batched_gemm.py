"""Batched matrix products as one cuBLAS strided-batched GEMM, with the compute type the dtype and TF32 ask for.

CuPy's matmul runs products of operands with more than two dimensions through strided-batched GEMM in
float32 compute, copying float16 operands up first, and ignores its own TF32 setting there: only its 2-D
products use the tensor cores. Attention's q @ k^T and any batched product went slow under TF32, float16
and bfloat16. Here the call is cublasGemmStridedBatchedEx with the operands' own types (float32
accumulation for float16 and bfloat16, which Hopper's tensor cores do natively) and, for float32 with TF32
on, the TF32 compute type.

cuBLAS is column-major: a row-major (r, c) matrix is its (c, r) transpose there. So C = A @ B row-major is
computed as C^T = B^T A^T, with B's buffer as cuBLAS's first operand. An operand whose last two dims are
transposed in memory (k.transpose(-1, -2)) is passed with the transpose flag instead of being copied.
"""
import math
from collections import namedtuple

import numpy as np

CUDA_DATA_TYPES = {"float32": 0, "float64": 1, "float16": 2, "bfloat16": 14}  # library_types.h: cudaDataType
COMPUTE_32F, COMPUTE_64F, COMPUTE_32F_FAST_TF32 = 68, 70, 77                  # cublas_api.h: cublasComputeType_t
OP_N, OP_T = 0, 1

GemmCall = namedtuple("GemmCall", "transa transb m n k a lda stride_a b ldb stride_b c ldc stride_c batch "
                                  "data_type compute_type")


def supports(a, b):
    """Both operands at least 2-D, one above 2-D, one floating dtype cuBLAS multiplies."""
    return (a.ndim >= 2 and b.ndim >= 2 and max(a.ndim, b.ndim) > 2 and a.dtype == b.dtype
            and a.dtype.name in CUDA_DATA_TYPES)


def compute_type(dtype_name, tf32):
    if dtype_name == "float64":
        return COMPUTE_64F
    if dtype_name == "float32" and tf32:
        return COMPUTE_32F_FAST_TF32
    return COMPUTE_32F  # float32, and float16 / bfloat16 inputs with float32 accumulation


def batched_matmul(xp, gemm, a, b, tf32):
    """a (..., m, k) @ b (..., k, n) -> a C-contiguous (..., m, n), by one call gemm(GemmCall)."""
    batch_shape = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    (m, k), n = a.shape[-2:], b.shape[-1]
    if b.shape[-2] != k:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not multiply ({k} != {b.shape[-2]})")
    out = xp.empty(batch_shape + (m, n), dtype=a.dtype)
    if out.size == 0:
        return out
    if k == 0:
        out[...] = 0
        return out
    a_op, a_ld, a_stride, a = _operand(xp, a, batch_shape)
    b_op, b_ld, b_stride, b = _operand(xp, b, batch_shape)
    gemm(GemmCall(transa=b_op, transb=a_op, m=n, n=m, k=k, a=b.data.ptr, lda=b_ld, stride_a=b_stride,
                  b=a.data.ptr, ldb=a_ld, stride_b=a_stride, c=out.data.ptr, ldc=n, stride_c=m * n,
                  batch=math.prod(batch_shape), data_type=CUDA_DATA_TYPES[a.dtype.name],
                  compute_type=compute_type(a.dtype.name, tf32)))
    return out


def _operand(xp, x, batch_shape):
    """(transpose flag, leading dimension, batch stride, array) for a row-major operand x (..., r, c), all in
    elements; copies only when the layout has no such description."""
    x = xp.broadcast_to(x, batch_shape + x.shape[-2:])
    described = _describe(x)
    if described is None:
        x = xp.ascontiguousarray(x)
        described = _describe(x)
    return described + (x,)


def _describe(x):
    rows, cols = x.shape[-2:]
    if any(s % x.itemsize for s in x.strides):
        return None
    row_stride, col_stride = (s // x.itemsize for s in x.strides[-2:])
    if (col_stride == 1 or cols == 1) and row_stride >= max(1, cols):
        operation, ld = OP_N, row_stride  # cuBLAS sees x^T, (cols, rows) with this leading dimension
    elif (row_stride == 1 or rows == 1) and col_stride >= max(1, rows):
        operation, ld = OP_T, col_stride  # cuBLAS sees x itself: ask for its transpose
    else:
        return None
    batch_stride = _single_stride(x.shape[:-2], [s // x.itemsize for s in x.strides[:-2]])
    return None if batch_stride is None else (operation, ld, batch_stride)


def _single_stride(shape, strides):
    """The one stride that walks the flattened batch dims in order (0 for a broadcast batch), or None."""
    dims = [(size, stride) for size, stride in zip(shape, strides) if size != 1]
    if not dims:
        return 0
    if all(stride == 0 for _, stride in dims):
        return 0
    for (size, stride), (inner_size, inner_stride) in zip(dims, dims[1:]):
        if stride != inner_stride * inner_size:
            return None
    return dims[-1][1] if dims[-1][1] > 0 else None
