"""Devices as torch.device, moving tensors and modules between them, and pinned memory.

torch is the oracle for names, indices, printing and equality. The cross-device paths run on the
'cuda:7' stand-in (conftest's second_device: a CPU backend under a CUDA name); pinned memory on a
fake CuPy whose pinned allocator hands out NumPy arrays, as CuPy's does.
"""
import copy
import pickle
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
import tinygrad_tx.utils.data as tg_data
from tinygrad_tx.backend import devices

SPELLINGS = [("cuda:0",), ("cuda", 0), ("cuda",), ("cuda", 3), ("cuda:12",), ("cpu",), ("cpu:0",), ("cpu", 1)]


# --- the device object -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", SPELLINGS)
def test_device_names_as_torch(args):
    ours, theirs = tg.device(*args), torch.device(*args)
    assert (ours.type, ours.index) == (theirs.type, theirs.index)
    assert str(ours) == str(theirs) and f"{ours}" == f"{theirs}"
    assert repr(ours) == repr(theirs)


def test_device_keywords_and_copies():
    assert repr(tg.device(type="cuda", index=2)) == repr(torch.device(type="cuda", index=2))
    named = tg.device("cuda:1")
    assert tg.device(named) is named
    assert tg.device(torch.device("cuda:1")) == named  # another library's device, by its name
    assert pickle.loads(pickle.dumps(named)) == named and type(pickle.loads(pickle.dumps(named))) is tg.device
    assert copy.deepcopy(named) == named


def test_device_equality_and_hashing():
    pairs = [("cuda", "cuda:0"), ("cuda:0", "cuda:0"), ("cuda:0", "cuda:1"), ("cpu", "cpu"), ("cpu", "cpu:0"),
             ("cpu", "cuda")]
    for a, b in pairs:
        assert (tg.device(a) == tg.device(b)) == (torch.device(a) == torch.device(b)), (a, b)
        assert (tg.device(a) != tg.device(b)) == (torch.device(a) != torch.device(b)), (a, b)
    assert len({tg.device("cuda:0"), tg.device("cuda", 0), tg.device("cuda"), tg.device("cpu")}) == \
        len({torch.device("cuda:0"), torch.device("cuda", 0), torch.device("cuda"), torch.device("cpu")}) == 3
    # unlike torch's, a device is also its name: it equals the string and keys a dict as it
    assert tg.device("cpu") == "cpu" and "cpu" == tg.device("cpu") and tg.device("cuda:1") == "cuda:1"
    assert tg.device("cuda") != "cuda:0"
    assert {"cpu": 1}[tg.device("cpu")] == 1 and {tg.device("cuda:2"): 2}["cuda:2"] == 2


@pytest.mark.parametrize("args", [("tpu",), ("cuda:x",), ("cuda:-1",), ("cuda:01",), (" cpu",), ("CUDA",),
                                  ("cuda", -1), ("cuda:0", 1)])
def test_bad_device_names_raise(args):
    with pytest.raises(RuntimeError):
        torch.device(*args)
    with pytest.raises(ValueError):  # ours: ValueError, as every bad device name here
        tg.device(*args)


def test_an_integer_device_needs_a_gpu():
    if torch.cuda.is_available() or tg.cuda.is_available():
        pytest.skip("a GPU is here: device(0) is cuda:0")
    with pytest.raises(RuntimeError) as theirs:
        torch.device(0)
    with pytest.raises(RuntimeError) as ours:
        tg.device(0)
    assert str(ours.value) == str(theirs.value)


# --- tensors on devices -----------------------------------------------------------------------------------------
def test_a_tensors_device_is_a_device_object():
    t, ref = tg.ones(2), torch.ones(2)
    assert type(t.device) is tg.device
    assert repr(t.device) == repr(ref.device) and str(t.device) == str(ref.device)
    assert t.device == ref.device.type == "cpu" and t.device.index is ref.device.index is None
    assert t.get_device() == ref.get_device() == -1
    assert tg.zeros(1, device="cpu:0").device == "cpu" and repr(tg.zeros(1, device="cpu:0").device) == \
        repr(torch.zeros(1, device="cpu:0").device)
    assert tg.tensor([1.0]).detach().device == tg.from_numpy(np.ones(2)).device == "cpu"


def test_to_on_one_device_as_torch():
    values = np.arange(4.0, dtype=np.float32)
    ours, theirs = tg.tensor(values), torch.tensor(values)
    calls = [  # (our arguments, torch's arguments, keyword arguments for both)
        ((tg.device("cpu"),), (torch.device("cpu"),), {}), (("cpu",), ("cpu",), {"non_blocking": True}),
        ((tg.float32, True), (torch.float32, True), {}), ((), (), {"device": "cpu"}), ((ours,), (theirs,), {})]
    for our_args, torch_args, kwargs in calls:
        assert (ours.to(*our_args, **kwargs) is ours) == (theirs.to(*torch_args, **kwargs) is theirs), torch_args
    assert ours.to("cpu", tg.float64).dtype is tg.float64 and theirs.to("cpu", torch.float64).dtype == torch.float64
    assert ours.to(tg.zeros(1, dtype=tg.int64)).dtype is tg.int64
    assert ours.to(device="cpu", dtype=tg.float16).dtype is tg.float16
    copied, torch_copied = ours.to("cpu", copy=True), theirs.to("cpu", copy=True)
    assert (copied is ours) == (torch_copied is theirs) and copied.tolist() == torch_copied.tolist()
    with pytest.raises(TypeError):
        theirs.to("cpu", nonblocking=True)
    with pytest.raises(TypeError):
        ours.to("cpu", nonblocking=True)


