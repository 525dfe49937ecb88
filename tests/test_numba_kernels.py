"""The CPU's Numba kernels (tinygrad_tx/backend/cpu_kernels): each fused op through them against its NumPy array
code (the same op with the kernels switched off) and against torch, values and gradients; AdamW bit for bit
against its array code; the switch; and the fallbacks: float64, and what the kernels do not take, run the array
code, and everything works without Numba.

The kernels compile on their first call and Numba caches the machine code on disk, so only the first run on a
machine pays for compiling (benchmarks/cpu_kernels.py prints each kernel's first-call time).
"""
import math
import os
import shutil
import subprocess
import sys
import sysconfig
from collections import Counter

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
import tinygrad_tx.nn.functional as F
from conftest import assert_close, compare, randn, rng

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_numba = pytest.mark.skipif(not tg.cpu.numba_available(),
                                 reason="the CPU kernels need Numba: pip install 'tinygrad_tx[cpu]'")
KERNEL_METHODS = ("layer_norm_forward", "layer_norm_backward", "softmax_forward", "softmax_backward", "gelu_forward",
                  "gelu_backward", "cross_entropy_forward", "cross_entropy_backward", "attention_forward",
                  "attention_backward", "embedding_backward", "adamw_step", "squared_norm")


@pytest.fixture
def calls(monkeypatch):
    """Counts each NumbaKernels method's calls; the kernels switched on for the test, and back after it."""
    from tinygrad_tx.backend.cpu_kernels.numba_kernels import NumbaKernels
    counts = Counter()
    for name in KERNEL_METHODS:
        def counted(self, *args, _name=name, _method=getattr(NumbaKernels, name), **kwargs):
            counts[_name] += 1
            return _method(self, *args, **kwargs)
        monkeypatch.setattr(NumbaKernels, name, counted)
    enabled = tg.cpu.kernels_enabled()
    tg.cpu.use_kernels(True)
    yield counts
    tg.cpu.use_kernels(enabled)


