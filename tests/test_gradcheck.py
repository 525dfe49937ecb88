"""Numerical gradient checks of every differentiable op, first and second order, in float64.

CASES holds one small program per Function subclass in tinygrad_tx.ops; a test makes sure no op
is missing, and each case is checked to really run the op it is named after.
"""
import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import tinygrad_tx as tg
import tinygrad_tx.nn.functional as F
import tinygrad_tx.ops
from tinygrad_tx.autograd import Function
from tinygrad_tx.ops.fused import FusedFunction
from tinygrad_tx.ops.fused import AtForwardValues
from tinygrad_tx.ops.indexing import IndexAdd, ScatterAdd
from conftest import randn, rng


def _positive(*shape, seed=0):
    return np.abs(randn(*shape, seed=seed)) + 0.5


def _away_from_zero(*shape, seed=0):
    a = randn(*shape, seed=seed)
    return a + np.where(a >= 0, 0.2, -0.2)  # kinks (relu, abs) stay out of the finite differences


_MASK = rng(3).random((3, 4)) > 0.5
_CAUSAL = np.tril(np.ones((3, 3), dtype=bool))

# name -> (function of tensors, input arrays, extra gradcheck arguments)
CASES = {
    "Abs": (lambda x: x.abs(), [_away_from_zero(3, 4)], {}),
    "Add": (lambda a, b: a + b, [randn(3, 4), randn(4, seed=1)], {}),
    "Sub": (lambda a, b: a - b, [randn(2, 1, 3), randn(4, 1, seed=1)], {}),
    "Mul": (lambda a, b: a * b, [randn(3, 4), randn(3, 1, seed=1)], {}),
    "Div": (lambda a, b: a / b, [randn(3, 4), _positive(4, seed=1)], {}),
    "Neg": (lambda x: -x, [randn(3)], {}),
    "Pow": (lambda a, b: a ** b, [_positive(3, 4), randn(3, 4, seed=1)], {}),
    "PowScalar": (lambda x: x ** 2.5 + x ** 3 + x ** -1 + x ** 2, [_positive(3, 4)], {}),
    "Exp": (lambda x: x.exp(), [randn(3, 4)], {}),
    "Log": (lambda x: x.log(), [_positive(3, 4)], {}),
    "Sqrt": (lambda x: x.sqrt(), [_positive(3, 4)], {}),
    "Rsqrt": (lambda x: x.rsqrt(), [_positive(3, 4)], {}),
    "StdFromVar": (lambda x: x.std(1) + x.std(0, correction=0).sum(), [randn(3, 4)], {}),
    "Tanh": (lambda x: x.tanh(), [randn(3, 4)], {}),
    "Sigmoid": (lambda x: x.sigmoid(), [randn(3, 4)], {}),
    "Relu": (lambda x: x.relu(), [_away_from_zero(3, 4)], {}),
    "Sin": (lambda x: x.sin(), [randn(3, 4)], {}),
    "Cos": (lambda x: x.cos(), [randn(3, 4)], {}),
    "Erf": (lambda x: x.erf(), [randn(3, 4)], {}),
    "Clamp": (lambda x: x.clamp(-0.5, 0.7), [randn(4, 5) * 0.9 + 0.03], {}),
    "Maximum": (lambda a, b: a.maximum(b), [randn(3, 4), randn(4, seed=1)], {}),
    "Minimum": (lambda a, b: a.minimum(b), [randn(3, 4), randn(3, 1, seed=1)], {}),
    "Where": (lambda a, b: tg.where(tg.tensor(_MASK), a, b), [randn(3, 4), randn(4, seed=1)], {}),
    # float32 in the middle: a coarser step keeps the finite differences above float32 rounding
    "Cast": (lambda x: x.to(tg.float32) * 2, [randn(3)], {"eps": 1e-3, "atol": 1e-4}),
    "Sum": (lambda x: x.sum((0, 2)) + x.sum(1, keepdim=True).sum(), [randn(2, 3, 4)], {}),
    "Amax": (lambda x: x.amax(1), [randn(3, 4)], {}),
    "Amin": (lambda x: x.amin((0, 1)), [randn(3, 4)], {}),
    "Reshape": (lambda x: x.reshape(4, 3) * tg.tensor(randn(4, 3, seed=5)), [randn(3, 4)], {}),
    "Permute": (lambda x: x.permute(2, 0, 1), [randn(2, 3, 4)], {}),
    "Expand": (lambda x: x.expand(2, 3, 4), [randn(3, 1)], {}),
    "Copy": (lambda x: x.clone(), [randn(3)], {}),
    "AtForwardValues": (lambda x: AtForwardValues.apply(x, x.detach().numpy()) ** 2, [randn(3)], {}),
    "CheckUnchanged": (lambda x: x.var(0) + x.logsumexp(1).sum(), [randn(3, 4)], {}),
    "Cat": (lambda a, b: tg.cat([a, b, a], 1), [randn(2, 3), randn(2, 1, seed=1)], {}),
    "BasicGetitem": (lambda x: x[1:, None, ::2], [randn(3, 4)], {}),
    "Getitem": (lambda x: x[tg.tensor([0, 2, 2])], [randn(3, 4)], {}),
    "IndexAdd": (lambda x: IndexAdd.apply(x, (np.array([0, 2, 0]),), (4, 2)), [randn(3, 2)], {}),
    "SetItem": (lambda x, v: _set(x, v), [randn(3, 4), randn(2, seed=1)], {}),
    "CopySlices": (lambda x, v: _write_view(x, v), [randn(3, 4), randn(2, 2, seed=1)], {}),
    "Gather": (lambda x: x.gather(1, tg.tensor([[0, 0], [3, 1], [2, 2]])), [randn(3, 4)], {}),
    "SelectAlong": (lambda x: x.max(1).values.sum() + x.sort(0).values, [randn(3, 4)], {}),
    "Reciprocal": (lambda x: 2 / x, [_away_from_zero(3, 4)], {}),
    # floor division and rounding are step functions: gradient 0 (times x, so the second order has something to check)
    "FloorDivide": (lambda a, b: (a // b) * a + 7.5 // b, [randn(3, 4) * 3, _positive(4, seed=1)], {}),
    "Remainder": (lambda a, b: a % b + 2.5 % b, [randn(3, 4) * 3, _positive(4, seed=1)], {}),
    "Fmod": (lambda a, b: a.fmod(b) * a, [randn(3, 4) * 3, _away_from_zero(3, 1, seed=1)], {}),
    "Floor": (lambda x: x.floor() * x, [randn(3, 4) * 3], {}),
    "Ceil": (lambda x: x.ceil() * x, [randn(3, 4) * 3], {}),
    "Round": (lambda x: x.round() * x + x.round(decimals=1), [randn(3, 4) * 3], {}),
    "Trunc": (lambda x: x.trunc() * x + x.frac(), [randn(3, 4) * 3], {}),
    "Exp2": (lambda x: x.exp2(), [randn(3, 4)], {}),
    "Expm1": (lambda x: x.expm1(), [randn(3, 4)], {}),
    "Log2": (lambda x: x.log2(), [_positive(3, 4)], {}),
    "Log1p": (lambda x: x.log1p(), [_positive(3, 4)], {}),
    "Flip": (lambda x: x.flip(0, -1) * x, [randn(2, 3, 4)], {}),
    "Roll": (lambda x: x.roll((1, -2), (0, 2)) * x + x.roll(3), [randn(2, 3, 4)], {}),
    "Cumsum": (lambda x: x.cumsum(1) * x + x.cumsum(0), [randn(3, 4)], {}),
    "ScatterAdd": (lambda x: ScatterAdd.apply(x, 1, tg.tensor([[0, 0], [3, 1], [2, 2]]), (3, 4)), [randn(3, 2)],
                   {}),
    "Matmul": (lambda a, b: a @ b, [randn(2, 2, 3), randn(3, 2, seed=1)], {}),
    "Linear": (lambda x, w, b: F.linear(x, w, b), [randn(2, 3), randn(4, 3, seed=1), randn(4, seed=2)], {}),
    "Softmax": (lambda x: x.softmax(-1), [randn(3, 4)], {}),
    "LogSoftmax": (lambda x: x.log_softmax(0), [randn(3, 4)], {}),
    "Gelu": (lambda x: x.gelu() + x.gelu("tanh"), [randn(3, 4)], {}),
    "LayerNorm": (lambda x, w, b: F.layer_norm(x, (4,), w, b), [randn(3, 4), randn(4, seed=1), randn(4, seed=2)],
                  {}),
    "CrossEntropy": (lambda x: F.cross_entropy(x, tg.tensor([1, -100, 3]), label_smoothing=0.1), [randn(3, 4)], {}),
    "ScaledDotProductAttention": (
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=tg.tensor(_CAUSAL)),
        [randn(2, 3, 4), randn(2, 3, 4, seed=1), randn(2, 3, 2, seed=2)], {}),
}


def _write_view(x, v):
    """An in-place edit of a transposed slice of x * 1: the edit reaches x * 1 through CopySlices."""
    y = x * 1
    y.t()[1:3, ::2].mul_(v)
    return y


def _set(x, v):
    y = x * 1.0
    y[1:, 2] = v
    return y


def _op_classes():
    """Every concrete Function subclass defined in tinygrad_tx.ops."""
    found = set()
    for info in pkgutil.iter_modules(tinygrad_tx.ops.__path__):
        module = importlib.import_module(f"tinygrad_tx.ops.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Function) and cls.__module__ == module.__name__ and cls is not FusedFunction \
                    and not name.startswith("_"):
                found.add(name)
    return found


def _ops_in_graph(output):
    seen, stack, names = set(), [output.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(node.name)
        stack.extend(node.next_functions)
    return names


def test_every_op_has_a_gradcheck_case():
    # ToDevice needs a second device (its own test below), PinMemory a GPU (tests/test_device.py fakes one)
    missing = _op_classes() - set(CASES) - {"ToDevice", "PinMemory"}
    assert not missing, f"ops without a gradcheck case: {sorted(missing)}"


def _inputs(arrays):
    return [tg.tensor(a, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("name", CASES)
def test_gradcheck(name):
    fn, arrays, kwargs = CASES[name]
    inputs = _inputs(arrays)
    assert name in _ops_in_graph(fn(*inputs)), f"the {name} case does not run {name}"
    assert tg.autograd.gradcheck(fn, inputs, **kwargs)


@pytest.mark.parametrize("name", CASES)
def test_second_order_gradcheck(name):
    # the gradient, computed with create_graph=True, is itself checked against finite differences
    fn, arrays, kwargs = CASES[name]
    weights = {}

    def gradient(*inputs):
        out = fn(*inputs)
        if "w" not in weights:
            weights["w"] = tg.tensor(rng(7).standard_normal(out.shape))
        grads = tg.autograd.grad((out * weights["w"].to(out.dtype)).sum(), inputs, create_graph=True,
                                 allow_unused=True)
        return tg.cat([g.reshape(-1) for g in grads if g is not None])
    if name == "Cast":
        kwargs = {"eps": 1e-3, "atol": 1e-3}
    assert tg.autograd.gradcheck(gradient, _inputs(arrays), **kwargs)


def test_to_device_gradcheck(second_device):
    fn = lambda x: (x.to(second_device) * 2).to("cpu")  # noqa: E731
    x = tg.tensor(randn(3, 2), requires_grad=True)
    assert "ToDevice" in _ops_in_graph(fn(x))
    assert tg.autograd.gradcheck(fn, [x])
