"""bfloat16 against PyTorch's CPU bfloat16: making and reading tensors, type promotion, every op family's values
and gradients, autocast, training, and what happens without ml_dtypes.

The same program runs on tinygrad_tx and on torch from the same float32 arrays, rounded to bfloat16 by each
library. Both compute each op in float32 and round its result once, but where PyTorch rounds between the
steps of a composite (a sum of gradients, an op written as several) the two may differ in the last bit or two:
the tolerance is torch.testing's for bfloat16 (rtol 1.6e-2) plus one unit in the last place of the largest value
(of 1, for gradients: the terms a gradient sums are of order one, and the sum may cancel to less).
"""
import math

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from conftest import TG, TORCH, randn, rng
from tinygrad_tx import dtype as dtypes

ml_dtypes = pytest.importorskip("ml_dtypes")

RTOL = 1.6e-2
ULP = 2.0 ** -7  # bfloat16's gap between 1 and the next number


def as_float32(x):
    return x.detach().float().cpu().numpy()


def assert_close_bf16(ours, theirs, what="value", scale_ulps=1, at_least=1e-6):
    ours, theirs = as_float32(ours), as_float32(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch's {theirs.shape}"
    scale = float(np.abs(theirs[np.isfinite(theirs)]).max(initial=0.0))
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=scale_ulps * ULP * max(scale, at_least), err_msg=what,
                               equal_nan=True)


def leaves(lib, arrays, requires_grad, device="cpu"):
    """Float arrays become bfloat16 leaves (rounded by each library); others (indices, masks) stay as they are."""
    made = []
    for array, needs_grad in zip(arrays, requires_grad):
        array = np.asarray(array)
        if array.dtype.kind == "f":
            t = tg.tensor(array.astype(np.float32), device=device).bfloat16() if lib is TG else \
                torch.tensor(array.astype(np.float32)).bfloat16()
            made.append(t.requires_grad_(needs_grad))
        else:
            made.append(tg.tensor(array, device=device) if lib is TG else torch.tensor(array))
    return made


def compare_bf16(fn, *arrays, grad=True, scale_ulps=1, device="cpu"):
    """fn(lib, *tensors) on bfloat16 leaves in both libraries: the same output dtypes and values; with grad, the
    same bfloat16 gradients for every float input (backward of the outputs weighted by fixed random numbers)."""
    requires_grad = [grad and np.asarray(a).dtype.kind == "f" for a in arrays]
    results = []
    for lib in (TG, TORCH):
        inputs = leaves(lib, arrays, requires_grad, device if lib is TG else None)
        outputs = fn(lib, *inputs)
        outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
        loss = None
        for i, out in enumerate(outputs):
            if grad and out.requires_grad:
                weights = rng(100 + i).standard_normal(tuple(out.shape)).astype(np.float32)
                w = (tg.tensor(weights, device=out.device) if lib is TG else torch.tensor(weights)).to(out.dtype)
                loss = (out * w).sum() if loss is None else loss + (out * w).sum()
        if loss is not None:
            loss.backward()
        results.append((outputs, inputs))
    (ours, our_inputs), (theirs, their_inputs) = results
    for i, (o, t) in enumerate(zip(ours, theirs)):
        assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], f"output {i}: {o.dtype} != {t.dtype}"
        if t.dtype.is_floating_point:
            assert_close_bf16(o, t, f"output {i}", scale_ulps)
        else:
            np.testing.assert_array_equal(o.cpu().numpy(), t.numpy(), err_msg=f"output {i}")
    for i, (o, t) in enumerate(zip(our_inputs, their_inputs)):
        if t.requires_grad and t.grad is not None:
            if o.grad is None:  # an op without a gradient here, a zero one in torch (sign)
                assert not as_float32(t.grad).any(), f"input {i}: no gradient, torch has one"
                continue
            assert o.grad.dtype is tg.bfloat16, f"input {i}: gradient of dtype {o.grad.dtype}"
            # a gradient summed over a broadcast may cancel to less than its terms, of order one here
            assert_close_bf16(o.grad, t.grad, f"grad of input {i}", scale_ulps, at_least=1.0)


def positive(*shape, seed=0):
    return np.abs(randn(*shape, seed=seed)) + 0.5


SHAPES = [(7,), (3, 5), (2, 3, 4)]