def test_copy_to_keeps_the_graph():
    ours, theirs = tg.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0], requires_grad=True)
    (ours.to("cpu", copy=True) * 3).sum().backward()
    (theirs.to("cpu", copy=True) * 3).sum().backward()
    assert ours.grad.tolist() == theirs.grad.tolist()


def test_to_another_device_by_object_index_and_tensor(second_device, monkeypatch):
    target = tg.device(second_device)  # cuda:7
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 8)  # so that an index names a GPU: to(7) is cuda:7
    for moved in [x.to(target), x.to("cuda:7", non_blocking=True), x.to(7), x.cuda(7), x.cuda(target),
                  x.cuda("cuda:7"), x.to(tg.zeros(1, device=target)), x.to(target, tg.float64)]:
        assert moved.device == target and type(moved.device) is tg.device and moved.get_device() == 7
        assert repr(moved.device) == repr(torch.device("cuda", 7))
    assert x.to(target, tg.float64).dtype is tg.float64
    (x.to(target) * x.to(target)).sum().backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [2.0, 4.0]
    with pytest.raises(ValueError, match="CUDA device"):
        x.cuda("cpu")


def test_creation_takes_device_objects(second_device):
    target = tg.device("cuda", 7)
    made = [tg.zeros(2, device=target), tg.ones(2, device=target), tg.empty(2, device=target),
            tg.full((2,), 3.0, device=target), tg.randn(2, device=target), tg.rand(2, device=target),
            tg.arange(3, device=target), tg.linspace(0, 1, 3, device=target), tg.eye(2, device=target),
            tg.randint(0, 5, (2,), device=target), tg.randperm(3, device=target), tg.tensor([1.0], device=target),
            tg.as_tensor(np.ones(2), device=target), tg.zeros_like(tg.ones(2), device=target)]
    assert all(t.device == target and type(t.device) is tg.device for t in made)
    assert tg.ones(2, device=tg.device("cpu")).device == "cpu"


def test_module_to_a_device_object(second_device):
    model = tg.nn.Linear(3, 2)
    model.register_buffer("steps", tg.zeros(1, dtype=tg.int64))
    model(tg.ones(1, 3)).sum().backward()
    assert model.to(tg.device("cuda", 7)) is model
    assert all(t.device == "cuda:7" for t in [*model.parameters(), model.steps, model.weight.grad])
    model.to(tg.device("cpu"), tg.float64)
    assert all(p.device == "cpu" and p.dtype is tg.float64 for p in model.parameters())
    assert model.steps.dtype is tg.int64  # integer buffers keep their dtype, as in torch
    model.to(tg.ones(1, device="cuda:7", dtype=tg.float32), non_blocking=True)
    assert all(p.device == "cuda:7" and p.dtype is tg.float32 for p in model.parameters())
    assert model.cuda(7).weight.device == "cuda:7" and model.cpu().weight.device == "cpu"


# --- pinned memory -------------------------------------------------------------------------------------------------
def test_pin_memory_without_a_gpu_raises_as_torch():
    if torch.cuda.is_available() or tg.cuda.is_available():
        pytest.skip("a GPU is here: pinning works")
    with pytest.raises(RuntimeError) as theirs:
        torch.ones(2).pin_memory()
    with pytest.raises(RuntimeError) as ours:
        tg.ones(2).pin_memory()
    assert str(ours.value) == str(theirs.value)
    assert tg.ones(2).is_pinned() is torch.ones(2).is_pinned() is False


class _PinnedBlock(bytearray):
    """Stands in for CuPy's PinnedMemoryPointer: a block of memory NumPy arrays can live on."""


@pytest.fixture
def fake_cupy(monkeypatch):
    """CuPy as pinning sees it: one GPU, and cupyx.empty_pinned handing out NumPy arrays over pinned blocks."""
    def empty_pinned(shape, dtype=float):
        dtype = np.dtype(dtype)
        block = _PinnedBlock(max(1, int(np.prod(shape)) * dtype.itemsize))
        return np.ndarray(shape, dtype=dtype, buffer=block)
    runtime = SimpleNamespace(getDeviceCount=lambda: 1)
    monkeypatch.setitem(sys.modules, "cupy", SimpleNamespace(cuda=SimpleNamespace(runtime=runtime,
                                                                                  PinnedMemoryPointer=_PinnedBlock)))
    monkeypatch.setitem(sys.modules, "cupyx", SimpleNamespace(empty_pinned=empty_pinned))


def test_pin_memory_copies_into_pinned_memory(fake_cupy):
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    pinned = x.pin_memory()
    assert pinned.is_pinned() and not x.is_pinned()
    assert pinned.device == "cpu" and pinned.tolist() == x.tolist() and pinned.dtype is x.dtype
    assert pinned.pin_memory() is pinned  # already pinned: itself, as torch
    assert pinned[1:].is_pinned() and pinned.t().is_pinned()  # views of pinned memory are pinned
    assert not (pinned * 2).is_pinned()
    (pinned * tg.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()  # the gradient passes through, as torch's
    assert x.grad.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert tg.zeros(0, 3, dtype=tg.int64).pin_memory().is_pinned()


def test_pin_memory_refuses_a_tensor_off_the_cpu(fake_cupy, second_device):
    with pytest.raises(RuntimeError, match="only CPU tensors"):
        tg.ones(2, device=second_device).pin_memory()
    assert not tg.ones(2, device=second_device).is_pinned()


def test_the_data_loader_pins_through_tensor_pin_memory(fake_cupy):
    data = [(np.full(3, i, dtype=np.float32), i) for i in range(4)]
    features, labels = next(iter(tg_data.DataLoader(data, batch_size=4, pin_memory=True)))
    assert features.is_pinned() and labels.is_pinned() and labels.tolist() == [0, 1, 2, 3]
