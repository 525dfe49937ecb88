"""Random programs, run on tinygrad_tx and on torch from the same float64 inputs.

A program is a few lines of Python written against three names: `t` (the tensor library), `F`
(its functional module) and `D` (the program's constant arrays). The same source runs on both
libraries; the two runs must agree on every value, every flag that autograd reads
(requires_grad, is_leaf), every gradient, and on whether an error is raised.

    a = t.tensor(D[0], requires_grad=True)
    v1 = F.linear(a, a)
    v2 = v1.softmax(-1)
    v3 = v2[:, [0, 2]] * a[0, 1]
    v2.mul_(a.sum())                      # in place, on the output of a fused op that saved it
    refused = raises(lambda: t.autograd.grad((v2 * t.tensor(D[1])).sum() + ..., [a], retain_graph=True))
    loss = (v3 * t.tensor(D[2])).sum()    # the outputs whose backward torch accepts
    gs = t.autograd.grad(loss, [a], create_graph=True, allow_unused=True)
    s = weighted(gs, [t.tensor(D[3])])
    gs2 = grad_or_none(s, [a])

Most values enter the loss; first-order programs also retain and compare the gradients of
intermediates, so an error in one op's backward is seen where it happens.

`generate(seed)` writes a program with `random.Random(seed)`, so the seed alone reproduces it.
It runs each candidate line on torch as it writes it and keeps the line only if torch accepts
it and the result stays well-conditioned: finite, of moderate size, away from the kinks of
relu/abs/clamp and from ties in max/min. Torch's run of the program is therefore done when the
last line is written; `check(seed)` then runs the source on tinygrad_tx and compares.

Lines are drawn from a catalog covering the engine's ops: elementwise math, reductions, softmax,
layer_norm, linear, matmul, cross_entropy, attention, movement, cat/stack/split, gather, tril,
every indexing form, in-place edits (of intermediates, of op outputs, of views, of leaves under
no_grad, through views of tensors that do not require grad), no_grad regions and detach. It does
not write what docs/autograd.md lists as deliberate differences from PyTorch: negative slice
steps, out-of-range indices into a dimension of size 0, and in second-order programs in-place
edits of gelu's input after the op.

    python tests/random_programs.py 17              # print program 17 and how the two runs compare
    python tests/random_programs.py --second 17     # the same for second-order program 17
    python tests/random_programs.py --shrink 17     # cut it down while it still fails the same way
"""
import argparse
import random
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

import tinygrad_tx as tg
import tinygrad_tx.nn.functional as tgF

RTOL, ATOL = 1e-7, 1e-9
BOUND = 1e3          # a kept value's largest magnitude: keeps products and exponentials well-conditioned
MAX_NUMEL = 256      # a kept value's largest size: expand, cat and stack cannot grow a program's cost
GAP = 1e-5           # the smallest distance to a kink or between the two largest values of a max


# --- running a program ------------------------------------------------------------------------------------------------
def weighted(tensors, weights):
    """The scalar sum of (g * w).sum() over the tensors that are not None (autograd.grad's unused inputs)."""
    total = 0.0
    for g, w in zip(tensors, weights):
        if g is not None:
            total = total + (g * w).sum()
    return total


def raises(function):
    """Whether function() raises a RuntimeError: the two runs compare this like any other value."""
    try:
        function()
    except RuntimeError:
        return True
    return False


def grad_or_none(output, inputs):
    """autograd.grad of output, or None when output does not depend on anything that requires grad."""
    if not getattr(output, "requires_grad", False):
        return None
    return _library_of(output).autograd.grad(output, inputs, allow_unused=True)


def _library_of(x):
    return torch if isinstance(x, torch.Tensor) else tg


def namespace(library, data):
    module, functional = (torch, torch.nn.functional) if library == "torch" else (tg, tgF)
    return {"t": module, "F": functional, "D": data, "weighted": weighted, "grad_or_none": grad_or_none,
            "raises": raises}


@dataclass
class Run:
    """What one library did with a program: its final namespace, and the line that raised (if any)."""
    names: dict
    error_line: int = None
    error: BaseException = None


def run_source(lines, data, library):
    """Execute the program's lines on one library; stop at the first line that raises."""
    names = namespace(library, data)
    code = compile("\n".join(lines), "<program>", "exec")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            exec(code, names)
        except Exception as error:  # noqa: BLE001 (any error is an outcome to compare)
            return Run(names, _program_line(error.__traceback__), error)
    return Run(names)


def _program_line(tb):
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<program>":
            line = tb.tb_lineno - 1
        tb = tb.tb_next
    return line


# --- comparing two runs -------------------------------------------------------------------------------------------------
def _numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy(force=True)
    return np.asarray(x.detach().numpy())


def _dtype_name(x):
    return str(x.dtype).split(".")[-1].replace("bool_", "bool")


def _differs(ours, theirs, rtol=RTOL, atol=ATOL):
    """None when the arrays agree, else a short description of how they differ."""
    a, b = _numpy(ours), _numpy(theirs)
    if a.shape != b.shape:
        return f"shape {a.shape} != torch's {b.shape}"
    if a.dtype.kind == "f":
        close = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    else:
        close = a == b
    if close.all():
        return None
    worst = np.unravel_index(np.argmax(np.where(close, 0, np.abs(a.astype(float) - b.astype(float)) + 1)), a.shape)
    return f"{int((~close).sum())} of {a.size} elements differ, e.g. at {tuple(int(i) for i in worst)}: " \
           f"{a[worst]!r} vs torch {b[worst]!r}"


def _compare_gradient(ours, theirs, what, problems):
    """A gradient that is None on one side must be all zeros on the other."""
    if ours is None or theirs is None:
        present = ours if ours is not None else theirs
        if present is not None and _numpy(present).any():
            side = "tinygrad_tx" if theirs is None else "torch"
            problems.append(f"{what}: only {side} has a (nonzero) gradient")
        return
    difference = _differs(ours, theirs)
    if difference:
        problems.append(f"{what}: {difference}")


def compare_runs(ours, theirs, lines):
    """Every way the tinygrad_tx run differs from torch's, as a list of short descriptions."""
    if isinstance(theirs.error, (NameError, AttributeError, TypeError)):
        return [f"the program is broken: torch raises at line {theirs.error_line}: {_describe(theirs.error)}"]
    if ours.error is not None or theirs.error is not None:
        if ours.error is not None and theirs.error is not None:
            return []  # both refuse the program; where and why may differ (an edit refused early, or in backward)
        if ours.error is not None:
            return [f"raises: only tinygrad_tx, at line {ours.error_line}: {_describe(ours.error)}"]
        return [f"raises: only torch, at line {theirs.error_line}: {_describe(theirs.error)}"]
    problems = []
    retained = {line.split(".")[0] for line in lines if line.endswith(".retain_grad()")}
    for name, theirs_value in theirs.names.items():
        ours_value = ours.names.get(name)
        if isinstance(theirs_value, torch.Tensor):
            # s is made of gradients: whether torch's requires grad depends on how each backward is written
            # (relu's reads its output, so torch's gradient of relu "requires grad" with a zero derivative)
            _compare_tensor(name, ours_value, theirs_value, name in retained, problems, compare_flags=name != "s")
        elif name.startswith("gs"):
            _compare_gradients(name, ours_value, theirs_value, problems)
        elif isinstance(theirs_value, bool) and ours_value != theirs_value:
            problems.append(f"{name}: {ours_value}, torch {theirs_value}")
    return problems


def autograd_flags(x):
    """(requires_grad, is_leaf) of a torch tensor, or None where torch refuses to say: the piece of a split
    whose base was later edited in place can no longer be used at all."""
    try:
        return x.requires_grad, x.is_leaf
    except RuntimeError:
        return None