# --- making tensors and reading them --------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda lib: lib.tensor([1.5, -2.25, 0.1, 3e4], dtype=lib.bfloat16),
    lambda lib: lib.zeros(2, 3, dtype=lib.bfloat16),
    lambda lib: lib.ones(4, dtype=lib.bfloat16),
    lambda lib: lib.full((2, 2), 0.1, dtype=lib.bfloat16),
    lambda lib: lib.arange(0, 7, 2, dtype=lib.bfloat16),
    lambda lib: lib.arange(0.5, 3.0, 0.25, dtype=lib.bfloat16),
    lambda lib: lib.linspace(0, 1, 5, dtype=lib.bfloat16),
    lambda lib: lib.eye(3, dtype=lib.bfloat16),
    lambda lib: lib.tensor([1.7, 2.3]).to(lib.bfloat16),
    lambda lib: lib.tensor([1.7, 2.3]).bfloat16(),
    lambda lib: lib.tensor([1.7, 2.3]).type(lib.bfloat16),
    lambda lib: lib.tensor([1, 2, 3]).bfloat16(),
    lambda lib: lib.tensor([True, False]).bfloat16(),
    lambda lib: lib.tensor([1.7, 2.3]).bfloat16().half(),
    lambda lib: lib.tensor([1.7, -2.3]).bfloat16().long(),
    lambda lib: lib.tensor([1.7, 0.0]).bfloat16().bool(),
], ids=range(16))
def test_creation_and_casts_as_torch(make):
    ours, theirs = make(tg), make(torch)
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    assert ours.tolist() == theirs.tolist()


def test_reading_values_back():
    x = tg.tensor([[0.1, 1.5], [-3.0, 1e-3]], dtype=tg.bfloat16)
    t = torch.tensor([[0.1, 1.5], [-3.0, 1e-3]], dtype=torch.bfloat16)
    assert x.element_size() == t.element_size() == 2 and x.dtype.itemsize == 2
    assert x[0, 0].item() == t[0, 0].item() == 0.10009765625 and isinstance(x[0, 0].item(), float)
    assert x.tolist() == t.tolist() and float(x[1, 0]) == -3.0
    assert x.numpy().dtype == ml_dtypes.bfloat16  # the ml_dtypes array itself
    assert x.type() == "tinygrad_tx.BFloat16Tensor" and t.type() == "torch.BFloat16Tensor"
    assert tg.randn(3, dtype=tg.bfloat16).dtype is tg.randn(3).bfloat16().dtype is tg.bfloat16
    assert tg.from_numpy(x.numpy()).dtype is tg.bfloat16  # shares the ml_dtypes array, as for NumPy's own types
    assert tg.tensor(np.array([1.5], ml_dtypes.bfloat16)).dtype is tg.bfloat16
    assert tg.zeros(2, dtype="bfloat16").dtype is tg.bfloat16


def test_printing():
    x = tg.tensor([[0.1, 1.5], [-3.0, 2.0]], dtype=tg.bfloat16)
    assert repr(x) == "tensor([[ 0.1001,  1.5   ],\n        [-3.    ,  2.    ]], dtype=tinygrad_tx.bfloat16)"
    assert repr(tg.ones(2, dtype=tg.bfloat16)) == "tensor([1., 1.], dtype=tinygrad_tx.bfloat16)"
    assert repr(tg.tensor(2.5, dtype=tg.bfloat16, requires_grad=True)) == \
        "tensor(2.5, dtype=tinygrad_tx.bfloat16, requires_grad=True)"
    assert f"{tg.tensor(2.5, dtype=tg.bfloat16):.3f}" == "2.500"


def test_finfo_as_torch():
    ours, theirs = tg.finfo(tg.bfloat16), torch.finfo(torch.bfloat16)
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(ours, field) == getattr(theirs, field), field


def test_modules_and_optimizers_in_bfloat16():
    model = tg.nn.Sequential(tg.nn.Linear(4, 3), tg.nn.LayerNorm(3)).bfloat16()
    assert all(p.dtype is tg.bfloat16 for p in model.parameters())
    optimizer = tg.optim.AdamW(model.parameters(), lr=1e-2)
    model(tg.randn(5, 4).bfloat16()).sum().backward()
    assert all(p.grad.dtype is tg.bfloat16 for p in model.parameters())
    norm = tg.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    assert norm.dtype is tg.bfloat16  # as torch's: the gradients' dtype
    optimizer.step()
    assert all(p.dtype is tg.bfloat16 and np.isfinite(as_float32(p)).all() for p in model.parameters())
    assert tg.nn.Linear(2, 2, dtype=tg.bfloat16).weight.dtype is tg.bfloat16