def against_array_code(fn, *arrays, rtol=1e-5, atol=1e-6):
    """fn(*tensors) with the kernels and with the array code: outputs and the gradients of every float input
    agree to float32 rounding. Returns the kernels' outputs."""
    results = []
    for enabled in (True, False):
        tg.cpu.use_kernels(enabled)
        inputs = [tg.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        out = fn(*inputs)
        weights = tg.tensor(rng(9).standard_normal(tuple(out.shape)).astype(np.float32))
        (out * weights).sum().backward()
        results.append([out] + [t.grad for t in inputs if t.requires_grad])
    tg.cpu.use_kernels(True)
    for index, (kernel, array) in enumerate(zip(*results)):
        assert_close(kernel, array, rtol=rtol, atol=atol, what="output" if index == 0 else f"gradient {index}")
    return results[0][0]


# --- each fused op: the kernels against torch, and against the array code ------------------------------------------
@needs_numba
@pytest.mark.parametrize("shape, normalized, affine", [((3, 5, 16), (16,), True), ((4, 6, 8), (6, 8), True),
                                                       ((7, 33), (33,), False), ((2, 300), (300,), True)])
def test_layer_norm(calls, shape, normalized, affine):
    arrays = [randn(*shape, dtype=np.float32)]
    if affine:
        arrays += [randn(*normalized, dtype=np.float32, seed=1), randn(*normalized, dtype=np.float32, seed=2)]
    compare(lambda lib, x, *wb: lib.F.layer_norm(x, normalized, *wb), *arrays, rtol=1e-4, atol=1e-5)
    assert calls["layer_norm_forward"] == 1 and calls["layer_norm_backward"] == 1
    against_array_code(lambda x, *wb: F.layer_norm(x, normalized, *wb), *arrays, rtol=1e-4, atol=1e-5)


@needs_numba
def test_layer_norm_of_constant_and_offset_rows(calls):
    # a constant row normalizes to exact zeros (its mean is summed in float64); rows far from zero keep the
    # precision their spread has in float32
    x = np.concatenate([np.full((2, 64), 3.1, np.float32),
                        (1000 + randn(3, 64, dtype=np.float32)).astype(np.float32)])
    out = against_array_code(lambda t: F.layer_norm(t, (64,)), x, rtol=1e-3, atol=1e-3)
    assert not out[:2].detach().numpy().any()
    expected = torch.nn.functional.layer_norm(torch.tensor(x, dtype=torch.float64), (64,))
    assert_close(out, expected.float(), rtol=1e-3, atol=1e-3)


@needs_numba
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_on_the_last_dim(calls, name):
    x = randn(4, 3, 37, dtype=np.float32) * 4
    compare(lambda lib, t: getattr(lib.F, name)(t, -1), x, rtol=1e-5, atol=1e-6)
    assert calls["softmax_forward"] == 1 and calls["softmax_backward"] == 1
    against_array_code(lambda t: getattr(F, name)(t, -1), x)
    compare(lambda lib, t: getattr(lib.F, name)(t, 1), x, rtol=1e-5, atol=1e-6)
    assert calls["softmax_forward"] == 2  # dim 1 is not the last: the array code ran


@needs_numba
def test_softmax_rows_with_infinities_and_nan(calls):
    x = randn(4, 9, dtype=np.float32)
    x[0, 3], x[1, :4], x[2, 5], x[3, 0] = np.inf, -np.inf, np.nan, 80.0  # exp overflows without the shift
    results = []
    for enabled in (True, False):
        tg.cpu.use_kernels(enabled)
        results.append((F.softmax(tg.tensor(x), -1).numpy(), F.log_softmax(tg.tensor(x), -1).numpy()))
    tg.cpu.use_kernels(True)
    for kernel, array in zip(*results):
        np.testing.assert_allclose(kernel, array, rtol=1e-6, atol=1e-7, equal_nan=True)


@needs_numba
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(calls, approximate):
    x = randn(5, 40, dtype=np.float32) * 3
    compare(lambda lib, t: lib.F.gelu(t, approximate=approximate), x, rtol=1e-5, atol=1e-6)
    assert calls["gelu_forward"] == 1 and calls["gelu_backward"] == 1
    against_array_code(lambda t: F.gelu(t, approximate=approximate), x)


@needs_numba
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_across_the_float32_range(calls, approximate):
    # the tanh's own exp: overflow, underflow, the subnormal range, infinities and NaN, against torch in float64
    x = np.concatenate([np.linspace(-60, 60, 4001), [-1e30, 1e30, -np.inf, np.inf, np.nan, 0.0, -0.0, 1e-30]])
    x = x.astype(np.float32)
    t = tg.tensor(x, requires_grad=True)
    y = F.gelu(t, approximate=approximate)
    y.backward(tg.ones_like(y))
    reference = torch.tensor(x.astype(np.float64), requires_grad=True)
    expected = torch.nn.functional.gelu(reference, approximate=approximate)
    expected.backward(torch.ones_like(expected))
    scale = np.abs(x.astype(np.float64)) + 1  # errors of order x * ulp(1), as the array code's and torch's float32
    finite = np.isfinite(x)
    error = np.abs(y.detach().numpy()[finite] - expected.detach().numpy()[finite])
    np.testing.assert_array_less(error / scale[finite], 3e-7)
    moderate = np.abs(x) < 1e15  # past 1e19, x * x overflows float32 and the derivative is NaN (as torch's float32)
    np.testing.assert_array_less(np.abs(t.grad.numpy() - reference.grad.numpy())[moderate], 3e-6)
    assert np.array_equal(np.isnan(y.detach().numpy()), np.isnan(expected.detach().numpy()))
    assert y.detach().numpy()[np.isposinf(x)] == np.inf


@needs_numba
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy(calls, reduction, label_smoothing):
    logits = randn(9, 11, dtype=np.float32) * 3
    target = rng(3).integers(0, 11, size=9)
    target[[2, 5]] = -100  # ignored rows
    compare(lambda lib, x, t: lib.F.cross_entropy(x, t, reduction=reduction, label_smoothing=label_smoothing),
            logits, target, rtol=1e-5, atol=1e-6)
    assert calls["cross_entropy_forward"] == 1 and calls["cross_entropy_backward"] == 1
    against_array_code(lambda x, t: F.cross_entropy(x, t, reduction=reduction, label_smoothing=label_smoothing),
                       logits, target)


@needs_numba
def test_cross_entropy_logits_may_change_after_the_forward(calls):
    # as PyTorch's CPU op (which keeps log_softmax's output): the kernel path keeps its own copy of the logits
    def program(lib, x, t):
        logits = x * 2
        loss = lib.F.cross_entropy(logits, t)
        logits.mul_(3)
        return loss
    compare(program, randn(6, 5, dtype=np.float32), rng(2).integers(0, 5, size=6), rtol=1e-5, atol=1e-6)
    assert calls["cross_entropy_backward"] == 1


@needs_numba
def test_cross_entropy_kernel_refuses_targets_out_of_range():
    kernels = tg.backend.get_backend("cpu").kernels
    logits = randn(3, 4, dtype=np.float32)
    with pytest.raises(IndexError, match="target values must be in"):
        kernels.cross_entropy_forward(logits, np.array([0, 4, -100]), -100, 0.0)
    kernels.cross_entropy_forward(logits, np.array([0, 3, -100]), -100, 0.0)


@needs_numba
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("length, source_length, head_dim", [(37, 37, 16), (5, 70, 80), (70, 9, 8), (1, 1, 4)])
def test_attention(calls, causal, length, source_length, head_dim):
    q = randn(2, 3, length, head_dim, dtype=np.float32)
    k = randn(2, 3, source_length, head_dim, dtype=np.float32, seed=1)
    v = randn(2, 3, source_length, head_dim, dtype=np.float32, seed=2)
    compare(lambda lib, *t: lib.F.scaled_dot_product_attention(*t, is_causal=causal), q, k, v, rtol=1e-4, atol=1e-5)
    assert calls["attention_forward"] == 1 and calls["attention_backward"] == 1
    against_array_code(lambda *t: F.scaled_dot_product_attention(*t, is_causal=causal), q, k, v, rtol=1e-4,
                       atol=1e-5)


@needs_numba
@pytest.mark.parametrize("band", [None, 4])
@pytest.mark.parametrize("length, source_length", [(130, 130), (150, 40), (140, 300), (37, 37), (23, 9), (9, 23)])
def test_causal_attention_in_bands_of_queries(calls, monkeypatch, band, length, source_length):
    # long causal attention's products are cut into bands of queries, each against the keys up to its last query;
    # grad_k and grad_v sum over the bands, and keys after the last query get none
    from tinygrad_tx.backend.cpu_kernels import numba_kernels
    if band is not None:
        monkeypatch.setattr(numba_kernels, "QUERIES_PER_BAND", band)
    q = randn(2, 3, length, 8, dtype=np.float32)
    k = randn(2, 3, source_length, 8, dtype=np.float32, seed=1)
    v = randn(2, 3, source_length, 8, dtype=np.float32, seed=2)
    compare(lambda lib, *t: lib.F.scaled_dot_product_attention(*t, is_causal=True), q, k, v, rtol=1e-4, atol=1e-5)
    assert calls["attention_forward"] == 1 and calls["attention_backward"] == 1
    if length >= 2 * numba_kernels.QUERIES_PER_BAND:
        assert len(numba_kernels._bands(length, source_length, True)) > 1


@needs_numba
def test_attention_takes_the_array_code_where_pytorch_takes_its_other_path(calls):
    # PyTorch's fused CPU kernel (which keeps q, k and v, as ours) takes 4-D inputs with unit strides along the
    # head dim; elsewhere its composed path keeps at most v, so q and k may be edited after the forward
    def program(lib, q, k, v):
        q, k = q * 1, k * 1
        out = lib.F.scaled_dot_product_attention(q, k, v, is_causal=True)
        q.mul_(2)
        k.mul_(2)
        return out
    compare(program, *(randn(3, 7, 4, dtype=np.float32, seed=s) for s in range(3)), rtol=1e-5, atol=1e-6)
    strided = randn(1, 2, 8, 5, dtype=np.float32)  # transposed below: (1, 2, 5, 8) with a stride of 5 along D
    compare(lambda lib, t: lib.F.scaled_dot_product_attention(*(t.transpose(-1, -2),) * 3), strided, rtol=1e-5,
            atol=1e-6)
    assert calls["attention_forward"] == 0


@needs_numba
def test_zero_dim_inputs(calls):
    compare(lambda lib, t: lib.F.gelu(t, approximate="tanh") * 2, np.array(0.7, dtype=np.float32))


@needs_numba
def test_attention_with_a_mask_or_dropout_takes_the_array_code(calls):
    q = tg.tensor(randn(1, 2, 6, 4, dtype=np.float32), requires_grad=True)
    mask = tg.tensor(np.tril(np.ones((6, 6), bool)))
    F.scaled_dot_product_attention(q, q, q, attn_mask=mask).sum().backward()
    F.scaled_dot_product_attention(q, q, q, dropout_p=0.5).sum().backward()
    assert calls["attention_forward"] == 0


@needs_numba
def test_float64_and_float16_run_the_array_code(calls):
    x = randn(4, 16)
    compare(lambda lib, t: lib.F.layer_norm(lib.F.gelu(t, approximate="tanh"), (16,)).softmax(-1), x)
    half = F.layer_norm(tg.tensor(x.astype(np.float16)), (16,))
    assert half.dtype is tg.float16
    assert sum(calls.values()) == 0


@needs_numba
def test_bfloat16_computes_in_float32_through_the_kernels(calls):
    pytest.importorskip("ml_dtypes", reason="bfloat16 needs ml_dtypes")
    x = randn(4, 16, dtype=np.float32)
    out = F.layer_norm(tg.tensor(x).to(tg.bfloat16), (16,))
    assert out.dtype is tg.bfloat16 and calls["layer_norm_forward"] == 1
    assert_close(out.float(), F.layer_norm(tg.tensor(x), (16,)), rtol=1e-2, atol=1e-2)


@needs_numba
def test_second_derivatives_differentiate_the_composed_form(calls):
    x = tg.tensor(randn(3, 8, dtype=np.float32), requires_grad=True)
    (g,) = tg.autograd.grad(F.gelu(F.layer_norm(x, (8,)), approximate="tanh").sum(), [x], create_graph=True)
    (g * g).sum().backward()
    expected = torch.tensor(x.detach().numpy(), requires_grad=True)
    (h,) = torch.autograd.grad(torch.nn.functional.gelu(torch.nn.functional.layer_norm(expected, (8,)),
                                                        approximate="tanh").sum(), [expected], create_graph=True)
    (h * h).sum().backward()
    assert_close(x.grad, expected.grad, rtol=1e-4, atol=1e-5)


def every_kernel():
    """A program through every kernel, forward and backward, and an AdamW step with clipping -> its arrays."""
    x = tg.tensor(randn(6, 7, 40, dtype=np.float32), requires_grad=True)
    w = tg.tensor(randn(40, dtype=np.float32, seed=1), requires_grad=True)
    h = F.gelu(F.layer_norm(x, (40,), w), approximate="tanh")
    q = h.reshape(6, 7, 5, 8).transpose(1, 2)                       # (6, 5, 7, 8)
    a = F.scaled_dot_product_attention(q, q, q, is_causal=True).transpose(1, 2).reshape(42, 40)
    e = F.embedding(tg.tensor(np.arange(42) % 9), a) + F.gelu(a)   # exact GELU; a as the embedding table
    loss = F.cross_entropy(e, tg.tensor(np.arange(42) % 40)) + F.log_softmax(h, -1).mean()
    loss.backward()
    optimizer = tg.optim.AdamW([x, w], lr=0.1)
    tg.nn.utils.clip_grad_norm_([x, w], 0.5)
    optimizer.step()
    return [t.detach().numpy() for t in (loss, h, a, x, w)]


@needs_numba
def test_threaded_kernels_equal_the_one_thread_ones_bit_for_bit(calls, monkeypatch):
    # the work is cut into the same rows and blocks whatever the thread count, so threads change no bit
    import numba
    from tinygrad_tx.backend.cpu_kernels import numba_kernels
    if numba.get_num_threads() < 2:
        pytest.skip("one thread here: the threaded kernels are never chosen")
    from tinygrad_tx import openblas
    monkeypatch.setattr(openblas, "threads_sleep", lambda: True)
    blas_threads = openblas._thread_controls()[1]() if openblas.can_limit_threads() else None
    # attention's groups on threads even for products OpenBLAS would thread itself (it is held to one thread)
    monkeypatch.setattr(numba_kernels, "BLAS_ONE_THREAD_PRODUCT", 0)
    results = []
    # every kernel on Numba's threads; every row kernel in parts on Python threads; everything on one thread
    for split, threaded in ((1 << 60, 0), (0, 1 << 60), (1 << 60, 1 << 60)):
        monkeypatch.setattr(numba_kernels, "SPLIT_WORK", split)
        monkeypatch.setattr(numba_kernels, "THREADED_WORK", threaded)
        results.append(every_kernel())
    if openblas.can_limit_threads():  # attention's groups on threads held OpenBLAS to one thread, then let go
        assert openblas._thread_controls()[1]() == blas_threads
    for threaded, split, one_thread in zip(*results):
        np.testing.assert_array_equal(threaded, one_thread)
        np.testing.assert_array_equal(split, one_thread)
    assert calls["attention_backward"] == 3 and calls["adamw_step"] == 3 and calls["squared_norm"] == 3


def compiled_module():
    """The module built ahead of time; where a C compiler and Python's headers are at hand its build must have
    worked."""
    from tinygrad_tx.backend import cpu_kernels
    tg.cpu.use_kernels(True)
    compiled = cpu_kernels.kernels().compiled
    if compiled is None:
        headers = os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))
        if headers and (shutil.which("cc") or shutil.which("gcc")):
            pytest.fail("the CPU kernels' ahead-of-time build failed with a C compiler at hand (see the warning)")
        pytest.skip("no C compiler or Python headers here: the CPU kernels run from Numba's JIT")
    return compiled


