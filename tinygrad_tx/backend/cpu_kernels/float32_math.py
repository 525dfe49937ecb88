"""What the CPU kernels share: Numba's compile options, an exp and a tanh that vectorize, row sums, and views of
raw memory for the kernels that walk a list of arrays.

Why our own exp: a Numba loop that calls math.exp or math.tanh calls libm once per element (tanhf took 30 ns
an element here, ten times NumPy's vectorized tanh). exp32 is Cephes' expf written only with arithmetic that
LLVM turns into vector instructions (8 float32 lanes with AVX2): within 1.5 ulp of the exact value, where
NumPy's float32 exp measured 3.3 ulp.
"""
import functools

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

# every kernel: float32 math in program order (no fast-math reassociation, no fused multiply-add), threads
# over rows or blocks (prange), compiled on first use and cached to disk (__pycache__ beside this file)
kernel = functools.partial(numba.njit, parallel=True, fastmath=False, cache=True)
# helpers the kernels call: inlined, so the loop around them still vectorizes
helper = functools.partial(numba.njit, fastmath=False, cache=True, inline="always")

F32 = np.float32
ZERO, HALF, ONE, TWO = F32(0), F32(0.5), F32(1), F32(2)
INF = F32(np.inf)

# exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2]; ln 2 split in two (C1 exact in
# few bits) so that n * C1 is exact; exp(r) by Cephes' degree-7 polynomial
LOG2E = F32(1.44269504088896341)
LN2_HIGH, LN2_LOW = F32(0.693359375), F32(-2.12194440e-4)
EXP_POLYNOMIAL = tuple(F32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                                        1.6666665459e-1, 5.0000001201e-1))
P0, P1, P2, P3, P4, P5 = EXP_POLYNOMIAL
EXP_OVERFLOW = F32(88.72283)     # exp of more is inf in float32
EXP_UNDERFLOW = F32(-103.97208)  # exp of less rounds to 0 (between this and -87.3: subnormal results)


@intrinsic
def _times_power_of_two(typingctx, y, n):
    """y * 2^n for a float32 y and an integral float32 n in [-150, 128]: the power built from its bits (exponent
    field n + 127), in two halves so that each half is a normal float32 even at the ends of the range."""
    if y != types.float32 or n != types.float32:
        return None

    def codegen(context, builder, signature, args):
        y, n = args
        i32, f32 = ir.IntType(32), ir.FloatType()
        whole = builder.fptosi(n, i32)
        half = builder.ashr(whole, ir.Constant(i32, 1))

        def power(exponent):
            bits = builder.shl(builder.add(exponent, ir.Constant(i32, 127)), ir.Constant(i32, 23))
            return builder.bitcast(bits, f32)
        return builder.fmul(builder.fmul(y, power(half)), power(builder.sub(whole, half)))
    return types.float32(types.float32, types.float32), codegen


@helper
def exp32(x):
    """exp of a float32, in float32: inf above 88.72, 0 below -103.97, NaN for NaN."""
    clamped = x if x > EXP_UNDERFLOW else EXP_UNDERFLOW  # NaN becomes a number here: n below stays finite
    clamped = clamped if clamped < EXP_OVERFLOW else EXP_OVERFLOW
    n = np.floor(clamped * LOG2E + HALF)
    r = clamped - n * LN2_HIGH
    r = r - n * LN2_LOW
    y = (((((P0 * r + P1) * r + P2) * r + P3) * r + P4) * r + P5) * (r * r) + r + ONE
    y = _times_power_of_two(y, n)
    y = INF if x > EXP_OVERFLOW else y
    y = ZERO if x < EXP_UNDERFLOW else y
    return x if x != x else y


@helper
def one_plus_and_minus_tanh(u):
    """(1 + tanh(u), 1 - tanh(u)), each to float32 rounding, from e = exp(-2|u|) in (0, 1]: 1 - tanh|u| =
    2e / (1 + e) and 1 + tanh|u| = 2 / (1 + e) never cancel, where 1 + t with t = tanh(u) near -1 would lose
    all but a few bits (GELU's (1 + t) for very negative x)."""
    e = exp32(-TWO * abs(u))
    small = TWO * e / (ONE + e)
    large = TWO / (ONE + e)
    return (large, small) if u >= ZERO else (small, large)


@helper
def exp_shifted(row, shift, out):
    """out[j] = exp(row[j] - shift) over the row: a loop of its own (a sum in it would stop it vectorizing)."""
    for j in range(row.size):
        out[j] = exp32(row[j] - shift)


@helper
def row_sum(row):
    """The float64 sum of a 1-D float32 row, in eight running sums (which vectorize); exact for a row of one
    repeated value, so its mean is that value."""
    n = row.size
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    i = 0
    while i + 8 <= n:
        s0 += row[i]
        s1 += row[i + 1]
        s2 += row[i + 2]
        s3 += row[i + 3]
        s4 += row[i + 4]
        s5 += row[i + 5]
        s6 += row[i + 6]
        s7 += row[i + 7]
        i += 8
    total = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    for j in range(i, n):
        total += row[j]
    return total


@helper
def row_dot(a, b):
    """The float64 sum of a * b (each product rounded to float32, as the array code's) over two float32 rows."""
    n = a.size
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    i = 0
    while i + 8 <= n:
        s0 += a[i] * b[i]
        s1 += a[i + 1] * b[i + 1]
        s2 += a[i + 2] * b[i + 2]
        s3 += a[i + 3] * b[i + 3]
        s4 += a[i + 4] * b[i + 4]
        s5 += a[i + 5] * b[i + 5]
        s6 += a[i + 6] * b[i + 6]
        s7 += a[i + 7] * b[i + 7]
        i += 8
    total = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    for j in range(i, n):
        total += a[j] * b[j]
    return total


@helper
def row_max(row):
    """The largest value of a float32 row; NaN if the row holds one."""
    best = row[0]
    for j in range(1, row.size):
        value = row[j]
        best = value if value > best or value != value else best
    return best


@intrinsic
def _float32_pointer(typingctx, address):
    if not isinstance(address, types.Integer):
        return None
    pointer_type = types.CPointer(types.float32)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(pointer_type))
    return pointer_type(address), codegen


@helper
def float32_array_at(address, size):
    """The 1-D float32 array of `size` values at a memory address (NumpyKernels checks each array it takes)."""
    return numba.carray(_float32_pointer(address), size)