# --- type promotion --------------------------------------------------------------------------------------------------
DTYPES = ["bool", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def _typed(lib, name, shape):
    dtype = getattr(lib, name)
    return lib.ones(shape, dtype=dtype) if name != "bool" else lib.ones(shape, dtype=dtype) > 0


@pytest.mark.parametrize("first", DTYPES)
@pytest.mark.parametrize("second", DTYPES)
@pytest.mark.parametrize("shapes", [((2,), (2,)), ((2,), ()), ((), (2,)), ((), ())], ids=str)
def test_promotion_table_as_torch(first, second, shapes):
    def result(lib):
        a, b = _typed(lib, first, shapes[0]), _typed(lib, second, shapes[1])
        return [(a + b).dtype, (a * b).dtype, (a / b).dtype, (a < b).dtype, lib.where(a > b, a, b).dtype,
                lib.cat([a.reshape(-1), b.reshape(-1)]).dtype]
    names = lambda dtypes_: [str(d).split(".")[-1] for d in dtypes_]  # noqa: E731
    assert names(result(tg)) == names(result(torch))


@pytest.mark.parametrize("name", DTYPES)
@pytest.mark.parametrize("scalar", [2, 2.5, True])
def test_python_numbers_promote_as_torch(name, scalar):
    ours, theirs = _typed(tg, name, (2,)), _typed(torch, name, (2,))
    for op in (lambda a: a + scalar, lambda a: scalar * a, lambda a: a / scalar, lambda a: a == scalar):
        assert str(op(ours).dtype).split(".")[-1] == str(op(theirs).dtype).split(".")[-1]


def test_promote_bfloat16_with_float16_is_float32():
    assert dtypes.promote(tg.bfloat16, tg.float16) is dtypes.promote(tg.float16, tg.bfloat16) is tg.float32
    assert dtypes.promote(tg.bfloat16, tg.int64) is tg.bfloat16
    assert dtypes.promote(tg.bfloat16, tg.float64) is tg.float64


def test_a_python_number_is_not_rounded_to_bfloat16_first():
    """PyTorch keeps a scalar in float32 beside a bfloat16 tensor: 1.5 * 1.0048828125 rounds to 1.5078125, where
    1.5 * bfloat16(1.0048828125) = 1.5 * 1.0078125 would round to 1.515625. A comparison rounds the number."""
    x = tg.tensor([1.5, 0.1], dtype=tg.bfloat16)
    t = torch.tensor([1.5, 0.1], dtype=torch.bfloat16)
    for op in (lambda a: a * 1.0048828125, lambda a: a + 0.0073, lambda a: 1.0048828125 * a, lambda a: a / 0.99,
               lambda a: a - 0.0073, lambda a: a == 0.1, lambda a: a > 0.1):
        assert op(x).tolist() == op(t).tolist()


# --- elementwise ops --------------------------------------------------------------------------------------------------
UNARY = {
    "exp": lambda lib, x: x.exp(), "exp2": lambda lib, x: x.exp2(), "expm1": lambda lib, x: x.expm1(),
    "tanh": lambda lib, x: x.tanh(), "sigmoid": lambda lib, x: x.sigmoid(), "relu": lambda lib, x: x.relu(),
    "gelu": lambda lib, x: lib.F.gelu(x), "gelu_tanh": lambda lib, x: lib.F.gelu(x, approximate="tanh"),
    "erf": lambda lib, x: lib.t.erf(x), "abs": lambda lib, x: x.abs(), "neg": lambda lib, x: -x,
    "sin": lambda lib, x: x.sin(), "cos": lambda lib, x: x.cos(), "square": lambda lib, x: x.square(),
    "floor": lambda lib, x: (x * 3).floor(), "ceil": lambda lib, x: (x * 3).ceil(),
    "round": lambda lib, x: (x * 3).round(), "trunc": lambda lib, x: (x * 3).trunc(), "frac": lambda lib, x: x.frac(),
    "clamp": lambda lib, x: x.clamp(-0.5, 0.7), "clamp_min": lambda lib, x: x.clamp_min(0.1),
    "pow2": lambda lib, x: x ** 2, "pow3": lambda lib, x: x ** 3, "rpow": lambda lib, x: 2 ** x,
    "sigmoid_chain": lambda lib, x: (x.exp() * 2.5 + 1).sigmoid(),  # a sigmoid near 1: its gradient rounds to 0
    "lerp": lambda lib, x: x.lerp(x * 3, 0.25), "addcmul": lambda lib, x: x.addcmul(x, x, value=0.5),
    "where": lambda lib, x: lib.t.where(x > 0, x, x * 2), "masked_fill": lambda lib, x: x.masked_fill(x < 0, 0.1),
    "maximum_scalar": lambda lib, x: x.maximum(lib.t.zeros_like(x)),
    "sign": lambda lib, x: x.sign(), "isfinite": lambda lib, x: x.isfinite(), "compare": lambda lib, x: x > 0.25,
}
POSITIVE = {
    "log": lambda lib, x: x.log(), "log2": lambda lib, x: x.log2(), "log1p": lambda lib, x: x.log1p(),
    "sqrt": lambda lib, x: x.sqrt(), "rsqrt": lambda lib, x: x.rsqrt(), "reciprocal": lambda lib, x: x.reciprocal(),
    "rdiv": lambda lib, x: 2.5 / x, "pow_half": lambda lib, x: x ** 0.5, "pow_neg": lambda lib, x: x ** -1.5,
}


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_unary(name, shape):
    compare_bf16(UNARY[name], randn(*shape))


@pytest.mark.parametrize("name", POSITIVE)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_unary_on_positive_numbers(name, shape):
    compare_bf16(POSITIVE[name], positive(*shape))


BINARY = {
    "add": lambda lib, a, b: a + b, "sub": lambda lib, a, b: a - b, "mul": lambda lib, a, b: a * b,
    "div": lambda lib, a, b: a / b, "pow": lambda lib, a, b: a.abs() ** b, "maximum": lambda lib, a, b: a.maximum(b),
    "minimum": lambda lib, a, b: a.minimum(b), "remainder": lambda lib, a, b: a % b,
    "fmod": lambda lib, a, b: a.fmod(b), "floor_divide": lambda lib, a, b: a // b,
    "div_floor": lambda lib, a, b: a.div(b, rounding_mode="floor"), "eq": lambda lib, a, b: a == b,
    "le": lambda lib, a, b: a <= b, "addcdiv": lambda lib, a, b: a.addcdiv(a, b, value=0.5),
}
BROADCAST_PAIRS = [((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((2, 3), (2, 3))]


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
def test_binary_with_broadcasting(name, shapes):
    a, b = randn(*shapes[0], seed=1), positive(*shapes[1], seed=2)  # b away from 0 for the divisions
    compare_bf16(BINARY[name], a, b, grad=name not in ("floor_divide", "div_floor"))


@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
def test_mixed_with_float32_promotes_and_the_bfloat16_side_gets_a_bfloat16_gradient(shapes):
    def mixed(lib, a, b):
        return a * b.float() + b.float().exp() * a
    compare_bf16(mixed, randn(*shapes[0], seed=1), randn(*shapes[1], seed=2))


# --- reductions -------------------------------------------------------------------------------------------------------
REDUCE = {
    "sum": lambda lib, x: x.sum(), "sum_dim": lambda lib, x: x.sum(-1), "sum_keepdim": lambda lib, x: x.sum(0, True),
    "mean": lambda lib, x: x.mean(), "mean_dim": lambda lib, x: x.mean(-1),
    "var": lambda lib, x: x.var(), "var_dim": lambda lib, x: x.var(-1, keepdim=True),
    "var_population": lambda lib, x: x.var(0, correction=0), "std": lambda lib, x: x.std(),
    "std_dim": lambda lib, x: x.std(-1), "amax": lambda lib, x: x.amax(-1), "amin": lambda lib, x: x.amin(),
    "max_dim": lambda lib, x: x.max(-1), "min_dim": lambda lib, x: x.min(0),
    "argmax": lambda lib, x: x.argmax(-1), "logsumexp": lambda lib, x: x.logsumexp(-1),
    "softmax": lambda lib, x: x.softmax(-1), "softmax_first": lambda lib, x: x.softmax(0),
    "log_softmax": lambda lib, x: x.log_softmax(-1), "cumsum": lambda lib, x: x.cumsum(-1),
    "norm": lambda lib, x: x.norm(), "norm_dim": lambda lib, x: x.norm(dim=-1), "norm_1": lambda lib, x: x.norm(1),
    "norm_3": lambda lib, x: x.norm(3, dim=0), "norm_inf": lambda lib, x: x.norm(float("inf")),
    "topk": lambda lib, x: x.topk(2, -1)[0],
    "sort": lambda lib, x: x.sort(dim=-1, stable=True)[0],  # rounding makes ties: stable, to order them alike
}


@pytest.mark.parametrize("name", REDUCE)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 40)], ids=str)
def test_reductions(name, shape):
    compare_bf16(REDUCE[name], randn(*shape))


