"""Elementwise ops. Binary ops broadcast; their backward sums the gradient back to each input's shape."""
import math

from ..autograd import Function
from ..dtype import bool_


def unbroadcast(grad, shape):
    """Sum a gradient over the dimensions that broadcasting stretched, back to `shape`."""
    if grad.shape == shape:
        return grad
    leading = grad.ndim - len(shape)
    stretched = tuple(range(leading)) + tuple(
        leading + i for i, n in enumerate(shape) if n == 1 and grad.shape[leading + i] != 1)
    return grad.sum(dim=stretched, keepdim=True).reshape(shape)


def constant(like, array):
    """A tensor outside the graph (a mask, a derivative factor) on like's device."""
    from ..tensor import Tensor
    return Tensor._make(array, like.device)


def save_operands(ctx, a, b):
    """For a product: each operand's gradient reads the other, so save only those a gradient needs.
    An operand that needs no gradient (a constant) may then be edited in place freely, as in PyTorch."""
    if ctx.needs_input_grad:
        needs_a, needs_b = ctx.needs_input_grad
        ctx.save_for_backward(a if needs_b else None, b if needs_a else None)


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a.array + b.array

    @staticmethod
    def backward(ctx, grad_output):
        (shape_a, _), (shape_b, _) = ctx._input_meta
        return unbroadcast(grad_output, shape_a), unbroadcast(grad_output, shape_b)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a.array - b.array

    @staticmethod
    def backward(ctx, grad_output):
        (shape_a, _), (shape_b, _) = ctx._input_meta
        return unbroadcast(grad_output, shape_a), unbroadcast(-grad_output, shape_b)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        save_operands(ctx, a, b)
        return a.array * b.array

    @staticmethod
    def backward(ctx, grad_output):
        a, b = ctx.saved_tensors
        (shape_a, _), (shape_b, _) = ctx._input_meta
        grad_a = unbroadcast(grad_output * b, shape_a) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(grad_output * a, shape_b) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        if ctx.needs_input_grad:  # da reads b; db reads a and b
            ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)
        return a.array / b.array

    @staticmethod
    def backward(ctx, grad_output):
        # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
        a, b = ctx.saved_tensors
        (shape_a, _), (shape_b, _) = ctx._input_meta
        grad_a = unbroadcast(grad_output / b, shape_a) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(-grad_output * a / (b * b), shape_b) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class _StepFunction(Function):
    """A piecewise constant function of its inputs: the derivative is 0 wherever it exists, as PyTorch's
    floor, round and div(rounding_mode="floor") backward say."""
    @staticmethod
    def backward(ctx, grad_output):
        return tuple(None if meta is None else grad_output.new_zeros(meta[0]) for meta in ctx._input_meta)


class _Rounding(_StepFunction):
    rounding = None  # the backend's function

    @classmethod
    def forward(cls, ctx, x):
        return getattr(x.backend, cls.rounding)(x.array)


class Floor(_Rounding):
    rounding = "floor"


class Ceil(_Rounding):
    rounding = "ceil"


class Round(_Rounding):
    rounding = "round"


class Trunc(_Rounding):
    rounding = "trunc"


class FloorDivide(_StepFunction):
    """a // b, rounded toward -inf (PyTorch's floor_divide and Python's //)."""
    @staticmethod
    def forward(ctx, a, b):
        return a.backend.floor_divide(a.array, b.array)


class Remainder(Function):
    """a % b with the sign of b (PyTorch's remainder and Python's %): a - b * floor(a / b)."""
    @classmethod
    def forward(cls, ctx, a, b):
        if ctx.needs_input_grad and ctx.needs_input_grad[1]:
            ctx.save_for_backward(a, b)
        return cls.compute(a.backend, a.array, b.array)

    @staticmethod
    def compute(backend, a, b):
        return backend.remainder(a, b)

    @staticmethod
    def quotient(backend, a, b):
        return backend.floor_divide(a, b)

    @classmethod
    def backward(cls, ctx, grad_output):
        # d/da = 1, d/db = -quotient(a, b)
        (shape_a, _), (shape_b, _) = ctx._input_meta
        grad_b = None
        if ctx.needs_input_grad[1]:
            a, b = ctx.saved_tensors
            grad_b = unbroadcast(-grad_output * constant(a, cls.quotient(a.backend, a.array, b.array)), shape_b)
        return unbroadcast(grad_output, shape_a), grad_b


