"""Elementwise ops against PyTorch: values, gradients, broadcasting, scalars and dtype promotion."""
import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from conftest import TG, assert_close, compare, gradcheck, randn, rng

BROADCAST_PAIRS = [((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((5, 1), (1, 5)), ((2, 3), (2, 3))]

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a.abs() ** b,
    "maximum": lambda a, b: a.maximum(b),
    "minimum": lambda a, b: a.minimum(b),
}


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
def test_binary_broadcasting(name, shapes, device):
    a, b = randn(*shapes[0], seed=1), randn(*shapes[1], seed=2)
    if name in ("div", "pow"):
        b = np.abs(b) + 0.5  # keep away from 0 for div, and from huge values for pow
    op = BINARY[name]
    compare(lambda lib, x, y: op(x, y), a, b, device=device)
    compare(lambda lib, x, y: op(y, x) if name != "pow" else y.abs() ** x, a, b, device=device)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_float_dtypes(dtype):
    a, b = randn(3, 4, dtype=dtype, seed=1), randn(4, dtype=dtype, seed=2)
    compare(lambda lib, x, y: (x * y + x) / (y * y + 1) - y, a, b)


@pytest.mark.parametrize("scalar", [2, 2.5, -1.5, 0])
def test_python_scalars_and_reflected_forms(scalar):
    a = randn(3, 4)
    compare(lambda lib, x: x + scalar, a)
    compare(lambda lib, x: scalar + x, a)
    compare(lambda lib, x: x - scalar, a)
    compare(lambda lib, x: scalar - x, a)
    compare(lambda lib, x: x * scalar, a)
    compare(lambda lib, x: scalar * x, a)
    if scalar != 0:
        compare(lambda lib, x: x / scalar, a)
    compare(lambda lib, x: scalar / (x.abs() + 1), a)
    compare(lambda lib, x: -x, a)


@pytest.mark.parametrize("exponent", [0, 1, 2, 3, -1, 0.5, 2.5, -2])
def test_tensor_pow_scalar(exponent):
    a = np.abs(randn(3, 4)) + 0.1
    compare(lambda lib, x: x ** exponent, a)
    compare(lambda lib, x: x.pow(exponent), a)


def test_pow_scalar_negative_base_integer_exponent():
    a = randn(3, 4)
    compare(lambda lib, x: x ** 3, a)
    compare(lambda lib, x: x ** 2, a)
    compare(lambda lib, x: x ** -1, a)


@pytest.mark.parametrize("base", [2, 0.5, 3.0])
def test_scalar_pow_tensor(base):
    compare(lambda lib, x: base ** x, randn(3, 4))


def test_tensor_pow_tensor_with_zero_base():
    # d(a^b)/db at a == 0 is 0 in PyTorch (not NaN from log 0)
    a = np.array([0.0, 1.5, 2.0, 0.0])
    b = np.array([2.0, 1.0, 0.5, 3.0])
    compare(lambda lib, x, y: x ** y, a, b)


UNARY = {
    "exp": (lambda x: x.exp(), None),
    "log": (lambda x: x.log(), "positive"),
    "sqrt": (lambda x: x.sqrt(), "positive"),
    "rsqrt": (lambda x: x.rsqrt(), "positive"),
    "tanh": (lambda x: x.tanh(), None),
    "sigmoid": (lambda x: x.sigmoid(), None),
    "relu": (lambda x: x.relu(), None),
    "abs": (lambda x: x.abs(), None),
    "sin": (lambda x: x.sin(), None),
    "cos": (lambda x: x.cos(), None),
    "neg": (lambda x: -x, None),
    "square": (lambda x: x.square(), None),
    "erf": (lambda x: x.erf(), None),
}


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unary(name, dtype, device):
    op, domain = UNARY[name]
    a = randn(4, 5, dtype=dtype)
    if domain == "positive":
        a = np.abs(a) + 0.1
    compare(lambda lib, x: op(x), a, device=device)


@pytest.mark.parametrize("name", UNARY)
def test_unary_gradcheck(name):
    op, domain = UNARY[name]
    a = randn(3, 4) + (0.0 if domain is None else 0)
    a = np.abs(a) + 0.1 if domain == "positive" else a
    gradcheck(op, a)


@pytest.mark.parametrize("name", BINARY)
def test_binary_gradcheck(name):
    a, b = randn(2, 3, seed=1), randn(3, seed=2)
    b = np.abs(b) + 0.5 if name in ("div", "pow") else b
    gradcheck(BINARY[name], a, b)


def test_unary_functional_spellings():
    a = randn(3, 3)
    compare(lambda lib, x: lib.t.exp(lib.t.tanh(x)) + lib.t.sigmoid(x) + lib.t.relu(x) + lib.t.abs(x), a)


def test_sigmoid_extreme_inputs_do_not_overflow():
    a = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    compare(lambda lib, x: x.sigmoid(), a)
    compare(lambda lib, x: x.tanh(), a)


def test_relu_and_abs_gradient_at_zero():
    a = np.array([-1.0, 0.0, 2.0])
    compare(lambda lib, x: x.relu(), a)
    compare(lambda lib, x: x.abs(), a)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gelu(approximate, dtype):
    a = randn(4, 6, dtype=dtype) * 3
    compare(lambda lib, x: lib.F.gelu(x, approximate=approximate), a)
    compare(lambda lib, x: x.gelu(approximate) if lib is TG else lib.F.gelu(x, approximate=approximate), a)


@pytest.mark.parametrize("bounds", [(-0.5, 0.5), (None, 0.3), (-0.2, None), (0.0, 0.0)])
def test_clamp(bounds):
    low, high = bounds
    # include values exactly on the bounds: the gradient passes there, as in PyTorch
    a = np.concatenate([randn(10), [-0.5, 0.5, 0.3, -0.2, 0.0]])
    compare(lambda lib, x: x.clamp(low, high), a)
    compare(lambda lib, x: x.clamp(min=low, max=high), a)


def test_clamp_with_tensor_bounds():
    a, low, high = randn(6, seed=1), randn(6, seed=2) - 1, randn(6, seed=3) + 1
    compare(lambda lib, x, lo, hi: x.clamp(lo, hi), a, low, high)


def test_maximum_minimum_ties_split_gradient():
    a = np.array([1.0, 2.0, 3.0, 2.0])
    b = np.array([1.0, 1.0, 4.0, 2.0])
    compare(lambda lib, x, y: x.maximum(y), a, b)
    compare(lambda lib, x, y: x.minimum(y), a, b)
    compare(lambda lib, x, y: lib.t.maximum(x, y) * 3 + lib.t.minimum(x, y), a, b)


def test_maximum_ties_with_broadcasting():
    a = np.array([[1.0, 2.0], [2.0, 0.0]])
    b = np.array([2.0, 2.0])
    compare(lambda lib, x, y: x.maximum(y), a, b)


def test_where():
    a, b = randn(3, 4, seed=1), randn(3, 4, seed=2)
    cond = rng(3).random((3, 4)) > 0.5
    compare(lambda lib, c, x, y: lib.t.where(c, x, y), cond, a, b)
    compare(lambda lib, c, x, y: lib.t.where(c, x, 0.5), cond, a, b)
    compare(lambda lib, c, x, y: lib.t.where(c, 2.0, y), cond, a, b)


def test_where_broadcasts_all_three():
    a, b = randn(3, 1, seed=1), randn(4, seed=2)
    cond = rng(3).random((2, 1, 1)) > 0.5
    compare(lambda lib, c, x, y: lib.t.where(c, x, y), cond, a, b)


def test_masked_fill():
    a = randn(3, 4)
    mask = rng(3).random((3, 4)) > 0.5
    compare(lambda lib, x, m: x.masked_fill(m, -1.5), a, mask)
    row_mask = rng(4).random((4,)) > 0.5
    compare(lambda lib, x, m: x.masked_fill(m, 0.0) * 2, a, row_mask)


def test_masked_fill_with_tensor_value():
    a = randn(3, 4)
    mask = rng(3).random((3, 4)) > 0.5
    compare(lambda lib, x, m: x.masked_fill(m, lib.t.tensor(7.0, dtype=x.dtype)), a, mask)


# --- dtype promotion ------------------------------------------------------------------------------------
def _dtype_name(t):
    return str(t.dtype).split(".")[-1]


PROMOTION_CASES = [
    (np.int64, 2.5, "mul"),
    (np.int64, 2, "mul"),
    (np.int32, 2, "add"),
    (np.int32, 2.0, "add"),
    (np.bool_, 1, "add"),
    (np.bool_, 1.5, "mul"),
    (np.float32, 2, "mul"),
    (np.float64, 2.5, "mul"),
    (np.int64, 2, "div"),
    (np.int32, 2, "div"),
    (np.float64, 2, "div"),
]


@pytest.mark.parametrize("dtype, scalar, op", PROMOTION_CASES, ids=str)
def test_scalar_promotion(dtype, scalar, op):
    array = np.array([[1, 0, 3]], dtype=dtype)
    ops = {"mul": lambda x: x * scalar, "add": lambda x: x + scalar, "div": lambda x: x / scalar}
    ours = ops[op](tg.tensor(array))
    theirs = ops[op](torch.tensor(array))
    assert _dtype_name(ours) == _dtype_name(theirs)
    assert_close(ours, theirs)


TENSOR_PROMOTION = [
    ((np.float32, (3,)), (np.float64, (3,))),
    ((np.int32, (3,)), (np.int64, (3,))),
    ((np.int64, (3,)), (np.float32, (3,))),
    ((np.int64, (3,)), (np.int64, (3,))),
    ((np.bool_, (3,)), (np.int32, (3,))),
    ((np.bool_, (3,)), (np.bool_, (3,))),
    # 0-d tensors only count when they are of a higher category
    ((np.float32, (3,)), (np.float64, ())),
    ((np.int32, (3,)), (np.int64, ())),
    ((np.int64, (3,)), (np.float64, ())),
    ((np.float16, (3,)), (np.float64, ())),
    ((np.float32, ()), (np.float64, ())),
    ((np.int64, ()), (np.float32, (3,))),
]


@pytest.mark.parametrize("left, right", TENSOR_PROMOTION, ids=str)
@pytest.mark.parametrize("op", ["add", "mul", "div", "sub"])
def test_tensor_promotion(left, right, op):
    (dtype_a, shape_a), (dtype_b, shape_b) = left, right
    a = (rng(1).random(shape_a) * 4 + 1).astype(dtype_a)
    b = (rng(2).random(shape_b) * 4 + 1).astype(dtype_b)
    if op == "sub" and np.bool_ in (dtype_a, dtype_b):  # both refuse - on a bool tensor
        for x, y in ((a, b), (b, a)):
            with pytest.raises(RuntimeError):
                torch.tensor(x) - torch.tensor(y)
            with pytest.raises(RuntimeError, match="sub.*bool"):
                tg.tensor(x) - tg.tensor(y)
        return
    ops = {"add": lambda x, y: x + y, "mul": lambda x, y: x * y, "div": lambda x, y: x / y,
           "sub": lambda x, y: x - y}
    for x, y in ((a, b), (b, a)):
        ours = ops[op](tg.tensor(x), tg.tensor(y))
        theirs = ops[op](torch.tensor(x), torch.tensor(y))
        assert _dtype_name(ours) == _dtype_name(theirs), (x.dtype, y.dtype, op)
        assert_close(ours, theirs, rtol=1e-3, atol=1e-3)


def test_int_divided_by_int_is_float32():
    ours = tg.tensor([1, 2, 3]) / tg.tensor([2, 2, 2])
    assert ours.dtype is tg.float32
    np.testing.assert_allclose(ours.numpy(), [0.5, 1.0, 1.5])


def test_mixed_float_gradients_come_back_in_each_input_dtype():
    x = tg.tensor(randn(3, dtype=np.float32), requires_grad=True)
    y = tg.tensor(randn(3, seed=2), requires_grad=True)
    (x * y).sum().backward()
    assert x.grad.dtype is tg.float32 and y.grad.dtype is tg.float64
    tx = torch.tensor(randn(3, dtype=np.float32), requires_grad=True)
    ty = torch.tensor(randn(3, seed=2), requires_grad=True)
    (tx * ty).sum().backward()
    assert_close(x.grad, tx.grad)
    assert_close(y.grad, ty.grad)


def test_int_tensor_math_functions_return_float32():
    x = tg.tensor([1, 2, 4])
    for name in ("exp", "log", "sqrt", "tanh", "sigmoid", "sin", "cos"):
        ours, theirs = getattr(x, name)(), getattr(torch.tensor([1, 2, 4]), name)()
        assert ours.dtype is tg.float32, name
        assert_close(ours, theirs)


# --- comparisons --------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparisons_return_bool_without_grad(op):
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    b = np.array([2.0, 2.0, 2.0])
    x = tg.tensor(a, requires_grad=True)
    ours = getattr(x, op)(tg.tensor(b))
    theirs = getattr(torch.tensor(a), op)(torch.tensor(b))
    assert ours.dtype is tg.bool
    assert not ours.requires_grad and ours.grad_fn is None
    assert_close(ours, theirs)
    assert_close(getattr(x, op)(2.0), getattr(torch.tensor(a), op)(2.0))


def test_comparison_operators():
    a = tg.tensor([1, 2, 3])
    assert (a == 2).tolist() == [False, True, False]
    assert (a != 2).tolist() == [True, False, True]
    assert (a < 2).tolist() == [True, False, False]
    assert (a >= 2).tolist() == [False, True, True]
    assert (2 < a).tolist() == [False, False, True]
    assert ((a > 1) & (a < 3)).tolist() == [False, True, False]
    assert (~(a > 1)).tolist() == [True, False, False]


def test_int_tensor_times_float_gives_float32_values():
    out = tg.tensor([1, 2, 3]) * 2.5
    assert out.dtype is tg.float32
    assert out.tolist() == [2.5, 5.0, 7.5]


def test_unary_ops_on_0d_tensors():
    a = np.array(0.3)
    compare(lambda lib, x: x.erf() + lib.F.gelu(x) + lib.F.gelu(x, approximate="tanh") + x.exp() + x.sigmoid(), a)


def test_clamp_of_an_int_tensor():
    for bounds in ((0, 3), (0, 2.5), (None, 1.5), (-1, None)):
        ours, theirs = tg.tensor([1, 5, -2]).clamp(*bounds), torch.tensor([1, 5, -2]).clamp(*bounds)
        assert _dtype_name(ours) == _dtype_name(theirs), bounds
        assert_close(ours, theirs)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_inputs_pass_their_gradient_on():
    # a NaN must show in the gradient, not be silently cut off by a false comparison
    a = np.array([np.nan, 1.0, 2.0, np.nan])
    b = np.array([1.0, np.nan, 2.0, np.nan])
    compare(lambda lib, x: x.relu(), a)
    compare(lambda lib, x, y: x.maximum(y), a, b)
    compare(lambda lib, x, y: x.minimum(y), a, b)


# --- //, % and fmod: floor semantics for negatives, integer and float dtypes -------------------------------------------
DIVIDENDS = np.array([[-7.5, -7.0, -0.5, 0.0, 3.25, 7.0]])
DIVISORS = np.array([[2.0], [-2.0], [0.75], [-3.5]])  # broadcast: every dividend against every divisor


@pytest.mark.parametrize("op", ["floor_divide", "remainder", "fmod", "div_floor", "div_trunc"])
def test_division_ops_float(op, device):
    ops = {"floor_divide": lambda x, y: x // y, "remainder": lambda x, y: x % y, "fmod": lambda x, y: x.fmod(y),
           "div_floor": lambda x, y: x.div(y, rounding_mode="floor"),
           "div_trunc": lambda x, y: x.div(y, rounding_mode="trunc")}
    fn = ops[op]
    # PyTorch's // has no backward at all; its div(rounding_mode="floor") has a zero gradient, as our // does
    compare(lambda lib, x, y: fn(x, y), DIVIDENDS, DIVISORS, device=device, grad=op not in ("floor_divide",))
    compare(lambda lib, x, y: fn(x, y), DIVIDENDS.astype(np.float32), DIVISORS.astype(np.float32), device=device,
            grad=op not in ("floor_divide",))


def test_floor_divide_has_a_zero_gradient():
    a = tg.tensor(DIVIDENDS, requires_grad=True)
    b = tg.tensor(DIVISORS, requires_grad=True)
    out = a // b
    assert out.requires_grad and out.grad_fn.name == "FloorDivide"
    (out * 3).sum().backward()
    assert a.grad.tolist() == np.zeros_like(DIVIDENDS).tolist()
    assert b.grad.tolist() == np.zeros_like(DIVISORS).tolist()


@pytest.mark.parametrize("op", ["floor_divide", "remainder", "fmod", "div_trunc", "div_floor"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_division_ops_int(op, dtype):
    ops = {"floor_divide": lambda x, y: x // y, "remainder": lambda x, y: x % y, "fmod": lambda x, y: x.fmod(y),
           "div_trunc": lambda x, y: x.div(y, rounding_mode="trunc"),
           "div_floor": lambda x, y: x.div(y, rounding_mode="floor")}
    a = np.array([[-7, -6, -1, 0, 1, 6, 7]], dtype=dtype)
    b = np.array([[2], [-2], [3], [-5]], dtype=dtype)
    compare(lambda lib, x, y: ops[op](x, y), a, b)
    compare(lambda lib, x: ops[op](x, 3), a)
    compare(lambda lib, x: ops[op](x, -3), a)
    compare(lambda lib, x: ops[op](x, 2.5), a)  # a float divisor: a float32 result


@pytest.mark.parametrize("scalar", [7, -7, 7.5, -0.5])
def test_reflected_floor_divide_and_remainder(scalar):
    b = np.array([2.3, -3.1, 1.7, -0.45])  # no quotient is an integer: % jumps there
    compare(lambda lib, y: scalar // y, b, grad=False)
    compare(lambda lib, y: scalar % y, b, grad=False)  # PyTorch has no backward for number % tensor
    gradcheck(lambda y: scalar % y, b)  # ours: d(s % y)/dy = -floor(s / y), as for tensor % tensor
    compare(lambda lib, y: scalar // y, np.array([2, -3, 4, -5]))
    compare(lambda lib, y: scalar % y, np.array([2, -3, 4, -5]))


def test_division_ops_on_0d_and_empty_tensors():
    compare(lambda lib, x, y: x % y + x.fmod(y), np.array(-7.5), np.array(2.0))
    compare(lambda lib, x, y: x % y, np.zeros((0, 3)), np.ones(3))
    compare(lambda lib, x, y: x // y, np.zeros((2, 0)), np.ones((2, 1)), grad=False)


def test_division_ops_by_zero():
    # floats follow IEEE (inf, nan); integers raise, as PyTorch
    with np.errstate(divide="ignore", invalid="ignore"):
        compare(lambda lib, x: x // 0.0, np.array([1.0, -2.0, 0.0]), grad=False)
        compare(lambda lib, x: x % 0.0, np.array([1.0, -2.0]), grad=False)
    for op in (lambda x: x // 0, lambda x: x % 0, lambda x: x.fmod(0), lambda x: x // tg.tensor([1, 0])):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            op(tg.tensor([1, 2]))


def test_division_ops_refuse_bool():
    for op, name in ((lambda x, y: x // y, "floor_divide"), (lambda x, y: x % y, "remainder"),
                     (lambda x, y: x.fmod(y), "fmod")):
        with pytest.raises(NotImplementedError):
            op(torch.tensor([True]), torch.tensor([True]))
        with pytest.raises(RuntimeError, match=f"{name}: not implemented for bool"):
            op(tg.tensor([True]), tg.tensor([True]))
    with pytest.raises(ValueError, match="rounding_mode"):
        tg.tensor([1.0]).div(2, rounding_mode="round")


def test_remainder_gradient_is_one_for_the_dividend():
    # d(a % b)/da = 1, d(a % b)/db = -floor(a / b), as PyTorch
    a, b = randn(3, 4) * 3, randn(4, seed=1)  # away from the jumps, where a / b is an integer
    compare(lambda lib, x, y: x % y, a, b)
    compare(lambda lib, x, y: x.fmod(y), a, b)
    gradcheck(lambda x, y: x % y + x.fmod(y), a, b)


def test_division_ops_in_place():
    for op in (lambda x: x.floor_divide_(2), lambda x: x.remainder_(-3), lambda x: x.fmod_(3)):
        a = np.array([-7, -1, 0, 5])
        ours, theirs = tg.tensor(a), torch.tensor(a)
        op(ours), op(theirs)
        assert_close(ours, theirs)
    ours, theirs = tg.tensor(a), torch.tensor(a)
    ours //= 2
    theirs //= 2
    ours %= 3
    theirs %= 3
    assert_close(ours, theirs)


# --- rounding and the other pointwise functions ---------------------------------------------------------------------
ROUNDING_INPUTS = np.array([-2.5, -1.7, -0.5, -0.2, 0.0, 0.3, 0.5, 1.5, 2.5, 3.7])


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc", "frac"])
def test_rounding(name):
    compare(lambda lib, x: getattr(x, name)() * x, ROUNDING_INPUTS)  # halves round to even, as PyTorch
    compare(lambda lib, x: getattr(lib.t, name)(x), ROUNDING_INPUTS.astype(np.float32))
    compare(lambda lib, x: getattr(x, name)(), np.array(-1.5))
    if name != "frac":
        compare(lambda lib, x: getattr(x, name)(), np.array([-3, 0, 4]))  # integers stay integers


def test_round_with_decimals():
    a = np.array([-1.2345, 0.0049, 2.675, 123.456])
    compare(lambda lib, x: x.round(decimals=2), a)
    compare(lambda lib, x: x.round(decimals=-1), a)


MORE_UNARY = {"exp2": None, "expm1": None, "log2": "positive", "log1p": "positive"}


@pytest.mark.parametrize("name", MORE_UNARY)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp2_expm1_log2_log1p(name, dtype):
    a = randn(3, 4, dtype=dtype)
    if MORE_UNARY[name]:
        a = np.abs(a) + 0.1
    compare(lambda lib, x: getattr(x, name)(), a)
    compare(lambda lib, x: getattr(lib.t, name)(x), a[0, 0])  # 0-d
    gradcheck(lambda x: getattr(x, name)(), a.astype(np.float64))
    ours, theirs = getattr(tg.tensor([1, 2]), name)(), getattr(torch.tensor([1, 2]), name)()
    assert _dtype_name(ours) == _dtype_name(theirs)  # integers give float32


def test_neg_and_negative():
    a = randn(2, 3)
    compare(lambda lib, x: x.neg() + x.negative() + lib.t.neg(x), a)
    compare(lambda lib, x: lib.t.negative(x), np.array([1, -2]))
    with pytest.raises(RuntimeError, match="neg.*bool"):
        tg.tensor([True]).neg()


def test_isnan_isinf_isfinite():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 0.0])
    for name in ("isnan", "isinf", "isfinite"):
        compare(lambda lib, x: getattr(x, name)(), a, grad=False)
        compare(lambda lib, x: getattr(lib.t, name)(x), a.astype(np.float32), grad=False)
        compare(lambda lib, x: getattr(x, name)(), np.array([1, 2]), grad=False)
        compare(lambda lib, x: getattr(x, name)(), np.array(np.nan), grad=False)


@pytest.mark.parametrize("kwargs", [{}, {"rtol": 0.1}, {"atol": 0.5}, {"equal_nan": True}], ids=str)
def test_isclose_and_allclose(kwargs):
    a = np.array([1.0, 1.0 + 1e-7, 1.2, np.nan, np.inf, -np.inf, np.inf, 100.0])
    b = np.array([1.0, 1.0, 1.0, np.nan, np.inf, np.inf, 1e308, 100.5])
    compare(lambda lib, x, y: lib.t.isclose(x, y, **kwargs), a, b, grad=False)
    compare(lambda lib, x, y: x.isclose(y[:1], **kwargs), a, b, grad=False)  # broadcasts
    for x, y in ((a, b), (a[:3], b[:3]), (a[:1], a[:1] + 1e-9)):
        assert tg.allclose(tg.tensor(x), tg.tensor(y), **kwargs) is torch.allclose(torch.tensor(x), torch.tensor(y),
                                                                                   **kwargs)
    with pytest.raises(RuntimeError, match="isclose: expected both inputs to have the same dtype"):
        tg.tensor([1.0]).isclose(tg.tensor([1.0], dtype=tg.float64))


def test_equal():
    assert tg.tensor([1, 2]).equal(tg.tensor([1, 2])) is True
    assert tg.equal(tg.tensor([1, 2]), tg.tensor([1, 3])) is False
    assert tg.tensor([1, 2]).equal(tg.tensor([[1, 2]])) is torch.tensor([1, 2]).equal(torch.tensor([[1, 2]]))


def test_clamp_min_clamp_max_lerp_addcmul_addcdiv():
    a, b, c = randn(3, 4, seed=1), randn(3, 4, seed=2), np.abs(randn(4, seed=3)) + 0.5
    compare(lambda lib, x: x.clamp_min(-0.3) + x.clamp_max(0.2) + lib.t.clamp_min(x, 0.1), a)
    compare(lambda lib, x, y: x.lerp(y, 0.3) + lib.t.lerp(x, y, 0.9), a, b)
    compare(lambda lib, x, y, w: x.lerp(y, w), a, b, c)  # a tensor weight gets its gradient too
    compare(lambda lib, x, y, z: x.addcmul(y, z) + x.addcmul(y, z, value=-0.5), a, b, c)
    compare(lambda lib, x, y, z: x.addcdiv(y, z) + lib.t.addcdiv(x, y, z, value=2), a, b, c)


def test_where_with_numbers():
    mask = np.array([True, False, True])
    for input, other in ((1.0, 0.0), (1, 0), (True, False), (1, 2.5), (0.5, True)):
        ours = tg.where(tg.tensor(mask), input, other)
        theirs = torch.where(torch.tensor(mask), input, other)
        assert _dtype_name(ours) == _dtype_name(theirs), (input, other)
        assert_close(ours, theirs)
    compare(lambda lib, x, m: lib.t.where(m, x, 0.0) + lib.t.where(m, -1, x), randn(2, 3), mask)
    compare(lambda lib, x, m: lib.t.where(m, x, 2), np.array([1, 2, 3]), mask, grad=False)


def test_pow_function():
    a = np.abs(randn(3, 4)) + 0.1
    compare(lambda lib, x: lib.t.pow(x, 2.5) + lib.t.pow(2, x) + lib.t.pow(x, x), a)


# --- in-place versions -------------------------------------------------------------------------------------------------
INPLACE = {
    "neg_": (), "exp_": (), "exp2_": (), "expm1_": (), "log_": "positive", "log2_": "positive", "log1p_": "positive",
    "sqrt_": "positive", "rsqrt_": "positive", "abs_": (), "relu_": (), "sigmoid_": (), "tanh_": (), "sin_": (),
    "cos_": (), "square_": (), "floor_": (), "ceil_": (), "round_": (), "trunc_": (), "frac_": (), "pow_": (2,),
    "clamp_": (-0.5, 0.5), "clip_": (-0.5, 0.5), "clamp_min_": (0.1,), "clamp_max_": (0.1,), "lerp_": "other",
    "addcmul_": "other", "addcdiv_": "other", "remainder_": (0.7,), "fmod_": (0.7,), "floor_divide_": (0.7,),
}


@pytest.mark.parametrize("name", INPLACE)
def test_inplace_versions(name):
    # written into a copy of a leaf, so the gradient flows through the edited tensor back to the leaf
    args = INPLACE[name]
    a = randn(3, 4)
    if args == "positive":
        a, args = np.abs(a) + 0.1, ()
    b, c = randn(3, 4, seed=1), np.abs(randn(3, 4, seed=2)) + 0.5

    def fn(lib, x, y, z):
        out = x * 1
        if args == "other":
            getattr(out, name)(y, 0.5 if name == "lerp_" else z)
        else:
            result = getattr(out, name)(*args)
            assert result is out
        return out
    if name == "floor_divide_":  # PyTorch's floor_divide_ has no backward: compare values only
        compare(fn, a, b, c, grad=False)
    else:
        compare(fn, a, b, c)