def test_sums_accumulate_in_float32():
    """4096 ones plus small numbers: a running bfloat16 sum would stop growing at 256 (256 + 1 rounds to 256)."""
    values = np.ones(4096) + rng(0).uniform(0, 0.01, 4096)
    compare_bf16(lambda lib, x: (x.sum(), x.mean(), x.cumsum(0)[-1], x.norm(1)), values)


# --- products and the fused nn ops ----------------------------------------------------------------------------------
MATMUL_SHAPES = [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)),
                 ((2, 1, 3, 4), (3, 4, 2))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes):
    compare_bf16(lambda lib, a, b: a @ b, randn(*shapes[0], seed=1), randn(*shapes[1], seed=2))


def test_mm_bmm_and_einsum():
    a, b = randn(2, 3, 8, seed=1), randn(2, 8, 5, seed=2)
    compare_bf16(lambda lib, x, y: (x.bmm(y), x[0].mm(y[0])), a, b)
    for equation, operands in (("bij,bjk->bik", (a, b)), ("bij->bj", (a,)), ("ij,kj->ik", (a[0], a[1])),
                               ("ii", (randn(4, 4),)), ("i,i->", (randn(6, seed=3), randn(6, seed=4)))):
        compare_bf16(lambda lib, *xs: lib.t.einsum(equation, *xs), *operands)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 8), (2, 3, 8)], ids=str)
