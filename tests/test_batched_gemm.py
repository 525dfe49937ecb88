"""backend/batched_gemm.py's cuBLAS arguments, checked by a column-major strided-batched GEMM emulated in NumPy on
the operands' raw memory: each layout (contiguous, transposed, sliced, broadcast batch) must name the right
matrices. The tensor cores themselves need a GPU (benchmarks/gpu_check.sh)."""
import ctypes
import itertools

import numpy as np
import pytest

from cuda_cpu import fake_cupy
from tinygrad_tx.backend import batched_gemm
from tinygrad_tx.backend.batched_gemm import OP_N

NUMPY_TYPES = {0: np.float32, 1: np.float64, 2: np.float16}


def column_major(address, rows, cols, ld, dtype):
    """The (rows, cols) column-major matrix at `address` with leading dimension ld, as a writable NumPy view."""
    item = np.dtype(dtype).itemsize
    count = (cols - 1) * ld + rows
    buffer = np.frombuffer((ctypes.c_char * (count * item)).from_address(address), dtype=dtype)
    return np.lib.stride_tricks.as_strided(buffer, (rows, cols), (item, ld * item))


def emulated_gemm(call):
    dtype = NUMPY_TYPES[call.data_type]
    item = np.dtype(dtype).itemsize
    a_rows, a_cols = (call.m, call.k) if call.transa == OP_N else (call.k, call.m)
    b_rows, b_cols = (call.k, call.n) if call.transb == OP_N else (call.n, call.k)
    assert call.lda >= max(1, a_rows) and call.ldb >= max(1, b_rows) and call.ldc >= max(1, call.m)
    for i in range(call.batch):
        a = column_major(call.a + i * call.stride_a * item, a_rows, a_cols, call.lda, dtype)
        b = column_major(call.b + i * call.stride_b * item, b_rows, b_cols, call.ldb, dtype)
        c = column_major(call.c + i * call.stride_c * item, call.m, call.n, call.ldc, dtype)
        op_a = a if call.transa == OP_N else a.T
        op_b = b if call.transb == OP_N else b.T
        c[...] = (op_a.astype(np.float64) @ op_b.astype(np.float64)).astype(dtype)


def layouts(array, rng):
    """The same values in several memory layouts a batched product meets."""
    yield "contiguous", fake_cupy.asarray(array)
    yield "transposed in memory", fake_cupy.asarray(np.ascontiguousarray(np.swapaxes(array, -1, -2))).swapaxes(-1, -2)
    wide = fake_cupy.asarray(rng.standard_normal(array.shape[:-1] + (array.shape[-1] + 3,)).astype(array.dtype))
    wide[..., 1:1 + array.shape[-1]] = array
    yield "a slice of wider rows", wide[..., 1:1 + array.shape[-1]]
    yield "every other matrix", fake_cupy.asarray(np.repeat(array, 2, axis=0))[::2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("a_shape, b_shape", [((3, 4, 5), (3, 5, 2)), ((2, 3, 1, 4), (2, 3, 4, 6)),
                                              ((3, 4, 5), (5, 2)), ((4, 5), (3, 5, 2)), ((1, 2, 3), (4, 3, 5))])
def test_every_layout_names_the_right_matrices(dtype, a_shape, b_shape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape).astype(dtype)
    b = rng.standard_normal(b_shape).astype(dtype)
    expected = (a.astype(np.float64) @ b.astype(np.float64)).astype(dtype)
    a_layouts = list(layouts(a, rng)) if a.ndim > 2 else [("2-D", fake_cupy.asarray(a))]
    b_layouts = list(layouts(b, rng)) if b.ndim > 2 else [("2-D", fake_cupy.asarray(b))]
    for (a_name, a_array), (b_name, b_array) in itertools.product(a_layouts, b_layouts):
        out = batched_gemm.batched_matmul(fake_cupy, emulated_gemm, a_array, b_array, tf32=False)
        assert out.flags.c_contiguous
        np.testing.assert_allclose(np.asarray(out, np.float64), expected, rtol=2e-3 if dtype == np.float16 else 1e-6,
                                   atol=2e-3 if dtype == np.float16 else 1e-6, err_msg=f"a {a_name}, b {b_name}")


def test_broadcast_batches_are_not_copied():
    calls = []
    a = fake_cupy.asarray(np.ones((1, 4, 5), np.float32))
    b = fake_cupy.asarray(np.ones((6, 5, 3), np.float32))
    out = batched_gemm.batched_matmul(fake_cupy, lambda call: (calls.append(call), emulated_gemm(call)), a, b, False)
    assert calls[0].batch == 6 and calls[0].stride_b == 0 and calls[0].b == a.data.ptr  # a's one matrix, six times
    assert (np.asarray(out) == 5).all()


@pytest.mark.parametrize("dtype, tf32, compute", [("float32", False, batched_gemm.COMPUTE_32F),
                                                  ("float32", True, batched_gemm.COMPUTE_32F_FAST_TF32),
                                                  ("float16", True, batched_gemm.COMPUTE_32F),
                                                  ("bfloat16", False, batched_gemm.COMPUTE_32F),
                                                  ("float64", True, batched_gemm.COMPUTE_64F)])
def test_compute_types(dtype, tf32, compute):
    # float16 and bfloat16 accumulate in float32 on the tensor cores; TF32 applies to float32 only
    assert batched_gemm.compute_type(dtype, tf32) == compute


def test_empty_and_mismatched_products():
    empty = batched_gemm.batched_matmul(fake_cupy, emulated_gemm, fake_cupy.asarray(np.ones((2, 3, 0), np.float32)),
                                        fake_cupy.asarray(np.ones((2, 0, 4), np.float32)), False)
    assert empty.shape == (2, 3, 4) and (np.asarray(empty) == 0).all()
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3, 4\) and \(2, 5, 4\)"):
        batched_gemm.batched_matmul(fake_cupy, emulated_gemm, fake_cupy.asarray(np.ones((2, 3, 4), np.float32)),
                                    fake_cupy.asarray(np.ones((2, 5, 4), np.float32)), False)
