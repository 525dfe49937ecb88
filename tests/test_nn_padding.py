"""F.pad (nn/padding.py) against torch.nn.functional.pad: every mode on the shapes PyTorch takes, negative
padding (cropping), values and gradients (a replicated or reflected input position feeds several outputs, so
its gradient is their sum), second order, and PyTorch's errors."""
import numpy as np
import pytest
import torch

import tinygrad_tx as tg
import tinygrad_tx.nn.functional as F
from conftest import TG, compare, gradcheck, randn

CONSTANT_CASES = [((4,), (1, 2)), ((3, 4), (2, 0)), ((3, 4), (1, 1, 2, 3)), ((2, 3, 4), (0, 1, 1, 0, 2, 1)),
                  ((2, 3, 4), (-1, 2)), ((2, 3, 4), (-2, -1, 1, -2)), ((3, 4), (-4, 0)), ((2, 3, 4, 5), (1, 1, 1, 1)),
                  ((1, 2, 3, 2, 2), (1, 0, 0, 1, 2, 0, 1, 1)), ((3, 4), ()), ((0, 4), (1, 1, 1, 0))]


@pytest.mark.parametrize("shape, pad", CONSTANT_CASES, ids=str)
@pytest.mark.parametrize("value", [None, 0.0, -2.5])
def test_constant(shape, pad, value):
    compare(lambda lib, x: lib.F.pad(x, pad, value=value), randn(*shape))
    compare(lambda lib, x: lib.F.pad(x, list(pad), mode="constant", value=value), randn(*shape, dtype=np.float32))


def test_constant_value_takes_the_inputs_dtype():
    compare(lambda lib, x: lib.F.pad(x, (1, 2), value=2.7), np.arange(3), grad=False)
    compare(lambda lib, x: lib.F.pad(x, (1, 1), value=1), np.array([True, False]), grad=False)


SIGNAL_CASES = [  # (shape, pad) that PyTorch takes in reflect, replicate and circular modes
    ((3, 5), (2, 1)), ((2, 3, 5), (1, 3)), ((2, 4, 5), (1, 2, 3, 0)), ((2, 3, 4, 5), (4, 2, 1, 3)),
    ((2, 3, 4, 5), (1, 1, 1, 1, 1, 1)), ((1, 2, 3, 4, 5), (2, 0, 1, 2, 0, 1)), ((2, 3, 5), (-1, 2)),
    ((2, 3, 5), (2, -1)), ((2, 4, 5), (-2, -1, 2, -1)), ((2, 3, 5), (0, 0)), ((2, 3, 1), (0, 0))]


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape, pad", SIGNAL_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_signal_modes(mode, shape, pad, dtype):
    compare(lambda lib, x: lib.F.pad(x, pad, mode=mode), randn(*shape, dtype=dtype))


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_double_backward(mode):
    def fn(lib, x):
        out = lib.F.pad(x * x, (2, 1, 1, 2), mode=mode)
        (gx,) = (tg.autograd.grad if lib is TG else torch.autograd.grad)((out ** 3).sum(), x, create_graph=True)
        return gx
    compare(fn, randn(2, 3, 4))
    gradcheck(lambda x: F.pad(x, (2, 1, -1, 2), mode=mode if mode != "circular" else "constant"), randn(2, 3, 4))


ERRORS = [  # (shape, pad, mode, value, our exception, our message)
    ((2, 3), (1,), "constant", None, RuntimeError, "divisible by 2"),
    ((2, 3), (1, 1, 1, 1, 1, 1), "constant", None, RuntimeError, "less than or equal to two times"),
    ((2, 3), (-5, 1), "constant", None, RuntimeError, "negative output size"),
    ((2, 3), (1, 1), "zeros", None, NotImplementedError, "unrecognised padding mode"),
    ((2, 3, 4), (1, 1), "reflect", 1.0, RuntimeError, "doesn't take in value"),
    ((2, 3, 4), (4, 0), "reflect", None, RuntimeError, "less than the corresponding input dimension"),
    ((2, 3, 4), (5, 0), "circular", None, RuntimeError, "wrapping around more than once"),
    ((4,), (1, 1), "replicate", None, NotImplementedError, "padding size 2 is not supported for 1D"),
    ((2, 3), (1, 1, 1, 1), "reflect", None, NotImplementedError, "padding size 4 is not supported for 2D"),
    ((2, 3, 4, 5), (1, 1), "circular", None, NotImplementedError, "padding size 2 is not supported for 4D"),
    ((2, 3, 0), (1, 1), "replicate", None, RuntimeError, "non-empty"),
    ((2, 3, 4), (-3, -2), "reflect", None, RuntimeError, "negative output size"),
]


@pytest.mark.parametrize("shape, pad, mode, value, error, match", ERRORS, ids=str)
def test_errors_where_torch_raises(shape, pad, mode, value, error, match):
    with pytest.raises((RuntimeError, NotImplementedError)):
        torch.nn.functional.pad(torch.zeros(shape), pad, mode=mode, value=value)
    with pytest.raises(error, match=match):
        F.pad(tg.zeros(*shape), pad, mode=mode, value=value)


def test_pad_must_be_ints():
    with pytest.raises(TypeError):
        torch.nn.functional.pad(torch.zeros(2, 3), (1.0, 1))
    with pytest.raises(TypeError, match="tuple of ints"):
        F.pad(tg.zeros(2, 3), (1.0, 1))