class Fmod(Remainder):
    """fmod(a, b) with the sign of a (C's fmod): a - b * trunc(a / b)."""
    @staticmethod
    def compute(backend, a, b):
        return backend.fmod(a, b)

    @staticmethod
    def quotient(backend, a, b):
        return backend.trunc(a / b)


class Reciprocal(Function):
    saves_output = True

    @staticmethod
    def forward(ctx, x):
        return 1 / x.array

    @staticmethod
    def backward(ctx, grad_output):
        # d(1/x)/dx = -1/x^2 = -out^2
        out = ctx.output
        return -grad_output * out * out


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return -x.array

    @staticmethod
    def backward(ctx, grad_output):
        return -grad_output


class PowScalar(Function):
    """x ** p for a Python number p."""
    @staticmethod
    def forward(ctx, x, exponent):
        ctx.save_for_backward(x)
        ctx.exponent = exponent
        if exponent == 2:  # a generic pow is many times slower than a product
            return x.array * x.array
        if exponent == 3:
            return x.array * x.array * x.array
        return x.array ** exponent

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        p = ctx.exponent
        if p == 0:
            return grad_output * 0, None
        if p == 1:
            return grad_output, None
        if p == 2:
            return grad_output * x * 2, None
        return grad_output * p * x ** (p - 1), None


class Pow(Function):
    """a ** b for two tensors."""
    saves_output = True  # the exponent's gradient reads a ** b; PyTorch keeps it whichever gradient is wanted

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a.array ** b.array

    @staticmethod
    def backward(ctx, grad_output):
        a, b = ctx.saved_tensors
        out = ctx.output  # read even when unused: editing it in place is an error here as in PyTorch
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = unbroadcast(grad_output * b * a ** (b - 1), a.shape)
        if ctx.needs_input_grad[1]:
            # d(a^b)/db = a^b log a; PyTorch takes 0 where a == 0 and b >= 0, and so do we
            safe_a = a.masked_fill(a == 0, 1)
            grad_b = unbroadcast(grad_output * out * safe_a.log(), b.shape)
        return grad_a, grad_b


class Exp(Function):
    saves_output = True

    @staticmethod
    def forward(ctx, x):
        return x.backend.exp(x.array)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * ctx.output


class Exp2(Function):
    saves_output = True

    @staticmethod
    def forward(ctx, x):
        return x.backend.exp2(x.array)

    @staticmethod
    def backward(ctx, grad_output):
        # d 2^x/dx = 2^x ln 2
        return grad_output * ctx.output * math.log(2)


class Expm1(Function):
    saves_output = True

    @staticmethod
    def forward(ctx, x):
        return x.backend.expm1(x.array)

    @staticmethod
    def backward(ctx, grad_output):
        # d(e^x - 1)/dx = e^x = out + 1
        return grad_output * (ctx.output + 1)


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.backend.log(x.array)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / x


