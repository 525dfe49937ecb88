"""Indexing against PyTorch: getitem, setitem, gather, one_hot, topk, multinomial, embedding."""
import numpy as np
import pytest
import torch

import tinygrad_tx as tg
import tinygrad_tx.nn.functional as F
from conftest import assert_close, compare, gradcheck, randn, rng

BASIC_INDICES = [
    1, -1, (0, 2), (slice(1, 3),), (slice(None, None, 2),), (slice(-3, None),), (slice(1, 100),),
    (Ellipsis, 1), (None, 1), (slice(None), None, 2), (1, Ellipsis, None), (slice(0, 4, 3), slice(1, None), -2),
    (Ellipsis,), (), (0, 1, 2),
]


@pytest.mark.parametrize("index", BASIC_INDICES, ids=str)
def test_basic_getitem(index, device):
    compare(lambda lib, x: x[index], randn(4, 3, 5), device=device)


def test_getitem_negative_step_slice_matches_numpy():
    # PyTorch has no negative steps; NumPy's meaning is the natural one, checked against flip
    a = randn(4, 3)
    x = tg.tensor(a, requires_grad=True)
    y = x[::-1]
    assert_close(y, a[::-1].copy())
    (y * tg.tensor(np.arange(12.0).reshape(4, 3))).sum().backward()
    assert_close(x.grad, np.arange(12.0).reshape(4, 3)[::-1].copy())


INTEGER_ARRAY_INDICES = [
    ([0, 2, 2, 1],),  # repeated index: backward must add both contributions
    (slice(None), [1, 1, 0]),
    ([[0, 1], [3, 3]],),
    ([0, 1, 1], [2, 2, 0]),
    ([3, 3], slice(None), [4, 0]),
    (Ellipsis, [4, 4, 4]),
    (1, [0, 0, 2]),
    ([-1, 0, -1],),
    (None, [1, 1]),
]


@pytest.mark.parametrize("index", INTEGER_ARRAY_INDICES, ids=str)
def test_integer_array_getitem(index):
    a = randn(4, 3, 5)

    def fn(lib, x):
        converted = tuple(lib.t.tensor(i) if isinstance(i, list) else i for i in index)
        return x[converted]
    compare(fn, a)


def test_negative_row_indices_of_a_matrix():
    # a table[ids] lookup has its own backward (one-hot matmul or scatter-add): negative ids count from the end
    compare(lambda lib, x: x[lib.t.tensor([-1, 0, -1, 2])], randn(4, 3))
    compare(lambda lib, x: x[lib.t.tensor([[-1, -2], [0, -1]])], randn(3, 2))
    compare(lambda lib, x: x[lib.t.tensor([-1, 5, -2000])], randn(2000, 2))


def test_integer_array_getitem_with_lists_and_numpy_arrays():
    a = randn(5, 3)
    compare(lambda lib, x: x[[0, 0, 4, 4, 4]], a)
    compare(lambda lib, x: x[np.array([2, 2, 1])], a)


