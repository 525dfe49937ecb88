"""Every CUDA kernel's own source, executed on the CPU, checked against torch in float64.

The kernels run in the CPU executor (tests/cuda_cpu: the .cu text NVRTC compiles, built by the C++ compiler
with a header that gives the CUDA names their meaning), launched by launch.py's CudaKernels with its grids,
blocks, argument order and scalar types. Each case runs under several schedules (thread and block orders)
and its outputs must be bit-identical across them: a race shows as a difference. Inputs are rounded to the
storage dtype first, so the float64 reference sees exactly what the kernel saw.

A quick set runs by default; `--long` (or `--runslow`) runs the full set: every width, head dim and length.
The mutation tests plant known bugs in copies of the sources and check that these tests catch each one.
"""
import os

import numpy as np
import pytest
import torch

from cuda_cpu import executor, fake_cupy
from cuda_cpu.executed_kernels import ExecutedKernels
from philox_reference import philox_reference, philox_words
from tinygrad_tx.backend.philox import PhiloxGenerator
from tinygrad_tx.backend import kernels
from tinygrad_tx.backend.kernels import launch

pytestmark = pytest.mark.skipif(executor.COMPILER is None, reason="needs a C++ compiler (g++) for the CPU executor")

try:
    import ml_dtypes
    STORAGE = (np.float32, np.float16, ml_dtypes.bfloat16)
except ImportError:  # bfloat16 storage needs ml_dtypes (the bf16 extra)
    STORAGE = (np.float32, np.float16)
DTYPE_IDS = [np.dtype(d).name for d in STORAGE]
# the storage type's rounding, relative, on values of order one; float32 math leaves far less
TOLERANCE = {"float32": 2e-5, "float16": 2e-3, "bfloat16": 1.6e-2}


def long_mode(request):
    return request.config.getoption("--long")


@pytest.fixture
def cuda_kernels():
    return ExecutedKernels()


def run_everywhere(compute, count=3):
    """compute() -> output arrays, run under `count` schedules; the outputs must agree bit for bit."""
    first = None
    for chosen in executor.schedules(count):
        with executor.schedule(chosen):
            outputs = [np.array(o) for o in compute() if o is not None]
        if first is None:
            first, first_schedule = outputs, chosen
            continue
        for index, (a, b) in enumerate(zip(first, outputs)):
            differing = np.count_nonzero(a.view(np.uint8) != b.view(np.uint8))
            assert differing == 0, (f"output {index} differs between {first_schedule} and {chosen} in {differing} "
                                    f"bytes: a race")
    return first


def stored(array, dtype):
    """The array rounded to the storage dtype, on the fake device; and its exact float64 values for torch."""
    rounded = np.asarray(array).astype(dtype)
    return fake_cupy.asarray(rounded), torch.from_numpy(rounded.astype(np.float64))


# the largest error each (family, storage dtype, direction) has shown, relative to max(1, the largest |value|)
# (outputs that are exactly 0 in torch, such as attention over one key, count absolutely):
# benchmarks/kernel_table.py runs the full set and prints it
ERRORS = {}
_case = {"family": None, "dtype": None}


def case(family, dtype):
    _case.update(family=family, dtype=np.dtype(dtype).name)


def assert_matches(actual, expected, dtype, what, scale=1.0):
    actual = np.asarray(actual).astype(np.float64)
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    tolerance = TOLERANCE[np.dtype(dtype).name]
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance * scale, err_msg=what)
    record("backward" if "grad" in what else "forward", actual, expected)


def record(direction, actual, expected):
    if _case["family"] and np.size(expected):
        key = (_case["family"], _case["dtype"], direction)
        actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
        error = float(np.max(np.abs(actual - expected)) / max(float(np.max(np.abs(expected))), 1.0))
        cases, worst = ERRORS.get(key, (0, 0.0))
        ERRORS[key] = (cases + 1, max(worst, error))


def rng(seed):
    return np.random.default_rng(seed)