def test_linear(bias, shape):
    arrays = [randn(*shape), randn(6, 8, seed=1)] + ([randn(6, seed=2)] if bias else [])
    compare_bf16(lambda lib, x, w, *b: lib.F.linear(x, w, *b), *arrays)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape, normalized", [((4, 16), (16,)), ((2, 3, 8), (3, 8))], ids=str)
def test_layer_norm(affine, shape, normalized):
    arrays = [randn(*shape) * 3 + 1] + ([randn(*normalized, seed=1), randn(*normalized, seed=2)] if affine else [])
    compare_bf16(lambda lib, x, *wb: lib.F.layer_norm(x, normalized, *wb), *arrays)


def test_layer_norm_of_bfloat16_with_float32_parameters_is_bfloat16():
    """PyTorch's CPU layer_norm takes a bfloat16 input with float32 weight and bias (what autocast on the CPU
    leaves it): the result is bfloat16, the parameters' gradients float32."""
    x, w, b = randn(4, 8), randn(8, seed=1), randn(8, seed=2)
    results = []
    for lib, F in ((tg, tg.nn.functional), (torch, torch.nn.functional)):
        xs = lib.tensor(x.astype(np.float32)).bfloat16().requires_grad_()
        ws, bs = (lib.tensor(a.astype(np.float32), requires_grad=True) for a in (w, b))
        out = F.layer_norm(xs, (8,), ws, bs)
        (out.float() * lib.tensor(randn(4, 8, seed=3).astype(np.float32))).sum().backward()
        results.append((out, xs.grad, ws.grad, bs.grad))
    for ours, theirs in zip(*results):
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
        assert_close_bf16(ours, theirs)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy(reduction, label_smoothing):
    target = rng(3).integers(0, 11, size=9)
    target[[2, 5]] = -100  # ignored rows
    compare_bf16(lambda lib, x, t: lib.F.cross_entropy(x, t, reduction=reduction, label_smoothing=label_smoothing),
                 randn(9, 11) * 2, target)


def test_cross_entropy_with_probabilities_and_extra_dims():
    probabilities = rng(4).dirichlet(np.ones(5), size=6)
    compare_bf16(lambda lib, x, p: lib.F.cross_entropy(x, p), randn(6, 5), probabilities)
    compare_bf16(lambda lib, x, t: lib.F.cross_entropy(x, t), randn(2, 5, 3), rng(5).integers(0, 5, size=(2, 3)))


@pytest.mark.parametrize("mask", ["none", "causal", "bool", "float"])
def test_scaled_dot_product_attention(mask):
    q, k, v = randn(2, 2, 6, 8, seed=1), randn(2, 2, 6, 8, seed=2), randn(2, 2, 6, 8, seed=3)
    arrays = [q, k, v]
    if mask == "bool":
        arrays.append((rng(6).random((6, 6)) > 0.3) | np.eye(6, dtype=bool))
    if mask == "float":
        arrays.append(randn(6, 6, seed=7))

    def attention(lib, q, k, v, *masks):
        return lib.F.scaled_dot_product_attention(q, k, v, *masks, is_causal=mask == "causal")
    compare_bf16(attention, *arrays)


def test_embedding_gets_a_bfloat16_table_gradient():
    ids = rng(0).integers(0, 10, size=(3, 7))  # repeated ids: their rows' gradients add up
    compare_bf16(lambda lib, table, i: lib.F.embedding(i, table), randn(10, 4), ids)


FUSED = {
    "layer_norm": (lambda lib, x, w, b: lib.F.layer_norm(x, (16,), w, b), "layer_norm_forward"),
    "softmax": (lambda lib, x, w, b: x.softmax(-1), "softmax_forward"),
    "log_softmax": (lambda lib, x, w, b: x.log_softmax(-1), "softmax_forward"),
    "gelu": (lambda lib, x, w, b: lib.F.gelu(x), "gelu_forward"),
    "gelu_tanh": (lambda lib, x, w, b: lib.F.gelu(x, approximate="tanh"), "gelu_forward"),
    "cross_entropy": (lambda lib, x, w, b: lib.F.cross_entropy(x, (x.detach() > 0).long().sum(-1)),
                      "cross_entropy_forward"),
}