@needs_numba
def test_ahead_of_time_kernels_equal_the_jit_bit_for_bit(calls, monkeypatch):
    from tinygrad_tx.backend import cpu_kernels
    from tinygrad_tx.backend.cpu_kernels.numba_kernels import NumbaKernels
    results = []
    for kernels in (NumbaKernels(compiled_module()), NumbaKernels(None)):
        monkeypatch.setitem(cpu_kernels._loaded, "kernels", kernels)
        results.append(every_kernel())
    for ahead_of_time, jit in zip(*results):
        np.testing.assert_array_equal(ahead_of_time, jit)
    assert calls["gelu_forward"] == 4 and calls["embedding_backward"] == 2


@needs_numba
def test_ahead_of_time_kernels_divide_as_numpy():
    # NumPy's error model, as the JIT's: 1 / sqrt(0) is inf, not a ZeroDivisionError (nor a test in every loop)
    x = np.ones((2, 8), dtype=np.float32)
    out, mean, rstd = np.empty_like(x), np.empty(2, np.float32), np.empty(2, np.float32)
    compiled_module().layer_norm_forward(x, x[0], x[0], False, False, np.float32(0), out, mean, rstd)
    assert np.isinf(rstd).all() and np.isnan(out).all()


@needs_numba
def test_ahead_of_time_kernels_refuse_arrays_their_signature_does_not_name():
    # the built module's wrappers would read any array as their signature's type: a strided column, float64 data
    kernel = compiled_module().layer_norm_forward
    x = np.ones((8, 16), dtype=np.float32)
    out, stats = np.empty_like(x), np.empty((8, 2), dtype=np.float32)
    with pytest.raises(TypeError, match=r"layer_norm_forward: argument 7 must be a C-contiguous float32 array"):
        kernel(x, x[0], x[0], False, False, np.float32(1e-5), out, stats[:, 0], stats[:, 1])
    with pytest.raises(TypeError, match=r"argument 0 must be .* of 2 dims, got a float64 array of shape \(8, 16\)"):
        kernel(x.astype(np.float64), x[0], x[0], False, False, np.float32(1e-5), out, stats[0], stats[1])