# --- layer norm -------------------------------------------------------------------------------------------------------
def check_layer_norm(cuda_kernels, rows, width, affine, dtype, seed=0):
    case("layer_norm", dtype)
    random = rng(seed)
    x, x64 = stored(random.standard_normal((rows, width)) * 2 + 0.5, dtype)
    grad, grad64 = stored(random.standard_normal((rows, width)), dtype)
    weight, weight64 = stored(random.standard_normal(width), dtype) if affine else (None, None)
    bias, bias64 = stored(random.standard_normal(width), dtype) if affine else (None, None)

    def compute():
        out, mean, rstd = cuda_kernels.layer_norm_forward(x, weight, bias, 1e-5)
        grad_x, grad_weight, grad_bias = cuda_kernels.layer_norm_backward(grad, x, weight, mean, rstd, affine, affine)
        return out, mean, rstd, grad_x, grad_weight, grad_bias

    outputs = run_everywhere(compute)
    leaves = [t.requires_grad_() for t in (x64, weight64, bias64) if t is not None]
    expected = torch.nn.functional.layer_norm(x64, (width,), weight64, bias64, 1e-5)
    expected.backward(grad64)
    variance = x64.detach().var(-1, unbiased=False)
    assert_matches(outputs[0], expected, dtype, "out", scale=4)
    assert_matches(outputs[1], x64.detach().mean(-1), np.float32, "mean")
    assert_matches(outputs[2], (variance + 1e-5).rsqrt(), np.float32, "rstd", scale=4)
    assert_matches(outputs[3], leaves[0].grad, dtype, "grad x", scale=4)
    if affine:
        # a column sum over all rows: error grows with the row count
        assert_matches(outputs[4], leaves[1].grad, dtype, "grad weight", scale=np.sqrt(rows) * 4)
        assert_matches(outputs[5], leaves[2].grad, dtype, "grad bias", scale=np.sqrt(rows) * 4)


QUICK_LAYER_NORM = [(3, 1, True), (5, 31, False), (130, 32, True), (4, 100, True), (6, 768, False), (2, 4096, True)]


@pytest.mark.parametrize("dtype", STORAGE, ids=DTYPE_IDS)
@pytest.mark.parametrize("rows, width, affine", QUICK_LAYER_NORM)
def test_layer_norm(cuda_kernels, rows, width, affine, dtype):
    check_layer_norm(cuda_kernels, rows, width, affine, dtype)


@pytest.mark.parametrize("dtype", STORAGE, ids=DTYPE_IDS)
def test_layer_norm_every_width(request, cuda_kernels, dtype):
    if not long_mode(request):
        pytest.skip("the full set runs with --long")
    for width in (1, 31, 32, 100, 768, 4096):
        for affine in (True, False):
            # 300 rows: several chunks of the weight and bias gradient, the last one partial
            check_layer_norm(cuda_kernels, 300 if width <= 768 else 70, width, affine, dtype, seed=width)


# --- softmax --------------------------------------------------------------------------------------------------------
def check_softmax(cuda_kernels, rows, width, log, dtype, seed=0):
    case("log_softmax" if log else "softmax", dtype)
    random = rng(seed)
    x, x64 = stored(random.standard_normal((rows, width)) * 3, dtype)
    grad, grad64 = stored(random.standard_normal((rows, width)), dtype)

    def compute():
        out = cuda_kernels.softmax_forward(x, log)
        return out, cuda_kernels.softmax_backward(grad, out, log)

    out, grad_x = run_everywhere(compute)
    x64.requires_grad_()
    expected = (torch.log_softmax if log else torch.softmax)(x64, -1)
    expected.backward(grad64)
    assert_matches(out, expected, dtype, "out", scale=1 if not log else 10)
    # the backward reads the stored (rounded) output: its error carries into the gradient
    assert_matches(grad_x, x64.grad, dtype, "grad x", scale=4)


@pytest.mark.parametrize("dtype", STORAGE, ids=DTYPE_IDS)
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("rows, width", [(3, 1), (4, 37), (2, 256), (3, 1000)])
def test_softmax(cuda_kernels, rows, width, log, dtype):
    check_softmax(cuda_kernels, rows, width, log, dtype)


@pytest.mark.parametrize("dtype", STORAGE, ids=DTYPE_IDS)
def test_softmax_every_width(request, cuda_kernels, dtype):
    if not long_mode(request):
        pytest.skip("the full set runs with --long")
    for width in (1, 2, 31, 32, 33, 255, 257, 4096, 50257):
        for log in (False, True):
            check_softmax(cuda_kernels, 3, width, log, dtype, seed=width)


