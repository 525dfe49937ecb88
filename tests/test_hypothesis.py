"""Property-based tests: random programs of unary, binary, reduction and movement ops run on
tinygrad_tx and on torch in float64 from the same inputs; values and input gradients must agree.

Each example draws one or two small inputs, then a sequence of ops, each one chosen among those
that fit the current shape; the two libraries run in lockstep. The settings run 250 programs per
test, deterministically (derandomize), so CI sees the same programs every time.
"""
import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_tx as tg
from conftest import TG, TORCH, assert_close, to_numpy

RTOL, ATOL = 1e-6, 1e-9
PROFILE = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


@st.composite
def broadcastable_to(draw, shape):
    """A shape that broadcasts against `shape`: a suffix of it, some sizes replaced by 1."""
    keep = draw(st.integers(0, len(shape)))
    suffix = shape[len(shape) - keep:]
    return tuple(1 if draw(st.booleans()) else n for n in suffix)


def _dim(draw, ndim):
    return draw(st.integers(-ndim, ndim - 1))


def _dims(draw, ndim):
    chosen = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(d - ndim if draw(st.booleans()) else d for d in chosen)


# --- the op catalog: each entry draws its parameters for the current shape, or None when it does not fit --------
def unary(draw, shape, other):
    name = draw(st.sampled_from(["exp", "tanh", "sigmoid", "sin", "cos", "abs", "relu", "neg", "square", "sqrt",
                                 "log", "pow", "rsqrt", "gelu", "gelu_tanh", "erf", "clamp", "scalar_ops"]))
    functions = {
        "exp": lambda lib, x: x.tanh().exp(),  # bounded first, so long programs cannot overflow
        "tanh": lambda lib, x: x.tanh(),
        "sigmoid": lambda lib, x: x.sigmoid(),
        "sin": lambda lib, x: x.sin(),
        "cos": lambda lib, x: x.cos(),
        "abs": lambda lib, x: x.abs(),
        "relu": lambda lib, x: x.relu(),
        "neg": lambda lib, x: -x,
        "square": lambda lib, x: x.tanh().square(),
        "sqrt": lambda lib, x: (x * x + 1).sqrt(),
        "log": lambda lib, x: (x * x + 0.5).log(),
        "pow": lambda lib, x: x.tanh() ** 3 + 2 ** x.tanh() + (x * x + 1) ** x.tanh(),
        "rsqrt": lambda lib, x: (x * x + 1).rsqrt(),
        "gelu": lambda lib, x: lib.F.gelu(x),
        "gelu_tanh": lambda lib, x: lib.F.gelu(x, approximate="tanh"),
        "erf": lambda lib, x: x.erf(),
        "clamp": lambda lib, x: x.clamp(-0.5, 0.75),
        "scalar_ops": lambda lib, x: (2.5 - x) * 0.5 + 1 / (x * x + 2) - x / 3,
    }
    return name, functions[name]


def binary(draw, shape, other):
    name = draw(st.sampled_from(["add", "sub", "mul", "div", "maximum", "minimum", "where"]))
    try:
        np.broadcast_shapes(shape, other)
        name = f"{name}(y)"
    except ValueError:  # the program moved x to a shape y no longer fits: use y's sum, a 0-d tensor
        name = f"{name}(y.sum())"
    functions = {
        "add": lambda lib, x, y: x + y,
        "sub": lambda lib, x, y: y - x,
        "mul": lambda lib, x, y: x * y.tanh(),
        "div": lambda lib, x, y: x / (y * y + 1),
        "maximum": lambda lib, x, y: lib.t.maximum(x, y),
        "minimum": lambda lib, x, y: lib.t.minimum(y, x),
        "where": lambda lib, x, y: lib.t.where(x > y, x, y * 2),
    }
    function = functions[name.split("(")[0]]
    if name.endswith("(y.sum())"):
        return name, lambda lib, x, y: function(lib, x, y.sum())
    return name, function


