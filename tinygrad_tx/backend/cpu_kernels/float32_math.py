"""What the CPU kernels share: Numba's compile options, an exp and a tanh that vectorize, row sums, and views of
raw memory for the kernels that walk a list of arrays.

Why our own exp: a Numba loop that calls math.exp or math.tanh calls libm once per element (tanhf took 30 ns
an element here, ten times NumPy's vectorized tanh). exp32 is Cephes' expf written only with arithmetic that
LLVM turns into vector instructions (8 float32 lanes with AVX2): within 1.5 ulp of the exact value, where
NumPy's float32 exp measured 3.3 ulp.
"""
import functools
import types as python_types

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

# float32 math in program order (no reassociation, no FMA), and IEEE division (x / 0 is inf or NaN, as NumPy's,
# where Python's error model tests every divisor and keeps the loop from vectorizing: 7x slower here)
COMPILE_OPTIONS = dict(fastmath=False, error_model="numpy", cache=True)
# the array types in kernel signatures: C-contiguous float32 (heads, rows, columns), (rows, columns) and flat;
# int64 indices, and int64 memory addresses (parameters.py reads lists of arrays through them)
ARRAY_TYPES = {"HEADS": "float32[:, :, ::1]", "ROWS": "float32[:, ::1]", "VECTOR": "float32[::1]",
               "INDICES": "int64[::1]", "ADDRESSES": "int64[::1]"}
KERNELS = {}  # name -> Kernel, every kernel of the modules imported so far


class Kernel:
    """A kernel compiled from one function with threads (its prange loop shared among them, `threaded`) and on
    one thread (prange runs as range, `one_thread`), each by Numba's JIT on first use and cached to disk
    (__pycache__ beside the source) under names of its own. `signature` is the one set of types NumbaKernels
    calls it with, from which ahead_of_time.py builds the one-thread kernels into an extension module."""

    def __init__(self, function, signature):
        one_thread = python_types.FunctionType(function.__code__, function.__globals__, function.__name__,
                                               function.__defaults__, function.__closure__)
        one_thread.__qualname__ = function.__qualname__ + "_one_thread"  # Numba names its cache files by this
        self.threaded = numba.njit(parallel=True, **COMPILE_OPTIONS)(function)
        # the one-thread build lets go of the GIL, so Python threads can run it side by side (NumbaKernels runs
        # parts of a call so); the threaded one keeps it: Numba's workqueue must not be entered by two threads at once
        self.one_thread = numba.njit(nogil=True, **COMPILE_OPTIONS)(one_thread)
        for alias, array_type in ARRAY_TYPES.items():
            signature = signature.replace(alias, array_type)
        self.signature = signature
        self.function = function
        functools.update_wrapper(self, function)
        KERNELS[function.__name__] = self


def kernel(signature):
    return lambda function: Kernel(function, signature)


# helpers the kernels call: inlined, so the loop around them still vectorizes
helper = functools.partial(numba.njit, inline="always", **COMPILE_OPTIONS)

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


# erf from two fits (least squares on Chebyshev points): erf(x) / x as a polynomial in x^2 on [0, 1.25] (relative
# error 1.3e-9), evaluated in float64, since float32 arithmetic there was up to 3 ulp off; and past 1.25, where
# erfc = 1 - erf is small beside erf's ulp, erfc(x) = exp(-x^2) S(1/x) / x, S(1/x) = x exp(x^2) erfc(x) a smooth
# function fit by a polynomial in 1/x on [1.25, 3.92], all in float32 (8 lanes a vector, not 4). Within 1 ulp of
# erf rounded to float32 at every 64th float32 in [0, 4.2]. Past 3.92, erf rounds to 1 in float32.
E0, E1, E2, E3, E4, E5, E6, E7 = (1.128379166720456, -0.37612633205706825, 0.11283703102292332,
                                  -0.02686123978585524, 0.005210731499010213, -0.0008355018468328255,
                                  0.00010463526503082502, -7.697121367669247e-06)
