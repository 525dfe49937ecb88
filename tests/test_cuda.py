"""The CUDA backend, our kernels and mixed precision.

Three kinds of tests:
  - everywhere: autocast and GradScaler on the CPU (NumPy has float16), error messages, and the
    kernel paths of every fused op on a fake GPU ('cuda:5': NumPy arrays, with our CUDA kernels' own
    source run by the CPU executor of tests/cuda_cpu), checked against PyTorch;
  - on a GPU only (skipped elsewhere, with the reason): each kernel against the plain CuPy code it
    replaces, CPU against GPU for a whole GPT-2 step, RNG state, memory stats, TF32, training.
Run every GPU check in one command with benchmarks/gpu_check.sh.
"""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
import tinygrad_tx.nn.functional as F
from conftest import assert_close, compare, randn, rng
from cuda_cpu.executed_kernels import ExecutedKernels
from tinygrad_tx.amp import GradScaler
from tinygrad_tx.amp.precision import Precision
from tinygrad_tx.backend.numpy_backend import NumpyBackend
from tinygrad_tx.optim.fused_adamw import fused_adamw_step

needs_gpu = pytest.mark.skipif(not tg.cuda.is_available(),
                               reason="needs a CUDA GPU and CuPy (none here); run benchmarks/gpu_check.sh on one")


@pytest.fixture(autouse=True)
def keep_random_state():
    """These tests seed freely; the tests after them see the seeds and CPU generator they would have seen."""
    from tinygrad_tx import random as tg_random
    seed, device_seeds, cpu_state = tg_random.initial_seed(), dict(tg_random._device_type_seeds), tg.get_rng_state()
    yield
    tg_random._seed["value"] = seed
    tg_random._device_type_seeds.clear()
    tg_random._device_type_seeds.update(device_seeds)
    tg.set_rng_state(cpu_state)


# --- a fake GPU: the kernel paths on the CPU -----------------------------------------------------------------------
class FakeGpuBackend(NumpyBackend):
    def __init__(self):
        super().__init__()
        self.device = "cuda:5"
        self.kernels = ExecutedKernels()


@pytest.fixture
def fake_gpu(monkeypatch):
    from tinygrad_tx import backend
    fake = FakeGpuBackend()
    monkeypatch.setitem(backend._backends, "cuda:5", fake)
    return fake


@pytest.mark.parametrize("shape, normalized, affine", [((3, 5, 16), (16,), True), ((4, 6, 8), (6, 8), True),
                                                       ((7, 33), (33,), False)])
def test_layer_norm_kernel_path(fake_gpu, shape, normalized, affine):
    arrays = [randn(*shape, dtype=np.float32)]
    if affine:
        arrays += [randn(*normalized, dtype=np.float32, seed=1), randn(*normalized, dtype=np.float32, seed=2)]
    compare(lambda lib, x, *wb: lib.F.layer_norm(x, normalized, *wb), *arrays, device="cuda:5", rtol=1e-4, atol=1e-5)
    assert fake_gpu.kernels.calls["layer_norm_forward"] == 1 and fake_gpu.kernels.calls["layer_norm_backward"] == 1


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_kernel_path_on_the_last_dim_only(fake_gpu, name):
    x = randn(4, 3, 37, dtype=np.float32)
    compare(lambda lib, t: getattr(lib.F, name)(t, -1), x, device="cuda:5", rtol=1e-4, atol=1e-6)
    assert fake_gpu.kernels.calls["softmax_forward"] == 1 and fake_gpu.kernels.calls["softmax_backward"] == 1
    compare(lambda lib, t: getattr(lib.F, name)(t, 1), x, device="cuda:5", rtol=1e-4, atol=1e-6)
    assert fake_gpu.kernels.calls["softmax_forward"] == 1  # dim 1 is not the last: the array code ran


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_kernel_path(fake_gpu, approximate):
    compare(lambda lib, t: lib.F.gelu(t, approximate=approximate), randn(5, 40, dtype=np.float32),
            device="cuda:5", rtol=1e-4, atol=1e-6)
    assert fake_gpu.kernels.calls["gelu_backward"] == 1


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_kernel_path(fake_gpu, reduction, label_smoothing):
    logits = randn(9, 11, dtype=np.float32)
    target = rng(3).integers(0, 11, size=9)
    target[[2, 5]] = -100  # ignored rows
    compare(lambda lib, x, t: lib.F.cross_entropy(x, t, reduction=reduction, label_smoothing=label_smoothing),
            logits, target, device="cuda:5", rtol=1e-4, atol=1e-6)
    assert fake_gpu.kernels.calls["cross_entropy_backward"] == 1


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("length, source_length, head_dim", [(37, 37, 16), (5, 70, 80), (70, 9, 8), (1, 1, 4)])
def test_attention_kernel_path(fake_gpu, causal, length, source_length, head_dim):
    # lengths across tiles of 32 keys and blocks of 8 rows, L != S, a head dim that is not a multiple of 32
    q = randn(2, 3, length, head_dim, dtype=np.float32)
    k = randn(2, 3, source_length, head_dim, dtype=np.float32, seed=1)
    v = randn(2, 3, source_length, head_dim, dtype=np.float32, seed=2)
    compare(lambda lib, *t: lib.F.scaled_dot_product_attention(*t, is_causal=causal), q, k, v, device="cuda:5",
            rtol=1e-4, atol=1e-5)
    assert fake_gpu.kernels.calls["attention_forward"] == 1 and fake_gpu.kernels.calls["attention_backward"] == 1


