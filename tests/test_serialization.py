"""safetensors files and checkpoint directories: round trips, parity with the safetensors package,
hostile headers, fuzzed files, the memory loading takes, and checkpoints that survive a save killed
at any moment."""
import importlib.util
import json
import os
import random
import shutil
import struct

import numpy as np
import pytest

import tinygrad_tx as tg
from tinygrad_tx import dtype as dtypes
from tinygrad_tx.checkpoint import load_checkpoint, save_checkpoint
from tinygrad_tx import serialization
from tinygrad_tx.serialization import load_safetensors, save_safetensors

safetensors_numpy = pytest.importorskip("safetensors.numpy")
LOAD_MEMORY = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "load_memory.py")


def sample_arrays():
    rng = np.random.default_rng(0)
    return {"weight": rng.standard_normal((3, 4)).astype(np.float32),
            "half": rng.standard_normal(5).astype(np.float16),
            "double": rng.standard_normal((2, 1, 2)),
            "index": rng.integers(-9, 9, (4,)).astype(np.int32),
            "count": np.array(7, dtype=np.int64),  # a 0-d tensor
            "mask": np.array([True, False, True]),
            "empty": np.zeros((0, 3), dtype=np.float32)}


def assert_same_arrays(tensors, arrays):
    assert set(tensors) == set(arrays)
    for name, array in arrays.items():
        loaded = tensors[name].numpy()
        assert loaded.dtype == array.dtype and loaded.shape == array.shape, name
        np.testing.assert_array_equal(loaded, array)


# --- round trips and parity with the safetensors package ----------------------------------------------------------
def test_round_trip_keeps_every_dtype_shape_and_value(tmp_path):
    arrays = sample_arrays()
    path = str(tmp_path / "t.safetensors")
    save_safetensors({name: tg.Tensor(array) for name, array in arrays.items()}, path, metadata={"format": "pt"})
    assert_same_arrays(load_safetensors(path), arrays)
    assert os.listdir(tmp_path) == ["t.safetensors"]  # the temporary file is gone


def test_loaded_tensors_are_writable_and_independent_of_the_file(tmp_path):
    path = str(tmp_path / "t.safetensors")
    save_safetensors({"w": tg.ones(4)}, path)
    weights = load_safetensors(path)
    weights["w"].array += 1  # parameters are trained in place
    os.remove(path)  # the file is not held open
    assert weights["w"].tolist() == [2.0] * 4


def test_files_from_the_safetensors_package_load_identically(tmp_path):
    arrays = sample_arrays()
    path = str(tmp_path / "theirs.safetensors")
    safetensors_numpy.save_file(arrays, path, metadata={"format": "np"})
    assert_same_arrays(load_safetensors(path), arrays)


def test_our_files_load_in_the_safetensors_package(tmp_path):
    arrays = sample_arrays()
    path = str(tmp_path / "ours.safetensors")
    save_safetensors({name: tg.Tensor(array) for name, array in arrays.items()}, path, metadata={"format": "pt"})
    theirs = safetensors_numpy.load_file(path)
    assert set(theirs) == set(arrays)
    for name, array in arrays.items():
        assert theirs[name].dtype == array.dtype
        np.testing.assert_array_equal(theirs[name], array)


def _torch_bf16():
    torch = pytest.importorskip("torch")
    special = torch.tensor([0.0, -0.0, 1.0, -2.5, 3.140625, 1e-40, 3e38, float("inf"), float("-inf"), float("nan")])
    noise = torch.randn(62, generator=torch.Generator().manual_seed(0)) * 100
    return torch.cat([special, noise]).to(torch.bfloat16).reshape(8, 9)


def test_bf16_loads_as_bfloat16_bit_for_bit(tmp_path):
    pytest.importorskip("ml_dtypes")
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file
    bf16 = _torch_bf16()
    path = str(tmp_path / "bf16.safetensors")
    save_file({"x": bf16}, path)
    loaded = load_safetensors(path)["x"]
    assert loaded.dtype is tg.bfloat16 and loaded.shape == (8, 9)
    np.testing.assert_array_equal(loaded.numpy().view(np.uint16), bf16.view(torch.int16).numpy().view(np.uint16))


def test_bf16_loads_as_the_exact_float32_values_torch_gives_without_ml_dtypes(tmp_path, monkeypatch):
    from safetensors.torch import save_file
    bf16 = _torch_bf16()
    path = str(tmp_path / "bf16.safetensors")
    save_file({"x": bf16}, path)
    monkeypatch.setattr(dtypes, "ml_dtypes", None)
    loaded = load_safetensors(path)["x"]
    assert loaded.dtype is tg.float32 and loaded.shape == (8, 9)
    expected = bf16.float().numpy()
    np.testing.assert_array_equal(loaded.numpy().view(np.uint32), expected.view(np.uint32))  # bit for bit: -0.0, NaN