S0, S1, S2, S3, S4, S5, S6, S7, S8 = (F32(c) for c in (
    0.5641947388648987, -0.0005881452234461904, -0.2710363566875458, -0.09656248241662979, 0.9034697413444519,
    -1.4202220439910889, 1.1773003339767456, -0.53365558385849, 0.10471552610397339))
ERF_SERIES_END = F32(1.25)
ERF_IS_ONE = F32(3.92)


@helper
def erf32(x):
    """erf of a float32, in float32, with arithmetic that vectorizes (math.erf calls libm once per element: GELU's
    backward took 7 ms over 393K values with it)."""
    wide = np.float64(x)
    t = wide * wide
    series = F32(wide * (E0 + t * (E1 + t * (E2 + t * (E3 + t * (E4 + t * (E5 + t * (E6 + t * E7))))))))  # keeps -0.0
    a = abs(x)
    v = ONE / max(a, ERF_SERIES_END)  # (the tail's, unused below that: no division by zero)
    smooth = S0 + v * (S1 + v * (S2 + v * (S3 + v * (S4 + v * (S5 + v * (S6 + v * (S7 + v * S8)))))))
    erfc = smooth * v * exp32(-(a * a))
    tail = ONE - erfc if a < ERF_IS_ONE else ONE
    tail = -tail if x < ZERO else tail
    result = series if a < ERF_SERIES_END else tail
    return x if x != x else result


# Row helpers take a 2-D array and a row number, not the row as a view of its own: a view costs two atomic
# updates of the array's reference count, which two threads slicing one array fight over (a row kernel ran 3x
# slower on views).
@helper
def exp_shifted(source, row, n, shift, out, out_row):
    """out[out_row, j] = exp(source[row, j] - shift) for j < n: a loop of its own (a sum in it would stop it
    vectorizing)."""
    for j in range(n):
        out[out_row, j] = exp32(source[row, j] - shift)


@helper
def row_sum(a, row, n):
    """The float64 sum of a[row, :n] (float32 values), in eight running sums, which vectorize; exact for a row of
    one repeated value, so its mean is that value."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    i = 0
    while i + 8 <= n:
        s0 += a[row, i]
        s1 += a[row, i + 1]
        s2 += a[row, i + 2]
        s3 += a[row, i + 3]
        s4 += a[row, i + 4]
        s5 += a[row, i + 5]
        s6 += a[row, i + 6]
        s7 += a[row, i + 7]
        i += 8
    total = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    for j in range(i, n):
        total += a[row, j]
    return total


@helper
def row_dot(a, b, row, n):
    """The float64 sum of a[row, j] * b[row, j] for j < n, each product rounded to float32 (as the array code's)."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    i = 0
    while i + 8 <= n:
        s0 += a[row, i] * b[row, i]
        s1 += a[row, i + 1] * b[row, i + 1]
        s2 += a[row, i + 2] * b[row, i + 2]
        s3 += a[row, i + 3] * b[row, i + 3]
        s4 += a[row, i + 4] * b[row, i + 4]
        s5 += a[row, i + 5] * b[row, i + 5]
        s6 += a[row, i + 6] * b[row, i + 6]
        s7 += a[row, i + 7] * b[row, i + 7]
        i += 8
    total = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    for j in range(i, n):
        total += a[row, j] * b[row, j]
    return total


@helper
def row_max(a, row, n):
    """The largest of a[row, :n], in eight running maxima. A NaN is passed over here; the callers' sums of
    exp(x - max) turn it into a NaN result anyway, as NumPy's max would."""
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = -INF
    i = 0
    while i + 8 <= n:
        m0 = max(m0, a[row, i])
        m1 = max(m1, a[row, i + 1])
        m2 = max(m2, a[row, i + 2])
        m3 = max(m3, a[row, i + 3])
        m4 = max(m4, a[row, i + 4])
        m5 = max(m5, a[row, i + 5])
        m6 = max(m6, a[row, i + 6])
        m7 = max(m7, a[row, i + 7])
        i += 8
    largest = max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))
    for j in range(i, n):
        largest = max(largest, a[row, j])
    return largest


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
