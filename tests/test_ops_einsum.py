"""einsum against PyTorch: explicit and implicit outputs, diagonals, ellipsis, broadcasting, gradients."""
import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from conftest import compare, gradcheck, randn

CASES = [  # (equation, operand shapes)
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),  # implicit: the labels that appear once, alphabetically
    ("ij,kj", [(2, 3), (4, 3)]),
    ("ba", [(2, 3)]),  # implicit output sorts: a transpose
    ("bij,bjk->bik", [(5, 2, 3), (5, 3, 4)]),
    ("bij,bjk->bik", [(1, 2, 3), (4, 3, 5)]),  # a label of size 1 broadcasts
    ("ij,ij->ij", [(1, 3), (2, 3)]),
    ("ij,jk", [(2, 1), (3, 4)]),  # a summed label of size 1 against size 3
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(3,), (3,)]),
    ("i,i", [(3,), (3,)]),
    ("i,i->i", [(1,), (3,)]),
    ("ij->ji", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("ij->j", [(2, 3)]),
    ("ii", [(3, 3)]),  # trace
    ("ii->i", [(3, 3)]),  # diagonal
    ("iij->ji", [(3, 3, 2)]),
    ("iii->i", [(2, 2, 2)]),
    ("iij,jk->ik", [(3, 3, 2), (2, 4)]),
    ("i...i", [(3, 2, 3)]),
    ("...ij,...jk->...ik", [(2, 5, 2, 3), (5, 3, 4)]),  # ellipsis dims broadcast from the right
    ("...ij,...jk", [(2, 3), (3, 4)]),  # "..." that stands for no dims
    ("...i,...i->...", [(2, 3, 4), (3, 4)]),
    ("b...a", [(2, 4, 3)]),
    ("...->", [(2, 3)]),
    ("i->...i", [(3,)]),
    ("...i->i", [(2, 3)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("i,i,i->", [(4,), (4,), (4,)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),  # attention scores
    ("Ab,bA->", [(2, 3), (3, 2)]),  # capital letters
    (" i j , j k -> i k ", [(2, 3), (3, 4)]),  # spaces
    (",->", [(), ()]),
    ("", [()]),
    ("...", [()]),
    ("ij,jk->ik", [(2, 0), (0, 4)]),  # an empty summed dim: zeros
    ("ij,jk->ik", [(0, 3), (3, 4)]),
    ("ij->", [(0, 3)]),
]


@pytest.mark.parametrize("equation, shapes", CASES, ids=[c[0] + str(c[1]) for c in CASES])
def test_einsum(equation, shapes, device):
    arrays = [randn(*shape, seed=i) for i, shape in enumerate(shapes)]
    compare(lambda lib, *xs: lib.t.einsum(equation, *xs), *arrays, device=device)


@pytest.mark.parametrize("equation, shapes", CASES[:20:3], ids=[c[0] + str(c[1]) for c in CASES[:20:3]])
def test_einsum_gradcheck(equation, shapes):
    gradcheck(lambda *xs: tg.einsum(equation, *xs), *[randn(*shape, seed=i) for i, shape in enumerate(shapes)])


def test_einsum_second_order():
    # lowered to differentiable ops: the gradient has a gradient of its own
    a, b = tg.tensor(randn(2, 3), requires_grad=True), tg.tensor(randn(3, 3, seed=1), requires_grad=True)

    def gradient(x, y):
        out = tg.einsum("ij,jk,kk->i", x, y, y * x.sum())
        grads = tg.autograd.grad(out.sum(), (x, y), create_graph=True)
        return tg.cat([g.reshape(-1) for g in grads])
    assert tg.autograd.gradcheck(gradient, (a, b))


def test_einsum_operands_as_a_list_and_float32():
    arrays = [randn(2, 3, dtype=np.float32), randn(3, 4, dtype=np.float32, seed=1)]
    compare(lambda lib, x, y: lib.t.einsum("ij,jk->ik", [x, y]), *arrays)


@pytest.mark.parametrize("equation, shapes", [("ij,jk->ik", [(2, 3), (3, 4)]), ("ij->", [(2, 3)]),
                                              ("i,i", [(3,), (3,)]), ("ii->i", [(3, 3)])], ids=str)
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_einsum_of_integers(equation, shapes, dtype):
    arrays = [np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape) - 2 for shape in shapes]
    compare(lambda lib, *xs: lib.t.einsum(equation, *xs), *arrays)


@pytest.mark.parametrize("equation, shapes, message", [
    ("ij,jk->ik", [(2, 3)], "names 2 operand"),
    ("ij", [(2, 3), (3,)], "names 1 operand"),
    ("ij->j->i", [(2, 2)], "more than one '->'"),
    ("i1", [(2, 2)], "invalid subscript '1'"),
    ("i.j", [(2, 2)], "invalid subscript '.'"),
    ("i......", [(2, 2)], "invalid subscript"),
    ("ijk", [(2, 3)], r"operand 0 of shape \(2, 3\) has 2 dims, but 'ijk' names 3"),
    ("i", [(2, 3)], "has 2 dims"),
    ("...ij", [(2,)], "has 1 dims"),
    ("ij,jk->ii", [(2, 3), (3, 4)], "output subscript i appears more than once"),
    ("ij,jk->iz", [(2, 3), (3, 4)], "output subscript z of 'ij,jk->iz' is in no operand"),
    ("ii->i", [(2, 3)], "subscript i is repeated in operand 0"),
    ("ij,jk", [(2, 3), (4, 4)], "subscript j has size 4 in operand 1"),
    ("...i,...i->...", [(2, 3, 4), (5, 4)], r"a dim that '...' covers has size 5 in operand 1"),
], ids=str)
def test_einsum_errors(equation, shapes, message):
    with pytest.raises(RuntimeError):
        torch.einsum(equation, *[torch.zeros(shape) for shape in shapes])
    with pytest.raises(RuntimeError, match="einsum: .*" + message):
        tg.einsum(equation, *[tg.zeros(shape) for shape in shapes])


def test_einsum_dtype_errors():
    with pytest.raises(RuntimeError, match="einsum: expected operands of one dtype"):
        tg.einsum("ij,jk", tg.zeros(2, 3), tg.zeros(3, 4, dtype=tg.float64))
    with pytest.raises(RuntimeError, match="einsum: bool"):
        tg.einsum("i,i", tg.ones(3, dtype=tg.bool), tg.ones(3, dtype=tg.bool))
    with pytest.raises(RuntimeError, match="einsum: expected at least one operand"):
        tg.einsum("")