def test_attention_with_a_mask_or_a_stored_dropout_mask_takes_the_array_code(fake_gpu):
    q = tg.tensor(randn(1, 2, 6, 4, dtype=np.float32), device="cuda:5", requires_grad=True)
    mask = tg.tensor(np.tril(np.ones((6, 6), bool)), device="cuda:5")
    F.scaled_dot_product_attention(q, q, q, attn_mask=mask).sum().backward()
    F.scaled_dot_product_attention(q, q, q, dropout_p=0.5).sum().backward()  # no counter-based stream here
    assert fake_gpu.kernels.calls["attention_forward"] == 0


def with_a_counter_based_stream(fake_gpu, monkeypatch, seed=3):
    """The fake GPU given the GPU's generator: Philox words from random.cu, run by the CPU executor."""
    from tinygrad_tx.backend.philox import PhiloxGenerator
    generator = PhiloxGenerator(np, fake_gpu.kernels.philox_words, seed)
    monkeypatch.setattr(fake_gpu, "reserve_random_words", generator.reserve, raising=False)
    monkeypatch.setattr(fake_gpu, "random_words", fake_gpu.kernels.philox_words, raising=False)
    return generator


@pytest.mark.parametrize("causal", [False, True])
def test_attention_dropout_runs_in_the_kernel_with_the_array_codes_mask(fake_gpu, monkeypatch, causal):
    generator = with_a_counter_based_stream(fake_gpu, monkeypatch)
    q, k, v = (randn(2, 3, 9, 8, dtype=np.float32, seed=s) for s in range(3))
    results = []
    for kernels in (fake_gpu.kernels, None):  # the kernel, then the array code from the same stream position
        generator.seed(3)
        monkeypatch.setattr(fake_gpu, "kernels", kernels)
        leaves = [tg.tensor(a, device="cuda:5", requires_grad=True) for a in (q, k, v)]
        out = F.scaled_dot_product_attention(*leaves, dropout_p=0.4, is_causal=causal)
        (out * out).sum().backward()
        results.append([out.detach().numpy()] + [t.grad.numpy() for t in leaves])
        assert generator.get_state()["offset"] == -(-2 * 3 * 9 * 9 // 4)  # the mask's words, used once
    without = F.scaled_dot_product_attention(*(tg.tensor(a, device="cuda:5") for a in (q, k, v)), is_causal=causal)
    assert not np.allclose(results[0][0], without.numpy(), atol=1e-3)  # the mask did drop something
    for kernel, array_code in zip(*results):
        assert_close(kernel, array_code, rtol=1e-5, atol=1e-5)


def test_attention_dropout_second_derivatives_use_the_same_mask(fake_gpu, monkeypatch):
    with_a_counter_based_stream(fake_gpu, monkeypatch)
    q = tg.tensor(randn(1, 2, 5, 4, dtype=np.float32), device="cuda:5", requires_grad=True)
    out = F.scaled_dot_product_attention(q, q, q, dropout_p=0.3)
    (grad,) = tg.autograd.grad(out.sum(), [q], create_graph=True)  # composed: the mask made from the same words
    (grad.sum()).backward()
    first = tg.autograd.grad(F.scaled_dot_product_attention(q, q, q, dropout_p=0.3).sum(), [q])[0]
    assert np.isfinite(q.grad.numpy()).all() and not np.allclose(first.numpy(), grad.detach().numpy())


def test_second_derivatives_ignore_the_kernels(fake_gpu):
    # with create_graph=True the fused ops differentiate their composed form: kernels never see it
    x = tg.tensor(randn(3, 8, dtype=np.float32), device="cuda:5", requires_grad=True)
    (g,) = tg.autograd.grad(F.gelu(F.layer_norm(x, (8,))).sum(), [x], create_graph=True)
    (g * g).sum().backward()
    assert x.grad is not None and np.isfinite(x.grad.numpy()).all()


def test_exact_gelu_keeps_float16_where_the_library_erf_widens(fake_gpu, monkeypatch):
    # cupyx.scipy.special.erf maps float16 to float64 (types e->d, f->f, d->d): give the fake GPU that rule
    widen = {np.dtype(np.float16): np.float64}
    monkeypatch.setattr(fake_gpu, "library_erf",
                        lambda a: np.asarray(NumpyBackend.library_erf(fake_gpu, a)).astype(widen.get(a.dtype, a.dtype)))
    monkeypatch.setattr(fake_gpu, "kernels", None)  # the array code, as with kernels switched off
    x = tg.tensor(randn(4, 8, dtype=np.float16), device="cuda:5", requires_grad=True)
    y = F.gelu(x)
    y.sum().backward()
    assert y.dtype == tg.float16 and x.grad.dtype == tg.float16
    assert x.erf().dtype == tg.float16
    expected = torch.nn.functional.gelu(torch.tensor(x.detach().cpu().numpy().astype(np.float32)))
    assert_close(y.float(), expected, rtol=2e-3, atol=2e-3)


def test_float16_through_the_kernel_paths(fake_gpu):
    x = randn(4, 10, 16, dtype=np.float32)
    full = F.layer_norm(tg.tensor(x, device="cuda:5"), (16,)).softmax(-1).numpy()
    half = F.layer_norm(tg.tensor(x, device="cuda:5").half(), (16,)).softmax(-1)
    assert half.dtype is tg.float16
    assert_close(half.float(), full, rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("name", ["layer_norm", "softmax", "gelu", "cross_entropy", "attention"])
def test_bfloat16_through_the_kernel_paths(fake_gpu, name):
    # the bf16 kernels on the fake GPU against the same op on the CPU (the array code), values and gradients
    pytest.importorskip("ml_dtypes")
    x = randn(6, 8, 16, dtype=np.float32)
    cases = {"layer_norm": lambda t: F.layer_norm(t, (16,)),
             "softmax": lambda t: t.softmax(-1),
             "gelu": lambda t: F.gelu(t, approximate="tanh"),
             "cross_entropy": lambda t: F.cross_entropy(t.reshape(-1, 16), tg.tensor(np.arange(48) % 16, device=t.device)),
             "attention": lambda t: F.scaled_dot_product_attention(t, t, t, is_causal=True)}
    results = []
    for device in ("cpu", "cuda:5"):
        t = tg.tensor(x, device=device).to(tg.bfloat16).requires_grad_()
        out = cases[name](t)
        out.float().sum().backward()
        assert out.dtype is tg.bfloat16 and t.grad.dtype is tg.bfloat16
        results.append((out.detach().float().cpu().numpy(), t.grad.float().cpu().numpy()))
    assert fake_gpu.kernels.calls[f"{name}_forward"] == 1
    for cpu, gpu in zip(*results):
        assert_close(gpu, cpu, rtol=2e-2, atol=2e-2)


def tiny_gpt2(seed=0):
    from models.gpt2 import GPT2
    tg.manual_seed(seed)
    return GPT2.from_preset("gpt2-tiny", vocab_size=40, block_size=48)


def gpt2_step(model, device, idx, targets):
    model.to(device)
    model.zero_grad()
    logits, loss = model(tg.tensor(idx, device=device), tg.tensor(targets, device=device))
    loss.backward()
    return logits.detach().cpu().numpy(), loss.item(), {n: p.grad.cpu().numpy() for n, p in model.named_parameters()}


def test_gpt2_step_on_the_fake_gpu_matches_the_cpu(fake_gpu):
    idx, targets = rng(0).integers(0, 40, size=(2, 41)), rng(1).integers(0, 40, size=(2, 41))
    cpu = gpt2_step(tiny_gpt2(), "cpu", idx, targets)
    gpu = gpt2_step(tiny_gpt2(), "cuda:5", idx, targets)
    assert_close(gpu[0], cpu[0], rtol=1e-4, atol=1e-5, what="logits")
    assert math.isclose(gpu[1], cpu[1], rel_tol=1e-5)
    for name in cpu[2]:
        assert_close(gpu[2][name], cpu[2][name], rtol=1e-3, atol=1e-5, what=f"grad of {name}")
    used = fake_gpu.kernels.calls
    assert used["attention_forward"] == 2 and used["layer_norm_forward"] == 5 and used["cross_entropy_forward"] == 1


def test_fused_adamw_matches_torch(fake_gpu):
    values = [randn(4, 3, dtype=np.float32), randn(3, dtype=np.float32, seed=1)]
    ours = [tg.tensor(v, device="cuda:5", requires_grad=True) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    opt = tg.optim.AdamW(ours, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    torch_opt = torch.optim.AdamW(theirs, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    for step in range(4):
        grads = [randn(*v.shape, dtype=np.float32, seed=10 + step + i) for i, v in enumerate(values)]
        for p, t, g in zip(ours, theirs, grads):
            p.grad, t.grad = tg.tensor(g, device="cuda:5"), torch.tensor(g)
        opt.step()
        torch_opt.step()
    assert fake_gpu.kernels.calls["adamw_step"] == 4
    for p, t in zip(ours, theirs):
        assert_close(p.detach(), t.detach(), rtol=1e-5, atol=1e-6)
    assert opt.state[ours[0]]["step"] == 4


def test_fused_adamw_declines_what_it_does_not_implement(fake_gpu):
    p = tg.tensor(randn(3, dtype=np.float32), device="cuda:5", requires_grad=True)
    p.grad = tg.ones(3, device="cuda:5")
    for options in (dict(amsgrad=True), dict(maximize=True), dict(fused=False)):
        opt = tg.optim.AdamW([p], **options)
        assert not fused_adamw_step(opt, opt.param_groups[0])
    opt = tg.optim.AdamW([p], fused=True)
    assert fused_adamw_step(opt, opt.param_groups[0])  # fused=True (or None): the kernel, where it applies
    opt = tg.optim.Adam([p], weight_decay=0.1)  # L2 decay: not the kernel's decoupled form
    assert not fused_adamw_step(opt, opt.param_groups[0])
    cpu = tg.tensor([1.0, 2.0], requires_grad=True)
    cpu.grad = tg.ones(2)
    opt = tg.optim.AdamW([cpu])
    tg.cpu.use_kernels(False)
    try:
        assert not fused_adamw_step(opt, opt.param_groups[0])  # the CPU with its Numba kernels switched off
    finally:
        tg.cpu.use_kernels(True)


# --- autocast (float16 on the CPU: NumPy has it) -----------------------------------------------------------------------
def test_autocast_runs_products_in_float16_with_float32_gradients():
    x = tg.tensor(randn(4, 8, dtype=np.float32), requires_grad=True)
    w = tg.tensor(randn(8, 3, dtype=np.float32, seed=1), requires_grad=True)
    with tg.autocast("cpu", dtype=tg.float16):
        y = x @ w
    assert y.dtype is tg.float16
    assert_close(y.float(), x.detach().numpy() @ w.detach().numpy(), rtol=1e-2, atol=1e-2)
    y.float().sum().backward()
    assert x.grad.dtype is tg.float32 and w.grad.dtype is tg.float32
    assert_close(w.grad, x.detach().numpy().T @ np.ones((4, 3), np.float32), rtol=1e-2, atol=1e-2)


def test_autocast_linear_attention_half_and_the_loss_float32():
    x = tg.tensor(randn(2, 5, 8, dtype=np.float32), requires_grad=True)
    layer = tg.nn.Linear(8, 8)
    with tg.autocast("cpu", dtype=tg.float16):
        h = layer(x)
        q = h.view(2, 5, 2, 4).transpose(1, 2)
        attended = F.scaled_dot_product_attention(q, q, q, is_causal=True)
        normed = F.layer_norm(h, (8,))
        probs, log_probs = h.softmax(-1), h.log_softmax(-1)
        loss = F.cross_entropy(h.reshape(-1, 8), tg.tensor(rng(0).integers(0, 8, size=10)))
    assert h.dtype is tg.float16 and attended.dtype is tg.float16
    # PyTorch's CPU lists: of these, only the loss runs in float32 (on a GPU softmax and layer_norm do too)
    assert normed.dtype is probs.dtype is log_probs.dtype is tg.float16 and loss.dtype is tg.float32
    (loss + normed.sum() + attended.float().sum()).backward()
    assert layer.weight.grad.dtype is layer.bias.grad.dtype is x.grad.dtype is tg.float32


def test_autocast_leaves_other_devices_float64_and_disabled_regions_alone():
    a = tg.tensor(randn(3, 3, dtype=np.float32))
    with tg.autocast("cuda", dtype=tg.float16):  # a CUDA region: CPU tensors are untouched
        assert (a @ a).dtype is tg.float32
    with tg.autocast("cpu", dtype=tg.float16):
        assert (a.double() @ a.double()).dtype is tg.float64  # float64 is never cast
        with tg.autocast("cpu", enabled=False):
            assert (a @ a).dtype is tg.float32
        assert (a @ a).dtype is tg.float16  # the outer region is back
    assert (a @ a).dtype is tg.float32


def test_autocast_as_a_decorator():
    @tg.autocast("cpu", dtype=tg.float16)
    def product(a, b):
        return a @ b
    a = tg.ones(2, 2)
    assert product(a, a).dtype is tg.float16 and (a @ a).dtype is tg.float32


def test_autocast_takes_bfloat16_by_any_name_and_refuses_other_dtypes():
    for dtype in ("bfloat16", torch.bfloat16, tg.bfloat16):
        assert tg.autocast("cuda", dtype=dtype).fast_dtype is tg.bfloat16
    assert tg.autocast("cpu").fast_dtype is tg.bfloat16 and tg.autocast("cuda").fast_dtype is tg.float16  # as torch
    assert Precision("bfloat16", "cpu").scaler.is_enabled() is False  # bfloat16 needs no loss scaling
    with pytest.raises(TypeError, match="autocast: dtype must be"):
        tg.autocast("cpu", dtype=tg.float64)
    with pytest.raises(ValueError, match="autocast: device_type"):
        tg.autocast("tpu")


def test_autocast_gpt2_loss_is_close_to_float32():
    idx, targets = rng(0).integers(0, 40, size=(2, 16)), rng(1).integers(0, 40, size=(2, 16))
    model = tiny_gpt2()
    _, full = model(tg.tensor(idx), tg.tensor(targets))
    with tg.autocast("cpu", dtype=tg.float16):
        logits, half = model(tg.tensor(idx), tg.tensor(targets))
    assert logits.dtype is tg.float16 and half.dtype is tg.float32
    assert math.isclose(half.item(), full.item(), rel_tol=1e-2)
    half.backward()
    assert all(p.grad.dtype is tg.float32 and np.isfinite(p.grad.numpy()).all() for p in model.parameters())


# --- GradScaler -------------------------------------------------------------------------------------------------------
def _parameter(values):
    return tg.tensor(np.asarray(values, np.float32), requires_grad=True)


def test_grad_scaler_scales_unscales_and_steps():
    p = _parameter([1.0, 2.0])
    opt = tg.optim.SGD([p], lr=0.1)
    scaler = GradScaler("cpu", init_scale=8.0)
    scaler.scale((p * p).sum()).backward()
    assert p.grad.tolist() == [16.0, 32.0]  # d(8 p^2)/dp
    scaler.unscale_(opt)
    assert p.grad.tolist() == [2.0, 4.0]
    scaler.step(opt)  # already unscaled: not divided again
    scaler.update()
    assert_close(p.detach(), np.array([0.8, 1.6], np.float32))
    assert scaler.get_scale() == 8.0


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_grad_scaler_skips_the_step_and_backs_off_on_inf_or_nan(bad):
    p = _parameter([1.0, 2.0])
    opt = tg.optim.SGD([p], lr=0.1)
    scaler = GradScaler("cpu", init_scale=1024.0, growth_interval=1)
    p.grad = tg.tensor([1.0, bad])
    assert scaler.step(opt) is None
    scaler.update()
    assert p.tolist() == [1.0, 2.0]  # unchanged
    assert scaler.get_scale() == 512.0 and scaler.state_dict()["_growth_tracker"] == 0


def test_grad_scaler_scale_history_matches_torch():
    pattern = [1, 1, math.inf, 1, 1, 1, math.nan, 1, 1, 1, 1]
    ours, theirs = _parameter([0.5]), torch.tensor([0.5], requires_grad=True)
    opt, torch_opt = tg.optim.SGD([ours], lr=0.1), torch.optim.SGD([theirs], lr=0.1)
    scaler = GradScaler("cpu", init_scale=64.0, growth_factor=2.0, backoff_factor=0.25, growth_interval=3)
    torch_scaler = torch.amp.GradScaler("cpu", init_scale=64.0, growth_factor=2.0, backoff_factor=0.25,
                                        growth_interval=3)
    for g in pattern:
        ours.grad = theirs.grad = None
        scaler.scale((ours * g).sum()).backward()
        torch_scaler.scale((theirs * g).sum()).backward()
        scaler.step(opt)
        torch_scaler.step(torch_opt)
        scaler.update()
        torch_scaler.update()
        assert scaler.get_scale() == torch_scaler.get_scale()
        assert_close(ours.detach(), theirs.detach(), rtol=1e-6, atol=1e-7)
    assert scaler.state_dict()["_growth_tracker"] == torch_scaler.state_dict()["_growth_tracker"]


def test_grad_scaler_refuses_misuse():
    p = _parameter([1.0])
    opt = tg.optim.SGD([p], lr=0.1)
    scaler = GradScaler("cpu")
    with pytest.raises(RuntimeError, match="no unscale_"):
        scaler.update()
    p.grad = tg.tensor([1.0])
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        scaler.step(opt)
    with pytest.raises(RuntimeError, match="after step"):
        scaler.unscale_(opt)
    scaler.update()
    p.grad = tg.tensor([1.0]).half()
    with pytest.raises(ValueError, match="float16"):
        scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="closure"):
        scaler.step(opt, closure=lambda: 0)


def test_grad_scaler_state_dict_and_disabled_pass_through():
    scaler = GradScaler("cpu", init_scale=32.0, growth_interval=7)
    restored = GradScaler("cpu")
    restored.load_state_dict(scaler.state_dict())
    assert restored.state_dict() == scaler.state_dict() == {
        "scale": 32.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 7, "_growth_tracker": 0}
    with pytest.raises(RuntimeError, match="empty"):
        restored.load_state_dict({})
    off = GradScaler("cpu", enabled=False)
    loss = tg.tensor(3.0)
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}
    p = _parameter([1.0])
    p.grad = tg.tensor([math.inf])
    off.step(tg.optim.SGD([p], lr=1.0))  # disabled: a plain step, inf and all
    assert math.isinf(p.item())


def test_grad_scaler_unscales_shared_gradients_once():
    a, b = _parameter([1.0]), _parameter([2.0])
    shared = tg.tensor([4.0])
    a.grad = b.grad = shared
    scaler = GradScaler("cpu", init_scale=4.0)
    scaler.unscale_(tg.optim.SGD([a, b], lr=0.1))
    assert a.grad.tolist() == b.grad.tolist() == [1.0]


# --- training with --dtype -----------------------------------------------------------------------------------------------
def test_training_in_float16_on_the_cpu(tmp_path):
    from tinygrad_tx.trainer import Trainer, config_from_preset
    config = config_from_preset("shakespeare-char-cpu", n_layer=1, n_head=2, n_embd=32, block_size=16, batch_size=4,
                                max_iters=6, eval_interval=3, eval_iters=1, log_interval=3, warmup_iters=1,
                                lr_decay_iters=6, out_dir=str(tmp_path), dtype="float16")
    trainer = Trainer(config)
    assert trainer.precision.scaler.is_enabled()
    trainer.train()
    resumed = Trainer(config, resume=True)
    assert resumed.precision.scaler.state_dict() == trainer.precision.scaler.state_dict()
    assert all(p.dtype is tg.float32 for p in trainer.model.parameters())


def test_precision_flags():
    assert not Precision("float32", "cpu").scaler.is_enabled()
    with pytest.raises(ValueError, match="tf32.*--device cuda"):
        Precision("tf32", "cpu")
    with pytest.raises(ValueError, match="unknown training dtype"):
        Precision("float8", "cpu")


# --- without a GPU: answers, not crashes ---------------------------------------------------------------------------------
def test_cuda_module_answers_without_cupy():
    code = ("import sys; sys.modules['cupy'] = None\n"
            "import tinygrad_tx as tg\n"
            "assert tg.cuda.is_available() is False and tg.cuda.device_count() == 0\n"
            "try:\n    tg.cuda.synchronize()\nexcept RuntimeError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'pip install "tinygrad_tx[cuda]"' in result.stdout


def test_importing_tinygrad_tx_does_not_import_cupy():
    result = subprocess.run([sys.executable, "-c", "import sys, tinygrad_tx; print('cupy' in sys.modules)"],
                            capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_cpu_backend_takes_gpu_arrays():
    class GpuArray:  # what NumpyBackend sees of a CuPy array: the CUDA array interface and .get()
        __cuda_array_interface__ = {}

        def get(self):
            return np.arange(3.0)
    assert NumpyBackend().asarray(GpuArray()).tolist() == [0.0, 1.0, 2.0]


def test_mixing_the_fake_gpu_and_the_cpu_names_both(fake_gpu):
    q = tg.ones(1, 2, 4, device="cuda:5")
    with pytest.raises(RuntimeError, match="cpu.*cuda:5|cuda:5.*cpu"):
        F.scaled_dot_product_attention(q, tg.ones(1, 2, 4), tg.ones(1, 2, 4))
    with pytest.raises(RuntimeError, match="cpu.*cuda:5|cuda:5.*cpu"):
        F.cross_entropy(tg.ones(2, 3, device="cuda:5"), tg.tensor([0, 1])) + tg.ones(())


def test_cuda_manual_seed_reaches_cuda_devices_only(fake_gpu):
    tg.manual_seed(3)
    tg.cuda.manual_seed(11)
    from tinygrad_tx.random import initial_seed
    assert initial_seed("cuda") == 11 and initial_seed("cpu") == 3
    tg.manual_seed(5)  # the global seed wins again, for every device
    assert initial_seed("cuda") == 5


# --- on a GPU ----------------------------------------------------------------------------------------------------------------
def test_a_gpu_is_here_when_required():
    """benchmarks/gpu_check.sh sets TINYGRAD_TX_REQUIRE_GPU=1: there, a missing GPU fails instead of skipping."""
    if os.environ.get("TINYGRAD_TX_REQUIRE_GPU") == "1":
        assert tg.cuda.is_available(), "TINYGRAD_TX_REQUIRE_GPU=1 but CuPy sees no CUDA device"


def _both_paths(fn, *arrays, dtype="float32"):
    """fn on 'cuda' tensors with our kernels, then with the plain CuPy code: outputs and input grads as NumPy."""
    results = []
    for use in (True, False):
        tg.cuda.use_kernels(use)
        try:
            inputs = [tg.tensor(a.astype(dtype) if a.dtype.kind == "f" else a, device="cuda",
                                requires_grad=a.dtype.kind == "f") for a in arrays]
            out = fn(*inputs)
            out.float().backward(tg.tensor(randn(*out.shape, dtype=np.float32, seed=9), device="cuda"))
            results.append([out.detach().float().cpu().numpy()] +
                           [t.grad.float().cpu().numpy() for t in inputs if t.requires_grad])
        finally:
            tg.cuda.use_kernels(True)
    return results


GPU_CASES = {
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (96,), w, b), [(4, 33, 96), (96,), (96,)]),
    "layer_norm_big_row": (lambda x: F.layer_norm(x, (3000,)), [(5, 3000)]),
    "softmax": (lambda x: x.softmax(-1), [(7, 50257 // 7)]),
    "log_softmax": (lambda x: x.log_softmax(-1), [(3, 5, 130)]),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), [(1000, 77)]),
    "gelu_erf": (lambda x: F.gelu(x), [(3, 1001)]),
    "attention_causal": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                         [(2, 3, 77, 64)] * 3),
    "attention_full_head80": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v), [(2, 40, 80), (2, 100, 80),
                                                                                        (2, 100, 80)]),
    "attention_head128": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                          [(1, 2, 300, 128)] * 3),
}