@pytest.mark.parametrize("name", FUSED)
def test_fused_ops_hand_bfloat16_to_the_gpu_kernels(monkeypatch, name):
    """On a GPU the fused ops' kernels read bfloat16 and compute in float32 themselves: the op is not widened
    first. A CPU-backed stand-in GPU runs the real kernels through the CPU executor of the kernel tests."""
    executor = pytest.importorskip("cuda_cpu.executor")
    if executor.COMPILER is None:
        pytest.skip("needs a C++ compiler (g++) for the CPU executor")
    from cuda_cpu.executed_kernels import ExecutedKernels
    from tinygrad_tx import backend
    from tinygrad_tx.backend.numpy_backend import NumpyBackend
    fake = NumpyBackend()
    fake.device, fake.kernels = "cuda:6", ExecutedKernels()
    monkeypatch.setitem(backend._backends, "cuda:6", fake)
    seen = []
    supports = fake.kernels.supports
    monkeypatch.setattr(fake.kernels, "supports", lambda *arrays: seen.extend(
        a.dtype.name for a in arrays if a is not None) or supports(*arrays))
    fn, kernel = FUSED[name]
    compare_bf16(fn, randn(6, 16) * 2, randn(16, seed=1), randn(16, seed=2), device="cuda:6")
    assert fake.kernels.calls[kernel] == 1 and set(seen) == {"bfloat16"}


# --- movement and indexing: values move exactly -----------------------------------------------------------------------
MOVEMENT = {
    "reshape_permute": lambda lib, x: x.reshape(4, 6).permute(1, 0),
    "transpose_contiguous": lambda lib, x: x.transpose(0, 2).contiguous(),
    "basic_getitem": lambda lib, x: x[1, :, ::2], "advanced_getitem": lambda lib, x: x[:, [0, 2, 2]],
    "mask_getitem": lambda lib, x: x[x > 0], "cat": lambda lib, x: lib.t.cat([x, x * 2], 1),
    "stack": lambda lib, x: lib.t.stack([x, x], 0), "gather": lambda lib, x: x.gather(2, lib.t.zeros_like(x).long()),
    "index_select": lambda lib, x: x.index_select(1, lib.t.tensor([2, 0, 2])),
    "flip": lambda lib, x: x.flip(0, 2), "roll": lambda lib, x: x.roll(1, 2), "tril": lambda lib, x: x.tril(),
    "expand": lambda lib, x: x[:, :1].expand(2, 3, 4), "repeat": lambda lib, x: x.repeat(1, 2, 1),
    "split": lambda lib, x: x.split(2, -1), "unbind": lambda lib, x: x.unbind(1),
    "clone": lambda lib, x: x.clone(), "masked_select": lambda lib, x: x.masked_select(x > 0),
}


@pytest.mark.parametrize("name", MOVEMENT)
def test_movement_and_indexing(name):
    compare_bf16(MOVEMENT[name], randn(2, 3, 4))


def test_setitem_and_in_place_ops():
    def edited(lib, x, y):
        z = x * 1
        z[0] = y[0] * 2
        z[:, 1] += 0.5
        z.mul_(y).exp_()
        return z
    compare_bf16(edited, randn(3, 4, seed=1), randn(3, 4, seed=2))


def test_a_view_of_a_bfloat16_tensor_shares_its_memory():
    x = tg.zeros(2, 3, dtype=tg.bfloat16)
    x[0].fill_(1.5)
    x.view(6)[-1] = 2.0
    assert x.tolist() == [[1.5, 1.5, 1.5], [0.0, 0.0, 2.0]]


# --- the graph: float32 inside, bfloat16 outside ----------------------------------------------------------------------
def test_an_in_place_edit_of_a_saved_bfloat16_tensor_is_caught():
    """The op saves its float32 copy of x, but that copy shares x's version counter: editing x still fails."""
    x = tg.randn(3, dtype=tg.bfloat16, requires_grad=True)
    y = x * 1
    z = y * y
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified in place"):
        z.sum().backward()
    out = x.exp()  # an op that saves its output: the output edited in place
    out.mul_(2)
    with pytest.raises(RuntimeError, match="modified in place"):
        out.sum().backward()


def test_second_derivatives():
    compare_bf16(lambda lib, x: _first_derivative(lib, x), randn(5))


def _first_derivative(lib, x):
    y = (x * x * x).sum()
    (grad,) = (tg.autograd.grad if lib is TG else torch.autograd.grad)(y, x, create_graph=True)
    return grad


