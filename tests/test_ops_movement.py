"""Movement ops against PyTorch: values, gradients, and the errors for impossible shapes."""
import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from conftest import assert_close, compare, gradcheck, randn


@pytest.mark.parametrize("shape", [(6, 4), (2, 12), (-1,), (3, -1, 2), (24,), (2, 3, 4), (1, 24, 1)], ids=str)
def test_reshape_and_view(shape, device):
    a = randn(2, 3, 4)
    compare(lambda lib, x: x.reshape(shape) * 2, a, device=device)
    compare(lambda lib, x: x.view(*shape) * 2, a, device=device)


def test_reshape_of_a_transposed_tensor():
    a = randn(3, 4)
    compare(lambda lib, x: x.transpose(0, 1).reshape(2, 6), a)


@pytest.mark.parametrize("dims", [(0, 1, 2), (2, 0, 1), (1, 0, 2), (-1, -2, -3)], ids=str)
def test_permute(dims):
    compare(lambda lib, x: x.permute(*dims) * 2, randn(2, 3, 4))
    compare(lambda lib, x: x.permute(dims).reshape(-1)[:7], randn(2, 3, 4))


@pytest.mark.parametrize("dims", [(0, 1), (1, 2), (-1, 0), (2, 2)], ids=str)
def test_transpose(dims):
    compare(lambda lib, x: x.transpose(*dims).reshape(-1) * lib.t.arange(24).to(x.dtype), randn(2, 3, 4))


def test_T_and_mT():
    a = randn(2, 3, 4)
    compare(lambda lib, x: x.mT @ x, a)
    compare(lambda lib, x: x[0].T @ x[1], a)


@pytest.mark.parametrize("shape, target", [((3, 1), (3, 4)), ((1,), (2, 3, 5)), ((2, 1, 4), (3, 2, 5, 4)),
                                           ((3, 1), (-1, 2)), ((4,), (2, 4)), ((), (3, 2))], ids=str)
def test_expand(shape, target):
    compare(lambda lib, x: x.expand(*target) * 1.5, randn(*shape))
    compare(lambda lib, x: x.expand(target).sum(0), randn(*shape))


def test_expand_as():
    compare(lambda lib, x, y: x.expand_as(y) * y, randn(3, 1, seed=1), randn(3, 5, seed=2))


@pytest.mark.parametrize("dim", [0, 1, 2, 3, -1, -4])
def test_unsqueeze(dim):
    compare(lambda lib, x: x.unsqueeze(dim), randn(2, 3, 4))


@pytest.mark.parametrize("dim", [None, 0, 1, 2, -1, (0, 2), (1, 3)], ids=str)
def test_squeeze(dim):
    a = randn(1, 3, 1, 2)
    compare(lambda lib, x: x.squeeze() if dim is None else x.squeeze(dim), a)


def test_squeeze_with_an_empty_tuple_squeezes_nothing():
    compare(lambda lib, x: x.squeeze(()), randn(1, 3, 1))


@pytest.mark.parametrize("start, end", [(0, -1), (1, -1), (0, 1), (1, 2), (-2, -1), (2, 2)], ids=str)
def test_flatten(start, end):
    compare(lambda lib, x: x.flatten(start, end), randn(2, 3, 4))


def test_flatten_of_0d():
    compare(lambda lib, x: x.flatten(), np.array(3.0))


def test_contiguous():
    a = randn(3, 4)
    compare(lambda lib, x: x.transpose(0, 1).contiguous().reshape(-1), a)
    t = tg.tensor(a).transpose(0, 1)
    assert not t.is_contiguous() and t.contiguous().is_contiguous()
    assert t.contiguous().tolist() == a.T.tolist()


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat(dim, device):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    sizes = [1, 2, 3]
    arrays = []
    for i, size in enumerate(sizes):
        shape = list(shapes[i])
        shape[dim] = size
        arrays.append(randn(*shape, seed=i))
    compare(lambda lib, a, b, c: lib.t.cat([a, b, c], dim), *arrays, device=device)
    compare(lambda lib, a, b, c: lib.t.cat((a, b * 2), dim=dim), *arrays, device=device)