def reduction(draw, shape, other):
    if not shape:
        return None
    ndim = len(shape)
    name = draw(st.sampled_from(["sum", "mean", "amax", "amin", "logsumexp", "var", "std", "max_dim", "softmax",
                                 "log_softmax"]))
    keepdim = draw(st.booleans())
    if name in ("sum", "mean", "amax", "amin", "logsumexp"):
        dims = _dims(draw, ndim)
        return f"{name}{dims}", lambda lib, x: getattr(x, name)(dims, keepdim=keepdim)
    dim = _dim(draw, ndim)
    if name == "std" and shape[dim] == 1:
        name = "var"  # the std of one element is 0, where even torch's own second derivative is NaN
    if name in ("var", "std"):
        correction = 0 if shape[dim] == 1 else draw(st.sampled_from([0, 1]))
        return f"{name}({dim})", lambda lib, x: getattr(x, name)(dim, keepdim=keepdim, correction=correction)
    if name == "max_dim":
        return f"max({dim})", lambda lib, x: x.max(dim, keepdim=keepdim)[0]
    return f"{name}({dim})", lambda lib, x: getattr(lib.F, name)(x, dim=dim)


def movement(draw, shape, other):
    ndim = len(shape)
    options = ["reshape", "unsqueeze", "flatten", "cat", "stack", "expand"]
    if ndim >= 1:
        options += ["permute", "squeeze", "slice", "index", "split", "gather", "setitem", "masked_fill"]
    if ndim >= 2:
        options += ["transpose", "tril", "matmul"]
    name = draw(st.sampled_from(options))
    if name == "reshape":
        numel = int(np.prod(shape))
        target = draw(st.sampled_from([(numel,), (-1, 1), (1, numel), tuple(reversed(shape)) or (1,)]))
        return f"reshape{target}", lambda lib, x: x.reshape(target)
    if name == "unsqueeze":
        dim = draw(st.integers(-ndim - 1, ndim))
        return f"unsqueeze({dim})", lambda lib, x: x.unsqueeze(dim)
    if name == "flatten":
        return "flatten", lambda lib, x: x.flatten()
    if name == "cat":
        dim = _dim(draw, ndim) if ndim else None
        if dim is None:
            return "cat0d", lambda lib, x: lib.t.cat([x.reshape(1), x.reshape(1) * 2])
        return f"cat({dim})", lambda lib, x: lib.t.cat([x, x.tanh()], dim)
    if name == "stack":
        dim = draw(st.integers(-ndim - 1, ndim))
        return f"stack({dim})", lambda lib, x: lib.t.stack([x, x * x], dim)
    if name == "expand":
        return "expand", lambda lib, x: x.unsqueeze(0).expand(2, *x.shape) * lib.t.tensor([1.0, -0.5],
                                                                                       dtype=x.dtype).reshape(
            (2,) + (1,) * x.ndim)
    if name == "permute":
        order = tuple(draw(st.permutations(range(ndim))))
        return f"permute{order}", lambda lib, x: x.permute(*order)
    if name == "squeeze":
        dim = _dim(draw, ndim)
        return f"squeeze({dim})", lambda lib, x: x.squeeze(dim)
    if name == "slice":
        dim = _dim(draw, ndim)
        size = shape[dim]
        start = draw(st.integers(0, size - 1))
        step = draw(st.integers(1, 2))
        index = (slice(None),) * (dim % ndim) + (slice(start, None, step),)
        return f"slice{index}", lambda lib, x: x[index]
    if name == "index":
        rows = draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=5))  # repeats scatter-add
        return f"index{rows}", lambda lib, x: x[lib.t.tensor(rows)]
    if name == "split":
        dim = _dim(draw, ndim)
        size = draw(st.integers(1, max(shape[dim], 1)))
        return f"split({size}, {dim})", lambda lib, x: x.split(size, dim)[-1] * 2 + x.split(size, dim)[0].sum()
    if name == "gather":
        dim = _dim(draw, ndim)
        seed = draw(st.integers(0, 1000))
        index = np.random.default_rng(seed).integers(0, shape[dim], size=shape)
        return f"gather({dim})", lambda lib, x: x.gather(dim, lib.t.tensor(index))
    if name == "setitem":
        rows = slice(draw(st.integers(0, shape[0] - 1)), None, draw(st.integers(1, 2)))

        def set_rows(lib, x):
            out = x * 1.0
            out[rows] = x[rows].tanh() * 2  # the written value depends on x too
            return out
        return f"setitem[{rows}]", set_rows
    if name == "masked_fill":
        return "masked_fill", lambda lib, x: x.masked_fill(x > 0.5, 0.25)
    if name == "transpose":
        a, b = _dim(draw, ndim), _dim(draw, ndim)
        return f"transpose({a}, {b})", lambda lib, x: x.transpose(a, b)
    if name == "tril":
        diagonal = draw(st.integers(-1, 1))
        which = draw(st.sampled_from(["tril", "triu"]))
        return f"{which}({diagonal})", lambda lib, x: getattr(x, which)(diagonal)
    return "matmul", lambda lib, x: (x @ x.transpose(-1, -2)) * 0.5