class Log2(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.backend.log2(x.array)

    @staticmethod
    def backward(ctx, grad_output):
        # d log2(x)/dx = 1 / (x ln 2)
        (x,) = ctx.saved_tensors
        return grad_output / (x * math.log(2))


class Log1p(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.backend.log1p(x.array)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (x + 1)


class Sqrt(Function):
    saves_output = True

    @staticmethod
    def forward(ctx, x):
        return x.backend.sqrt(x.array)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output / (ctx.output * 2)


class StdFromVar(Sqrt):
    """sqrt of a variance, for std: where the variance is 0 (a constant row) the gradient is 0 rather
    than inf * 0 = NaN, as PyTorch's std backward masks it."""
    @staticmethod
    def backward(ctx, grad_output):
        out = ctx.output
        zero = out == 0
        return (grad_output / (out.masked_fill(zero, 1) * 2)).masked_fill(zero, 0)


class Rsqrt(Function):
    saves_output = True

    @staticmethod
    def forward(ctx, x):
        return 1 / x.backend.sqrt(x.array)

    @staticmethod
    def backward(ctx, grad_output):
        # d(x^-1/2)/dx = -1/2 x^-3/2 = -1/2 out^3
        out = ctx.output
        return grad_output * out * out * out * -0.5


class Tanh(Function):
    saves_output = True

    @staticmethod
    def forward(ctx, x):
        return x.backend.tanh(x.array)

    @staticmethod
    def backward(ctx, grad_output):
        out = ctx.output
        return grad_output * (1 - out * out)


class Sigmoid(Function):
    saves_output = True

    @staticmethod
    def forward(ctx, x):
        # 1/2 (1 + tanh(x/2)) never overflows, unlike 1 / (1 + exp(-x))
        return 0.5 * (1 + x.backend.tanh(0.5 * x.array))

    @staticmethod
    def backward(ctx, grad_output):
        out = ctx.output
        return grad_output * out * (1 - out)


class Relu(Function):
    saves_output = True  # the output tells where the input was positive; the input may then change

    @staticmethod
    def forward(ctx, x):
        return x.backend.maximum(x.array, 0)

    @staticmethod
    def backward(ctx, grad_output):
        # ~(y <= 0) rather than y > 0: a NaN input (relu keeps it) passes its gradient on, as in PyTorch
        out = ctx.output
        return grad_output * constant(out, (~(out.array <= 0)).astype(out.array.dtype))


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.backend.abs(x.array)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * constant(x, x.backend.sign(x.array))


class Sin(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.backend.sin(x.array)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * x.cos()


class Cos(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.backend.cos(x.array)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return -grad_output * x.sin()


class Clamp(Function):
    @staticmethod
    def forward(ctx, x, low, high):
        ctx.save_for_backward(x)
        ctx.bounds = (low, high)
        return x.backend.clip(x.array, low, high)

    @staticmethod
    def backward(ctx, grad_output):
        # the gradient passes where low <= x <= high, as in PyTorch
        (x,) = ctx.saved_tensors
        low, high = ctx.bounds
        inside = x.backend.full(x.shape, True, bool_)
        if low is not None:
            inside &= x.array >= low
        if high is not None:
            inside &= x.array <= high
        return grad_output * constant(x, inside.astype(x.array.dtype)), None, None


class Maximum(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a.backend.maximum(a.array, b.array)

    @staticmethod
    def backward(ctx, grad_output):
        # ties split the gradient evenly between the two inputs, as in PyTorch
        a, b = ctx.saved_tensors
        return _split_between(grad_output, a, b, a.array < b.array, a.array > b.array)


class Minimum(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a.backend.minimum(a.array, b.array)

    @staticmethod
    def backward(ctx, grad_output):
        a, b = ctx.saved_tensors
        return _split_between(grad_output, a, b, a.array > b.array, a.array < b.array)


def _split_between(grad_output, a, b, a_loses, b_loses):
    """Each input's share is 1 where it wins, 0 where it loses, 1/2 at a tie, and 1 for both where a
    NaN makes every comparison false: the NaN then reaches both gradients, as in PyTorch."""
    ties = 0.5 * (a.array == b.array)
    dtype = grad_output.array.dtype
    grad_a = unbroadcast(grad_output * constant(a, (1 - a_loses - ties).astype(dtype)), a.shape)
    grad_b = unbroadcast(grad_output * constant(b, (1 - b_loses - ties).astype(dtype)), b.shape)
    return grad_a, grad_b


class Where(Function):
    only_moves_values = True

    @staticmethod
    def forward(ctx, condition, a, b):
        ctx.save_for_backward(condition)
        return a.backend.where(condition.array, a.array, b.array)

    @staticmethod
    def backward(ctx, grad_output):
        (condition,) = ctx.saved_tensors
        (_, _), (shape_a, _), (shape_b, _) = ctx._input_meta
        zero = grad_output.new_zeros(())
        grad_a = unbroadcast(Where.apply(condition, grad_output, zero), shape_a)
        grad_b = unbroadcast(Where.apply(condition, zero, grad_output), shape_b)
        return None, grad_a, grad_b


class Cast(Function):
    only_moves_values = True

    @staticmethod
    def forward(ctx, x, dtype):
        return x.backend.astype(x.array, dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (_, dtype), _ = ctx._input_meta
        return grad_output.to(dtype), None


class Erf(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.backend.erf(x.array)

    @staticmethod
    def backward(ctx, grad_output):
        # d erf(x)/dx = 2/sqrt(pi) exp(-x^2)
        (x,) = ctx.saved_tensors
        return grad_output * (x * x * -1).exp() * (2 / math.sqrt(math.pi))