def test_integer_tensor_index_repeated_gradient_accumulates():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[tg.tensor([0, 0, 0, 2])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


def test_boolean_mask_getitem():
    a = randn(4, 5)
    mask = rng(1).random((4, 5)) > 0.5
    row_mask = np.array([True, False, True, True])
    compare(lambda lib, x, m: x[m], a, mask)
    compare(lambda lib, x, m: x[m], a, row_mask)
    compare(lambda lib, x, m: x[m, 1:3], a, row_mask)
    compare(lambda lib, x, m: x[x > 0], a, row_mask)


def test_mixed_getitem():
    a = randn(4, 5, 6)
    compare(lambda lib, x: x[1:3, lib.t.tensor([0, 4, 4]), ::2], a)
    compare(lambda lib, x: x[lib.t.tensor([0, 0]), 2:, lib.t.tensor([1, 5])], a)
    compare(lambda lib, x: x[..., lib.t.tensor([[1, 2], [2, 1]])], a)


def test_getitem_of_0d_and_index_with_0d_tensor():
    compare(lambda lib, x: x[lib.t.tensor(2)], randn(5))
    compare(lambda lib, x: x[...] * 2, np.array(1.5))


def test_getitem_gradcheck():
    gradcheck(lambda x: x[tg.tensor([0, 0, 2])][:, 1:] * x[1, None, 1:], randn(3, 4))
    gradcheck(lambda x: x[x.detach() > 0], randn(3, 4))


def test_getitem_double_backward():
    # the scatter-add of getitem's backward is itself differentiable
    x = tg.tensor(randn(4), requires_grad=True)
    t = torch.tensor(randn(4), requires_grad=True)
    results = []
    for lib_x, lib in ((x, tg), (t, torch)):
        y = (lib_x[lib.tensor([0, 0, 3])] ** 3).sum()
        (g,) = (tg.autograd.grad if lib is tg else torch.autograd.grad)(y, lib_x, create_graph=True)
        (g * g).sum().backward()
        results.append((g, lib_x.grad))
    assert_close(results[0][0], results[1][0])
    assert_close(results[0][1], results[1][1])


# --- setitem --------------------------------------------------------------------------------------------
SETITEM_CASES = [
    (1, (3,)),
    ((slice(None), 0), (4,)),
    ((slice(1, 3), slice(None, None, 2)), (2, 2)),
    ((Ellipsis, 1), (1,)),
    ("int_array", (2, 3)),
    ("mask", None),
]


@pytest.mark.parametrize("case", SETITEM_CASES, ids=str)
def test_setitem_is_differentiable_wrt_tensor_and_value(case):
    index, value_shape = case
    a = randn(4, 3)
    mask = a > 0.3
    value = randn(*(value_shape or (int(mask.sum()),)), seed=5)

    def fn(lib, x, v):
        y = x * 1.0  # setitem on a non-leaf
        i = index
        if index == "int_array":
            i = lib.t.tensor([0, 3])
        elif index == "mask":
            i = lib.t.tensor(mask)
        y[i] = v * 2
        return y * y
    compare(fn, a, value)


def test_setitem_with_scalar_and_broadcast_value():
    def fn(lib, x, v):
        y = x.clone()
        y[1] = 7.0
        y[2:, :] = v
        return y.exp()
    compare(fn, randn(4, 3), randn(3, seed=3))


def test_setitem_value_requires_grad_target_does_not():
    def fn(lib, x, v):
        y = lib.t.zeros(3, 4, dtype=lib.t.float64)
        y[:, 1] = v
        return y * 2
    compare(fn, randn(3, 4), randn(3, seed=2), requires_grad=[False, True])


def test_setitem_rows_by_integer_tensor():
    def fn(lib, x, v):
        y = x * 1.0
        y[lib.t.tensor([0, 2])] = v
        return y.sum(1)
    compare(fn, randn(3, 4), randn(2, 4, seed=3))


def test_setitem_without_grad_writes_in_place():
    x = tg.zeros(3)
    x[1] = 2.5
    x[tg.tensor([0, 2])] = tg.tensor([1.0, 3.0])
    assert x.tolist() == [1.0, 2.5, 3.0]


def test_setitem_gradcheck():
    def fn(x, v):
        y = x * 1.0
        y[1:, tg.tensor([0, 2])] = v
        return y
    gradcheck(fn, randn(3, 4), randn(2, 2, seed=2))


# --- gather -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather(dim):
    a = randn(3, 4)
    index = rng(1).integers(0, a.shape[dim], size=(3, 4))
    compare(lambda lib, x, i: x.gather(dim, i), a, index)
    compare(lambda lib, x, i: lib.t.gather(x, dim, i), a, index)


def test_gather_with_repeated_indices_accumulates():
    a = randn(2, 4)
    index = np.array([[0, 0, 0], [3, 1, 3]])
    compare(lambda lib, x, i: x.gather(1, i), a, index)


@pytest.mark.parametrize("index_shape, dim", [((2, 2), 1), ((1, 4), 0), ((2, 6), 1), ((3, 1, 2), 2)], ids=str)
def test_gather_index_smaller_than_input(index_shape, dim):
    a = randn(3, 4) if len(index_shape) == 2 else randn(4, 2, 5)
    index = rng(2).integers(0, a.shape[dim], size=index_shape)
    compare(lambda lib, x, i: x.gather(dim, i), a, index)


def test_gather_gradcheck_and_double_backward():
    index = tg.tensor([[0, 2, 2], [1, 0, 1]])
    gradcheck(lambda x: x.gather(1, index) ** 2, randn(2, 3))
    x = tg.tensor(randn(2, 3), requires_grad=True)
    (g,) = tg.autograd.grad((x.gather(1, index) ** 3).sum(), x, create_graph=True)
    t = torch.tensor(randn(2, 3), requires_grad=True)
    (tg_,) = torch.autograd.grad((t.gather(1, torch.tensor([[0, 2, 2], [1, 0, 1]])) ** 3).sum(), t,
                                 create_graph=True)
    (g * g).sum().backward()
    (tg_ * tg_).sum().backward()
    assert_close(x.grad, t.grad)


# --- one_hot, topk, multinomial -----------------------------------------------------------------------------
def test_one_hot():
    labels = np.array([[0, 2], [1, 4]])
    for classes in (-1, 5, 7):
        ours = tg.one_hot(tg.tensor(labels), classes)
        theirs = torch.nn.functional.one_hot(torch.tensor(labels), classes)
        assert ours.dtype is tg.int64
        assert_close(ours, theirs)


@pytest.mark.parametrize("k, dim, largest", [(1, -1, True), (3, -1, True), (2, 0, False), (4, 1, False),
                                             (0, 1, True)], ids=str)
def test_topk(k, dim, largest):
    a = randn(4, 5)
    ours = tg.tensor(a).topk(k, dim, largest=largest)
    theirs = torch.tensor(a).topk(k, dim, largest=largest)
    assert_close(ours.values, theirs.values)
    assert_close(ours.indices, theirs.indices)
    values, indices = tg.topk(tg.tensor(a), k, dim, largest)
    assert_close(values, theirs[0])


def test_topk_and_sort_are_differentiable():
    compare(lambda lib, x: tuple(x.topk(2, 1)), randn(3, 5))
    compare(lambda lib, x: tuple(x.topk(3, 0, largest=False)), randn(3, 5))
    compare(lambda lib, x: tuple(x.sort(1, descending=True)), randn(3, 5))


def test_sort():
    a = randn(3, 6)
    for descending in (False, True):
        ours = tg.tensor(a).sort(1, descending=descending)
        theirs = torch.tensor(a).sort(1, descending=descending)
        assert_close(ours.values, theirs.values)
        assert_close(ours.indices, theirs.indices)


@pytest.mark.parametrize("replacement", [True, False])
def test_multinomial_statistics(replacement):
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    tg.manual_seed(0)
    draws = tg.tensor(np.tile(probs, (4000, 1))).multinomial(1, replacement=replacement)
    assert draws.shape == (4000, 1) and draws.dtype is tg.int64
    frequencies = np.bincount(draws.numpy().ravel(), minlength=4) / 4000
    # 4000 draws: the standard error of each frequency is below 0.008
    np.testing.assert_allclose(frequencies, probs, atol=0.03)


def test_multinomial_with_replacement_many_samples_per_row():
    tg.manual_seed(1)
    probs = tg.tensor([[0.0, 1.0, 3.0], [5.0, 0.0, 5.0]])  # unnormalized
    draws = probs.multinomial(3000, replacement=True).numpy()
    assert draws.shape == (2, 3000)
    np.testing.assert_allclose(np.bincount(draws[0], minlength=3) / 3000, [0.0, 0.25, 0.75], atol=0.03)
    np.testing.assert_allclose(np.bincount(draws[1], minlength=3) / 3000, [0.5, 0.0, 0.5], atol=0.03)


def test_multinomial_without_replacement_draws_distinct_categories():
    tg.manual_seed(2)
    probs = tg.tensor(np.tile([0.05, 0.05, 0.1, 0.8, 0.0], (500, 1)))
    draws = probs.multinomial(4, replacement=False).numpy()
    assert all(len(set(row)) == 4 for row in draws)
    assert not (draws == 4).any()  # zero probability is never drawn
    # the heavy category is almost always drawn first, and the first draw follows the probabilities
    first = np.bincount(draws[:, 0], minlength=5) / 500
    np.testing.assert_allclose(first, [0.05, 0.05, 0.1, 0.8, 0.0], atol=0.05)
    # second draw: P(second = 3) = sum over first != 3 of p_first * 0.8 / (1 - p_first)
    expected_second_3 = sum(p * 0.8 / (1 - p) for p in (0.05, 0.05, 0.1))
    np.testing.assert_allclose((draws[:, 1] == 3).mean(), expected_second_3, atol=0.06)


def test_multinomial_is_reproducible_with_manual_seed():
    probs = tg.tensor([0.2, 0.3, 0.5])
    tg.manual_seed(7)
    first = probs.multinomial(20, replacement=True).tolist()
    tg.manual_seed(7)
    assert probs.multinomial(20, replacement=True).tolist() == first
    assert len(set(first)) > 1


# --- embedding --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_embeddings", [10, 2000])  # both the one-hot and the scatter-add backward
def test_embedding(num_embeddings):
    weight = randn(num_embeddings, 3)
    ids = rng(1).integers(0, num_embeddings, size=(4, 5))
    ids[0, :3] = 7  # repeats accumulate
    compare(lambda lib, i, w: lib.F.embedding(i, w), ids, weight)


def test_embedding_1d_and_0d_indices():
    weight = randn(6, 4)
    compare(lambda lib, i, w: lib.F.embedding(i, w), np.array([5, 0, 5]), weight)
    compare(lambda lib, i, w: lib.F.embedding(i, w), np.array(3), weight)


def test_embedding_gradcheck():
    ids = tg.tensor([[0, 2], [2, 2]])
    gradcheck(lambda w: F.embedding(ids, w) ** 2, randn(4, 3))


# --- index_select, masked_select, nonzero ------------------------------------------------------------------------------
@pytest.mark.parametrize("dim, index", [(0, [2, 0, 2]), (1, [3]), (-1, [1, 1, 0]), (1, []), (0, 1)], ids=str)
def test_index_select(dim, index, device):
    compare(lambda lib, x, i: x.index_select(dim, i) * 2, randn(3, 4), np.array(index, dtype=np.int64),
            device=device)
    compare(lambda lib, x, i: lib.t.index_select(x, dim, i.int()), randn(3, 4), np.array(index, dtype=np.int64),
            device=device)


def test_index_select_edge_cases():
    compare(lambda lib, x, i: x.index_select(0, i), np.array(5.0), np.array([0]))  # 0-d input stays 0-d
    compare(lambda lib, x, i: x.index_select(0, i), np.array(5.0), np.array(0))
    compare(lambda lib, x, i: x.index_select(1, i), np.zeros((0, 3)), np.array([2, 0]))
    gradcheck(lambda x: x.index_select(1, tg.tensor([0, 2, 0])), randn(2, 3))
    x = tg.zeros(3, 4)
    with pytest.raises(IndexError, match="index_select: index out of range"):
        x.index_select(0, tg.tensor([3]))
    with pytest.raises(IndexError, match="index_select: index out of range"):
        x.index_select(0, tg.tensor([-1]))
    with pytest.raises(IndexError, match="index_select: index must be"):
        x.index_select(0, tg.tensor([[1]]))
    with pytest.raises(IndexError, match="index_select: index must be"):
        x.index_select(0, tg.tensor([1.0]))
    with pytest.raises(IndexError, match="index_select"):
        tg.tensor(5.0).index_select(0, tg.tensor([0, 0]))


@pytest.mark.parametrize("mask_shape", [(3, 4), (4,), (3, 1), ()], ids=str)
def test_masked_select(mask_shape):
    mask = rng(4).random(mask_shape) > 0.4
    compare(lambda lib, x, m: x.masked_select(m) * 2, randn(3, 4), mask)
    compare(lambda lib, x, m: lib.t.masked_select(x, m), randn(3, 4), mask)


def test_masked_select_edge_cases():
    compare(lambda lib, x, m: x.masked_select(m), randn(4), np.array([[True, False, True, True], [False] * 4]))
    compare(lambda lib, x, m: x.masked_select(m), np.zeros((0, 2)), np.array([True, False]))
    compare(lambda lib, x, m: x.masked_select(m), np.array(2.0), np.array(True))
    with pytest.raises(RuntimeError, match="masked_select: expected a bool mask"):
        tg.zeros(3).masked_select(tg.tensor([1, 0, 1]))
    with pytest.raises(RuntimeError, match="masked_select"):
        tg.zeros(3).masked_select(tg.tensor([True, False]))


@pytest.mark.parametrize("array", [
    np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]]), np.array([0, 3, 0, 4]), np.array([[True, False], [True, True]]),
    np.array(2.0), np.array(0.0), np.zeros((0, 3)), np.zeros((2, 3)), np.arange(24).reshape(2, 3, 4) % 5,
], ids=lambda a: f"{a.dtype}{a.shape}")
def test_nonzero(array):
    compare(lambda lib, x: x.nonzero(), array, grad=False)
    compare(lambda lib, x: x.nonzero(as_tuple=True), array, grad=False)
    compare(lambda lib, x: lib.t.nonzero(x), array, grad=False)
    if array.dtype == np.bool_:
        compare(lambda lib, x: lib.t.where(x), array, grad=False)