# --- gelu -------------------------------------------------------------------------------------------------------------
def check_gelu(cuda_kernels, size, approximate_tanh, dtype, seed=0):
    case("gelu (tanh)" if approximate_tanh else "gelu (erf)", dtype)
    random = rng(seed)
    x, x64 = stored(random.standard_normal(size) * 3, dtype)
    grad, grad64 = stored(random.standard_normal(size), dtype)

    def compute():
        return cuda_kernels.gelu_forward(x, approximate_tanh), cuda_kernels.gelu_backward(grad, x, approximate_tanh)

    out, grad_x = run_everywhere(compute)
    x64.requires_grad_()
    expected = torch.nn.functional.gelu(x64, approximate="tanh" if approximate_tanh else "none")
    expected.backward(grad64)
    assert_matches(out, expected, dtype, "out", scale=2)
    assert_matches(grad_x, x64.grad, dtype, "grad x", scale=2)


@pytest.mark.parametrize("dtype", STORAGE, ids=DTYPE_IDS)
@pytest.mark.parametrize("approximate_tanh", [False, True], ids=["erf", "tanh"])
@pytest.mark.parametrize("size", [1, 1000])
def test_gelu(cuda_kernels, size, approximate_tanh, dtype):
    check_gelu(cuda_kernels, size, approximate_tanh, dtype)


@pytest.mark.parametrize("approximate_tanh", [False, True], ids=["erf", "tanh"])
def test_gelu_grid_stride(monkeypatch, cuda_kernels, approximate_tanh):
    # a grid smaller than the array: each thread must loop over several elements
    monkeypatch.setattr(launch, "MAX_GRID_X", 3)
    check_gelu(cuda_kernels, 5000, approximate_tanh, np.float32)


# --- cross-entropy -------------------------------------------------------------------------------------------------------
def check_cross_entropy(cuda_kernels, rows, classes, label_smoothing, dtype, seed=0):
    case("cross_entropy", dtype)
    random = rng(seed)
    logits, logits64 = stored(random.standard_normal((rows, classes)) * 2, dtype)
    target = random.integers(0, classes, rows)
    target[::3] = -100  # ignored rows
    scale = np.where(target != -100, random.uniform(0.5, 2, rows), 0).astype(np.float32)

    def compute():
        losses, lse = cuda_kernels.cross_entropy_forward(logits, fake_cupy.asarray(target), -100, label_smoothing)
        grad = cuda_kernels.cross_entropy_backward(logits, fake_cupy.asarray(target), lse, fake_cupy.asarray(scale),
                                                   -100, label_smoothing)
        return losses, lse, grad

    losses, lse, grad = run_everywhere(compute)
    logits64.requires_grad_()
    expected = torch.nn.functional.cross_entropy(logits64, torch.from_numpy(target), ignore_index=-100,
                                                 reduction="none", label_smoothing=label_smoothing)
    (expected * torch.from_numpy(scale.astype(np.float64))).sum().backward()
    assert_matches(losses, expected, np.float32, "losses", scale=4)
    assert_matches(lse, torch.logsumexp(logits64.detach(), -1), np.float32, "lse", scale=4)
    assert_matches(grad, logits64.grad, dtype, "grad logits", scale=1)