def test_bfloat16_round_trips_through_safetensors_torch(tmp_path):
    pytest.importorskip("ml_dtypes")
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file
    bf16 = _torch_bf16()
    ours = {"x": tg.tensor(bf16.float().numpy()).bfloat16(), "t": tg.tensor(bf16.float().numpy()).bfloat16().T,
            "scalar": tg.tensor(1.5, dtype=tg.bfloat16), "empty": tg.zeros(0, 3, dtype=tg.bfloat16)}
    save_safetensors(ours, str(tmp_path / "ours.safetensors"))  # a transposed view is written in C order
    theirs = load_file(str(tmp_path / "ours.safetensors"))
    assert all(t.dtype == torch.bfloat16 for t in theirs.values())
    for name, tensor in ours.items():
        np.testing.assert_array_equal(theirs[name].view(torch.int16).numpy().view(np.uint16),
                                      tensor.numpy().view(np.uint16), err_msg=name)
    save_file(theirs, str(tmp_path / "theirs.safetensors"))
    back = load_safetensors(str(tmp_path / "theirs.safetensors"))
    assert all(back[name].dtype is tg.bfloat16 and back[name].numpy().tobytes() == ours[name].numpy().tobytes()
               for name in ours)


def test_tensors_read_in_many_chunks_load_exactly(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file
    monkeypatch.setattr(serialization, "_CHUNK_BYTES", 24)  # every tensor spans chunks, most end inside one
    arrays = {**sample_arrays(), "long": np.arange(101, dtype=np.float64)}
    path = str(tmp_path / "t.safetensors")
    save_safetensors({name: tg.Tensor(array) for name, array in arrays.items()}, path)
    assert_same_arrays(load_safetensors(path), arrays)
    with open(path, "rb") as f:  # the in-order reader that tinygrad_tx.load uses for its archives
        assert_same_arrays(serialization.read_safetensors(f, os.path.getsize(path), path), arrays)
    bf16 = torch.randn(37, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    save_file({"x": bf16}, path)
    np.testing.assert_array_equal(load_safetensors(path)["x"].numpy(), bf16.float().numpy())


@pytest.fixture(scope="module")
def load_memory(tmp_path_factory):
    """benchmarks/load_memory.py as a module, and its test files with one 100 MiB tensor."""
    spec = importlib.util.spec_from_file_location("load_memory", LOAD_MEMORY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.write_test_files(str(tmp_path_factory.mktemp("load_memory")), 100, 20)


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="measures memory through Linux's /proc")
@pytest.mark.parametrize("loader", ["ours", "ours, tinygrad_tx.load"])
def test_loading_holds_one_copy_of_the_weights(load_memory, loader):
    module, paths = load_memory
    ratio = module.measure(loader, paths[module.LOADERS[loader][1]])
    assert ratio < 1.5, f"loading peaked at {ratio:.2f}x the file's size: the weights were held twice"


# --- hostile headers: each is a ValueError naming the file, the tensor and the problem -----------------------------
def write_raw(path, header, data, length=None):
    encoded = json.dumps(header).encode() if isinstance(header, dict) else header
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded) if length is None else length) + encoded + data)
    return str(path)


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