@needs_gpu
@pytest.mark.parametrize("dtype, tolerance", [("float32", (1e-4, 1e-5)), ("float16", (2e-2, 2e-2))])
@pytest.mark.parametrize("case", sorted(GPU_CASES))
def test_kernel_matches_the_cupy_array_code(case, dtype, tolerance):
    fn, shapes = GPU_CASES[case]
    arrays = [randn(*shape, dtype=np.float32, seed=i) for i, shape in enumerate(shapes)]
    with_kernels, without = _both_paths(fn, *arrays, dtype=dtype)
    for i, (ours, reference) in enumerate(zip(with_kernels, without)):
        assert_close(ours, reference, *tolerance, what=f"{case} {dtype}: {'output' if i == 0 else f'grad {i - 1}'}")


@needs_gpu
@pytest.mark.parametrize("reduction, smoothing", [("mean", 0.0), ("sum", 0.1), ("none", 0.0)])
def test_cross_entropy_kernel_matches_the_cupy_array_code(reduction, smoothing):
    logits = randn(64, 5000, dtype=np.float32)
    target = rng(1).integers(0, 5000, size=64)
    target[::7] = -100

    def fn(x, t):
        loss = F.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing)
        return loss if reduction == "none" else loss.reshape(1)
    with_kernels, without = _both_paths(fn, logits, target)
    for ours, reference in zip(with_kernels, without):
        assert_close(ours, reference, rtol=1e-4, atol=1e-6)