@pytest.mark.parametrize("dtype", STORAGE, ids=DTYPE_IDS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("rows, classes", [(7, 65), (2, 50257)])
def test_cross_entropy(cuda_kernels, rows, classes, label_smoothing, dtype):
    check_cross_entropy(cuda_kernels, rows, classes, label_smoothing, dtype)


# --- attention ---------------------------------------------------------------------------------------------------------
def dropout_keep(batch, length, source_length, dropout):
    """Z of the array code: what F.dropout on the GPU draws from the device generator at the same state."""
    p, seed, first_block = dropout
    generator = PhiloxGenerator(np, philox_words, seed)
    generator.set_state({"seed": seed, "offset": first_block})
    kept = generator.rand((batch, length, source_length), np.float32) >= np.float32(p)
    return torch.from_numpy(kept * np.float64(np.float32(1 / (1 - p))))


def check_attention(cuda_kernels, batch, length, source_length, head_dim, causal, dtype, seed=0, dropout=None):
    case("attention" if dropout is None else "attention (dropout)", dtype)
    random = rng(seed)
    q, q64 = stored(random.standard_normal((batch, length, head_dim)), dtype)
    k, k64 = stored(random.standard_normal((batch, source_length, head_dim)), dtype)
    v, v64 = stored(random.standard_normal((batch, source_length, head_dim)), dtype)
    grad, grad64 = stored(random.standard_normal((batch, length, head_dim)), dtype)
    scale = 1 / np.sqrt(head_dim)

    def compute():
        out, lse = cuda_kernels.attention_forward(q, k, v, scale, causal, dropout)
        return (out, lse) + cuda_kernels.attention_backward(grad, q, k, v, out, lse, scale, causal, dropout)

    out, lse, grad_q, grad_k, grad_v = run_everywhere(compute, count=2)
    for t in (q64, k64, v64):
        t.requires_grad_()
    scores = q64 @ k64.transpose(-1, -2) * scale
    if causal:
        scores = scores.masked_fill(~torch.ones(length, source_length, dtype=torch.bool).tril(), -torch.inf)
    probabilities = torch.softmax(scores, -1)
    if dropout is not None:
        probabilities = probabilities * dropout_keep(batch, length, source_length, dropout)
    expected = probabilities @ v64
    expected.backward(grad64)
    scores = scores.detach()
    where = f"attention (N={batch}, L={length}, S={source_length}, D={head_dim}, causal={causal}, dropout={dropout})"
    assert_matches(out, expected, dtype, f"{where}: out", scale=2)
    assert_matches(lse, torch.logsumexp(scores, -1), np.float32, f"{where}: lse", scale=4)
    for name, actual, leaf in (("grad q", grad_q, q64), ("grad k", grad_k, k64), ("grad v", grad_v, v64)):
        assert_matches(actual, leaf.grad, dtype, f"{where}: {name}", scale=4)


QUICK_ATTENTION = [(1, 1, 16, True), (7, 7, 40, False), (65, 65, 64, True), (64, 7, 128, False), (7, 200, 16, True),
                   (200, 65, 40, True)]


@pytest.mark.parametrize("dtype", STORAGE, ids=DTYPE_IDS)
@pytest.mark.parametrize("length, source_length, head_dim, causal", QUICK_ATTENTION)
def test_attention(cuda_kernels, length, source_length, head_dim, causal, dtype):
    check_attention(cuda_kernels, 2, length, source_length, head_dim, causal, dtype)


@pytest.mark.parametrize("dtype", STORAGE, ids=DTYPE_IDS)
def test_attention_every_shape(request, cuda_kernels, dtype):
    if not long_mode(request):
        pytest.skip("the full set runs with --long")
    lengths = (1, 7, 64, 65, 200)
    for head_dim in (16, 40, 64, 128):
        for length in lengths:
            for source_length in lengths:
                for causal in (False, True):
                    check_attention(cuda_kernels, 2, length, source_length, head_dim, causal, dtype, seed=head_dim)


@pytest.mark.parametrize("length, source_length, head_dim, causal", [(7, 7, 16, True), (65, 40, 40, False)])
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_attention_with_dropout_regenerates_the_array_codes_mask(cuda_kernels, length, source_length, head_dim,
                                                                  causal, p):
    check_attention(cuda_kernels, 3, length, source_length, head_dim, causal, np.float32,
                    dropout=(p, 2 ** 33 + 17, 5))


def test_attention_with_more_heads_than_a_grid_dimension_holds(cuda_kernels):
    # batch * heads = 70,000 > 65,535: launches stay within the grid limits the executor checks; running every
    # block would take minutes, so a sample of heads around the limits runs and is checked
    batch, length, head_dim = 70_000, 3, 16
    random = rng(0)
    q, k, v = (fake_cupy.asarray(random.standard_normal((batch, length, head_dim)).astype(np.float32))
               for _ in range(3))
    heads = [0, 1, 65_534, 65_535, 65_536, 69_999]
    with executor.only_blocks(heads):  # grid (1, heads): block (0, n) has linear index n
        out, lse = cuda_kernels.attention_forward(q, k, v, 0.25, True)
    for head in heads:
        expected = torch.nn.functional.scaled_dot_product_attention(
            *(torch.from_numpy(np.asarray(t[head], dtype=np.float64)) for t in (q, k, v)), is_causal=True, scale=0.25)
        assert_matches(out[head], expected, np.float32, f"head {head}")


# --- AdamW ---------------------------------------------------------------------------------------------------------------
def check_adamw(cuda_kernels, sizes, steps=4, seed=0, **hyperparameters):
    settings = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1) | hyperparameters
    random = rng(seed)
    initial = [random.standard_normal(size).astype(np.float32) for size in sizes]
    gradients = [[random.standard_normal(size).astype(np.float32) for size in sizes] for _ in range(steps)]

    def compute():
        params = [fake_cupy.asarray(p) for p in initial]
        moments = [fake_cupy.asarray(np.zeros_like(p)) for p in initial]
        squares = [fake_cupy.asarray(np.zeros_like(p)) for p in initial]
        for step, grads in enumerate(gradients, start=1):
            cuda_kernels.adamw_step(params, [fake_cupy.asarray(g) for g in grads], moments, squares,
                                    settings["lr"], *settings["betas"], settings["eps"], settings["weight_decay"], step)
        return params + moments + squares

    outputs = run_everywhere(compute, count=2)
    reference = [torch.from_numpy(p.copy()).requires_grad_() for p in initial]
    optimizer = torch.optim.AdamW(reference, **settings)
    for grads in gradients:
        for parameter, grad in zip(reference, grads):
            parameter.grad = torch.from_numpy(grad)
        optimizer.step()
    n = len(sizes)
    for i, parameter in enumerate(reference):
        state = optimizer.state[parameter]
        # both in float32: only the order of float32 operations may differ
        np.testing.assert_allclose(outputs[i], parameter.detach().numpy(), rtol=2e-6, atol=1e-7, err_msg="param")
        np.testing.assert_allclose(outputs[n + i], state["exp_avg"].numpy(), rtol=2e-6, atol=1e-8, err_msg="exp_avg")
        np.testing.assert_allclose(outputs[2 * n + i], state["exp_avg_sq"].numpy(), rtol=2e-6, atol=1e-10,
                                   err_msg="exp_avg_sq")
        case("adamw", np.float32)
        record("step", outputs[i], parameter.detach().numpy())