def _compare_tensor(name, ours, theirs, retained, problems, compare_flags=True):
    """Value and dtype; requires_grad and is_leaf; .grad of leaves and of retained tensors."""
    if not isinstance(ours, tg.Tensor):
        problems.append(f"{name}: tinygrad_tx has {type(ours).__name__}, torch a tensor")
        return
    if _dtype_name(ours) != _dtype_name(theirs):
        problems.append(f"{name}: dtype {_dtype_name(ours)} != torch's {_dtype_name(theirs)}")
        return
    difference = _differs(ours, theirs)
    if difference:
        problems.append(f"value of {name}: {difference}")
    flags = autograd_flags(theirs)
    if flags is None or not compare_flags:
        return
    if ours.requires_grad != flags[0]:
        problems.append(f"{name}.requires_grad: {ours.requires_grad}, torch {flags[0]}")
    elif ours.is_leaf != flags[1]:
        problems.append(f"{name}.is_leaf: {ours.is_leaf}, torch {flags[1]}")
    requires_grad, is_leaf = flags
    if requires_grad and (is_leaf or retained):
        _compare_gradient(ours.grad, theirs.grad, f"{name}.grad", problems)


def _compare_gradients(name, ours, theirs, problems):
    """Lists of gradients from autograd.grad; None (grad_or_none found nothing to differentiate) is all None."""
    if ours is None and theirs is None:
        return
    ours = [None] * len(theirs) if ours is None else list(ours)
    theirs = [None] * len(ours) if theirs is None else list(theirs)
    if len(ours) != len(theirs):
        problems.append(f"{name}: {len(ours)} entries, torch {len(theirs)}")
        return
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if isinstance(b, torch.Tensor) or b is None:
            _compare_gradient(a, b, f"{name}[{i}]", problems)


def _describe(error):
    text = str(error).split("\n")[0]
    return f"{type(error).__name__}: {text[:160]}"


# --- the program and its generator ------------------------------------------------------------------------------------------
@dataclass
class Program:
    seed: int
    second_order: bool
    lines: list = field(default_factory=list)
    data: list = field(default_factory=list)
    torch_run: Run = None       # torch's run, done while the program was written
    skipped: str = None         # why there is nothing to compare (torch's own gradients are not finite, ...)

    def source(self):
        return "\n".join(self.lines)


class Unfit(Exception):
    """A candidate line does not fit the program's current values."""


@dataclass
class Value:
    """What the generator knows about a name besides the tensor itself."""
    view_of: str = None        # the name whose memory this value is a view of
    fixed: bool = False        # its memory is never written in place (through it or any view of the same memory)
    piece: bool = False        # one of several views from one split: torch refuses to edit those with grad
    hidden: bool = False       # never used again


@dataclass
class Step:
    line: str
    defines: tuple = ()     # names the line binds
    edits: str = None       # the name it writes in place
    view_of: str = None     # the name its results are views of
    maybe_view_of: str = None  # the name its results are views of if torch makes them views (x[t.tensor(1)])
    may_raise: bool = False  # torch may refuse it (an error both libraries must raise); the program ends there
    no_grad: bool = False
    fixed: bool = False     # its results' memory is never written in place
    pins: tuple = ()        # names whose memory is never written in place from now on