def test_an_op_the_array_library_cannot_run_names_itself(monkeypatch):
    """Ops that move values read the bfloat16 arrays as they are; where the array library refuses one (CuPy
    before version 14 refuses bfloat16 arrays), the error names the op and says to cast to float32."""
    x = tg.randn(2, 3, dtype=tg.bfloat16)
    backend = x.backend

    def refuse(arrays, axis):
        raise TypeError("Unsupported dtype bfloat16")
    monkeypatch.setattr(backend, "concatenate", refuse)
    with pytest.raises(TypeError, match=r"Cat: numpy cannot run this op on bfloat16 tensors \(bfloat16 \(2, 3\), "
                                        r"bfloat16 \(2, 3\)\).*Cast to float32 first"):
        tg.cat([x, x])


# --- autocast ---------------------------------------------------------------------------------------------------------
def _autocast_dtypes(lib, device_type, fast_dtype):
    F = lib.nn.functional
    x = lib.ones(4, 8)
    half = lib.ones(4, 8).to(fast_dtype)
    weight, bias = lib.ones(8), lib.ones(8)
    target = lib.zeros(4, dtype=lib.long)
    with lib.autocast(device_type, dtype=fast_dtype):
        results = [F.linear(x, lib.ones(3, 8)), x @ x.T, lib.bmm(x[None], x.T[None]), lib.einsum("ij,kj->ik", x, x),
                   F.scaled_dot_product_attention(x[None], x[None], x[None]), x.softmax(-1), half.softmax(-1),
                   half.log_softmax(-1), F.layer_norm(x, (8,), weight, bias), F.layer_norm(half, (8,), weight, bias),
                   F.cross_entropy(x, target), F.cross_entropy(half, target), half.sum(), half.mean(), F.gelu(half),
                   x + half, lib.cat([x, half]), x.exp()]
    return [str(r.dtype).split(".")[-1] for r in results]


@pytest.mark.parametrize("fast_dtype", ["bfloat16", "float16"])
def test_autocast_on_the_cpu_follows_torchs_cpu_lists(fast_dtype):
    assert _autocast_dtypes(tg, "cpu", getattr(tg, fast_dtype)) == \
        _autocast_dtypes(torch, "cpu", getattr(torch, fast_dtype))


def test_autocast_on_a_gpu_runs_softmax_and_layer_norm_in_float32(second_device):
    """The CUDA lists, on a CPU-backed stand-in device named cuda:7."""
    half = tg.ones(4, 8, device=second_device).bfloat16()
    weight = tg.ones(8, device=second_device)
    with tg.autocast("cuda", dtype=tg.bfloat16):
        assert half.softmax(-1).dtype is half.log_softmax(-1).dtype is tg.float32
        assert tg.nn.functional.layer_norm(half, (8,), weight, weight).dtype is tg.float32
        assert (half.float() @ half.float().T).dtype is tg.bfloat16
    with tg.autocast("cpu", dtype=tg.bfloat16):  # a CPU region leaves the GPU alone
        assert (half.float() @ half.float().T).dtype is tg.float32


def test_autocast_bfloat16_keeps_float32_master_weights_and_their_gradients():
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.LayerNorm(16),
                                    torch.nn.Linear(16, 5))
    model = tg.nn.Sequential(tg.nn.Linear(8, 16), tg.nn.GELU(), tg.nn.LayerNorm(16), tg.nn.Linear(16, 5))
    model.load_state_dict({k: tg.tensor(v.detach().numpy()) for k, v in reference.state_dict().items()})
    x, target = randn(6, 8).astype(np.float32), rng(1).integers(0, 5, size=6)
    losses = []
    for lib, net in ((tg, model), (torch, reference)):
        with lib.autocast("cpu", dtype=lib.bfloat16):
            logits = net(lib.tensor(x))
            loss = lib.nn.functional.cross_entropy(logits, lib.tensor(target))
        assert str(logits.dtype).endswith("bfloat16") and str(loss.dtype).endswith("float32")
        loss.backward()
        losses.append(loss)
    assert_close_bf16(losses[0], losses[1])
    for (name, ours), theirs in zip(model.named_parameters(), reference.parameters()):
        assert ours.dtype is tg.float32 and ours.grad.dtype is tg.float32, name
        assert_close_bf16(ours.grad, theirs.grad, name, scale_ulps=2)


