"""GELU, exact (erf) or tanh-approximated, elementwise over flat float32 arrays in blocks, a thread per block.
The backward recomputes from x instead of keeping the forward's tanh or cdf: one array less in memory.

    exact:  y = x Phi(x),                                dy/dx = Phi(x) + x phi(x)
    tanh:   y = x/2 (1 + t), t = tanh(sqrt(2/pi) (x + 0.044715 x^3)),
            dy/dx = (1 + t)/2 + x/2 (1 - t)(1 + t) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
"""
import math

from numba import prange

from .float32_math import F32, HALF, ONE, erf32, exp32, kernel, one_plus_and_minus_tanh

BLOCK = 1 << 14
TANH_SCALE = F32(math.sqrt(2 / math.pi))
CUBIC = F32(0.044715)
CUBIC_DERIVATIVE = F32(3 * 0.044715 * math.sqrt(2 / math.pi))  # d/dx of the tanh's argument, less TANH_SCALE
INV_SQRT_2 = F32(1 / math.sqrt(2))
INV_SQRT_2PI = F32(1 / math.sqrt(2 * math.pi))


# Each block's loop runs over views of the block, from 0: a loop from `first` to `last` over the whole arrays ran
# 5x slower where the output began 16 bytes past the input's end (as consecutive allocations of one size do), its
# vector path apparently refused by LLVM's check that the two arrays do not overlap.
@kernel("void(VECTOR, VECTOR, boolean)")
def gelu_forward(x, out, approximate_tanh):
    n = x.size
    for block in prange((n + BLOCK - 1) // BLOCK):
        first, last = block * BLOCK, min(n, (block + 1) * BLOCK)
        values, results = x[first:last], out[first:last]
        if approximate_tanh:  # two loops, not a test per element: the tanh loop then vectorizes
            for i in range(last - first):
                v = values[i]
                one_plus_t, _ = one_plus_and_minus_tanh(TANH_SCALE * (v + CUBIC * v * v * v))
                results[i] = HALF * v * one_plus_t
        else:
            for i in range(last - first):
                v = values[i]
                results[i] = v * (HALF * (ONE + erf32(v * INV_SQRT_2)))


@kernel("void(VECTOR, VECTOR, VECTOR, boolean)")
def gelu_backward(grad_out, x, grad_x, approximate_tanh):
    n = x.size
    for block in prange((n + BLOCK - 1) // BLOCK):
        first, last = block * BLOCK, min(n, (block + 1) * BLOCK)
        values, grads, results = x[first:last], grad_out[first:last], grad_x[first:last]
        if approximate_tanh:
            for i in range(last - first):
                v = values[i]
                one_plus_t, one_minus_t = one_plus_and_minus_tanh(TANH_SCALE * (v + CUBIC * v * v * v))
                inner_derivative = TANH_SCALE + CUBIC_DERIVATIVE * (v * v)
                derivative = HALF * one_plus_t + HALF * v * (one_minus_t * one_plus_t) * inner_derivative
                results[i] = grads[i] * derivative
        else:
            for i in range(last - first):
                v = values[i]
                cdf = HALF * (ONE + erf32(v * INV_SQRT_2))
                results[i] = grads[i] * (cdf + v * (exp32(-HALF * v * v) * INV_SQRT_2PI))
