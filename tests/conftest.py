"""Shared test helpers. PyTorch is the oracle: the same program runs on tinygrad_tx and torch
tensors built from the same NumPy arrays, and forward values and input gradients must agree."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
import tinygrad_tx.nn.functional as tgF
from tinygrad_tx.backend import get_backend

torch.set_default_dtype(torch.float32)


def pytest_addoption(parser):
    parser.addoption("--long", "--runslow", action="store_true", default=False,
                     help="run the long versions of the randomized tests (e.g. 50,000 random programs)")


# the two libraries a program is written against: lib.t is the tensor module, lib.F the functional one
TG = SimpleNamespace(name="tinygrad_tx", t=tg, F=tgF)
TORCH = SimpleNamespace(name="torch", t=torch, F=torch.nn.functional)

TOLERANCES = {  # (rtol, atol)
    np.float64: (1e-7, 1e-9),
    np.float32: (1e-5, 1e-6),
}


def _cuda_available():
    """A CUDA backend that can really allocate and copy back (CuPy installed and a GPU present)."""
    try:
        get_backend("cuda")
        return tg.ones(2, device="cuda").cpu().tolist() == [1.0, 1.0]
    except Exception:
        return False


# every device the engine can run on here; a test taking a `device` argument runs once per entry
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not _cuda_available(), reason="no CUDA backend here (CuPy missing or no GPU)"))]


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture
def second_device(monkeypatch):
    """A second CPU-backed device registered as 'cuda:7': exercises the cross-device paths without a GPU."""
    from tinygrad_tx import backend
    from tinygrad_tx.backend.numpy_backend import NumpyBackend
    monkeypatch.setitem(backend._backends, "cuda:7", NumpyBackend())
    return "cuda:7"


def rng(seed=0):
    return np.random.default_rng(seed)


def randn(*shape, dtype=np.float64, seed=0):
    return rng(seed).standard_normal(shape).astype(dtype)


def to_numpy(x):
    """A tinygrad_tx or torch tensor (or a number) as a NumPy array."""
    if isinstance(x, tg.Tensor):
        return np.asarray(x.detach().cpu().numpy())
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy(force=True)  # force: torch's lazily-zero gradients convert too
    return np.asarray(x)


def assert_close(actual, expected, rtol=None, atol=None, what="value"):
    actual, expected = to_numpy(actual), to_numpy(expected)
    if rtol is None:
        rtol, atol = TOLERANCES.get(expected.dtype.type, (1e-5, 1e-6))
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    if expected.dtype == np.bool_ or expected.dtype.kind in "iu":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
    else:
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what, equal_nan=True)


def _flatten(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def run_both(fn, *arrays, device="cpu", grad=True, requires_grad=None):
    """Run fn(lib, *tensors) on tinygrad_tx and on torch, each time from the same arrays.

    Floating arrays become leaves that require grad (unless requires_grad says otherwise, one flag per
    array); other arrays (indices, masks) are plain. Returns ((tg outputs, tg inputs), (torch outputs,
    torch inputs)), with backward already run on both when grad is true: the loss is the sum of each
    floating output times fixed random weights, so every element of the Jacobian takes part.
    """
    if requires_grad is None:
        requires_grad = [np.asarray(a).dtype.kind == "f" and grad for a in arrays]
    results = []
    for lib in (TG, TORCH):
        inputs = []
        for array, needs_grad in zip(arrays, requires_grad):
            array = np.asarray(array)
            if lib is TG:
                t = tg.tensor(array.copy(), device=device, requires_grad=needs_grad)
            else:
                t = torch.tensor(array.copy(), requires_grad=needs_grad)
            inputs.append(t)
        outputs = _flatten(fn(lib, *inputs))
        if grad:
            loss = None
            for i, out in enumerate(outputs):
                if not (out.dtype.is_floating_point if lib is TORCH else out.dtype.is_floating):
                    continue
                if not out.requires_grad:
                    continue
                weights = rng(100 + i).standard_normal(tuple(out.shape))
                w = (tg.tensor(weights, device=device) if lib is TG else torch.tensor(weights)).to(out.dtype)
                term = (out * w).sum()
                loss = term if loss is None else loss + term
            if loss is not None:
                loss.backward()
        results.append((outputs, inputs))
    return results


def compare(fn, *arrays, device="cpu", grad=True, rtol=None, atol=None, requires_grad=None):
    """Assert fn gives the same outputs and input gradients on tinygrad_tx as on torch."""
    (tg_out, tg_in), (torch_out, torch_in) = run_both(fn, *arrays, device=device, grad=grad,
                                                      requires_grad=requires_grad)
    assert len(tg_out) == len(torch_out), f"{len(tg_out)} outputs, torch gives {len(torch_out)}"
    for i, (ours, theirs) in enumerate(zip(tg_out, torch_out)):
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1], \
            f"output {i}: dtype {ours.dtype} != torch's {theirs.dtype}"
        assert_close(ours, theirs, rtol, atol, what=f"output {i}")
    if grad:
        for i, (ours, theirs) in enumerate(zip(tg_in, torch_in)):
            if not theirs.requires_grad:
                continue
            if theirs.grad is None:
                assert ours.grad is None or not to_numpy(ours.grad).any(), f"input {i}: torch has no grad"
                continue
            assert ours.grad is not None, f"input {i}: no gradient, torch has one"
            assert_close(ours.grad, theirs.grad, rtol, atol, what=f"grad of input {i}")
    return tg_out, torch_out


def gradcheck(fn, *arrays, **kwargs):
    """tinygrad_tx's own numerical gradient check on float64 copies of arrays (non-float arrays pass as-is)."""
    inputs = [tg.tensor(np.asarray(a), requires_grad=np.asarray(a).dtype.kind == "f") for a in arrays]
    assert tg.autograd.gradcheck(fn, inputs, **kwargs)