@needs_gpu
def test_fused_adamw_matches_the_array_code_on_gpu():
    results = []
    for use in (True, False):
        tg.cuda.use_kernels(use)
        try:
            params = [tg.tensor(randn(*s, dtype=np.float32, seed=i), device="cuda", requires_grad=True)
                      for i, s in enumerate([(300, 7), (7,), (1,)])]
            opt = tg.optim.AdamW(params, lr=1e-2, weight_decay=0.1)
            for step in range(3):
                for i, p in enumerate(params):
                    p.grad = tg.tensor(randn(*p.shape, dtype=np.float32, seed=20 + step + i), device="cuda")
                opt.step()
            results.append([p.detach().cpu().numpy() for p in params])
        finally:
            tg.cuda.use_kernels(True)
    for ours, reference in zip(*results):
        assert_close(ours, reference, rtol=1e-5, atol=1e-6)


@needs_gpu
@pytest.mark.parametrize("kernels", [True, False], ids=["kernels", "cupy-array-code"])
def test_gpt2_step_on_gpu_matches_the_cpu(kernels):
    idx, targets = rng(0).integers(0, 40, size=(2, 41)), rng(1).integers(0, 40, size=(2, 41))
    cpu = gpt2_step(tiny_gpt2(), "cpu", idx, targets)
    tg.cuda.use_kernels(kernels)
    try:
        gpu = gpt2_step(tiny_gpt2(), "cuda", idx, targets)
    finally:
        tg.cuda.use_kernels(True)
    assert_close(gpu[0], cpu[0], rtol=1e-4, atol=1e-5, what="logits")
    assert math.isclose(gpu[1], cpu[1], rel_tol=1e-5)
    for name in cpu[2]:
        assert_close(gpu[2][name], cpu[2][name], rtol=1e-3, atol=1e-5, what=f"grad of {name}")