def test_adamw(cuda_kernels):
    check_adamw(cuda_kernels, [1, 7, 300, 1000])


def test_adamw_over_several_launches_and_grid_strides(monkeypatch, cuda_kernels):
    # two parameters per launch, and the largest parameter needs several passes of the whole grid
    monkeypatch.setattr(launch, "MAX_GRID_Y", 2)
    check_adamw(cuda_kernels, [5, 3, 270_000, 2, 9], steps=2, betas=(0.8, 0.95), weight_decay=0.0)


# --- mutation self-test: planted bugs these tests must catch -------------------------------------------------------------
MUTATIONS = {
    "block_sum reads the warps' partial sums before all are written (a missing __syncthreads)": (
        "softmax", "    if (lane == 0) partial[warp] = v;\n    __syncthreads();\n", "    if (lane == 0) partial[warp] = v;\n",
        lambda k, monkeypatch: check_softmax(k, 3, 1000, False, np.float32)),
    "layer_norm's parameter gradients sum shared memory before every row of threads wrote it": (
        "layer_norm", "    bias_sums[threadIdx.y][threadIdx.x] = grad_bias;\n    __syncthreads();\n",
        "    bias_sums[threadIdx.y][threadIdx.x] = grad_bias;\n",
        lambda k, monkeypatch: check_layer_norm(k, 130, 32, True, np.float32)),
    "attention's causal bound off by one": (
        "attention", "const bool visible = active && key < S && (!causal || key <= row);",
        "const bool visible = active && key < S && (!causal || key < row);",
        lambda k, monkeypatch: check_attention(k, 2, 65, 65, 16, True, np.float32)),
    "attention's last key tile dropped": (
        "attention", "for (long long start = 0; start < key_end; start += TILE) {\n        __syncthreads();  // the previous",
        "for (long long start = 0; start + TILE < key_end; start += TILE) {\n        __syncthreads();  // the previous",
        lambda k, monkeypatch: check_attention(k, 2, 7, 65, 16, False, np.float32)),
    "attention's backward regenerates the dropout mask transposed": (
        "attention", "const float z = dropout_scale(dropout, (n * L + query) * S + key);",
        "const float z = dropout_scale(dropout, (n * L + key) * S + query);",
        lambda k, monkeypatch: check_attention(k, 2, 9, 9, 16, False, np.float32, dropout=(0.3, 1, 0))),
    "gelu's grid-stride loop dropped (one element per thread)": (
        "gelu", "i < n; i += (long long)gridDim.x * blockDim.x) {\n        const float v = to_float(x[i]);\n        const float y",
        "i < n; i = n) {\n        const float v = to_float(x[i]);\n        const float y",
        lambda k, monkeypatch: (monkeypatch.setattr(launch, "MAX_GRID_X", 3), check_gelu(k, 5000, True, np.float32))),
    "softmax writes one element past each row": (
        "softmax", "out[offset + c] = from_float<T>(log ?", "out[offset + c + 1] = from_float<T>(log ?",
        lambda k, monkeypatch: check_softmax(k, 3, 37, True, np.float32)),
}