def test_cat_promotes_dtypes():
    ours = tg.cat([tg.tensor([1, 2]), tg.tensor([0.5])])
    theirs = torch.cat([torch.tensor([1, 2]), torch.tensor([0.5])])
    assert ours.dtype is tg.float32
    assert_close(ours, theirs)


def test_cat_single_and_reused_tensor():
    compare(lambda lib, x: lib.t.cat([x]), randn(2, 3))
    compare(lambda lib, x: lib.t.cat([x, x, x * 2], 1), randn(2, 3))


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_stack(dim):
    compare(lambda lib, a, b: lib.t.stack([a, b, a], dim), randn(2, 3, seed=1), randn(2, 3, seed=2))


@pytest.mark.parametrize("size, dim", [(2, 0), (3, 1), (1, -1), ([1, 4, 2], 1), ((3, 0, 4), 1), (10, 1)], ids=str)
def test_split(size, dim):
    compare(lambda lib, x: tuple(x.split(size, dim)), randn(4, 7, 2))


@pytest.mark.parametrize("chunks, dim", [(2, 0), (3, 1), (4, 1), (7, 1), (5, 0), (3, -1)], ids=str)
def test_chunk(chunks, dim):
    compare(lambda lib, x: tuple(x.chunk(chunks, dim)), randn(5, 7, 3))


def test_split_pieces_used_partially():
    # a piece that is never used gets no gradient: its slice of the input's grad is zero
    compare(lambda lib, x: x.split(2, 0)[1] * 3, randn(6, 2))


@pytest.mark.parametrize("diagonal", [0, 1, -1, 3, -3])
@pytest.mark.parametrize("name", ["tril", "triu"])
def test_tril_triu(name, diagonal):
    compare(lambda lib, x: getattr(x, name)(diagonal), randn(4, 5))
    compare(lambda lib, x: getattr(lib.t, name)(x, diagonal), randn(2, 3, 4))


def test_clone_is_a_copy_with_gradient():
    compare(lambda lib, x: x.clone() * x, randn(3))
    x = tg.tensor([1.0, 2.0])
    y = x.clone()
    y[0] = 5.0
    assert x.tolist() == [1.0, 2.0]


def test_views_share_memory_with_their_base():
    x = tg.tensor(np.arange(6.0))
    v = x.reshape(2, 3)
    with tg.no_grad():
        x[0] = 100.0
    assert v[0, 0].item() == 100.0


@pytest.mark.parametrize("fn", [
    lambda x: x.reshape(4, 3), lambda x: x.permute(1, 0), lambda x: x.transpose(0, 1).contiguous(),
    lambda x: x.unsqueeze(1).expand(3, 2, 4), lambda x: x.flatten(), lambda x: tg.cat([x, x * 2], 1),
    lambda x: tg.stack([x, x], 0), lambda x: x.split(1, 0)[1], lambda x: x.chunk(2, 1)[0],
    lambda x: x.tril(), lambda x: x.triu(1), lambda x: x.squeeze(0).unsqueeze(-1),
], ids=["reshape", "permute", "contiguous", "expand", "flatten", "cat", "stack", "split", "chunk", "tril",
        "triu", "squeeze"])
def test_movement_gradcheck(fn):
    gradcheck(fn, randn(3, 4))


# --- flip, roll, repeat, unbind ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [(0,), (-1,), (0, 2), (2, 0, 1), ()], ids=str)
def test_flip(dims, device):
    compare(lambda lib, x: x.flip(*dims or ((),)) * lib.t.arange(24).reshape(2, 3, 4).to(x.dtype), randn(2, 3, 4),
            device=device)
    compare(lambda lib, x: lib.t.flip(x, list(dims)), randn(2, 3, 4), device=device)