@needs_numba
def test_a_failed_ahead_of_time_build_falls_back_to_the_jit_once(tmp_path, monkeypatch):
    from tinygrad_tx.backend.cpu_kernels import ahead_of_time
    monkeypatch.setattr(ahead_of_time, "_directories", lambda: [str(tmp_path)])
    monkeypatch.setattr(sys, "executable", shutil.which("false"))  # the build's child fails at once
    with pytest.warns(UserWarning, match="building the CPU kernels failed.*Numba's JIT"):
        assert ahead_of_time.load() is None
    assert [p.suffix for p in tmp_path.iterdir()] == [".failed"]
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")  # a second process would not try again
    assert ahead_of_time.load() is None


@needs_numba
def test_training_runs_the_ahead_of_time_kernels_without_loading_numba():
    compiled_module()  # built (and so found by the child) or skipped
    program = ("import sys, numpy as np, tinygrad_tx as tg, tinygrad_tx.nn.functional as F\n"
               "x = tg.tensor(np.ones((4, 8), np.float32), requires_grad=True)\n"
               "F.gelu(F.layer_norm(x, (8,))).sum().backward()\n"
               "from tinygrad_tx.backend import cpu_kernels\n"
               "assert cpu_kernels.kernels().compiled is not None\n"
               "print('numba' in sys.modules)\n")
    child = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                           env={**os.environ, "TINYGRAD_TX_CPU_KERNELS": "1"})
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "False"