CATEGORIES = [unary, binary, reduction, movement]


def _run(lib, program, arrays):
    inputs = [lib.t.tensor(a.copy(), requires_grad=True) for a in arrays]
    x, y = inputs[0], inputs[1]
    for _, kind, fn in program:
        x = fn(lib, x, y) if kind is binary else fn(lib, x)
    weights = np.random.default_rng(0).standard_normal(tuple(x.shape))
    (x * lib.t.tensor(weights)).sum().backward()
    return x, inputs


@st.composite
def programs(draw, max_ops=6):
    shape = draw(shapes)
    other = draw(broadcastable_to(shape))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape), rng.standard_normal(other)]
    program = []
    current = shape
    for _ in range(draw(st.integers(1, max_ops))):
        kind = draw(st.sampled_from(CATEGORIES))
        drawn = kind(draw, current, other)
        if drawn is None:
            continue
        name, fn = drawn
        program.append((name, kind, fn))
        # the shape that follows decides which ops fit next; a dry run on zeros finds it cheaply
        current = _shape_after(program, arrays)
    return arrays, program


def _shape_after(program, arrays):
    with tg.no_grad():
        x, y = tg.tensor(np.zeros_like(arrays[0])), tg.tensor(np.zeros_like(arrays[1]))
        for _, kind, fn in program:
            x = fn(TG, x, y) if kind is binary else fn(TG, x)
    return tuple(x.shape)


def _compare(arrays, program):
    description = " -> ".join(name for name, _, _ in program)
    ours, our_inputs = _run(TG, program, arrays)
    theirs, their_inputs = _run(TORCH, program, arrays)
    assert_close(ours, theirs, RTOL, ATOL, what=f"value of {description}")
    for i, (a, b) in enumerate(zip(our_inputs, their_inputs)):
        if b.grad is None:
            assert a.grad is None or not a.grad.numpy().any(), f"input {i} of {description}: torch has no grad"
            continue
        assert a.grad is not None, f"input {i} of {description}: no gradient"
        assert_close(a.grad, b.grad, RTOL, ATOL, what=f"grad of input {i} of {description}")


@PROFILE
@given(programs())
def test_random_programs_match_torch(case):
    _compare(*case)


def _close_or_zero(ours, theirs, what):
    """None (no dependence) on one side must be all zeros on the other."""
    if ours is None or theirs is None:
        present = ours if ours is not None else theirs
        assert present is None or not to_numpy(present).any(), f"{what}: one side is None"
        return
    assert_close(ours, theirs, 1e-5, 1e-8, what=what)


@PROFILE
@given(programs(max_ops=3))
def test_random_short_programs_match_torch_second_order(case):
    """Gradients of the gradient: autograd.grad(create_graph=True) through the same random programs."""
    arrays, program = case
    results = []
    for lib in (TG, TORCH):
        inputs = [lib.t.tensor(a.copy(), requires_grad=True) for a in arrays]
        x, y = inputs
        for _, kind, fn in program:
            x = fn(lib, x, y) if kind is binary else fn(lib, x)
        weights = lib.t.tensor(np.random.default_rng(1).standard_normal(tuple(x.shape)))
        grads = lib.t.autograd.grad((x * weights).sum(), inputs, create_graph=True, allow_unused=True)
        total = sum((g * g).sum() for g in grads if g is not None)
        second = (None, None)
        if isinstance(total, (tg.Tensor, torch.Tensor)) and total.requires_grad:
            second = lib.t.autograd.grad(total, inputs, allow_unused=True)
        results.append(list(grads) + list(second))
    description = " -> ".join(name for name, _, _ in program)
    for ours, theirs, what in zip(results[0], results[1], ["grad x", "grad y", "second x", "second y"]):
        _close_or_zero(ours, theirs, f"{what} of {description}")