@needs_gpu
def test_gpu_tensors_move_and_carry_gradients():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda:0" and y.is_cuda
    (y * y).sum().backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [2.0, 4.0]
    module = tg.nn.Linear(3, 2).to("cuda")
    assert all(p.device == "cuda:0" for p in module.parameters())
    assert module.cpu().weight.device == "cpu"


@needs_gpu
def test_gpu_rng_state_round_trips_and_seeds_repeat():
    tg.cuda.manual_seed(7)
    state = tg.get_rng_state("cuda")
    assert set(state) == {"seed", "offset"}
    first = tg.randn(1000, device="cuda").numpy()
    # the same numbers on every GPU: the generator run on NumPy with reference Philox words agrees exactly
    from philox_reference import philox_words
    from tinygrad_tx.backend.philox import PhiloxGenerator
    assert np.array_equal(PhiloxGenerator(np, philox_words, 7).randn((1000,), np.float32), first)
    tg.set_rng_state(state, "cuda")
    assert np.array_equal(tg.randn(1000, device="cuda").numpy(), first)
    tg.manual_seed(7)
    assert np.array_equal(tg.randn(1000, device="cuda").numpy(), first)
    samples = tg.rand(100000, device="cuda").numpy()
    assert 0 <= samples.min() and samples.max() < 1 and abs(samples.mean() - 0.5) < 0.01