@needs_numba
@pytest.mark.parametrize("rows", [7, 1100])  # a table the array code sums with a one-hot product, and a larger one
def test_embedding_backward(calls, rows):
    ids = rng(4).integers(-rows, rows, size=(5, 9))  # repeated ids, and negative ones counted from the end
    table = randn(rows, 6, dtype=np.float32)
    compare(lambda lib, t, i: t[i], table, ids, rtol=1e-5, atol=1e-6)
    compare(lambda lib, t, i: lib.F.embedding(i % rows, t), table, ids, rtol=1e-5, atol=1e-6)
    assert calls["embedding_backward"] == 2
    against_array_code(lambda t, i: t[i], table, ids)


@needs_numba
def test_embedding_backward_kernel_refuses_ids_out_of_range():
    kernels = tg.backend.get_backend("cpu").kernels
    with pytest.raises(IndexError, match="ids must be in"):
        kernels.embedding_backward(np.array([0, 3]), randn(2, 4, dtype=np.float32), 3)


# --- AdamW and the gradients' norm over all parameters ---------------------------------------------------------------
def adamw_run(kernels_on, steps=3, **options):
    tg.cpu.use_kernels(kernels_on)
    values = [randn(40, 30, dtype=np.float32), randn(70000, dtype=np.float32, seed=1), randn(3, dtype=np.float32,
                                                                                            seed=2)]
    params = [tg.tensor(v, requires_grad=True) for v in values]
    optimizer = tg.optim.AdamW([{"params": params[:2]}, {"params": params[2:], "weight_decay": 0.0}], lr=0.01,
                               **options)
    for step in range(steps):
        for i, p in enumerate(params):
            p.grad = tg.tensor(randn(*p.shape, dtype=np.float32, seed=10 * step + i))
        optimizer.step()
    tg.cpu.use_kernels(True)
    return [p.detach().numpy() for p in params], optimizer