class Generator:
    """Writes one program, running every candidate line on torch as it goes."""

    def __init__(self, seed, second_order):
        self.rng = random.Random(seed)
        self.program = Program(seed, second_order)
        self.names = namespace("torch", self.program.data)
        self.values = {}
        self.leaves = []
        self.counter = 0
        self.zero_size = self.rng.random() < 0.1

    # --- bookkeeping ---------------------------------------------------------------------------------------------
    def fresh(self):
        self.counter += 1
        return f"v{self.counter}"

    def constant(self, array):
        self.program.data.append(array)
        return f"D[{len(self.program.data) - 1}]"

    def tensor_constant(self, array):
        array = np.asarray(array)
        if array.dtype.kind in "ib" and array.size <= 8:
            return f"t.tensor({array.tolist()!r})"
        return f"t.tensor({self.constant(array)})"

    def weights(self, shape):
        return self.tensor_constant(np.asarray(self.np_rng().standard_normal(shape)))

    def np_rng(self):
        return np.random.default_rng(self.rng.getrandbits(32))

    def tensor(self, name):
        return self.names[name]

    def array(self, name):
        return self.names[name].detach().numpy()

    def floats(self, condition=None):
        """Names of usable float tensors (optionally only those meeting condition), oldest first."""
        found = []
        for name in self.values:
            x = self.names.get(name)
            if isinstance(x, torch.Tensor) and x.dtype == torch.float64 and not self.values[name].hidden \
                    and autograd_flags(x) is not None and (condition is None or condition(x)):
                found.append(name)
        return found

    def pick(self, condition=None):
        """A float tensor's name, recent ones more likely: programs grow as chains that fan out."""
        found = self.floats(condition)
        if not found:
            return None
        return self.rng.choices(found, weights=[1 + i for i in range(len(found))])[0]

    def number(self, low, high):
        return round(self.rng.uniform(low, high), 3)

    # --- the program -------------------------------------------------------------------------------------------------
    def generate(self):
        self.make_leaves()
        n_steps = self.rng.randint(2, 8) if self.program.second_order else self.rng.randint(3, 14)
        for _ in range(n_steps * 3):  # candidates torch refuses do not count
            if n_steps == 0:
                break
            step = self.draw_step()
            if step is None:
                continue
            outcome = self.try_step(step)
            if outcome == "raised":
                return self.program  # a may_raise line that torch refused: the program ends there
            if outcome == "kept":
                n_steps -= 1
        self.write_tail()
        return self.program

    def make_leaves(self):
        n_leaves = self.rng.choice([1, 1, 2, 2, 2, 3])
        shape = self.shape()
        for name in "abc"[:n_leaves]:
            leaf_shape = self.related_shape(shape) if name != "a" else shape
            rng = self.np_rng()
            array = rng.standard_normal(leaf_shape) if self.rng.random() < 0.8 else rng.uniform(0.5, 2.0, leaf_shape)
            self.run_line(f"{name} = t.tensor({self.constant(array)}, requires_grad=True)")
            self.values[name] = Value()
            self.leaves.append(name)

    def shape(self):
        ndim = self.rng.choice([0, 1, 1, 2, 2, 2, 3, 3, 4])
        shape = [self.rng.choice([1, 2, 2, 3, 3, 4, 5]) for _ in range(ndim)]
        if self.zero_size and ndim:
            shape[self.rng.randrange(ndim)] = 0
        return tuple(shape)

    def related_shape(self, shape):
        """A shape that combines with `shape`: the same, a broadcastable suffix, its matrix transpose, or new."""
        kind = self.rng.choice(["same", "same", "suffix", "transposed", "new"])
        if kind == "same" or not shape:
            return shape
        if kind == "suffix":
            return tuple(1 if self.rng.random() < 0.3 else n for n in shape[self.rng.randrange(len(shape)):])
        if kind == "transposed" and len(shape) >= 2:
            return shape[:-2] + (shape[-1], shape[-2])
        return self.shape()

    def run_line(self, line):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(line, "<line>", "exec"), self.names)
        self.program.lines.append(line)

    def try_step(self, step):
        """Run a candidate line on torch; keep it if torch accepts it and its results are well-conditioned."""
        before = set(self.names)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(step.line, "<line>", "exec"), self.names)
        except Exception as error:  # noqa: BLE001
            if step.may_raise:
                self.program.lines.append(step.line)
                self.program.torch_run = Run(self.names, len(self.program.lines) - 1, error)
                return "raised"
            self.discard(step, before)
            return "discarded"
        results = list(step.defines) + ([step.edits] if step.edits else [])
        if not all(self.well_conditioned(self.names.get(name)) for name in results):
            self.discard(step, before)
            return "discarded"
        self.program.lines.append(step.line)
        self.record(step)
        return "kept"

    def discard(self, step, names_before):
        for name in set(self.names) - names_before:
            del self.names[name]
        if step.edits or step.may_raise:  # torch may have written before it refused: replay without the line
            self.names = namespace("torch", self.program.data)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(self.program.source(), "<program>", "exec"), self.names)

    @staticmethod
    def well_conditioned(x):
        if not isinstance(x, torch.Tensor):
            return x is None or isinstance(x, (tuple, list))
        if x.numel() > MAX_NUMEL:
            return False
        if x.dtype != torch.float64:
            return True
        values = x.detach()
        return bool(torch.isfinite(values).all()) and (values.numel() == 0 or float(values.abs().max()) <= BOUND)

    def record(self, step):
        for name in step.defines:
            x = self.names[name]
            value = Value(fixed=step.fixed, piece=len(step.defines) > 1 and step.view_of is not None)
            if isinstance(x, torch.Tensor) and x._is_view() and step.maybe_view_of:
                value.view_of = step.maybe_view_of
            elif step.view_of is not None:
                value.view_of = step.view_of
            elif isinstance(x, torch.Tensor) and x._is_view():
                value.fixed = True  # a view of something the generator does not track: leave it alone
            self.values[name] = value
        for name in step.pins:
            for alias in self.chain(name):
                self.values[alias].fixed = True

    # --- which tensors can be written in place -------------------------------------------------------------------------
    def chain(self, name):
        """The name, the name it is a view of, and so on to the tensor that owns the memory."""
        names = [name]
        while self.values[names[-1]].view_of in self.values:
            names.append(self.values[names[-1]].view_of)
        return names

    def writable(self, name):
        """Torch can write it in place (no element of an expanded tensor twice) and nothing pins its memory."""
        x = self.tensor(name)
        if not isinstance(x, torch.Tensor) or x.dtype != torch.float64:
            return False
        if any(self.values[alias].fixed for alias in self.chain(name)):
            return False
        return not any(stride == 0 and size > 1 for stride, size in zip(x.stride(), x.shape))

    def editable(self, name):
        """An in-place edit in grad mode that torch accepts: not of a leaf that requires grad or of a view of one,
        not of a piece of a split (the refused() step writes those on purpose)."""
        if not self.writable(name):
            return False
        chain = self.chain(name)
        if any(self.values[alias].piece for alias in chain):
            return False
        owner = self.tensor(chain[-1])
        return not (owner.is_leaf and owner.requires_grad) and not (self.tensor(name).is_leaf and
                                                                   self.tensor(name).requires_grad)

    def shares_memory(self, a, b):
        x, y = self.tensor(a), self.tensor(b)
        return x.untyped_storage().data_ptr() == y.untyped_storage().data_ptr()

    # --- steps ---------------------------------------------------------------------------------------------------------
    def draw_step(self):
        kinds = [(self.elementwise, 14), (self.binary, 12), (self.reduction, 9), (self.normalize, 4),
                 (self.layer_norm, 3), (self.linear, 3), (self.matmul, 4), (self.cross_entropy, 2),
                 (self.attention, 2), (self.movement, 10), (self.index, 8), (self.join, 4), (self.split, 3),
                 (self.gather, 2), (self.triangle, 2), (self.in_place, 10), (self.set_item, 5), (self.buffer, 3),
                 (self.no_grad, 4), (self.detach, 2), (self.refused, 0.4)]
        kind = self.rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
        try:
            return kind()
        except Unfit:
            return None

    def assign(self, expression, **options):
        name = self.fresh()
        return Step(f"{name} = {expression}", defines=(name,), **options)

    # elementwise ------------------------------------------------------------------------------------------------------
    def unary_expression(self, x):
        """A one-input elementwise expression of name x, well-conditioned at x's current values."""
        values = self.array(x)
        low = values.min() if values.size else 1.0
        high = values.max() if values.size else 0.0
        clear_of_zero = smallest_magnitude(values) > GAP
        options = ["tanh", "sigmoid", "gelu", "gelu_tanh", "erf", "neg", "square", "cube", "sin", "cos",
                   "log_shifted", "sqrt_shifted", "scalar_mix", "rpow"]
        if high < 5:
            options.append("exp")
        if low > 0.1:
            options += ["log", "sqrt", "rsqrt", "pow_fraction"]
        if clear_of_zero:
            options += ["relu", "abs", "relu_function"]
            if smallest_magnitude(values) > 0.2:
                options.append("reciprocal")
        if values.size:
            options.append("clamp")
        name = self.rng.choice(options)
        forms = {
            "tanh": f"{x}.tanh()", "sigmoid": f"t.sigmoid({x})", "gelu": f"F.gelu({x})",
            "gelu_tanh": f"F.gelu({x}, approximate='tanh')", "erf": f"{x}.erf()", "neg": f"-{x}",
            "square": f"{x}.square()", "cube": f"{x} ** 3", "sin": f"{x}.sin()", "cos": f"{x}.cos()",
            "log_shifted": f"({x} * {x} + 0.5).log()", "sqrt_shifted": f"({x} * {x} + 1).sqrt()",
            "scalar_mix": f"(2.5 - {x}) * 0.5 + {x} / 3", "rpow": f"2.0 ** {x}.tanh()",
            "exp": f"{x}.exp()", "log": f"{x}.log()", "sqrt": f"{x}.sqrt()", "rsqrt": f"{x}.rsqrt()",
            "pow_fraction": f"{x} ** {self.rng.choice([0.5, 1.5, -0.5])}", "relu": f"{x}.relu()",
            "abs": f"{x}.abs()", "relu_function": f"F.relu({x})", "reciprocal": f"1 / {x}",
        }
        if name == "clamp":
            return self.clamp_expression(x, values)
        return forms[name]

    def clamp_expression(self, x, values):
        low, high = split_point(values, self.rng.uniform(0, 0.4)), split_point(values, self.rng.uniform(0.6, 1))
        if low is None or high is None:
            return f"{x}.tanh()"
        form = self.rng.choice(["both", "min", "max"])
        if form == "min":
            return f"{x}.clamp(min={low!r})"
        if form == "max":
            return f"{x}.clamp(max={high!r})"
        return f"{x}.clamp({low!r}, {high!r})"

    def elementwise(self):
        x = self.pick()
        expression = self.unary_expression(x)
        # docs/autograd.md: with create_graph, gelu needs its input unedited where torch's formula may not
        pins = (x,) if self.program.second_order and "F.gelu(" in expression else ()
        return self.assign(expression, pins=pins)

    def broadcast_partner(self, x, into=False):
        """A name whose shape broadcasts with x's (into: without growing x); x itself often."""
        shape = tuple(self.tensor(x).shape)

        def fits(y):
            out = broadcast_shape(shape, tuple(y.shape))
            return out is not None and (not into or out == shape)
        found = self.floats(fits)
        return self.rng.choice(found) if found else None

    def binary(self):
        x = self.pick()
        y = self.broadcast_partner(x)
        if y is None or self.rng.random() < 0.15:
            y, other = x, f"{self.pick()}.sum()"
        else:
            other = y
        a, b = self.array(x), self.names[other.split(".")[0]].detach()
        b = b.sum().numpy() if other.endswith(".sum()") else b.numpy()
        options = ["add", "sub", "mul", "mul_scalar", "div_safe", "where", "masked_fill", "pow_safe"]
        if x != other and smallest_magnitude(np.subtract(a, b)) > GAP:  # no tie for maximum to break
            options += ["maximum", "minimum"]
        if smallest_magnitude(b) > 0.2:
            options.append("div")
        if a.size and a.min() > 0.1 and (not b.size or np.abs(b).max() < 3):
            options.append("pow")
        name = self.rng.choice(options)
        out_shape = np.broadcast_shapes(a.shape, b.shape)
        forms = {
            "add": f"{x} + {other}", "sub": f"{other} - {x}", "mul": f"{x} * {other}",
            "mul_scalar": f"{x} * {self.number(-2, 2)}", "div_safe": f"{x} / ({other} * {other} + 1)",
            "div": f"{x} / {other}", "pow": f"{x} ** {other}", "pow_safe": f"({x} * {x} + 0.5) ** {other}.tanh()",
            "maximum": f"t.maximum({x}, {other})", "minimum": f"t.minimum({other}, {x})",
        }
        if name == "where":
            mask = self.tensor_constant(self.np_rng().random(self.suffix(out_shape)) < 0.5)
            return self.assign(f"t.where({mask}, {x}, {other if self.rng.random() < 0.7 else self.number(-1, 1)})")
        if name == "masked_fill":
            mask = self.tensor_constant(self.np_rng().random(self.suffix(a.shape)) < 0.5)
            return self.assign(f"{x}.masked_fill({mask}, {self.number(-1, 1)})")
        return self.assign(forms[name])

    def suffix(self, shape):
        """A shape that broadcasts to shape: a suffix of it, some sizes 1."""
        shape = tuple(shape)
        start = self.rng.randrange(len(shape) + 1) if self.rng.random() < 0.4 else 0
        return tuple(1 if self.rng.random() < 0.2 else n for n in shape[start:])

    # reductions ---------------------------------------------------------------------------------------------------------
    def dims(self, ndim, at_least=1):
        count = self.rng.randint(at_least, ndim)
        dims = self.rng.sample(range(ndim), count)
        return tuple(d - ndim if self.rng.random() < 0.3 else d for d in dims)

    def dims_text(self, dims):
        if len(dims) == 1 and self.rng.random() < 0.7:
            return str(dims[0])
        return repr(tuple(dims)) if self.rng.random() < 0.7 else repr(list(dims))

    def reduction(self):
        x = self.pick()
        values = self.array(x)
        ndim = values.ndim
        keepdim = self.rng.random() < 0.4
        name = self.rng.choice(["sum", "mean", "var", "std", "amax", "amin", "max_dim", "min_dim", "max",
                                "logsumexp", "sum_all", "mean_all"])
        if name in ("sum_all", "mean_all") or ndim == 0 and name in ("sum", "mean"):
            return self.assign(f"{x}.{name.split('_')[0]}()")
        if ndim == 0:
            return self.assign(f"{x}.sum(0)" if self.rng.random() < 0.5 else f"{x}.logsumexp(0)")
        dims = self.dims(ndim)
        if name in ("sum", "mean", "logsumexp"):
            return self.assign(f"{x}.{name}({self.dims_text(dims)}, keepdim={keepdim})")
        if name in ("var", "std"):
            correction = self.rng.choice([0, 1, 1])
            if name == "std" and not (spread(values, dims) > 1e-3).all():
                name = "var"
            form = self.rng.choice(["correction", "unbiased", "all"])
            if form == "all":
                return self.assign(f"{x}.{name}()")
            if form == "unbiased":
                return self.assign(f"{x}.{name}({self.dims_text(dims)}, unbiased={bool(correction)}, "
                                   f"keepdim={keepdim})")
            return self.assign(f"{x}.{name}({self.dims_text(dims)}, correction={correction}, keepdim={keepdim})")
        if name == "max":
            if not clear_top_two(values, tuple(range(ndim)), largest=True):
                return None
            return self.assign(f"{x}.{self.rng.choice(['max', 'amax'])}()")
        largest = name in ("amax", "max_dim")
        if name in ("max_dim", "min_dim"):
            dims = dims[:1]
        if not clear_top_two(values, dims, largest):
            return None
        if name in ("amax", "amin"):
            return self.assign(f"{x}.{name}({self.dims_text(dims)}, keepdim={keepdim})")
        op = "max" if largest else "min"
        form = self.rng.choice(["values", "index0", "both"])
        if form == "values":
            return self.assign(f"{x}.{op}({dims[0]}, keepdim={keepdim}).values")
        if form == "index0":
            return self.assign(f"{x}.{op}(dim={dims[0]})[0]")
        values_name, indices_name = self.fresh(), self.fresh()
        return Step(f"{values_name}, {indices_name} = {x}.{op}({dims[0]}, keepdim={keepdim})",
                    defines=(values_name, indices_name))

    def normalize(self):
        x = self.pick()
        ndim = self.tensor(x).ndim
        dim = self.rng.randint(-max(ndim, 1), max(ndim, 1) - 1)
        form = self.rng.choice([f"{x}.softmax({dim})", f"F.softmax({x}, dim={dim})", f"{x}.log_softmax({dim})",
                                f"F.log_softmax({x}, dim={dim})"])
        return self.assign(form)

    # nn ---------------------------------------------------------------------------------------------------------------
    def same_shape_or_derived(self, x, shape):
        """An expression of the given shape, from another name or from x itself (the same tensor passed twice)."""
        options = [None]
        options += self.floats(lambda y: tuple(y.shape) == tuple(shape))
        x_shape = tuple(self.tensor(x).shape)
        lead = len(x_shape) - len(shape)
        if lead > 0 and x_shape[lead:] == tuple(shape):
            options.append(f"{x}.mean({tuple(range(lead))})")
            if all(x_shape[:lead]):
                options.append(f"{x}[{', '.join(['0'] * lead)}]")
        choice = self.rng.choice(options)
        return choice

    def layer_norm(self):
        x = self.pick(lambda y: y.ndim >= 1)
        if x is None:
            return None
        shape = tuple(self.tensor(x).shape)
        k = self.rng.randint(1, min(2, len(shape)))
        normalized = shape[-k:]
        weight = self.same_shape_or_derived(x, normalized)
        bias = self.same_shape_or_derived(x, normalized)
        if self.program.second_order and weight is None:
            bias = None  # torch's own double backward of layer_norm fails with a bias and no weight
        arguments = [x, repr(normalized)]
        if weight is not None or self.rng.random() < 0.5:
            arguments.append(f"weight={weight}")
        if bias is not None:
            arguments.append(f"bias={bias}")
        if self.rng.random() < 0.3:
            arguments.append("eps=1e-3")
        return self.assign(f"F.layer_norm({', '.join(arguments)})")

    def linear(self):
        x = self.pick(lambda y: y.ndim >= 1)
        if x is None:
            return None
        shape = tuple(self.tensor(x).shape)
        n_in = shape[-1]
        options = self.floats(lambda y: y.ndim == 2 and y.shape[1] == n_in)
        if len(shape) == 2 and shape[0] == shape[1]:
            options += [f"{x}.mT"]
        if len(shape) > 2:
            options += [f"{x}.reshape(-1, {n_in})"]
        if not options:
            return None
        weight = self.rng.choice(options)
        n_out = self.names_eval(weight).shape[0]
        bias_options = [None] + self.floats(lambda y: tuple(y.shape) == (n_out,))
        if n_in and weight.isidentifier():
            bias_options.append(f"{weight}[:, 0]")
        bias_options.append(f"{x}.reshape(-1)[:{n_out}]" if int(np.prod(shape)) >= n_out else None)
        bias = self.rng.choice(bias_options)
        arguments = f"{x}, {weight}" + (f", {bias}" if bias is not None else "")
        return self.assign(f"F.linear({arguments})")

    def names_eval(self, expression):
        """The value of an expression on torch, to size what comes next; Unfit if torch refuses it."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return eval(expression, self.names)
            except Exception as error:  # noqa: BLE001
                raise Unfit from error

    def matmul(self):
        x = self.pick(lambda y: y.ndim >= 1)
        if x is None:
            return None
        shape = tuple(self.tensor(x).shape)
        options = [y for y in self.floats(lambda y: y.ndim >= 1) if matmul_shape(shape, tuple(self.tensor(y).shape))]
        forms = [f"{x} @ {y}" for y in options] + [f"t.matmul({x}, {y})" for y in options[:1]]
        if len(shape) >= 2:
            forms += [f"{x} @ {x}.mT", f"{x}.mT @ {x}", f"{x}.transpose(-1, -2) @ {x}"]
        if len(shape) == 2:
            forms += [f"t.matmul({x}, {x}.T)"]
            if shape[0] > 0:
                forms += [f"{x} @ {x}[0]"]
        if len(shape) == 1:
            forms += [f"{x} @ {x}"]
        return self.assign(self.rng.choice(forms))

    def cross_entropy(self):
        x = self.pick(lambda y: 1 <= y.ndim <= 3 and (y.ndim == 1 or y.shape[1] > 0) and y.shape[0] > 0)
        if x is None:
            return None
        shape = tuple(self.tensor(x).shape)
        classes = shape[0] if len(shape) == 1 else shape[1]
        target_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
        options = []
        smoothing = self.rng.choice([0.0, 0.0, 0.1, 0.3])
        reduction = self.rng.choice(["mean", "sum", "none"])
        if self.rng.random() < 0.7:
            targets = np.asarray(self.np_rng().integers(0, classes, target_shape))
            ignore = None
            if self.rng.random() < 0.4:
                ignore = self.rng.choice([-100, -1, 0, classes - 1])
                flat = targets.reshape(-1)
                if flat.size:
                    flat[self.rng.randrange(flat.size)] = ignore
            target = self.tensor_constant(targets) if targets.ndim else f"t.tensor({int(targets)})"
            if ignore is not None:
                options.append(f"ignore_index={ignore}")
        else:
            partner = self.floats(lambda y: tuple(y.shape) == shape)
            dim = 0 if len(shape) == 1 else 1
            if partner and self.rng.random() < 0.6:
                target = f"{self.rng.choice(partner)}.softmax({dim})"
            else:
                rows = self.np_rng().dirichlet(np.ones(classes), size=shape[:dim] + shape[dim + 1:])
                target = self.tensor_constant(np.moveaxis(rows, -1, dim))
        if reduction != "mean":
            options.append(f"reduction='{reduction}'")
        if smoothing:
            options.append(f"label_smoothing={smoothing}")
        return self.assign(f"F.cross_entropy({', '.join([x, target] + options)})")

    def attention(self):
        q = self.pick(lambda y: y.ndim >= 2)
        if q is None:
            return None
        shape = tuple(self.tensor(q).shape)
        batch, length, embed = shape[:-2], shape[-2], shape[-1]
        keys = self.floats(lambda y: tuple(y.shape[:-2]) == batch and y.ndim == len(shape) and y.shape[-1] == embed)
        k = self.rng.choice(keys + [q, q])
        source = self.tensor(k).shape[-2]
        values = self.floats(lambda y: tuple(y.shape[:-2]) == batch and y.ndim == len(shape) and y.shape[-2] == source)
        v = self.rng.choice(values + [k])
        options = []
        if self.rng.random() < 0.4:
            options.append("is_causal=True")
        elif self.rng.random() < 0.3 and length and source:
            mask = self.np_rng().random((length, source)) < 0.6
            mask[:, 0] = True  # no row with every key masked: torch gives NaN there, tinygrad_tx zeros
            if self.rng.random() < 0.5:
                options.append(f"attn_mask={self.tensor_constant(mask)}")
            else:
                options.append(f"attn_mask={self.tensor_constant(np.where(mask, 0.0, -2.0))}")
        if self.rng.random() < 0.3:
            options.append(f"scale={self.number(0.2, 1.0)}")
        return self.assign(f"F.scaled_dot_product_attention({', '.join([q, k, v] + options)})")

    # movement ---------------------------------------------------------------------------------------------------------
    def reshape_target(self, shape):
        numel = int(np.prod(shape))
        if numel == 0:
            target = list(shape) if self.rng.random() < 0.5 else [0, self.rng.randint(1, 3)]
            self.rng.shuffle(target)
            return tuple(target)
        factors = [p for p in prime_factors(numel)]
        ndim = self.rng.randint(0 if numel == 1 else 1, 4)
        target = [1] * ndim if ndim else []
        if not target:
            return ()
        for p in factors:
            target[self.rng.randrange(ndim)] *= p
        if self.rng.random() < 0.4:
            target[self.rng.randrange(ndim)] = -1
        return tuple(target)

    def movement(self):
        x = self.pick()
        shape = tuple(self.tensor(x).shape)
        ndim = len(shape)
        forms = []  # (expression, is a view of x)
        target = self.reshape_target(shape)
        forms += [(f"{x}.reshape({target!r})", True), (f"{x}.reshape({', '.join(map(str, target)) or '()'})", True),
                  (f"{x}.view({target!r})", True), (f"{x}.reshape({x}.shape)", True), (f"{x}.view_as({x})", True),
                  (f"{x}.unsqueeze({self.rng.randint(-ndim - 1, ndim)})", True), (f"{x}.flatten()", True),
                  (f"{x}.clone()", False), (f"{x}.T", True), (f"{x}.squeeze()", True)]
        if ndim:
            order = list(range(ndim))
            self.rng.shuffle(order)
            dim0, dim1 = self.rng.randrange(ndim), self.rng.randrange(ndim)
            expanded = tuple(self.rng.choice([2, 3, -1]) if n == 1 else (-1 if self.rng.random() < 0.3 else n)
                             for n in shape)
            lead = tuple(self.rng.choice([1, 2, 3]) for _ in range(self.rng.randint(0, 2)))
            forms += [(f"{x}.permute({', '.join(map(str, order))})", True), (f"{x}.permute({tuple(order)!r})", True),
                      (f"{x}.transpose({dim0}, {dim1 - ndim})", True), (f"{x}.squeeze({dim0})", True),
                      (f"{x}.expand({', '.join(map(str, lead + expanded))})", True),
                      (f"{x}.flatten({self.rng.randrange(ndim)})", True)]
            if ndim >= 2:
                forms += [(f"{x}.mT", True), (f"{x}.flatten({dim0 - ndim}, {max(dim0, dim1)})", True),
                          (f"{x}.squeeze(({dim0}, {dim1 - ndim}))", True)]
            partners = self.floats(lambda y: y.ndim >= ndim and tuple(y.shape[y.ndim - ndim:]) ==
                                   tuple(m if n == 1 else n for n, m in zip(shape, y.shape[y.ndim - ndim:])))
            if partners:
                forms.append((f"{x}.expand_as({self.rng.choice(partners)})", True))
        expression, is_view = self.rng.choice(forms)
        if self.rng.random() < 0.1:  # the same tensor when it is already contiguous: never edited in place
            return self.assign(f"{x}.contiguous()", fixed=True)
        return self.assign(expression, view_of=x if is_view else None)

    def index(self):
        x = self.pick()
        index, basic = self.random_index(tuple(self.tensor(x).shape))
        if index is None:
            return None
        if self.rng.random() < 0.3:  # an index read and used at once
            return self.assign(f"{x}[{index}] * 2")
        if basic:
            return self.assign(f"{x}[{index}]", view_of=x)
        return self.assign(f"{x}[{index}]", maybe_view_of=x)

    def random_index(self, shape, unique=False):
        """A random index for shape, as source text, and whether it is basic (ints, slices, None, Ellipsis only).

        Covers ints (negative too), stepped slices, None, Ellipsis, integer lists and tensors (repeated
        entries unless unique), bool masks, 0-d integer tensors, and ints and arrays separated by a slice
        (x[2, :, [0, 3]], where torch's rule differs from NumPy's)."""
        ndim = len(shape)
        if ndim >= 2 and all(shape) and self.rng.random() < 0.2:
            return self.separated_index(shape, unique), False
        items = []
        consumed = 0
        use_ellipsis = self.rng.random() < 0.2
        array_length = self.rng.randint(1, 4)
        have_mask = False
        target = self.rng.randint(0, ndim) if ndim else 0
        while consumed < target:
            n = shape[consumed]
            kinds = ["slice", "slice", "none"]
            if n > 0:
                kinds += ["int", "int", "list", "tensor", "scalar_tensor"]
            if not have_mask:
                kinds.append("mask")
            kind = self.rng.choice(kinds)
            if kind == "none":
                items.append("None")
                continue
            consumed += 1
            if kind == "int":
                items.append(str(self.rng.randint(-n, n - 1)))
            elif kind == "slice":
                items.append(self.random_slice(n))
            elif kind == "scalar_tensor":
                items.append(f"t.tensor({self.rng.randint(-n, n - 1)})")
            elif kind == "mask":
                have_mask = True
                mask = (self.np_rng().random(n) < 0.5).tolist()
                items.append(f"t.tensor({mask!r})" if self.rng.random() < 0.7 else repr(mask))
            else:
                if unique and array_length > n:
                    array_length = n
                entries = self.rng.sample(range(n), array_length) if unique else \
                    [self.rng.randint(0, n - 1) for _ in range(array_length)]
                entries = [e - n if self.rng.random() < 0.3 else e for e in entries]
                items.append(f"t.tensor({entries!r})" if kind == "tensor" else repr(entries))
        if use_ellipsis:  # anywhere when it stands for no dimension; else last, so items keep their dims
            items.insert(self.rng.randint(0, len(items)) if consumed == ndim else len(items), "...")
        if self.rng.random() < 0.15:
            items.append("None")
        if not items:
            items = [self.rng.choice([":", "...", "None"])]
        if have_mask and sum("[" in i or "t.tensor([" in i for i in items) > 1:
            return None, False  # a mask beside an integer array: the broadcast rarely fits
        text = ", ".join(items)
        basic = all(not ("[" in i or "t.tensor(" in i) for i in items)
        return text, basic

    def separated_index(self, shape, unique):
        """An int (or 0-d tensor) and an index array with a slice, None or Ellipsis between them: x[2, :, [0, 3]].
        torch indexes with the int first, so the array's dimension stays in place; NumPy would move it first."""
        ndim = len(shape)
        first = self.rng.randrange(ndim - 1)
        use_ellipsis = self.rng.random() < 0.3
        second = ndim - 1 if use_ellipsis else self.rng.randrange(first + 1, ndim)
        int_first = self.rng.random() < 0.5

        def integer(n):
            i = self.rng.randint(-n, n - 1)
            return f"t.tensor({i})" if self.rng.random() < 0.2 else str(i)

        def array(n):
            length = self.rng.randint(1, min(n, 3) if unique else 3)
            entries = self.rng.sample(range(n), length) if unique else [self.rng.randrange(n) for _ in range(length)]
            return f"t.tensor({entries!r})" if self.rng.random() < 0.5 else repr(entries)

        between = ["..."] if use_ellipsis else [":"] * (second - first - 1)
        if not between or self.rng.random() < 0.3:
            between.insert(self.rng.randint(0, len(between)), "None")
        items = [":"] * first + [integer(shape[first]) if int_first else array(shape[first])] + between
        items.append(array(shape[second]) if int_first else integer(shape[second]))
        return ", ".join(items)

    def random_slice(self, n):
        start = self.rng.choice(["", str(self.rng.randint(-n - 1, n + 1))])
        stop = self.rng.choice(["", str(self.rng.randint(-n - 1, n + 1))])
        step = self.rng.choice(["", "", "1", "2", "3"])
        return f"{start}:{stop}" + (f":{step}" if step else "")

    def join(self):
        x = self.pick()
        shape = tuple(self.tensor(x).shape)
        ndim = len(shape)
        if self.rng.random() < 0.5 or ndim == 0:
            dim = self.rng.randint(-ndim - 1, ndim)
            same = self.floats(lambda y: tuple(y.shape) == shape)
            others = [self.rng.choice(same + [x, f"{x}.tanh()", f"{x} * 2"]) for _ in range(self.rng.randint(1, 2))]
            return self.assign(f"t.stack([{', '.join([x] + others)}], dim={dim})")
        dim = self.rng.randint(-ndim, ndim - 1)
        fits = self.floats(lambda y: y.ndim == ndim and all(
            m == n for i, (m, n) in enumerate(zip(y.shape, shape)) if i != dim % ndim))
        others = [self.rng.choice(fits + [x, f"{x}.sigmoid()"]) for _ in range(self.rng.randint(1, 2))]
        brackets = "[]" if self.rng.random() < 0.7 else "()"
        return self.assign(f"t.cat({brackets[0]}{', '.join([x] + others)}{brackets[1]}, {dim})")

    def split(self):
        x = self.pick(lambda y: y.ndim >= 1)
        if x is None:
            return None
        shape = tuple(self.tensor(x).shape)
        dim = self.rng.randrange(len(shape))
        n = shape[dim]
        form = self.rng.choice(["size", "sections", "chunk"])
        if form == "size":
            expression = f"{x}.split({self.rng.randint(1, max(n, 1))}, {dim})"
        elif form == "sections" and n:
            cuts = sorted(self.rng.sample(range(n + 1), min(2, n + 1)))
            sizes = [cuts[0]] + [b - a for a, b in zip(cuts, cuts[1:])] + [n - cuts[-1]]
            expression = f"{x}.split({sizes!r}, dim={dim})"
        else:
            expression = f"{x}.chunk({self.rng.randint(1, 4)}, {dim})"
        pieces = len(self.names_eval(expression))
        if pieces > 4 or self.rng.random() < 0.3:
            return self.assign(f"{expression}[{self.rng.randrange(pieces)}]", view_of=x)
        names = tuple(self.fresh() for _ in range(pieces))
        return Step(f"{', '.join(names)}{',' if pieces == 1 else ''} = {expression}", defines=names, view_of=x)

    def gather(self):
        x = self.pick(lambda y: y.ndim >= 1 and y.numel() > 0)
        if x is None:
            return None
        shape = tuple(self.tensor(x).shape)
        dim = self.rng.randrange(len(shape))
        index_shape = tuple(self.rng.randint(1, 4) if i == dim else self.rng.randint(1, n)
                            for i, n in enumerate(shape))
        index = self.np_rng().integers(0, shape[dim], index_shape)
        return self.assign(f"{x}.gather({dim - len(shape) if self.rng.random() < 0.3 else dim}, "
                           f"{self.tensor_constant(index)})")

    def triangle(self):
        x = self.pick(lambda y: y.ndim >= 2)
        if x is None:
            return None
        return self.assign(f"{x}.{self.rng.choice(['tril', 'triu'])}({self.rng.randint(-1, 2)})")

    # in place ---------------------------------------------------------------------------------------------------------
    def in_place(self, no_grad=False):
        candidates = [n for n in self.floats() if (self.writable(n) if no_grad else True)]
        self.rng.shuffle(candidates)
        for x in candidates[:4]:
            step = self.in_place_on(x, no_grad)
            if step is not None:
                return step
        return None

    def in_place_on(self, x, no_grad):
        shape = tuple(self.tensor(x).shape)
        values = self.array(x)
        partner = self.broadcast_partner(x, into=True)
        if partner is not None and partner != x and self.shares_memory(x, partner):
            partner = None
        value = self.rng.choice([partner, partner, str(self.number(-2, 2)), f"{self.pick()}.sum().tanh()"]) \
            if partner else self.rng.choice([str(self.number(-2, 2)), f"{self.pick()}.sum().tanh()"])
        op = self.rng.choice(["add_", "sub_", "mul_", "div_", "clamp_", "zero_", "fill_", "copy_", "iadd",
                              "imul", "masked_fill_", "add_alpha"])
        if op == "div_":
            divisor = self.names_eval(value)
            divisor = divisor.detach().numpy() if isinstance(divisor, torch.Tensor) else np.asarray(divisor)
            if smallest_magnitude(divisor) < 0.2:
                value = "2.0"
        if op == "clamp_":
            low, high = split_point(values, 0.2), split_point(values, 0.8)
            if values.size and (low is None or high is None):
                return None
            line = f"{x}.clamp_({low!r}, {high!r})" if values.size else f"{x}.clamp_(-1.0, 1.0)"
            value = "0.0"
        elif op in ("zero_", "fill_"):
            line = f"{x}.zero_()" if op == "zero_" else f"{x}.fill_({self.number(-1, 1)})"
            value = "0.0"
        elif op == "copy_":
            if partner is None:
                return None
            value = self.rng.choice([partner, f"{partner} * 3", f"{partner}.tanh()"])
            line = f"{x}.copy_({value})"
        elif op == "iadd":
            line = f"{x} += {value}"
        elif op == "imul":
            line = f"{x} *= {value}"
        elif op == "masked_fill_":
            mask = self.tensor_constant(self.np_rng().random(self.suffix(shape)) < 0.5)
            value = self.rng.choice([str(self.number(-1, 1)), f"{self.pick()}.sum().tanh()"])
            line = f"{x}.masked_fill_({mask}, {value})"
        elif op == "add_alpha":
            line = f"{x}.add_({value}, alpha={self.number(-1, 1)})" if not value[0].isdigit() and value[0] != "-" \
                else f"{x}.add_({value})"
        else:
            line = f"{x}.{op}({value})"
        if no_grad:
            return Step(f"with t.no_grad(): {line}", edits=x, no_grad=True)
        if not self.editable(x):
            return None
        return Step(line, edits=x)

    def set_item(self):
        x = self.pick(lambda y: y.ndim >= 1)
        if x is None:
            return None
        index, _ = self.random_index(tuple(self.tensor(x).shape), unique=True)
        if index is None:
            return None
        target = tuple(self.names_eval(f"{x}[{index}]").shape)
        value = self.value_of_shape(target, x)
        if not self.editable(x):
            return None
        return Step(f"{x}[{index}] = {value}", edits=x)

    def value_of_shape(self, shape, written):
        """An expression of the given shape (or broadcastable to it) built from the program's tensors; never a
        view of the memory written (torch refuses writes whose source overlaps the destination)."""
        numel = int(np.prod(shape))
        same = self.floats(lambda y: tuple(y.shape) == tuple(shape))
        same_size = [y for y in self.floats(lambda y: y.numel() == numel and y.ndim)
                     if not self.shares_memory(y, written)]
        options = [str(self.number(-1, 1)), f"{self.pick()}.sum().tanh()"]
        options += [f"{y}.sigmoid()" for y in same] + [f"{y} * 2" for y in same]
        options += [f"{y}.reshape({tuple(shape)!r})" for y in same_size]
        return self.rng.choice(options)

    def buffer(self):
        """A tensor that does not require grad, written through a view with values that do."""
        source = self.pick()
        shape = tuple(self.tensor(source).shape)
        name = self.fresh()
        form = self.rng.choice(["zeros", "zeros_like", "detached"])
        if form == "zeros":
            shape = (self.rng.randint(1, 3),) + shape
            line = f"{name} = t.zeros({shape!r}, dtype=t.float64)"
        elif form == "zeros_like":
            line = f"{name} = t.zeros_like({source})"
        else:
            line = f"{name} = {source}.detach().clone()"
        step = self.try_step(Step(line, defines=(name,)))
        if step != "kept" or not shape:
            return None
        index, basic = self.random_index(shape, unique=True)
        if index is None or not basic:
            index = "0" if shape[0] else ":"
        view = f"{name}[{index}]"
        if self.rng.random() < 0.3 and len(shape) >= 2:
            view = f"{name}.T[{index}]" if self.rng.random() < 0.5 else f"{name}[{index}][:]"
        target = tuple(self.names_eval(view).shape)
        value = self.value_of_shape(target, name)
        write = self.rng.choice(["copy_", "setitem", "add_"])
        if write == "copy_":
            line = f"{view}.copy_({value})"
        elif write == "add_":
            line = f"{view}.add_({value})"
        else:
            line = f"{view}[{':' if target and self.rng.random() < 0.5 else '...'}] = {value}"
        return Step(line, edits=name)

    # grad modes -------------------------------------------------------------------------------------------------------
    def no_grad(self):
        if self.rng.random() < 0.5:
            return self.in_place(no_grad=True)
        # not views: torch gives a view taken under no_grad its base's requires_grad (without a grad_fn)
        step = self.rng.choice([self.elementwise, self.binary, self.reduction])()
        if step is None or not step.defines:
            return None
        step.line = f"with t.no_grad(): {step.line}"
        step.no_grad = True
        return step

    def detach(self):
        x = self.pick()
        form = self.rng.choice([f"{x}.detach()", f"{x}.detach() * {x}", f"({x} - {x}.detach()).exp()",
                                f"{x}.detach().requires_grad_()"])
        return self.assign(form)

    def refused(self):
        """Lines torch refuses in the forward pass: tinygrad_tx must refuse them too."""
        leaf = self.rng.choice(self.leaves)
        forms = [f"{leaf}.mul_(2)", f"{leaf}[0].add_(1)" if self.tensor(leaf).ndim else f"{leaf}.add_(1)",
                 f"{leaf}.view(-1).zero_()"]
        x = self.pick(lambda y: y.ndim <= 1)
        if x is not None:
            forms.append(f"{self.fresh()} = {x}.mT")
        base = self.pick(lambda y: y.requires_grad and y.ndim >= 1 and y.shape[0] > 0)
        if base is not None and self.rng.random() < 0.4:
            # a view taken under no_grad, then written in grad mode with a value that requires grad
            view = self.fresh()
            if self.try_step(Step(f"with t.no_grad(): {view} = {base}[0]", defines=(view,), no_grad=True)) != "kept":
                return None
            self.values[view].hidden = True
            return Step(f"{view}.mul_({self.rng.choice(self.leaves)}.sum())", edits=view, may_raise=True)
        return Step(self.rng.choice(forms), may_raise=True)

    # --- the end: a loss, its gradients, and for second order the gradients of a function of those ------------------
    def write_tail(self):
        outputs = self.floats(lambda y: y.requires_grad)
        if not outputs:
            return
        # most values enter the loss, so most ops' backward runs; the gradients of retained intermediates are
        # compared one by one, so an error in one op's backward is not averaged away in the leaves' gradients
        chosen = [name for name in outputs[:-1] if self.rng.random() < 0.7] + outputs[-1:]
        terms = {name: f"({name} * {self.weights(tuple(self.tensor(name).shape))}).sum()" for name in chosen}
        leaves = "[" + ", ".join(self.leaves) + "]"
        loss = " + ".join(terms.values())
        if self.backward_refused(loss, leaves):
            # torch refuses this backward (a tensor it saved was edited in place since): tinygrad_tx must refuse it
            # too, and the gradients are then compared on the outputs whose backward torch accepts
            self.tail_line(f"refused = raises(lambda: t.autograd.grad({loss}, {leaves}, retain_graph=True, "
                           "allow_unused=True))")
            chosen = [name for name in chosen if not self.backward_refused(terms[name], leaves)]
            if not chosen:
                return
        terms = [terms[name] for name in chosen]
        form = self.rng.choice(["backward", "backward", "grad", "twice", "gradient"])
        retained = []
        if not self.program.second_order:
            # not views: when a view's base is edited in place torch gives the view a new grad_fn (AsStrided of
            # the base), and what reaches its .grad then depends on torch's internals
            retained = [n for n in outputs if not self.tensor(n).is_leaf and not self.tensor(n)._is_view()
                        and self.rng.random() < 0.6]
        for name in retained:
            self.tail_line(f"{name}.retain_grad()")
        if not self.tail_line(f"loss = {' + '.join(terms)}"):
            return
        if self.program.second_order:
            targets = list(self.leaves)
            extra = [n for n in outputs if not self.tensor(n).is_leaf and n not in retained]
            if extra and self.rng.random() < 0.2:
                targets.append(self.rng.choice(extra))
            weights = ", ".join(self.weights(tuple(self.tensor(n).shape)) for n in targets)
            if not self.tail_line(f"gs = t.autograd.grad(loss, [{', '.join(targets)}], create_graph=True, "
                                  "allow_unused=True)"):
                return
            mix = f" + ({self.rng.choice(outputs)} * 0.5).sum()" if self.rng.random() < 0.3 else ""
            squares = " + weighted([g * g if g is not None else None for g in gs], " \
                      f"[{weights}])" if self.rng.random() < 0.3 else ""
            self.tail_line(f"s = weighted(gs, [{weights}]){squares}{mix}")
            self.tail_line(f"gs2 = grad_or_none(s, {leaves})")
        else:
            if form == "backward":
                self.tail_line("loss.backward()")
            elif form == "grad":
                self.tail_line(f"gs = t.autograd.grad(loss, {leaves}, allow_unused=True)")
            elif form == "twice":
                if self.tail_line("loss.backward(retain_graph=True)"):
                    self.tail_line("loss.backward()")
            else:
                name = chosen[0]
                self.tail_line(f"{name}.backward(gradient={self.weights(tuple(self.tensor(name).shape))})")
        grads = [self.tensor(leaf).grad for leaf in self.leaves] + [self.names.get("gs"), self.names.get("gs2")]
        flat = []
        for g in grads:
            flat.extend(g if isinstance(g, (tuple, list)) else [g])
        if any(isinstance(g, torch.Tensor) and not torch.isfinite(g).all() for g in flat):
            self.program.skipped = "torch's gradients are not finite"

    def backward_refused(self, loss, leaves):
        """Whether torch's backward of the loss expression raises (keeping the graph for what comes after)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.autograd.grad(eval(loss, self.names), eval(leaves, self.names), retain_graph=True,
                                    allow_unused=True)
        except RuntimeError:
            return True
        return False

    def tail_line(self, line):
        """Run a line of the tail; torch raising there (an edited saved tensor) ends the program."""
        if self.program.torch_run is not None:
            return False
        try:
            self.run_line(line)
        except Exception as error:  # noqa: BLE001
            self.program.lines.append(line)
            self.program.torch_run = Run(self.names, len(self.program.lines) - 1, error)
            if "not implemented" in str(error):  # e.g. the double backward of torch's CPU flash attention
                self.program.skipped = f"torch cannot run it: {_describe(error)}"
            return False
        return True


# --- helpers on NumPy values -----------------------------------------------------------------------------------------------
def split_point(values, quantile):
    """A number between two of the values, near the given quantile, at least GAP from every value."""
    flat = np.unique(values.reshape(-1))
    if flat.size == 0:
        return round(quantile * 2 - 1, 3)
    points = np.concatenate([[flat[0] - 1.0], flat, [flat[-1] + 1.0]])
    order = int(round(quantile * (points.size - 2)))
    for offset in range(points.size):
        for i in (order + offset, order - offset):
            if 0 <= i < points.size - 1 and points[i + 1] - points[i] > 4 * GAP:
                middle = round(float((points[i] + points[i + 1]) / 2), 6)
                if np.abs(flat - middle).min() > GAP:
                    return middle
    return None


def broadcast_shape(a, b):
    """The shape a and b broadcast to, or None."""
    out = []
    for n, m in zip(((1,) * len(b) + a)[-max(len(a), len(b)):], ((1,) * len(a) + b)[-max(len(a), len(b)):]):
        if n != m and n != 1 and m != 1:
            return None
        out.append(m if n == 1 else n)
    return tuple(out)


def smallest_magnitude(values):
    values = np.abs(np.asarray(values))
    return values.min() if values.size else np.inf


def clear_top_two(values, dims, largest):
    """Along the reduced dims, the extreme value is clear of the runner-up (no tie to break differently)."""
    if values.size == 0:
        return True
    ndim = values.ndim
    dims = tuple(d % ndim for d in dims)
    kept = [d for d in range(ndim) if d not in dims]
    rows = np.transpose(values, kept + list(dims)).reshape(int(np.prod([values.shape[d] for d in kept])), -1)
    if rows.shape[1] < 2:
        return True
    ordered = np.sort(rows, axis=1)
    gap = ordered[:, -1] - ordered[:, -2] if largest else ordered[:, 1] - ordered[:, 0]
    return bool((gap > GAP).all())


def spread(values, dims):
    if values.size == 0:
        return np.ones(1)
    return np.var(values, axis=tuple(d % values.ndim for d in dims))


def prime_factors(n):
    factors, p = [], 2
    while n > 1 and p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors + ([n] if n > 1 else [])


def matmul_shape(a, b):
    """Whether torch.matmul accepts shapes a and b."""
    if not a or not b:
        return False
    a2, b2 = (a if len(a) >= 2 else (1,) + a), (b if len(b) >= 2 else b + (1,))
    if a2[-1] != b2[-2]:
        return False
    try:
        np.broadcast_shapes(a2[:-2], b2[:-2])
    except ValueError:
        return False
    return True


# --- generating, running and comparing ------------------------------------------------------------------------------------
@contextmanager
def one_thread():
    """Torch on one thread while programs run: its thread pool only adds waiting to ops this small."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def parametrize_seed_batches(metafunc, programs, long_programs, first_seed=0, batch=100, long_batch=1_000):
    """pytest_generate_tests for a test taking `seeds`: batches of seeds, `programs[second_order]` of them
    (`long_programs` with --long); a test whose name ends in second_order gets second-order counts."""
    if "seeds" not in metafunc.fixturenames:
        return
    long = metafunc.config.getoption("--long")
    second_order = metafunc.function.__name__.endswith("second_order")
    total = (long_programs if long else programs)[second_order]
    batch = long_batch if long else batch
    starts = range(first_seed, first_seed + total, batch)
    end = first_seed + total
    metafunc.parametrize("seeds", [range(start, min(start + batch, end)) for start in starts],
                         ids=[f"seeds{start}-{min(start + batch, end) - 1}" for start in starts])


