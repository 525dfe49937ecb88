"""Matrix products against PyTorch: 1-D, 2-D, batched, and broadcasting batch dimensions."""
import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from conftest import compare, gradcheck, randn

SHAPES = [
    ((3,), (3,)),            # dot product -> 0-d
    ((3,), (3, 4)),          # vector @ matrix
    ((2, 3), (3,)),          # matrix @ vector
    ((2, 3), (3, 4)),
    ((5, 2, 3), (5, 3, 4)),  # batched
    ((5, 2, 3), (3, 4)),     # a weight shared over a batch
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
    ((2, 3), (5, 3, 4)),
    ((2, 1, 2, 3), (4, 3, 2)),  # batch dims broadcast against each other
    ((1, 2, 3), (4, 3, 2)),
    ((2, 4, 2, 3), (1, 3, 5)),
]


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matmul(shapes, dtype, device):
    a, b = randn(*shapes[0], dtype=dtype, seed=1), randn(*shapes[1], dtype=dtype, seed=2)
    compare(lambda lib, x, y: x @ y, a, b, device=device)
    compare(lambda lib, x, y: x.matmul(y), a, b, device=device)
    compare(lambda lib, x, y: lib.t.matmul(x, y), a, b, device=device)


def test_matmul_of_non_contiguous_operands():
    a, b = randn(4, 3, 2, seed=1), randn(4, 5, seed=2)
    compare(lambda lib, x, y: x.transpose(1, 2) @ y[:3], a, b)
    compare(lambda lib, x, y: x.permute(2, 0, 1) @ y[1:, ::2], a, b)


def test_matmul_with_only_one_input_requiring_grad():
    a, b = randn(2, 3, seed=1), randn(3, 4, seed=2)
    compare(lambda lib, x, y: x @ y, a, b, requires_grad=[True, False])
    compare(lambda lib, x, y: x @ y, a, b, requires_grad=[False, True])


def test_reused_operand():
    compare(lambda lib, x: x @ x @ x, randn(3, 3))


def test_rmatmul_with_numpy_like_data():
    b = randn(3, 2)
    out = [[1.0, 0.0, 2.0]] @ tg.tensor(b)
    np.testing.assert_allclose(out.numpy(), np.array([[1.0, 0.0, 2.0]]) @ b)


@pytest.mark.parametrize("shapes", [((3,), (3, 2)), ((2, 3), (3,)), ((2, 2, 3), (3, 2)), ((2, 1, 3), (2, 3, 2))],
                         ids=str)
def test_matmul_gradcheck(shapes):
    gradcheck(lambda x, y: x @ y, randn(*shapes[0], seed=1), randn(*shapes[1], seed=2))


# --- mm and bmm: only matrices, and only batches of one size -----------------------------------------------------------
def test_mm_and_bmm(device):
    compare(lambda lib, x, y: x.mm(y) + lib.t.mm(x, y), randn(2, 3), randn(3, 4, seed=1), device=device)
    compare(lambda lib, x, y: x.bmm(y) * 2 + lib.t.bmm(x, y), randn(5, 2, 3), randn(5, 3, 4, seed=1), device=device)
    compare(lambda lib, x, y: x.mm(y), randn(2, 0), randn(0, 4, seed=1))  # empty inner dim: zeros
    compare(lambda lib, x, y: x.bmm(y), randn(0, 2, 3), randn(0, 3, 4, seed=1))
    compare(lambda lib, x, y: x.mm(y), np.arange(6).reshape(2, 3), np.arange(3).reshape(3, 1))


@pytest.mark.parametrize("op, a, b, message", [
    ("mm", (2, 3), (3,), r"mm: expected two 2-D tensors, got shapes \(2, 3\) and \(3,\)"),
    ("mm", (2, 3, 4), (4, 2), r"mm: expected two 2-D"),
    ("mm", (2, 3), (4, 5), r"mm: shapes \(2, 3\) and \(4, 5\) cannot be multiplied \(3 != 4\)"),
    ("bmm", (2, 3), (3, 4), r"bmm: expected two 3-D tensors"),
    ("bmm", (2, 2, 3), (1, 3, 4), r"bmm: batch sizes differ, shapes \(2, 2, 3\) and \(1, 3, 4\)"),
    ("bmm", (2, 2, 3), (2, 4, 4), r"bmm: shapes \(2, 2, 3\) and \(2, 4, 4\) cannot be multiplied"),
], ids=str)
def test_mm_and_bmm_shape_checks(op, a, b, message):
    with pytest.raises(RuntimeError):
        getattr(torch, op)(torch.zeros(a), torch.zeros(b))
    with pytest.raises(RuntimeError, match=message):
        getattr(tg, op)(tg.zeros(a), tg.zeros(b))


def test_mm_dtype_mismatch():
    with pytest.raises(RuntimeError, match="mm: expected both operands to have the same dtype"):
        tg.zeros(2, 2).mm(tg.zeros(2, 2, dtype=tg.float64))