def test_a_grad_scaler_with_bfloat16_autocast_is_harmless():
    """bfloat16 needs no loss scaling, but a training loop written for float16 keeps working: the scaled
    gradients are unscaled exactly (the scale is a power of two) and the step is the one without the scaler."""
    results = []
    for scaler in (None, tg.amp.GradScaler("cpu", init_scale=1024.0)):
        tg.manual_seed(0)
        layer = tg.nn.Linear(8, 4)
        optimizer = tg.optim.SGD(layer.parameters(), lr=0.1)
        with tg.autocast("cpu", dtype=tg.bfloat16):
            loss = layer(tg.ones(3, 8)).float().pow(2).mean()
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            assert scaler.get_scale() == 1024.0
        results.append(layer.weight.detach().numpy().copy())
    np.testing.assert_array_equal(results[0], results[1])


def test_autocast_without_ml_dtypes_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(dtypes, "ml_dtypes", None)
    with pytest.raises(ImportError, match=r'pip install "tinygrad_tx\[bf16\]"'):
        tg.autocast("cpu", dtype=tg.bfloat16)
    with pytest.raises(ImportError, match="ml_dtypes"):
        tg.autocast("cpu")  # the CPU's default dtype is bfloat16, as PyTorch's
    assert tg.autocast("cpu", enabled=False).fast_dtype is tg.bfloat16  # a disabled region needs nothing
    assert tg.autocast("cpu", dtype=tg.float16).fast_dtype is tg.float16
    with pytest.raises(ValueError, match=r"--dtype bfloat16: .*tinygrad_tx\[bf16\]"):
        from tinygrad_tx.amp.precision import Precision
        Precision("bfloat16", "cpu")


# --- saving -----------------------------------------------------------------------------------------------------------
def test_save_and_load_keep_bfloat16_bits(tmp_path):
    """tinygrad_tx.save stores tensors as safetensors, where BF16 is bfloat16's own bits (round trips against
    safetensors.torch are in test_serialization.py)."""
    state = tg.nn.Linear(3, 2).bfloat16().state_dict()
    tg.save(state, tmp_path / "m.pt")
    loaded = tg.load(tmp_path / "m.pt")
    assert list(loaded) == list(state)
    for name, tensor in state.items():
        assert loaded[name].dtype is tg.bfloat16
        assert loaded[name].numpy().tobytes() == tensor.detach().numpy().tobytes()


# --- training ---------------------------------------------------------------------------------------------------------
def _train_losses(tmp_path, dtype, **overrides):
    from test_train import small_config
    from tinygrad_tx.trainer import Trainer, read_metrics
    config = small_config(tmp_path / dtype, dtype=dtype, **overrides)
    Trainer(config).train()
    return read_metrics(config.out_dir)


def test_bfloat16_training_tracks_float32(tmp_path):
    """A few dozen steps of a tiny GPT: the bfloat16 run's losses follow the float32 run's (same seed, batches)."""
    settings = dict(max_iters=40, eval_interval=40, log_interval=1, dropout=0.0, learning_rate=3e-3)
    full, half = (_train_losses(tmp_path, dtype, **settings) for dtype in ("float32", "bfloat16"))
    full_steps = np.array([r["train_loss"] for r in full if r["val_loss"] is None])
    half_steps = np.array([r["train_loss"] for r in half if r["val_loss"] is None])
    assert len(full_steps) == len(half_steps) == 40
    assert full_steps[-1] < full_steps[0] - 0.5  # it learned
    assert np.abs(half_steps - full_steps).max() < 0.05
    assert abs(full[-1]["val_loss"] - half[-1]["val_loss"]) < 0.05


def test_bfloat16_training_resumes_exactly(tmp_path, monkeypatch):
    """A bfloat16 run interrupted and resumed logs the losses of the uninterrupted one: the checkpoint holds the
    float32 master weights and optimizer state, and no loss scale (bfloat16 has none)."""
    from test_train import small_config
    from tinygrad_tx.trainer import Trainer, read_metrics
    Trainer(small_config(tmp_path / "straight", dtype="bfloat16")).train()
    interrupted = Trainer(small_config(tmp_path / "resumed", dtype="bfloat16"))
    step = interrupted.train_step

    def step_then_stop(iteration):
        result = step(iteration)
        interrupted._stop_requested = iteration == 16
        return result
    monkeypatch.setattr(interrupted, "train_step", step_then_stop)
    interrupted.train()
    assert all(p.dtype is tg.float32 for p in interrupted.model.parameters())
    Trainer(small_config(tmp_path / "resumed", dtype="bfloat16"), resume=True).train(resumed=True)
    straight, resumed = read_metrics(tmp_path / "straight"), read_metrics(tmp_path / "resumed")
    assert [(r["iter"], r["train_loss"], r["val_loss"]) for r in straight] == \
           [(r["iter"], r["train_loss"], r["val_loss"]) for r in resumed]
    assert all(math.isfinite(r["train_loss"]) for r in straight)