def generate(seed, second_order=False):
    generator = Generator(seed, second_order)
    program = generator.generate()
    if program.torch_run is None:
        program.torch_run = Run(generator.names)
    return program


def problems_of(program, lines=None):
    """How tinygrad_tx's run of the program (or of other lines over its data) differs from torch's."""
    if lines is None:
        theirs = program.torch_run
        lines = program.lines
    else:
        theirs = run_source(lines, program.data, "torch")
    ours = run_source(lines, program.data, "tinygrad_tx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compare_runs(ours, theirs, lines)


def check(seed, second_order=False):
    """None if the program agrees with torch, else a report naming the seed, the differences and the program."""
    try:
        program = generate(seed, second_order)
    except Exception:  # noqa: BLE001 (a fault of the generator: reported with its seed, the other seeds still run)
        kind = "second-order" if second_order else "first-order"
        return f"{kind} program {seed}: the generator failed\n{traceback.format_exc()}"
    if program.skipped:
        return None
    problems = problems_of(program)
    if not problems:
        return None
    return report(program, problems)


def report(program, problems):
    kind = "second-order" if program.second_order else "first-order"
    listing = "\n".join(f"    {i:2d}  {line}" for i, line in enumerate(program.lines))
    return f"{kind} program {program.seed}: " + "; ".join(problems[:4]) + \
        (f" (+{len(problems) - 4} more)" if len(problems) > 4 else "") + f"\n{listing}"


def signature(problems):
    """The kind of a failure, for shrinking: what differs, without the numbers."""
    first = problems[0]
    return first.split(":")[0].split(" at line")[0].rstrip("0123456789[]").split(".")[-1]


def shrink(program):
    """Cut the program down while it still fails with the same kind of difference: drop lines one at a
    time, and terms of the loss one at a time."""
    problems = problems_of(program)
    if not problems:
        return program.lines, []
    wanted = signature(problems)
    lines = list(program.lines)
    changed = True
    while changed:
        changed = False
        for candidate in _smaller(lines):
            try:
                theirs = run_source(candidate, program.data, "torch")
            except SyntaxError:
                continue
            if isinstance(theirs.error, (NameError, AttributeError, TypeError)):
                continue  # it dropped a name a later line needs
            found = compare_runs(run_source(candidate, program.data, "tinygrad_tx"), theirs, candidate)
            if found and signature(found) == wanted:
                lines, problems, changed = candidate, found, True
                break
    return lines, problems


def _smaller(lines):
    for i in reversed(range(len(lines))):
        yield lines[:i] + lines[i + 1:]
    for i, line in enumerate(lines):
        if line.startswith("loss = ") and " + " in line:
            terms = line[len("loss = "):].split(" + ")
            for j in range(len(terms)):
                yield lines[:i] + ["loss = " + " + ".join(terms[:j] + terms[j + 1:])] + lines[i + 1:]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run random programs on tinygrad_tx and torch and compare.")
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--second", action="store_true", help="second-order programs")
    parser.add_argument("--shrink", action="store_true", help="drop lines while the failure stays the same")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for seed in args.seeds:
        program = generate(seed, args.second)
        print(f"# program {seed}" + (" (second order)" if args.second else ""))
        print("D = [" + ", ".join(f"np.array({a.tolist()!r})" for a in program.data) + "]")
        if args.shrink:
            lines, problems = shrink(program)
            print("\n".join(lines))
        else:
            problems = [] if program.skipped else problems_of(program)
            print(program.source())
        print("# " + ("; ".join(problems) if problems else f"skipped: {program.skipped}" if program.skipped
                      else "agrees with torch"))
        if program.torch_run.error is not None:
            print(f"# torch raised at line {program.torch_run.error_line}: {_describe(program.torch_run.error)}")


if __name__ == "__main__":
    main()
