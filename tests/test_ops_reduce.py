"""Reductions against PyTorch: dims, keepdim, negative dims, tuples of dims, ties."""
import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from conftest import compare, gradcheck, randn

DIMS = [None, 0, 1, -1, (0, 2), (-1, -3), (1,), ()]


@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_mean(dim, keepdim, device):
    a = randn(2, 3, 4)
    if dim is None:
        compare(lambda lib, x: x.sum(), a, device=device)
        compare(lambda lib, x: x.mean(), a, device=device)
        return
    if dim == ():
        # an empty tuple reduces over every dim in PyTorch
        compare(lambda lib, x: x.sum(dim=(), keepdim=keepdim), a, device=device)
        return
    compare(lambda lib, x: x.sum(dim, keepdim=keepdim), a, device=device)
    compare(lambda lib, x: x.mean(dim, keepdim=keepdim), a, device=device)


@pytest.mark.parametrize("dim", [None, 0, -1, (0, 2), (1, 2)], ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("correction", [None, 0, 1, 2])
def test_var_std(dim, keepdim, correction):
    a = randn(3, 4, 5)
    compare(lambda lib, x: x.var(dim, keepdim=keepdim, correction=correction), a)
    compare(lambda lib, x: x.std(dim, keepdim=keepdim, correction=correction), a)


@pytest.mark.parametrize("unbiased", [True, False])
def test_var_std_unbiased(unbiased):
    a = randn(4, 5)
    compare(lambda lib, x: x.var(unbiased=unbiased), a)
    compare(lambda lib, x: x.std(1, unbiased=unbiased), a)
    compare(lambda lib, x: x.var(0, unbiased, True), a)


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")
def test_var_of_one_element_is_nan_like_torch():
    compare(lambda lib, x: x.var(), np.array([2.0]), grad=False)
    compare(lambda lib, x: x.var(correction=0), np.array([2.0]))


def test_std_of_constant_rows_has_zero_gradient():
    # sqrt'(0) is infinite; PyTorch masks the std gradient to 0 there instead of giving NaN
    a = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]])
    compare(lambda lib, x: x.std(1), a)
    compare(lambda lib, x: x.std(1, correction=0), a)
    compare(lambda lib, x: x.std(0, correction=0), np.array([[0.5, 1.0]]))


def test_sum_of_int_and_bool_tensors():
    for array in (np.array([[1, 2], [3, 4]], dtype=np.int32), np.array([True, False, True])):
        ours, theirs = tg.tensor(array).sum(), torch.tensor(array).sum()
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
        assert ours.item() == theirs.item()


def test_sum_with_dtype():
    compare(lambda lib, x: x.sum(1, dtype=lib.t.float64), randn(3, 4, dtype=np.float32))


@pytest.mark.parametrize("name", ["amax", "amin"])
@pytest.mark.parametrize("dim", [None, 0, -1, (0, 1), (0, 2)], ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_amax_amin(name, dim, keepdim):
    a = randn(3, 4, 5)
    if dim is None:
        compare(lambda lib, x: getattr(x, name)(), a)
    else:
        compare(lambda lib, x: getattr(x, name)(dim, keepdim=keepdim), a)


@pytest.mark.parametrize("name", ["amax", "amin", "max", "min"])
def test_full_reduction_ties_split_gradient(name):
    a = np.array([[1.0, 3.0, 3.0], [0.0, 3.0, -1.0], [0.0, -1.0, -1.0]])
    compare(lambda lib, x: getattr(x, name)(), a)


@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_amin_ties_along_dim(name):
    a = np.array([[1.0, 3.0, 3.0], [0.0, 0.0, 0.0], [2.0, -1.0, -1.0]])
    compare(lambda lib, x: getattr(x, name)(1), a)
    compare(lambda lib, x: getattr(x, name)(0), a)


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_with_dim_returns_values_and_indices(name, dim, keepdim):
    a = randn(3, 4, 5)
    ours, theirs = compare(lambda lib, x: tuple(getattr(x, name)(dim, keepdim=keepdim)), a)
    result = getattr(tg.tensor(a), name)(dim, keepdim)
    assert result.values.shape == result[0].shape and result.indices.dtype is tg.int64


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_with_dim_and_ties_send_gradient_to_the_index(name):
    # PyTorch routes the whole gradient to the element at the returned index (the first extreme)
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [-1.0, 0.0, -1.0]])
    compare(lambda lib, x: tuple(getattr(x, name)(1)), a)
    compare(lambda lib, x: tuple(getattr(x, name)(0, keepdim=True)), a)


def test_max_of_two_tensors():
    a, b = randn(3, 4, seed=1), randn(3, 4, seed=2)
    compare(lambda lib, x, y: x.max(y) + x.min(y) * 2, a, b)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_argmax_argmin(name, dim, keepdim):
    a = randn(3, 4, 5)
    a[0, 1, :2] = 5.0  # ties: both pick the first
    a[1, :, 3] = -5.0
    compare(lambda lib, x: getattr(x, name)(dim, keepdim=keepdim), a, grad=False)


