"""The namespaces training scripts touch at start-up, against torch on this machine: tinygrad_tx.cuda (and its
old amp spellings), tinygrad_tx.backends, set_float32_matmul_precision, compile, inference_mode.

Where no GPU is here (CuPy missing, or no device), torch's CPU-only answers are the oracle.
"""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from tinygrad_tx.cuda.amp import GradScaler as CudaAmpGradScaler
from tinygrad_tx.cuda.amp import autocast as cuda_amp_autocast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
no_gpu = pytest.mark.skipif(tg.cuda.is_available() or torch.cuda.is_available(),
                            reason="compares torch's answers on a machine without a GPU")


def ours(message):
    """torch's message with tinygrad_tx's names in it."""
    return message.replace("torch", "tinygrad_tx")


def recorded_warnings(make):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = make()
    return result, [(w.category, str(w.message)) for w in caught]


@pytest.fixture
def keep_switches():
    """The tests flip global switches; the tests after them see ours and torch's cuDNN flags as they were
    (torch's matmul precision is only changed in a process of its own: see TF32_PROGRAM)."""
    flags = ("allow_tf32", "benchmark", "deterministic")
    saved = {library: [getattr(library.backends.cudnn, flag) for flag in flags] for library in (torch, tg)}
    precision = tg.get_float32_matmul_precision()
    yield
    for library, values in saved.items():
        for flag, value in zip(flags, values):
            setattr(library.backends.cudnn, flag, value)
    tg.set_float32_matmul_precision(precision)


# --- tinygrad_tx.cuda ----------------------------------------------------------------------------------------------
@no_gpu
def test_cuda_answers_without_a_gpu():
    assert tg.cuda.is_available() is torch.cuda.is_available() is False
    assert tg.cuda.device_count() == torch.cuda.device_count() == 0
    assert tg.cuda.is_bf16_supported() is torch.cuda.is_bf16_supported() is False
    assert tg.cuda.is_bf16_supported(including_emulation=False) is False
    assert tg.cuda.memory_allocated() == torch.cuda.memory_allocated() == 0
    assert tg.cuda.max_memory_allocated() == torch.cuda.max_memory_allocated() == 0
    assert tg.cuda.manual_seed(1) is torch.cuda.manual_seed(1) is None  # seeds devices used later: no GPU needed
    assert tg.cuda.manual_seed_all(1) is torch.cuda.manual_seed_all(1) is None


@no_gpu
@pytest.mark.parametrize("name", ["synchronize", "current_device", "get_device_name"])
def test_cuda_calls_that_need_a_gpu_raise(name):
    with pytest.raises(AssertionError):  # torch's CPU-only build; its CUDA build raises a RuntimeError
        getattr(torch.cuda, name)()
    with pytest.raises(RuntimeError):
        getattr(tg.cuda, name)()


@pytest.mark.parametrize("major, stores, expected, emulated", [
    (9, True, True, True), (8, True, True, True), (7, True, False, True), (9, False, False, False)])