@needs_gpu
def test_gpu_memory_stats():
    tg.cuda.synchronize()
    tg.cuda.reset_peak_memory_stats()
    before = tg.cuda.memory_allocated()
    x = tg.zeros(1024, 1024, device="cuda")  # 4 MiB
    assert tg.cuda.memory_allocated() >= before + 4 * 2 ** 20
    del x
    assert tg.cuda.max_memory_allocated() >= before + 4 * 2 ** 20
    tg.cuda.reset_peak_memory_stats()
    assert tg.cuda.max_memory_allocated() < before + 4 * 2 ** 20


@needs_gpu
def test_tf32_switch():
    tg.cuda.set_tf32(True)
    try:
        assert tg.cuda.tf32_enabled()
        a = tg.randn(256, 256, device="cuda")
        assert_close(a @ a, a.numpy() @ a.numpy(), rtol=1e-2, atol=1e-1)  # 10-bit mantissas in the products
    finally:
        tg.cuda.set_tf32(False)
    assert not tg.cuda.tf32_enabled()


@needs_gpu
def test_autocast_on_gpu_runs_the_half_kernels():
    q = tg.randn(2, 4, 64, 32, device="cuda", requires_grad=True)
    with tg.autocast("cuda", dtype=tg.float16):
        out = F.scaled_dot_product_attention(q, q, q, is_causal=True)
        loss = F.cross_entropy(out.reshape(-1, 32), tg.randint(0, 32, (512,), device="cuda"))
    assert out.dtype is tg.float16 and loss.dtype is tg.float32
    GradScaler().scale(loss).backward()
    assert q.grad.dtype is tg.float32 and np.isfinite(q.grad.numpy()).all()


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "tf32", "float16"])
def test_training_on_gpu(tmp_path, dtype):
    from tinygrad_tx.trainer import Trainer, config_from_preset
    config = config_from_preset("shakespeare-char-cpu", max_iters=60, eval_interval=30, eval_iters=2, log_interval=10,
                                learning_rate=1e-2, warmup_iters=5, lr_decay_iters=60, out_dir=str(tmp_path),
                                device="cuda", dtype=dtype)
    try:
        trainer = Trainer(config)
        first = trainer.estimate_loss()["val"]
        trainer.train()
    finally:
        tg.cuda.set_tf32(False)
    assert trainer.best_val_loss < first - 0.5