@pytest.mark.parametrize("bug", MUTATIONS)
def test_a_planted_bug_is_caught(monkeypatch, bug):
    family, original, mutated, check = MUTATIONS[bug]
    source = kernels.source(family)
    assert original in source, f"the mutation no longer applies to {family}.cu: update it"
    mutant = executor.compile_source(source.replace(original, mutated, 1))
    mutant_kernels = ExecutedKernels(lambda name: mutant if name == family else executor.compile_family(name))
    with pytest.raises((AssertionError, executor.KernelError)):
        check(mutant_kernels, monkeypatch)


# --- the executor itself: what it refuses --------------------------------------------------------------------------------
TOY_KERNELS = r'''
#include "common.cuh"
extern "C" __global__ void early_exit_then_shuffle(float* out) {
    if (threadIdx.x == 3) return;
    out[threadIdx.x] = warp_sum(1.f);
}
extern "C" __global__ void barrier_in_a_branch(float* out) {
    if (threadIdx.x < 32) __syncthreads();
    out[threadIdx.x] = 1.f;
}
extern "C" __global__ void reads_unwritten_shared(float* out) {
    __shared__ float values[64];
    if (threadIdx.x % 2) values[threadIdx.x] = 1.f;
    __syncthreads();
    out[threadIdx.x] = values[threadIdx.x];
}
'''


@pytest.fixture(scope="module")
def toy_module():
    with open(os.path.join(kernels.KERNEL_DIR, kernels.HEADER)) as f:
        header = f.read().replace("#pragma once\n", "")
    return executor.compile_source(TOY_KERNELS.replace('#include "common.cuh"', header))


@pytest.mark.parametrize("name, message", [("early_exit_then_shuffle", "left the kernel"),
                                           ("barrier_in_a_branch", "__syncthreads")])
def test_divergent_collectives_are_errors(toy_module, name, message):
    out = fake_cupy.empty(64, np.float32)
    with pytest.raises(executor.KernelError, match=message):
        toy_module.get_function(name)((1,), (64,), (out,))


def test_shared_memory_no_thread_wrote_reads_nan(toy_module):
    out = fake_cupy.empty(64, np.float32)
    toy_module.get_function("reads_unwritten_shared")((1,), (64,), (out,))
    assert np.isnan(out[::2]).all() and (out[1::2] == 1).all()


def test_arguments_are_checked_against_the_signature(cuda_kernels):
    gelu = executor.compile_family("gelu").get_function("gelu_forward_f32")
    x, out = fake_cupy.asarray(np.ones(4, np.float32)), fake_cupy.empty(4, np.float32)
    with pytest.raises(executor.KernelError, match=r"argument 2 \(long long n\): expected int64, got int"):
        gelu((1,), (32,), (x, out, 4, np.int32(0)))  # a bare Python int: CuPy would pass 8 bytes, as int64
    with pytest.raises(executor.KernelError, match="expected float32 elements, got float16"):
        gelu((1,), (32,), (x.astype(np.float16), out, np.int64(4), np.int32(0)))
    with pytest.raises(executor.KernelError, match="grid dimension y = 65536"):
        gelu((1, 65536), (32,), (x, out, np.int64(4), np.int32(0)))


# --- random words ------------------------------------------------------------------------------------------------------
def test_philox_reference_gives_the_published_answers():
    # known-answer vectors of Random123 (kat_vectors: philox4x32_10)
    cases = [((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
             ((0xffffffff,) * 4, (0xffffffff,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
             ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
              (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1))]
    for counter, key, expected in cases:
        assert tuple(philox_reference(np.array([counter], np.uint32), key)[0]) == expected


@pytest.mark.parametrize("n, seed, first_block", [(1, 0, 0), (37, 2 ** 40 + 5, 3), (5000, 1234, 2 ** 33 + 7)])
def test_philox_words(monkeypatch, cuda_kernels, n, seed, first_block):
    expected = philox_words(n, seed, first_block)
    (words,) = run_everywhere(lambda: [cuda_kernels.philox_words(n, seed, first_block)])
    np.testing.assert_array_equal(words, expected)
    # a smaller grid (a GPU with fewer multiprocessors would launch the same, but a grid never changes a word)
    monkeypatch.setattr(launch, "MAX_GRID_X", 2)
    np.testing.assert_array_equal(cuda_kernels.philox_words(n, seed, first_block), expected)