def test_bf16_supported_as_torch_answers_for_a_gpu(monkeypatch, major, stores, expected, emulated):
    """On a GPU: True from compute capability 8.0 (Ampere); an older one only with emulation; never where CuPy
    cannot store bfloat16. The GPU is a stand-in here: CuPy's answers are what the test gives."""
    class FakeCupy:
        class cuda:
            class runtime:
                @staticmethod
                def getDeviceProperties(index):
                    return {"major": major, "minor": 0}

        @staticmethod
        def zeros(shape, dtype):
            if not stores:
                raise TypeError(f"Unsupported dtype {dtype}")
    monkeypatch.setattr(tg.cuda, "is_available", lambda: True)
    monkeypatch.setattr(tg.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(tg.cuda, "_gpu", lambda: FakeCupy)
    assert tg.cuda.is_bf16_supported(including_emulation=False) is expected
    assert tg.cuda.is_bf16_supported() is emulated


def test_manual_seed_repeats():
    tg.manual_seed(3)
    first = tg.randn(4).tolist()
    tg.manual_seed(3)
    assert tg.randn(4).tolist() == first


# --- GradScaler and autocast: the old spellings, and a scaler for 'cuda' without a GPU --------------------------------
def _step_with(scaler, library, weight):
    """One scaled SGD step of a 1x2 linear model on both libraries' terms; returns the weight after it."""
    w = library.tensor(weight, requires_grad=True)
    optimizer = library.optim.SGD([w], lr=0.1)
    loss = (w * library.tensor([[1.0, 2.0]])).sum()
    scaled = scaler.scale(loss)
    assert scaled is loss  # disabled: a pass-through
    scaled.backward()
    scaler.unscale_(optimizer)
    assert scaler.step(optimizer) is None
    scaler.update()
    return w.detach().numpy()


@no_gpu
@pytest.mark.parametrize("make", [lambda lib: lib.cuda.amp.GradScaler(), lambda lib: lib.amp.GradScaler("cuda"),
                                  lambda lib: lib.amp.GradScaler(),
                                  lambda lib: lib.cuda.amp.GradScaler(init_scale=8.0)],
                         ids=["cuda.amp.GradScaler()", "amp.GradScaler('cuda')", "amp.GradScaler()",
                              "cuda.amp.GradScaler(init_scale)"])
def test_a_cuda_grad_scaler_without_a_gpu_disables_itself_as_torch(make):
    theirs, torch_warnings = recorded_warnings(lambda: make(torch))
    mine, our_warnings = recorded_warnings(lambda: make(tg))
    assert our_warnings == [(category, ours(message)) for category, message in torch_warnings]
    assert mine.is_enabled() is theirs.is_enabled() is False
    assert mine.get_scale() == theirs.get_scale() == 1.0 and mine.state_dict() == theirs.state_dict() == {}
    weight = np.array([[0.5, -0.5]], dtype=np.float32)
    np.testing.assert_allclose(_step_with(mine, tg, weight), _step_with(theirs, torch, weight))


def test_grad_scalers_that_stay_as_they_are():
    for make in [lambda lib: lib.amp.GradScaler("cpu"), lambda lib: lib.amp.GradScaler("cuda", enabled=False)]:
        theirs, torch_warnings = recorded_warnings(lambda: make(torch))
        mine, our_warnings = recorded_warnings(lambda: make(tg))
        assert our_warnings == torch_warnings == []
        assert mine.is_enabled() == theirs.is_enabled()


def test_cuda_amp_spellings_warn_as_torch():
    _, torch_warnings = recorded_warnings(lambda: torch.cuda.amp.GradScaler(enabled=False))
    scaler, our_warnings = recorded_warnings(lambda: CudaAmpGradScaler(enabled=False))
    assert our_warnings == [(category, ours(message)) for category, message in torch_warnings]
    assert isinstance(scaler, tg.amp.GradScaler)
    _, torch_warnings = recorded_warnings(lambda: torch.cuda.amp.autocast())
    region, our_warnings = recorded_warnings(lambda: cuda_amp_autocast())
    deprecation = [(category, ours(message)) for category, message in torch_warnings if category is FutureWarning]
    assert deprecation and our_warnings == deprecation  # torch also warns it disables autocast without a GPU
    assert isinstance(region, tg.autocast) and region.device_type == "cuda" and region.fast_dtype is tg.float16


def test_cuda_amp_autocast_is_a_cuda_region(second_device):
    """On cuda:7 (a CPU backend under a CUDA name) the old spelling casts matrix products to float16."""
    x = tg.ones(2, 2, device=second_device)
    with pytest.warns(FutureWarning):
        region = cuda_amp_autocast()
    with region:
        assert (x @ x).dtype is tg.float16
    assert (x @ x).dtype is tg.float32


# --- backends and matmul precision ------------------------------------------------------------------------------------
def test_backend_switches_start_as_torch(keep_switches):
    for name in ["allow_tf32", "benchmark", "deterministic", "enabled"]:
        assert getattr(tg.backends.cudnn, name) == getattr(torch.backends.cudnn, name), name
    assert tg.backends.cuda.matmul.allow_tf32 == torch.backends.cuda.matmul.allow_tf32
    assert tg.get_float32_matmul_precision() == torch.get_float32_matmul_precision()
    assert tg.backends.mps.is_available() is torch.backends.mps.is_available() is False


TF32_STEPS = [("precision", "medium"), ("precision", "highest"), ("allow_tf32", True), ("cudnn", False),
              ("allow_tf32", False), ("precision", "low"), ("precision", "high"), ("cudnn", True),
              ("precision", "highest"), ("allow_tf32", True), ("allow_tf32", False)]

TF32_PROGRAM = """
import json, sys, warnings
import {library} as library
seen = []
for kind, value in json.loads(sys.argv[1]):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if kind == "precision":
            library.set_float32_matmul_precision(value)
        elif kind == "allow_tf32":
            library.backends.cuda.matmul.allow_tf32 = value
        else:
            library.backends.cudnn.allow_tf32 = value
    seen.append([library.get_float32_matmul_precision(), library.backends.cuda.matmul.allow_tf32,
                 library.backends.cudnn.allow_tf32, [w.category.__name__ for w in caught]])
print(json.dumps(seen))
"""


def test_tf32_switches_are_one_switch_as_torch():
    """set_float32_matmul_precision and backends.cuda.matmul.allow_tf32 are one switch; cudnn.allow_tf32 is
    another. Each library runs the same steps in a fresh process (torch's switches are process-wide, and some
    orders of its old and new APIs make torch 2.13 refuse to answer: these steps avoid them)."""
    seen = {}
    for library in ("torch", "tinygrad_tx"):
        result = subprocess.run([sys.executable, "-c", TF32_PROGRAM.format(library=library), json.dumps(TF32_STEPS)],
                                capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        seen[library] = json.loads(result.stdout)
    for step, ours_seen, torch_seen in zip(TF32_STEPS, seen["tinygrad_tx"], seen["torch"]):
        assert ours_seen == torch_seen, step


def test_set_tf32_is_the_same_switch(keep_switches):
    tg.set_float32_matmul_precision("highest")
    assert not tg.cuda.tf32_enabled()
    tg.cuda.set_tf32(True)
    assert tg.get_float32_matmul_precision() == "high" and tg.backends.cuda.matmul.allow_tf32
    tg.cuda.set_tf32(False)
    assert tg.get_float32_matmul_precision() == "highest" and not tg.cuda.tf32_enabled()


def test_backend_switches_are_settable(keep_switches):
    for library in (torch, tg):
        library.backends.cudnn.benchmark = True
        library.backends.cudnn.deterministic = True
        assert library.backends.cudnn.benchmark and library.backends.cudnn.deterministic
        with pytest.raises(AttributeError):
            library.backends.cuda.matmul.allow_tf23 = True  # a misspelled switch is an error, not a new attribute


# --- compile --------------------------------------------------------------------------------------------------------
def test_compile_returns_the_model_and_warns_once(monkeypatch):
    monkeypatch.setattr(tg, "_compile_warned", False)
    model = tg.nn.Linear(2, 2)
    with pytest.warns(UserWarning, match="no compiler.*eagerly"):
        assert tg.compile(model) is model
    _, caught = recorded_warnings(lambda: tg.compile(model, mode="max-autotune", fullgraph=True))
    assert caught == []

    def double(x):
        return x * 2
    assert tg.compile(double) is double and tg.compile(mode="reduce-overhead")(double) is double
    assert tg.compile(double)(tg.ones(2)).tolist() == [2.0, 2.0]


def test_compile_disabled_does_not_warn(monkeypatch):
    monkeypatch.setattr(tg, "_compile_warned", False)
    model = tg.nn.Linear(2, 2)
    _, caught = recorded_warnings(lambda: tg.compile(model, disable=True))
    assert caught == [] and not tg._compile_warned


# --- inference_mode ---------------------------------------------------------------------------------------------------
def _inference_state(library, make_region):
    x = library.ones(2, requires_grad=True)
    with make_region(library):
        inside = (library.is_grad_enabled(), library.is_inference_mode_enabled(), (x * 2).requires_grad)
    return inside, (library.is_grad_enabled(), library.is_inference_mode_enabled())


@pytest.mark.parametrize("make_region", [lambda lib: lib.inference_mode(), lambda lib: lib.inference_mode(True),
                                         lambda lib: lib.inference_mode(False)], ids=["()", "(True)", "(False)"])
def test_inference_mode_as_torch(make_region):
    assert _inference_state(tg, make_region) == _inference_state(torch, make_region)


def test_inference_mode_nests_and_decorates():
    seen = {}
    for library in (torch, tg):
        @library.inference_mode
        def bare(x):
            return (x * 2).requires_grad, library.is_inference_mode_enabled()

        @library.inference_mode()
        def called(x):
            return (x * 2).requires_grad

        x = library.ones(1, requires_grad=True)
        with library.inference_mode():
            with library.inference_mode(False):
                nested = library.is_grad_enabled()
            after = library.is_inference_mode_enabled()
        with library.no_grad():
            under_no_grad = library.is_inference_mode_enabled()
        try:
            with library.inference_mode():
                raise KeyError("inside")
        except KeyError:
            pass
        seen[library.__name__] = (bare(x), called(x), nested, after, under_no_grad, library.is_grad_enabled(),
                                  library.is_inference_mode_enabled())
    assert seen["tinygrad_tx"] == seen["torch"]


def test_inference_mode_false_turns_grad_on_as_torch():
    seen = []
    for library in (torch, tg):
        with library.no_grad():
            with library.inference_mode(False):
                seen.append((library.is_grad_enabled(), library.is_inference_mode_enabled()))
    assert seen[0] == seen[1]