@pytest.mark.parametrize("dim", [0, 1, -1, (0, 1), (-1, 0)], ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_logsumexp(dim, keepdim):
    a = randn(3, 4, 2) * 3
    compare(lambda lib, x: x.logsumexp(dim, keepdim=keepdim), a)


def test_logsumexp_is_stable_for_large_inputs():
    a = np.array([[1000.0, 1000.0, -1000.0], [-1e4, -1e4, -1e4]])
    compare(lambda lib, x: x.logsumexp(1), a)
    # torch's float32 backward uses exp(x - result) with a rounded result, good to ~3e-5 here; ours is exact
    compare(lambda lib, x: x.logsumexp(1), a.astype(np.float32), rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_logsumexp_of_infinite_rows():
    # an all -inf row gives -inf (not NaN from -inf - -inf), a +inf entry gives +inf, as in torch
    a = np.array([[-np.inf, -np.inf, -np.inf], [np.inf, 1.0, 0.0], [-np.inf, 1.0, 2.0]])
    compare(lambda lib, x: x.logsumexp(1), a)


def test_functional_spellings():
    a = randn(3, 4)
    compare(lambda lib, x: lib.t.sum(x, 1) + lib.t.mean(x, 1) + lib.t.amax(x, 1) + lib.t.logsumexp(x, 1), a)


def test_reductions_of_0d_tensors():
    a = np.array(1.5)
    compare(lambda lib, x: x.sum() + x.mean() + x.amax() + x.sum(0) + x.sum(-1, keepdim=True), a)


def test_mean_of_int_tensor_raises():
    with pytest.raises(RuntimeError, match="mean"):
        tg.tensor([1, 2, 3]).mean()


@pytest.mark.parametrize("fn", [
    lambda x: x.sum(1), lambda x: x.mean((0, 1)), lambda x: x.var(0), lambda x: x.std(1, correction=0),
    lambda x: x.amax(1), lambda x: x.amin(0), lambda x: x.logsumexp(1), lambda x: x.max(1).values,
    lambda x: x.min(0).values, lambda x: x.max(),
], ids=["sum", "mean", "var", "std", "amax", "amin", "logsumexp", "max_dim", "min_dim", "max"])
def test_reduce_gradcheck(fn):
    gradcheck(fn, randn(3, 4))


def test_max_min_topk_sort_of_a_0d_tensor():
    a = np.array(1.5)
    compare(lambda lib, x: tuple(x.max(0)) + tuple(x.min(-1, keepdim=True)), a)
    compare(lambda lib, x: tuple(x.topk(1)) + tuple(x.sort()), a)


# --- cumsum, argsort ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_cumsum(dim, device):
    compare(lambda lib, x: x.cumsum(dim) * lib.t.arange(24).reshape(2, 3, 4).to(x.dtype), randn(2, 3, 4),
            device=device)
    compare(lambda lib, x: lib.t.cumsum(x, dim=dim), randn(2, 3, 4, dtype=np.float32), device=device)


@pytest.mark.parametrize("array", [np.array([1, 2, 3], dtype=np.int32), np.array([True, True, False]),
                                   np.array([1, -2, 3]), np.array([0.5, 1.5], dtype=np.float16)],
                         ids=lambda a: str(a.dtype))
def test_cumsum_dtypes(array):
    compare(lambda lib, x: x.cumsum(0), array, grad=False)  # integers and bools sum as int64, as PyTorch
    for dtype in ("float64", "int32"):
        compare(lambda lib, x: x.cumsum(0, dtype=getattr(lib.t, dtype)), array, grad=False)
    compare(lambda lib, x: x.cumsum(0, dtype=lib.t.float64) * 2, np.array([1.0, 2.0], dtype=np.float32))


def test_cumsum_edge_cases():
    compare(lambda lib, x: x.cumsum(0) * 3, np.array(2.0))
    compare(lambda lib, x: x.cumsum(-1), np.array(2.0))
    compare(lambda lib, x: x.cumsum(1), np.zeros((2, 0)))
    gradcheck(lambda x: x.cumsum(0) * x, randn(3, 2))
    with pytest.raises(IndexError, match="cumsum"):
        tg.tensor(2.0).cumsum(1)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_argsort(dim, descending):
    a = np.array([[3.0, 1.0, 2.0, 1.0], [0.0, 0.0, -1.0, 5.0], [2.0, 2.0, 2.0, 2.0]])  # ties: stable order
    compare(lambda lib, x: x.argsort(dim=dim, descending=descending, stable=True), a, grad=False)
    compare(lambda lib, x: lib.t.argsort(x, dim=dim, descending=descending, stable=True), a.astype(np.int64),
            grad=False)
    compare(lambda lib, x: x.sort(dim=dim, descending=descending, stable=True), a)


def test_argsort_edge_cases():
    compare(lambda lib, x: x.argsort(), np.array(2.0), grad=False)
    compare(lambda lib, x: x.argsort(0), np.zeros((0, 3)), grad=False)
    compare(lambda lib, x: x.argsort(), np.array([True, False, True]), grad=False)


def test_sum_with_dtype_keeps_int32():
    compare(lambda lib, x: x.sum(dtype=lib.t.int32), np.array([1, 2], dtype=np.int32), grad=False)