def test_flip_edge_cases():
    compare(lambda lib, x: x.flip(0) * 2, np.array(3.0))  # 0-d
    compare(lambda lib, x: x.flip(1), np.zeros((2, 0)))  # empty
    compare(lambda lib, x: x.flip(0), np.array([True, False, False]))
    x = tg.tensor([1.0, 2.0])
    flipped = x.flip(0)
    flipped[0] = 5.0  # a copy, not a view (as PyTorch)
    assert x.tolist() == [1.0, 2.0]
    with pytest.raises(RuntimeError, match="flip: dims"):
        x.flip(0, 0)
    with pytest.raises(IndexError, match="flip"):
        x.flip(1)


@pytest.mark.parametrize("shifts, dims", [(1, None), (-4, None), (1, 0), (2, -1), ((1, -2), (0, 2)), (5, 1),
                                          ((1, 1), (0, 0)), ([3], [1])], ids=str)
def test_roll(shifts, dims, device):
    a = randn(2, 3, 4)
    compare(lambda lib, x: x.roll(shifts, dims) * lib.t.arange(24).reshape(2, 3, 4).to(x.dtype), a, device=device)
    compare(lambda lib, x: lib.t.roll(x, shifts, dims), a, device=device)


def test_roll_edge_cases():
    compare(lambda lib, x: x.roll(3), np.array(2.0))  # 0-d, flattened
    compare(lambda lib, x: x.roll(2, 0), np.zeros((0, 3)))
    compare(lambda lib, x: x.roll(-1, 1), np.arange(6).reshape(2, 3))
    gradcheck(lambda x: x.roll((1, -1), (0, 1)) * x, randn(3, 4))
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(RuntimeError, match="roll: without dims"):
        x.roll((1, 2))
    with pytest.raises(RuntimeError, match="roll: shifts"):
        x.roll((1, 2), 0)
    with pytest.raises(IndexError, match="roll"):
        x.roll(1, 2)
    with pytest.raises(IndexError, match="roll"):
        tg.tensor(2.0).roll(1, 0)


@pytest.mark.parametrize("sizes", [(2, 1), (1, 3), (2, 3), (2, 1, 2), (3, 2, 1, 1), (1, 1), (0, 2)], ids=str)
def test_repeat(sizes, device):
    compare(lambda lib, x: x.repeat(*sizes), randn(2, 3), device=device)
    compare(lambda lib, x: x.repeat(sizes) * 2, randn(2, 3), device=device)


def test_repeat_edge_cases():
    compare(lambda lib, x: x.repeat(3), np.array(1.5))
    compare(lambda lib, x: x.repeat(()), np.array(1.5))
    compare(lambda lib, x: x.repeat(2, 2), np.zeros((0, 2)))
    compare(lambda lib, x: x.repeat(2, 3), np.array([[1, 2]]))
    gradcheck(lambda x: x.repeat(2, 1, 3), randn(2, 3))
    x = tg.tensor([1.0, 2.0])
    y = x.repeat(1)
    y[0] = 5.0  # new memory even when nothing repeats (as PyTorch)
    assert x.tolist() == [1.0, 2.0]
    with pytest.raises(RuntimeError, match="repeat"):
        tg.zeros(2, 3).repeat(2)
    with pytest.raises(RuntimeError, match="repeat"):
        tg.zeros(2, 3).repeat(-1, 1)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_unbind(dim):
    compare(lambda lib, x: x.unbind(dim), randn(2, 3, 4))
    compare(lambda lib, x: lib.t.unbind(x, dim)[1] * 2, randn(2, 3, 4))
    assert len(tg.zeros(0, 3).unbind(0)) == 0
    with pytest.raises(IndexError, match="unbind"):
        tg.tensor(1.0).unbind(0)


def test_reshape_as_and_expand_as():
    compare(lambda lib, x, y: x.reshape_as(y) * y, randn(2, 6), randn(3, 4, seed=1))
    compare(lambda lib, x, y: x.expand_as(y) * y, randn(3, 1), randn(2, 3, 4, seed=1))