def test_the_cuda_extras_bring_the_cuda_libraries_and_ship_every_kernel_file():
    import fnmatch
    import tomllib
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    extras = project["project"]["optional-dependencies"]
    # the CuPy wheels alone have no NVRTC, cuBLAS or cuRAND: [ctk] installs them
    assert any(r.startswith("cupy-cuda13x[ctk]") for r in extras["cuda"])
    assert any(r.startswith("cupy-cuda12x[ctk]") for r in extras["cuda12"])
    patterns = project["tool"]["setuptools"]["package-data"]["tinygrad_tx"]
    kernel_dir = os.path.join(root, "tinygrad_tx", "backend", "kernels")
    for name in os.listdir(kernel_dir):
        if not name.endswith(".py") and name != "__pycache__":
            assert any(fnmatch.fnmatch(f"backend/kernels/{name}", p) for p in patterns), f"{name} is not packaged"


def test_cuda_functions_say_why_cuda_cannot_start(monkeypatch):
    class CUDARuntimeError(RuntimeError):
        pass

    def no_driver():
        raise CUDARuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")

    from types import SimpleNamespace
    fake = SimpleNamespace(cuda=SimpleNamespace(runtime=SimpleNamespace(getDeviceCount=no_driver)))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    assert not tg.cuda.is_available() and tg.cuda.device_count() == 0
    for call in (tg.cuda.synchronize, tg.cuda.current_device, tg.cuda.get_device_name,
                 lambda: tg.cuda.set_device("cuda:1")):
        with pytest.raises(RuntimeError, match="CUDA cannot start here .*InsufficientDriver.*nvidia-smi"):
            call()