@needs_numba
def test_adamw_equals_the_array_code_bit_for_bit(calls):
    kernel_params, optimizer = adamw_run(True)
    assert calls["adamw_step"] == 6  # one call per group and step
    array_params, _ = adamw_run(False)
    for ours, theirs in zip(kernel_params, array_params):
        np.testing.assert_array_equal(ours, theirs)
    assert optimizer.state[optimizer.param_groups[0]["params"][0]]["step"] == 3


@needs_numba
def test_adamw_matches_torch(calls):
    values = [randn(4, 3, dtype=np.float32), randn(3, dtype=np.float32, seed=1)]
    ours = [tg.tensor(v, requires_grad=True) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    ours_opt = tg.optim.AdamW(ours, lr=0.1, weight_decay=0.1)
    theirs_opt = torch.optim.AdamW(theirs, lr=0.1, weight_decay=0.1)
    for step in range(3):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            grad = randn(*a.shape, dtype=np.float32, seed=10 * step + i)
            a.grad, b.grad = tg.tensor(grad), torch.tensor(grad)
        ours_opt.step()
        theirs_opt.step()
    assert calls["adamw_step"] == 3
    for a, b in zip(ours, theirs):
        assert_close(a, b, rtol=1e-6, atol=1e-7)


@needs_numba
@pytest.mark.parametrize("options", [{"amsgrad": True}, {"maximize": True}, {"fused": False}])
def test_adamw_options_the_kernel_does_not_implement_run_the_array_code(calls, options):
    adamw_run(True, **options)
    assert calls["adamw_step"] == 0


@needs_numba
def test_adamw_kernel_refuses_arrays_it_would_misread():
    kernels = tg.backend.get_backend("cpu").kernels
    params = [np.zeros((4, 3), np.float32)]
    moments = [np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32)]
    with pytest.raises(ValueError, match="C-contiguous float32"):
        kernels.adamw_step(params, [np.zeros((3, 4), np.float32).T], *moments, 0.1, 0.9, 0.999, 1e-8, 0.0, 1)
    with pytest.raises(ValueError, match="C-contiguous float32"):
        kernels.adamw_step(params, [np.zeros((4, 3))], *moments, 0.1, 0.9, 0.999, 1e-8, 0.0, 1)
    with pytest.raises(ValueError, match="differ in size"):
        kernels.adamw_step(params, [np.zeros(5, np.float32)], *moments, 0.1, 0.9, 0.999, 1e-8, 0.0, 1)