HOSTILE = {  # case -> (header, data bytes, words the message must contain)
    "offsets past the data": ({"w": entry(offsets=(0, 16))}, bytes(8), ["'w'", "past the end"]),
    "begin after end": ({"w": entry(offsets=(8, 0))}, bytes(8), ["'w'", "begin <= end"]),
    "negative begin": ({"w": entry(offsets=(-8, 0))}, bytes(8), ["'w'", "0 <= begin"]),
    "negative shape": ({"w": entry(shape=(-2,))}, bytes(8), ["'w'", "non-negative"]),
    "shape and bytes disagree": ({"w": entry(shape=(3,))}, bytes(8), ["'w'", "need 12"]),
    "overlapping ranges": ({"a": entry(offsets=(0, 8)), "b": entry(offsets=(4, 12))}, bytes(12),
                           ["'b'", "overlaps"]),
    "a gap": ({"a": entry(offsets=(0, 8)), "b": entry(offsets=(12, 20))}, bytes(20), ["'b'", "gap"]),
    "bytes after the last tensor": ({"a": entry()}, bytes(12), ["4 bytes after its last tensor"]),
    "missing key": ({"w": {"dtype": "F32", "shape": [2]}}, bytes(8), ["'w'", "missing data_offsets"]),
    "unknown key": ({"w": {**entry(), "scale": 2}}, bytes(8), ["'w'", "unknown keys scale"]),
    "unknown dtype": ({"w": entry(dtype="F8_E4M3")}, bytes(8), ["'w'", "unknown dtype 'F8_E4M3'"]),
    "dtype not a string": ({"w": entry(dtype=["F32"])}, bytes(8), ["'w'", "unknown dtype"]),
    "boolean offset": ({"w": entry(offsets=(False, 8))}, bytes(8), ["'w'", "pair of integers"]),
    "float shape": ({"w": entry(shape=(2.0,))}, bytes(8), ["'w'", "non-negative integers"]),
    "entry not an object": ({"w": [0, 8]}, bytes(8), ["'w'", "not a JSON object"]),
    "bad metadata": ({"__metadata__": {"format": 1}}, b"", ["__metadata__"]),
    "garbage JSON": (b'{"w": {"dtype": "F32",, ', bytes(8), ["not valid JSON"]),
    "not UTF-8": (b'{"\xff": 1}', b"", ["not valid JSON"]),
    "JSON nested too deep": (b"[" * 100_000, b"", ["not valid JSON"]),
    "duplicate name": (b'{"w": 1, "w": 2}', b"", ["not valid JSON", "'w'"]),
    "header not an object": (b"[1, 2]", b"", ["a JSON list"]),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_header_is_a_value_error_naming_file_tensor_and_problem(tmp_path, case):
    header, data, words = HOSTILE[case]
    path = write_raw(tmp_path / "hostile.safetensors", header, data)
    with pytest.raises(ValueError) as error:
        load_safetensors(path)
    for expected in [path] + words:
        assert expected in str(error.value), (case, str(error.value))


def test_header_length_beyond_the_file_is_a_value_error(tmp_path):
    path = write_raw(tmp_path / "long.safetensors", {"w": entry()}, bytes(8), length=10_000)
    with pytest.raises(ValueError, match="10000-byte header.*truncated"):
        load_safetensors(path)
    path = write_raw(tmp_path / "huge.safetensors", {"w": entry()}, bytes(8), length=2 ** 63)
    with pytest.raises(ValueError, match="longer than any real one"):
        load_safetensors(path)


def test_truncated_files_are_value_errors(tmp_path):
    path = str(tmp_path / "t.safetensors")
    save_safetensors({"a": tg.ones(3), "b": tg.zeros(5)}, path)
    raw = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(raw[:-4])  # the data is cut short: the last tensor's bytes run past the end
    with pytest.raises(ValueError, match=r"tensor 'b' in .*t\.safetensors has data_offsets .* past the end"):
        load_safetensors(path)
    for size in (0, 5):
        with open(path, "wb") as f:
            f.write(raw[:size])
        with pytest.raises(ValueError, match="too short"):
            load_safetensors(path)


def test_fuzzed_files_load_correctly_or_raise_value_error(tmp_path):
    arrays = sample_arrays()
    path = str(tmp_path / "valid.safetensors")
    save_safetensors({name: tg.Tensor(array) for name, array in arrays.items()}, path)
    valid = open(path, "rb").read()
    header_end = 8 + struct.unpack("<Q", valid[:8])[0]
    rng = random.Random(1234)
    fuzzed = str(tmp_path / "fuzzed.safetensors")
    outcomes = {"loaded": 0, "ValueError": 0}
    for case in range(400):
        raw = bytearray(valid)
        if case % 4 == 0:
            raw = raw[:rng.randrange(len(raw))]  # truncated anywhere
        else:  # change bytes, mostly in the header, mostly to JSON's characters so that it often still parses
            for _ in range(rng.randint(1, 3)):
                where = rng.randrange(header_end) if rng.random() < 0.9 else rng.randrange(len(raw))
                raw[where] = rng.choice(b'0123456789-[]{},:". ') if rng.random() < 0.7 else rng.randrange(256)
        with open(fuzzed, "wb") as f:
            f.write(raw)
        try:
            tensors = load_safetensors(fuzzed)
        except ValueError:
            outcomes["ValueError"] += 1
            continue
        outcomes["loaded"] += 1
        if bytes(raw[:header_end]) == valid[:header_end]:  # the header survived: only data bytes changed
            assert {name: t.shape for name, t in tensors.items()} == {n: a.shape for n, a in arrays.items()}
    assert outcomes["loaded"] > 0 and outcomes["ValueError"] > 0, outcomes


# --- checkpoint directories ---------------------------------------------------------------------------------------
class TinyModel(tg.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.weight = tg.nn.Parameter(tg.full((2, 3), float(value)))


def save_tiny(directory, value):
    model = TinyModel(value)
    save_checkpoint(str(directory), model, tg.optim.SGD(model.parameters(), lr=0.1), {"value": value})


def loaded_value(directory):
    weights, state = load_checkpoint(str(directory))
    assert np.all(weights["weight"].numpy() == state["value"])  # weights and state from the same checkpoint
    return state["value"]


def test_save_then_load_leaves_only_the_checkpoint(tmp_path):
    save_tiny(tmp_path, 1)
    save_tiny(tmp_path, 2)
    assert loaded_value(tmp_path) == 2
    assert os.listdir(tmp_path) == ["ckpt"]
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["model.safetensors", "optimizer.safetensors", "state.json"]


def test_no_checkpoint_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(str(tmp_path))


def interrupt_on(monkeypatch, should_fail):
    """Make os.replace raise (as a kill would stop the process) on the call should_fail picks."""
    real_replace = os.replace

    def replace(source, destination):
        if should_fail(os.fspath(source), os.fspath(destination)):
            raise KeyboardInterrupt
        real_replace(source, destination)
    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("moment, expected", [
    ("writing model.safetensors", 1), ("writing state.json", 1),
    ("renaming ckpt to ckpt.old", 1), ("renaming ckpt.tmp to ckpt", 2)])
def test_a_save_killed_at_any_moment_leaves_a_complete_checkpoint(tmp_path, monkeypatch, moment, expected):
    save_tiny(tmp_path, 1)
    fails = {"writing model.safetensors": lambda s, d: d.endswith("model.safetensors"),
             "writing state.json": lambda s, d: d.endswith("state.json"),
             "renaming ckpt to ckpt.old": lambda s, d: d.endswith("ckpt.old"),
             "renaming ckpt.tmp to ckpt": lambda s, d: s.endswith("ckpt.tmp")}[moment]
    with monkeypatch.context() as patch:
        interrupt_on(patch, fails)
        with pytest.raises(KeyboardInterrupt):
            save_tiny(tmp_path, 2)
    assert loaded_value(tmp_path) == expected
    save_tiny(tmp_path, 3)  # the next save cleans up what the killed one left
    assert loaded_value(tmp_path) == 3
    assert os.listdir(tmp_path) == ["ckpt"]


def test_a_save_after_a_kill_between_the_renames_never_drops_the_last_complete_checkpoint(tmp_path, monkeypatch):
    save_tiny(tmp_path, 1)
    with monkeypatch.context() as patch:
        interrupt_on(patch, lambda s, d: s.endswith("ckpt.tmp"))
        with pytest.raises(KeyboardInterrupt):
            save_tiny(tmp_path, 2)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.old", "ckpt.tmp"]
    with monkeypatch.context() as patch:  # the next save is killed too, while it writes its tensors
        interrupt_on(patch, lambda s, d: d.endswith("optimizer.safetensors"))
        with pytest.raises(KeyboardInterrupt):
            save_tiny(tmp_path, 3)
    assert loaded_value(tmp_path) == 2  # it had first put checkpoint 2 back in place


@pytest.mark.parametrize("layout, expected", [
    ({"ckpt": 1, "ckpt.tmp": "partial"}, 1),  # killed while writing the new one
    ({"ckpt": 1, "ckpt.tmp": 2}, 1),  # killed after writing it, before swapping: the previous one is fine
    ({"ckpt.old": 1, "ckpt.tmp": 2}, 2),  # killed between the two renames: the new one is complete
    ({"ckpt": 2, "ckpt.old": 1}, 2),  # killed before removing the old one
    ({"ckpt": 2, "ckpt.old": "partial"}, 2),  # killed while removing it
    ({"ckpt.old": 1, "ckpt.tmp": "partial"}, 1),  # not made by save_checkpoint, but still recoverable
])
def test_load_and_save_find_the_complete_checkpoint_among_leftovers(tmp_path, layout, expected):
    source = tmp_path / "source"
    for name, value in layout.items():
        save_tiny(source / str(value), 1 if value == "partial" else value)
        shutil.copytree(source / str(value) / "ckpt", tmp_path / "run" / name)
        if value == "partial":
            os.remove(tmp_path / "run" / name / "state.json")
    assert loaded_value(tmp_path / "run") == expected
    save_tiny(tmp_path / "run", 9)
    assert loaded_value(tmp_path / "run") == 9 and os.listdir(tmp_path / "run") == ["ckpt"]