@needs_gpu
@pytest.mark.parametrize("dtype, tf32, tolerance", [("float32", False, 1e-5), ("float32", True, 5e-3),
                                                    ("float16", False, 2e-3)])
def test_batched_products_take_the_strided_batched_gemm_path(dtype, tf32, tolerance):
    # batched_gemm's cuBLAS call, the transposed operand passed without a copy, against torch on the same GPU
    q = randn(4, 8, 64, 32, dtype=np.float32)
    k = randn(4, 8, 64, 32, dtype=np.float32, seed=1)
    tg.cuda.set_tf32(tf32)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        ours = tg.tensor(q, device="cuda").to(getattr(tg, dtype)) @ \
            tg.tensor(k, device="cuda").to(getattr(tg, dtype)).transpose(-1, -2)
        theirs = torch.tensor(q, device="cuda").to(getattr(torch, dtype)) @ \
            torch.tensor(k, device="cuda").to(getattr(torch, dtype)).transpose(-1, -2)
    finally:
        tg.cuda.set_tf32(False)
        torch.backends.cuda.matmul.allow_tf32 = False
    assert ours.dtype == getattr(tg, dtype)
    assert_close(ours.float().cpu(), theirs.float().cpu(), rtol=tolerance, atol=tolerance * 10)


def test_deterministic_algorithms_refuse_the_atomic_scatter_add():
    from tinygrad_tx.determinism import alert_not_deterministic
    assert not tg.are_deterministic_algorithms_enabled()
    alert_not_deterministic("index_add on CUDA")  # off: nothing happens
    try:
        tg.use_deterministic_algorithms(True)
        with pytest.raises(RuntimeError, match="index_add on CUDA does not have a deterministic implementation"):
            alert_not_deterministic("index_add on CUDA")
        tg.use_deterministic_algorithms(True, warn_only=True)
        assert tg.is_deterministic_algorithms_warn_only_enabled()
        with pytest.warns(UserWarning, match="index_add on CUDA"):
            alert_not_deterministic("index_add on CUDA")
    finally:
        tg.use_deterministic_algorithms(False)


@needs_gpu
def test_gpu_erf_keeps_float16_and_attention_dropout_runs_in_the_kernel():
    x = tg.randn(64, device="cuda").half()
    assert x.erf().dtype is tg.float16 and F.gelu(x).dtype is tg.float16
    tg.cuda.set_device(0)
    assert tg.cuda.current_device() == 0
    q = tg.randn(2, 4, 64, 32, device="cuda", requires_grad=True)
    results = []
    for use in (True, False):  # the kernel regenerating the mask, then the array code making it from the same words
        tg.cuda.use_kernels(use)
        tg.cuda.manual_seed(5)
        out = F.scaled_dot_product_attention(q, q, q, dropout_p=0.2, is_causal=True)
        (grad,) = tg.autograd.grad((out * out).sum(), [q])
        results.append((out.detach().cpu().numpy(), grad.cpu().numpy()))
    tg.cuda.use_kernels(True)
    for kernel, array_code in zip(*results):
        assert_close(kernel, array_code, rtol=1e-4, atol=1e-5)