@needs_numba
def test_squared_norm_over_many_arrays():
    kernels = tg.backend.get_backend("cpu").kernels
    arrays = [randn(n, dtype=np.float32, seed=n) for n in (1, 7, 40000, 100000, 3)] + [randn(5, 6, dtype=np.float32).T]
    expected = sum(float((a.astype(np.float64) ** 2).sum()) for a in arrays)
    assert math.isclose(kernels.squared_norm(arrays), expected, rel_tol=1e-7)  # each square is float32


@needs_numba
@pytest.mark.parametrize("max_norm", [1.0, 1e6])  # clipping, and a norm already below max_norm
def test_clip_grad_norm_matches_torch(calls, max_norm):
    shapes = [(40, 30), (70000,), (3,), (0, 4)]
    ours = [tg.tensor(randn(*shape, dtype=np.float32, seed=i), requires_grad=True) for i, shape in enumerate(shapes)]
    theirs = [torch.tensor(p.detach().numpy(), requires_grad=True) for p in ours]
    for i, (a, b) in enumerate(zip(ours, theirs)):
        grad = randn(*a.shape, dtype=np.float32, seed=10 + i)
        a.grad, b.grad = tg.tensor(grad), torch.tensor(grad)
    norm = tg.nn.utils.clip_grad_norm_(ours, max_norm)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
    assert calls["squared_norm"] == 1 and norm.dtype is tg.float32 and norm.shape == ()
    assert_close(norm, expected, rtol=1e-6, atol=0)
    for a, b in zip(ours, theirs):
        assert_close(a.grad, b.grad, rtol=1e-6, atol=1e-7)


