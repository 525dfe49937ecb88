"""GELU, exact (erf) and tanh-approximated, with its derivative computed in the same pass."""
import math

from .fused import FusedFunction

TANH_SCALE = math.sqrt(2 / math.pi)
CUBIC = 0.044715


class Gelu(FusedFunction):
    @staticmethod
    def computes_bfloat16_itself(x, approximate):
        return _kernels_for(x) is not None  # the kernel reads bfloat16 and computes in float32

    @staticmethod
    def forward(ctx, x, approximate):
        backend, a = x.backend, x.array
        ctx.save_for_backward(x)
        ctx.kernels = _kernels_for(x)
        if ctx.kernels is not None:  # backward recomputes tanh/erf from x: nothing else kept
            ctx.saved_arrays = (a, None)
            return ctx.kernels.gelu_forward(a, approximate == "tanh")
        if approximate == "tanh":
            # gelu(x) ~ x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            inner = a * a                       # in place from here: fewer full-size temporaries
            inner *= CUBIC
            inner += 1
            inner *= a
            inner *= TANH_SCALE
            t = backend.tanh(inner)
            ctx.saved_arrays = (a, t)
            out = t + 1
            out *= a
            out *= 0.5
            return out
        # gelu(x) = x Phi(x), Phi the standard normal CDF
        cdf = 0.5 * (1 + backend.erf(a * (1 / math.sqrt(2))))
        ctx.saved_arrays = (a, cdf)
        ctx.backend = backend
        return a * cdf

    @staticmethod
    def backward_arrays(ctx, grad_output):
        a, saved = ctx.saved_arrays
        if ctx.kernels is not None:
            return ctx.kernels.gelu_backward(grad_output, a, ctx.arguments[1] == "tanh"), None
        if ctx.arguments[1] == "tanh":
            # d/dx = 1/2 (1 + t) + 1/2 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), t the forward's tanh;
            # computed in place: this elementwise chain is a large share of a small GPT's step on a CPU
            t = saved
            inner_derivative = a * a
            inner_derivative *= 3 * CUBIC * TANH_SCALE
            inner_derivative += TANH_SCALE
            derivative = t * t
            derivative -= 1
            derivative *= -0.5
            derivative *= a
            derivative *= inner_derivative
            derivative += 0.5
            t_half = t * 0.5
            derivative += t_half
            derivative *= grad_output
            return derivative, None
        # d/dx x Phi(x) = Phi(x) + x phi(x)
        pdf = ctx.backend.exp(-0.5 * a * a) * (1 / math.sqrt(2 * math.pi))
        return grad_output * (saved + a * pdf), None

    @staticmethod
    def composed(ctx, x, approximate):
        if approximate == "tanh":
            return 0.5 * x * (1 + (TANH_SCALE * (x + CUBIC * x * x * x)).tanh())
        return 0.5 * x * (1 + (x * (1 / math.sqrt(2))).erf())


def _kernels_for(x):
    kernels = x.backend.kernels
    return kernels if kernels is not None and kernels.supports(x.array) else None