# --- a whole GPT-2 step, the switch, and life without Numba -----------------------------------------------------------
@needs_numba
def test_gpt2_step_with_the_kernels_matches_the_array_code(calls):
    from models.gpt2 import GPT2
    idx, targets = rng(0).integers(0, 40, size=(2, 41)), rng(1).integers(0, 40, size=(2, 41))
    results = []
    for enabled in (True, False):
        tg.cpu.use_kernels(enabled)
        tg.manual_seed(0)
        model = GPT2.from_preset("gpt2-tiny", vocab_size=40, block_size=48)
        logits, loss = model(tg.tensor(idx), tg.tensor(targets))
        loss.backward()
        results.append((logits.detach().numpy(), loss.item(),
                        {n: p.grad.numpy() for n, p in model.named_parameters()}))
    tg.cpu.use_kernels(True)
    kernel, array = results
    assert_close(kernel[0], array[0], rtol=1e-4, atol=1e-5, what="logits")
    assert math.isclose(kernel[1], array[1], rel_tol=1e-5)
    for name in array[2]:
        assert_close(kernel[2][name], array[2][name], rtol=1e-3, atol=1e-5, what=f"grad of {name}")
    assert calls["attention_forward"] == 2 and calls["layer_norm_forward"] == 5 and calls["gelu_forward"] == 2
    assert calls["cross_entropy_forward"] == 1


@needs_numba
def test_use_kernels_switches_them_off_and_on(calls):
    x = tg.tensor(randn(3, 8, dtype=np.float32))
    tg.cpu.use_kernels(False)
    assert not tg.cpu.kernels_available() and tg.backend.get_backend("cpu").kernels is None
    F.gelu(x)
    assert calls["gelu_forward"] == 0
    tg.cpu.use_kernels(True)
    F.gelu(x)
    assert calls["gelu_forward"] == 1


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, **env})


def test_the_environment_variable_switches_the_kernels_off():
    result = run_python("import tinygrad_tx as tg; from tinygrad_tx.backend import get_backend; "
                        "print(tg.cpu.kernels_available(), get_backend('cpu').kernels)",
                        TINYGRAD_TX_CPU_KERNELS="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "None"]


def test_everything_runs_without_numba():
    # Numba made unimportable: the fused ops and AdamW run their array code, and a training step works
    code = """
import sys
sys.modules["numba"] = None
import importlib.util
real_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name == "numba" else real_find_spec(name, *a)
import numpy as np
import tinygrad_tx as tg
import tinygrad_tx.nn.functional as F
from models.gpt2 import GPT2
assert not tg.cpu.numba_available() and not tg.cpu.kernels_available()
model = GPT2.from_preset("gpt2-tiny", vocab_size=40, block_size=48)
optimizer = tg.optim.AdamW(model.parameters(), lr=1e-3)
idx = tg.tensor(np.arange(40).reshape(2, 20) % 40)
_, loss = model(idx, idx)
loss.backward()
tg.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
optimizer.step()
assert "numba" not in [m for m in sys.modules if sys.modules[m] is not None]
print("ok", loss.item())
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


@needs_numba
def test_erf32_is_within_one_ulp_of_erf_rounded():
    import numba
    from tinygrad_tx.backend.cpu_kernels.float32_math import erf32

    @numba.njit
    def erf_all(x, out):
        for i in range(x.size):
            out[i] = erf32(x[i])
    x = np.concatenate([np.linspace(-6, 6, 200001), [0.0, 1.0, -1.0, 3.92, 1e-30, 1e30, -np.inf, np.inf]])
    x = x.astype(np.float32)
    out = np.empty_like(x)
    erf_all(x, out)
    expected = np.array([math.erf(v) for v in x.astype(np.float64)]).astype(np.float32)
    ulps = np.abs(out.astype(np.float64) - expected) / np.spacing(np.abs(expected))
    assert ulps.max() <= 1, x[np.argmax(ulps)]
    special = np.array([np.nan, -0.0], dtype=np.float32)
    erf_all(special, out[:2])
    assert np.isnan(out[0]) and out[1] == 0 and np.signbit(out[1])
