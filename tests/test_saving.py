"""save/load (a zip of JSON, safetensors and .npy; never pickle), and pickle and copy.deepcopy of Tensors and
Modules, against torch.save/torch.load and torch's pickling and deepcopy semantics."""
import copy
import dataclasses
import io
import json
import math
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from models.gpt2 import GPT2, GPT2Config
from tinygrad_tx import nn, optim
from tinygrad_tx.serialization import load_safetensors


def tiny_gpt2():
    return GPT2(GPT2Config(n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=40))


def round_trip(obj, **load_options):
    buffer = io.BytesIO()
    tg.save(obj, buffer)
    buffer.seek(0)
    return tg.load(buffer, **load_options)


def saved_bytes(obj):
    buffer = io.BytesIO()
    tg.save(obj, buffer)
    return buffer.getvalue()


def rewritten(data, member, edit):
    """The archive `data` with one member's bytes replaced by edit(bytes)."""
    source, target = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(target, "w") as archive:
        for info in source.infolist():
            contents = source.read(info)
            archive.writestr(info, edit(contents) if info.filename == member else contents)
    return target.getvalue()


def bits(tensor):
    """The tensor's exact bytes, dtype and shape: equal bits means a bitwise round trip (NaN payloads, -0.0)."""
    array = tensor.detach().cpu().numpy()
    return array.dtype, array.shape, np.ascontiguousarray(array).tobytes()


def assert_same_tree(ours, theirs):
    """ours (loaded by tinygrad_tx.load) has the structure, types and values of theirs (loaded by torch.load)."""
    if isinstance(theirs, torch.Tensor):
        assert type(ours) is (nn.Parameter if isinstance(theirs, torch.nn.Parameter) else tg.Tensor)
        assert ours.requires_grad == theirs.requires_grad and ours.is_leaf
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
        assert bits(ours) == (theirs.detach().numpy().dtype, tuple(theirs.shape), theirs.detach().numpy().tobytes())
        return
    assert type(ours) is type(theirs), (ours, theirs)
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs)
        for key in theirs:
            assert_same_tree(ours[key], theirs[key])
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs)
        for mine, other in zip(ours, theirs):
            assert_same_tree(mine, other)
    elif isinstance(theirs, (np.ndarray, np.generic)):
        assert ours.dtype == theirs.dtype and np.shape(ours) == np.shape(theirs)
        assert np.asarray(ours).tobytes() == np.asarray(theirs).tobytes()
    elif isinstance(theirs, float) and math.isnan(theirs):
        assert math.isnan(ours)
    else:
        assert ours == theirs


def mixed_object(lib, Parameter):
    """One nested object built from either library: what training scripts save, and the corners of the format."""
    values = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    return {
        "model": OrderedDict([("w", lib.tensor(values)), ("b", lib.zeros(4, dtype=lib.float64))]),
        "params": [Parameter(lib.tensor(values[0])), Parameter(lib.ones(2), requires_grad=False)],
        "ints": {0: lib.tensor([1, 2], dtype=lib.int32), 7: lib.tensor([[True, False]]), -1: "negative"},
        "mixed keys": {1: "one", "1": "string one", (2, "b"): "tuple", None: "none", 2.5: "float", True: "bool"},
        "scalars": (0, -3, 2 ** 70, 1.5, -0.0, 1e-310, float("inf"), float("-inf"), float("nan"), True, None, ""),
        "strings": ["ascii", "ünïcödé ✓", '{"type": "float"}', "\x00\ud800"],
        "nested": [[[]], {}, (), ((1,),), OrderedDict()],
        "empty": lib.zeros(0, 3), "zero-d": lib.tensor(2.5), "half": lib.tensor([1.0, -2.5, 65504.0]).half(),
        "int64": lib.tensor([-(2 ** 63), 2 ** 63 - 1]),
        "numpy": np.array([[1, 2]], dtype=np.uint16), "fortran": np.asfortranarray(np.ones((2, 3))),
        "numpy scalars": [np.float32(0.1), np.int8(-3), np.bool_(True)],
    }


# --- save and load ---------------------------------------------------------------------------------------------------
def test_nested_object_loads_back_as_torch_loads_it():
    torch_buffer = io.BytesIO()
    torch.save(mixed_object(torch, torch.nn.Parameter), torch_buffer)
    torch_buffer.seek(0)
    theirs = torch.load(torch_buffer, weights_only=False)  # NumPy arrays are outside torch's weights_only list
    ours = round_trip(mixed_object(tg, nn.Parameter))
    assert_same_tree(ours, theirs)


def test_tensor_values_round_trip_bitwise():
    special = np.array([0.0, -0.0, np.inf, -np.inf, 1e-45, np.finfo(np.float32).max], dtype=np.float32)
    nan_payload = np.array([0x7FC00001, 0xFFC12345], dtype=np.uint32).view(np.float32)  # NaNs with their own bits
    tensors = [tg.tensor(special), tg.tensor(nan_payload), tg.randn(5, 3, dtype=tg.float64),
               tg.randn(4, 2).T, tg.arange(24).reshape(2, 3, 4)[:, 1], tg.tensor(True), tg.zeros(2, 0, 3, dtype=tg.int32),
               tg.tensor(np.float16(6e-8)), tg.tensor([7], dtype=tg.int32).reshape(())]
    loaded = round_trip(tensors)
    for original, back in zip(tensors, loaded):
        assert bits(back) == bits(original)
        assert back.dtype is original.dtype and back.device == original.device


def test_requires_grad_parameters_and_non_leaves_as_torch():
    x = tg.randn(3, requires_grad=True)
    ours = round_trip({"leaf": x, "result": x * 2, "param": nn.Parameter(tg.ones(2)),
                       "frozen": nn.Parameter(tg.ones(2), requires_grad=False)})
    tx = torch.randn(3, requires_grad=True)
    buffer = io.BytesIO()
    torch.save({"leaf": tx, "result": tx * 2, "param": torch.nn.Parameter(torch.ones(2)),
                "frozen": torch.nn.Parameter(torch.ones(2), requires_grad=False)}, buffer)
    buffer.seek(0)
    theirs = torch.load(buffer)
    for key in theirs:  # a saved result loads as a leaf that requires grad, in both
        assert type(ours[key]).__name__ == type(theirs[key]).__name__
        assert (ours[key].requires_grad, ours[key].is_leaf) == (theirs[key].requires_grad, theirs[key].is_leaf)
    assert ours["result"].tolist() == (x * 2).tolist()


def test_numpy_arrays_keep_their_exact_dtype_and_layout():
    arrays = [np.array([1.5, 2.5], dtype=">f4"), np.asfortranarray(np.arange(6.0).reshape(2, 3)), np.arange(10)[::3],
              np.array(["a", "bc"]), np.zeros((0, 2), dtype=np.complex64), np.array(3, dtype=np.uint64)]
    for original, back in zip(arrays, round_trip(arrays)):
        assert back.dtype == original.dtype and back.shape == original.shape and back.tobytes() == original.tobytes()
        assert back.flags.writeable
    assert round_trip(arrays[1]).flags.f_contiguous  # NumPy's format keeps Fortran order; a strided view loads compact


def test_one_object_reached_twice_loads_as_one_object():
    t, a = tg.ones(3), np.zeros(2)
    loaded = round_trip({"first": t, "again": t, "arrays": [a, a], "param": [nn.Parameter(t)]})
    assert loaded["first"] is loaded["again"] and loaded["arrays"][0] is loaded["arrays"][1]
    # a list reached twice loads as two equal lists (pickle would keep it one object)
    shared = [1, 2]
    twice = round_trip([shared, shared])
    assert twice == [[1, 2], [1, 2]] and twice[0] is not twice[1]


def test_tied_weights_are_stored_once_and_load_sharing_memory():
    tg.manual_seed(0)
    model = tiny_gpt2()
    data = saved_bytes({"model": model.state_dict()})
    header_length = int.from_bytes(zipfile.ZipFile(io.BytesIO(data)).read("tensors.safetensors")[:8], "little")
    header = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("tensors.safetensors")[8:8 + header_length])
    assert len(header) == len(model.state_dict()) - 1  # the tied pair's values appear once
    state = tg.load(io.BytesIO(data))["model"]
    assert state["lm_head.weight"] is not state["transformer.wte.weight"]
    state["lm_head.weight"][0, 0] = 123.0  # as torch.load: two tensors over one memory
    assert state["transformer.wte.weight"][0, 0].item() == 123.0
    fresh = tiny_gpt2()
    fresh.load_state_dict(state)
    assert fresh.lm_head.weight is fresh.transformer.wte.weight


def test_nanogpt_checkpoint_round_trip(tmp_path):
    tg.manual_seed(0)
    model = tiny_gpt2()
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.95))
    idx = tg.randint(0, 40, (2, 8))
    for _ in range(2):
        _, loss = model(idx, idx)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model_args = dict(n_layer=2, n_head=2, n_embd=16, block_size=8, bias=True, vocab_size=40, dropout=0.0)
    config = {"out_dir": "out", "eval_interval": 2000, "learning_rate": 6e-4, "decay_lr": True, "dtype": "float32",
              "init_from": "scratch", "betas": (0.9, 0.95), "device": "cpu", "wandb_log": False, "seed": None}
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "model_args": model_args,
                  "iter_num": 2, "best_val_loss": loss.detach(), "config": config}
    path = tmp_path / "ckpt.pt"
    tg.save(checkpoint, path)
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # written through a temporary file, renamed into place
    loaded = tg.load(path, map_location="cpu")
    assert list(loaded) == list(checkpoint)
    assert loaded["model_args"] == model_args and loaded["config"] == config and loaded["iter_num"] == 2
    assert type(loaded["config"]["betas"]) is tuple
    assert bits(loaded["best_val_loss"]) == bits(loss)
    for name, tensor in checkpoint["model"].items():
        assert bits(loaded["model"][name]) == bits(tensor), name
    saved_state, loaded_state = checkpoint["optimizer"]["state"], loaded["optimizer"]["state"]
    assert list(loaded_state) == list(saved_state) and all(type(index) is int for index in loaded_state)
    for index, entry in saved_state.items():
        assert loaded_state[index]["step"] == entry["step"] == 2
        assert bits(loaded_state[index]["exp_avg"]) == bits(entry["exp_avg"])
        assert bits(loaded_state[index]["exp_avg_sq"]) == bits(entry["exp_avg_sq"])
    assert loaded["optimizer"]["param_groups"] == checkpoint["optimizer"]["param_groups"]


def test_resuming_from_a_saved_checkpoint_continues_exactly():
    tg.manual_seed(0)
    batches = [tg.randint(0, 40, (2, 8)) for _ in range(6)]

    def train(model, optimizer, steps):
        for idx in steps:
            _, loss = model(idx, idx)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

    tg.manual_seed(1)
    model = tiny_gpt2()
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-2)
    train(model, optimizer, batches[:3])
    buffer = io.BytesIO()
    tg.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    train(model, optimizer, batches[3:])  # the run without a round trip

    buffer.seek(0)
    checkpoint = tg.load(buffer)
    tg.manual_seed(2)
    resumed = tiny_gpt2()  # other initial weights: everything must come from the checkpoint
    resumed.load_state_dict(checkpoint["model"])
    resumed_optimizer = resumed.configure_optimizers(weight_decay=0.1, learning_rate=1e-2)
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    train(resumed, resumed_optimizer, batches[3:])
    for (name, parameter), (_, other) in zip(model.named_parameters(), resumed.named_parameters()):
        assert bits(other) == bits(parameter), name
    assert resumed_optimizer.state_dict()["state"][0]["step"] == 6


def test_sgd_momentum_state_round_trips():
    weight = nn.Parameter(tg.ones(3))
    sgd = optim.SGD([weight], lr=0.1, momentum=0.9)
    (weight * tg.tensor([1.0, 2.0, 3.0])).sum().backward()
    sgd.step()
    other = optim.SGD([nn.Parameter(tg.ones(3))], lr=0.5, momentum=0.1)
    other.load_state_dict(round_trip(sgd.state_dict()))
    assert other.param_groups[0]["lr"] == 0.1 and other.param_groups[0]["momentum"] == 0.9
    saved, loaded = sgd.state_dict()["state"][0], other.state_dict()["state"][0]
    assert saved.keys() == loaded.keys() and all(bits(loaded[k]) == bits(saved[k]) for k in saved
                                                  if isinstance(saved[k], tg.Tensor))


def test_paths_pathlike_and_file_objects(tmp_path):
    obj = {"x": tg.arange(3)}
    tg.save(obj, str(tmp_path / "a.pt"))
    tg.save(obj, tmp_path / "b.pt")
    with open(tmp_path / "c.pt", "wb") as f:
        tg.save(obj, f)
    for name in ("a.pt", "b.pt", "c.pt"):
        assert tg.load(tmp_path / name)["x"].tolist() == [0, 1, 2]
        with open(tmp_path / name, "rb") as f:
            assert tg.load(f)["x"].tolist() == [0, 1, 2]
    assert (tmp_path / "a.pt").read_bytes() == saved_bytes(obj)  # the same object gives the same bytes


def test_weights_only_is_accepted_and_changes_nothing():
    data = saved_bytes({"x": tg.ones(2), "cfg": {"a": (1, 2)}})
    for weights_only in (True, False):
        loaded = tg.load(io.BytesIO(data), weights_only=weights_only)
        assert loaded["cfg"] == {"a": (1, 2)} and loaded["x"].tolist() == [1.0, 1.0]


# --- map_location ------------------------------------------------------------------------------------------------------
def saved_on(device_name):
    """A file whose tensors say they were saved on device_name (written on the CPU, then relabelled)."""
    data = saved_bytes({"w": nn.Parameter(tg.ones(2)), "m": tg.arange(3)})
    return rewritten(data, "object.json", lambda text: text.replace(b'"device": "cpu"', f'"device": "{device_name}"'.encode()))


@pytest.mark.parametrize("map_location", ["cpu", torch.device("cpu"), {"cuda:3": "cpu"}, {"cuda": "cuda:1", "cuda:3": "cpu"}])
def test_map_location_moves_tensors_to_the_cpu(map_location):
    loaded = tg.load(io.BytesIO(saved_on("cuda:3")), map_location=map_location)
    assert loaded["w"].device == loaded["m"].device == "cpu"
    assert type(loaded["w"]) is nn.Parameter and loaded["w"].requires_grad and loaded["m"].tolist() == [0, 1, 2]


def test_map_location_function_gets_each_tensor_and_its_saved_device():
    seen = []

    def place(tensor, saved):
        seen.append((tuple(tensor.shape), tensor.device, saved))
        return tensor * 10 if saved == "cuda:3" else None

    loaded = tg.load(io.BytesIO(saved_on("cuda:3")), map_location=place)
    assert sorted(seen) == [((2,), "cpu", "cuda:3"), ((3,), "cpu", "cuda:3")]
    assert loaded["m"].tolist() == [0, 10, 20] and type(loaded["w"]) is nn.Parameter and loaded["w"].is_leaf
    with pytest.raises(TypeError, match="map_location returned a str"):
        tg.load(io.BytesIO(saved_on("cuda:3")), map_location=lambda tensor, saved: "cpu")


def test_map_location_none_keeps_the_saved_device(second_device):
    loaded = round_trip({"x": tg.arange(3, device=second_device), "y": tg.ones(1)})
    assert loaded["x"].device == second_device and loaded["y"].device == "cpu"
    assert round_trip({"x": tg.ones(1)}, map_location=second_device)["x"].device == second_device
    moved = round_trip({"x": tg.arange(3, device=second_device)}, map_location={second_device: "cpu"})
    assert moved["x"].device == "cpu" and moved["x"].tolist() == [0, 1, 2]


def test_a_device_that_is_missing_here_names_map_location():
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed: cuda:3 may exist")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match=r"saved on cuda:3.*map_location='cpu'"):
        tg.load(io.BytesIO(saved_on("cuda:3")))
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        tg.load(io.BytesIO(saved_on("cpu")), map_location="gpu")


def test_saving_on_the_device_and_loading_anywhere(device):
    x = tg.randn(3, 2, device=device, requires_grad=True)
    data = saved_bytes({"x": x})
    assert tg.load(io.BytesIO(data))["x"].device == x.device
    on_cpu = tg.load(io.BytesIO(data), map_location="cpu")["x"]
    assert on_cpu.device == "cpu" and on_cpu.requires_grad and bits(on_cpu) == bits(x)


# --- what save refuses, and files load refuses -------------------------------------------------------------------------------
@dataclasses.dataclass
class Config:
    n_layer: int = 2


def cyclic():
    inner = {"a": 1}
    inner["self"] = [inner]
    return {"outer": inner}


@pytest.mark.parametrize("obj, message", [
    ({"config": {"fn": len}}, r"obj\['config'\]\['fn'\]: builtin_function_or_method"),
    ({"config": {"fn": lambda: 1}}, r"^save: cannot store obj\['config'\]\['fn'\]: function"),
    ([1, {2: {3, 4}}], r"obj\[1\]\[2\]: set \(store a list"),
    ({"config": Config()}, r"obj\['config'\]: test_saving.Config, a dataclass \(store dataclasses.asdict"),
    ({"model": nn.Linear(2, 2)}, r"obj\['model'\]: tinygrad_tx.nn.layers.Linear \(store its state_dict\(\)\)"),
    ({"counts": __import__("collections").defaultdict(int)}, r"obj\['counts'\]: collections.defaultdict"),
    ({"t": torch.ones(1)}, r"obj\['t'\]: torch.Tensor"),
    ({"a": np.array([object()])}, r"obj\['a'\]: a NumPy ndarray of Python objects"),
    ({frozenset([1]): 2}, r"cannot store obj: it has a key of type frozenset"),
    (cyclic(), r"obj\['outer'\]\['self'\]\[0\]: it contains itself"),
    (b"bytes", r"cannot store obj: bytes"),
])
def test_save_refuses_what_it_cannot_store_and_names_where(obj, message, tmp_path):
    with pytest.raises(TypeError, match=message):
        tg.save(obj, tmp_path / "x.pt")
    assert os.listdir(tmp_path) == []  # refused before any file is made


def test_a_torch_file_is_named_for_what_it_is(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(ValueError, match=r"model.pt was written by torch.save.*never reads"):
        tg.load(path)
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="model.pt is a pickle"):
        tg.load(path)


def test_the_suggested_route_for_torch_weights_works(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    state = torch.nn.Linear(3, 2).state_dict()
    safetensors_torch.save_file(state, tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="is a safetensors file: read it with .*load_safetensors"):
        tg.load(tmp_path / "w.safetensors")
    loaded = load_safetensors(tmp_path / "w.safetensors")
    assert all(loaded[name].tolist() == state[name].tolist() for name in state)


@pytest.mark.parametrize("data, message", [
    (b"", "is empty"),
    (b"this is not a checkpoint at all", r"is not a zip archive \(it starts with b'this is '\)"),
    (saved_bytes({"x": tg.ones(1000)})[:3000], r"is a damaged zip archive \(truncated\?\)"),
    (saved_bytes({"x": tg.ones(1000)})[:-10], r"is a damaged zip archive"),
])
def test_files_that_are_not_archives(data, message):
    with pytest.raises(ValueError, match=r"^load: <BytesIO> " + message):
        tg.load(io.BytesIO(data))


def other_zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, contents in members.items():
            archive.writestr(name, contents)
    return buffer.getvalue()


def relabelled(edit):
    """A good file whose object.json went through edit(document as a dict)."""
    def change(text):
        document = json.loads(text)
        edit(document)
        return json.dumps(document).encode()
    return rewritten(saved_bytes({"x": tg.ones(2), "a": np.ones(2)}), "object.json", change)


def with_a_bit_flipped(data, pattern):
    """data with one bit changed inside the first occurrence of pattern, behind the zip's back."""
    data = bytearray(data)
    data[data.index(pattern) + len(pattern) - 1] ^= 1
    return bytes(data)


@pytest.mark.parametrize("data, message", [
    (other_zip({"readme.txt": "hi"}), r"is a zip archive but not a tinygrad_tx.save file \(no object.json; it holds readme.txt\)"),
    (other_zip({"object.json": "[1]"}), "with an object.json that tinygrad_tx.save did not write"),
    (other_zip({"object.json": "{not json"}), r"damaged tinygrad_tx.save file: object.json: Expecting"),
    (relabelled(lambda d: d.update(version=2)), "format version 2; this version of tinygrad_tx reads version 1"),
    (relabelled(lambda d: d["object"]["items"].update(x={"type": "builtins.eval", "args": ["1"]})),
     r"holds \{\"type\": \"builtins.eval\".*which is no value save writes"),
    (relabelled(lambda d: d["object"]["items"]["x"].update(data="elsewhere")), "refers to values 'elsewhere'"),
    (relabelled(lambda d: d["object"]["items"]["x"].update(device="tpu")), "has device 'tpu'"),
    (relabelled(lambda d: d["object"]["items"]["x"].update(id="0")), "has id '0', not an integer"),
    (relabelled(lambda d: d["object"]["items"]["a"].update(data="arrays/9.npy")), "arrays/9.npy"),
    (relabelled(lambda d: d["object"]["items"]["a"].update(data="object.json")), "not one of its arrays"),
    (relabelled(lambda d: d.update(object={"type": "dict", "pairs": [[[1], 2]]})), "a dict key is a list"),
    (with_a_bit_flipped(saved_bytes({"x": tg.ones(2)}), np.float32(1).tobytes()), r"tensors.safetensors: Bad CRC-32"),
])
def test_damaged_or_foreign_archives_say_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        tg.load(io.BytesIO(data))


def test_an_object_array_inside_the_file_is_refused_not_unpickled():
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    data = rewritten(saved_bytes({"a": np.ones(2)}), "arrays/0.npy", lambda _: buffer.getvalue())
    with pytest.raises(ValueError, match=r"arrays/0.npy: Object arrays cannot be loaded when allow_pickle=False"):
        tg.load(io.BytesIO(data))


# --- pickle and copy.deepcopy -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_keeps_values_dtype_device_and_requires_grad(protocol):
    tensors = [tg.randn(3, 2, requires_grad=True), tg.arange(5, dtype=tg.int32), tg.tensor(1.5).half(),
               tg.zeros(0, 2), nn.Parameter(tg.ones(2)), nn.Parameter(tg.ones(1), requires_grad=False)]
    for original, back in zip(tensors, pickle.loads(pickle.dumps(tensors, protocol=protocol))):
        assert type(back) is type(original) and back.requires_grad == original.requires_grad and back.is_leaf
        assert bits(back) == bits(original) and back.device == original.device


def test_pickle_of_a_result_and_of_grads_as_torch():
    x, tx = tg.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    (x * x).sum().backward()
    (tx * tx).sum().backward()
    for ours, theirs in [(x * 2, tx * 2), (x, tx)]:
        back, torch_back = pickle.loads(pickle.dumps(ours)), pickle.loads(pickle.dumps(theirs))
        assert (back.is_leaf, back.requires_grad, back.grad is None) == \
               (torch_back.is_leaf, torch_back.requires_grad, torch_back.grad is None)


def test_deepcopy_of_a_non_leaf_raises_torch_error():
    x, tx = tg.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError) as theirs:
        copy.deepcopy(tx * 2)
    first_sentence = str(theirs.value).split(".")[0]
    with pytest.raises(RuntimeError, match=r"^" + first_sentence.replace("(", r"\(").replace(")", r"\)")):
        copy.deepcopy(x * 2)
    with tg.no_grad():
        assert copy.deepcopy(x * 2).is_leaf  # made without the graph: a leaf, copied as in torch


def test_deepcopy_of_tensors_and_parameters_as_torch():
    for lib, Parameter in ((tg, nn.Parameter), (torch, torch.nn.Parameter)):
        x = lib.ones(3, requires_grad=True)
        x.grad = lib.full((3,), 2.0)
        p = Parameter(lib.ones(2))
        p.grad = lib.ones(2)
        x2, p2 = copy.deepcopy((x, p))
        x2.data[0] = 5.0
        assert x.tolist() == [1.0, 1.0, 1.0] and x2.requires_grad and x2.is_leaf
        assert x2.grad.tolist() == [2.0, 2.0, 2.0] and x2.grad is not x.grad  # a Tensor's grad is copied...
        assert type(p2) is Parameter and p2.grad is None  # ...a Parameter's is not (torch's Parameter.__deepcopy__)


def test_deepcopy_keeps_sharing_within_the_copied_object():
    for lib in (tg, torch):
        t = lib.ones(3)
        a, b, c = copy.deepcopy([t, t, t.detach()])
        assert a is b and c is not a and a is not t
        c[0] = 7.0  # t and t.detach() share memory: so do their copies, in both libraries
        assert a.tolist() == [7.0, 1.0, 1.0] and t.tolist() == [1.0, 1.0, 1.0]


def gpt2_and_input():
    tg.manual_seed(0)
    return tiny_gpt2(), tg.randint(0, 40, (2, 8))


def test_deepcopy_of_gpt2_is_independent_with_tied_weights():
    model, idx = gpt2_and_input()
    twin = copy.deepcopy(model)
    assert twin.lm_head.weight is twin.transformer.wte.weight and type(twin.lm_head.weight) is nn.Parameter
    assert all(p is not q for p, q in zip(model.parameters(), twin.parameters()))
    assert bits(twin(idx)[0]) == bits(model(idx)[0])
    optimizer = optim.AdamW(twin.parameters(), lr=0.1)
    _, loss = twin(idx, idx)
    loss.backward()
    optimizer.step()
    assert all(p.grad is None for p in model.parameters())  # training the copy leaves the original alone
    assert bits(model(idx)[0]) != bits(twin(idx)[0])
    assert model.state_dict().keys() == twin.state_dict().keys()


def test_pickle_of_gpt2_round_trips_with_tied_weights():
    model, idx = gpt2_and_input()
    model.eval()
    back = pickle.loads(pickle.dumps(model))
    assert type(back) is GPT2 and not back.training and back.config == model.config
    assert back.lm_head.weight is back.transformer.wte.weight
    assert [name for name, _ in back.named_parameters()] == [name for name, _ in model.named_parameters()]
    assert bits(back(idx)[0]) == bits(model(idx)[0])
    back.lm_head.weight.data[0, 0] = 99.0
    assert model.lm_head.weight[0, 0].item() != 99.0


def test_deepcopy_and_pickle_of_a_module_with_buffers():
    model = nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.LayerNorm(4))
    model.register_buffer("mask", tg.tril(tg.ones(2, 2)))
    model.register_buffer("scratch", tg.zeros(2), persistent=False)
    x = tg.randn(5, 3)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert bits(twin(x)) == bits(model(x))
        assert list(twin.state_dict()) == list(model.state_dict()) and "scratch" not in twin.state_dict()
        assert twin.mask is not model.mask and bits(twin.mask) == bits(model.mask)


def test_the_in_order_safetensors_reader_matches_load_safetensors(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from tinygrad_tx.serialization import read_safetensors
    tensors = {"bf16": torch.randn(3, 2).bfloat16(), "empty": torch.zeros(0, 4), "scalar": torch.tensor(7),
               "flags": torch.tensor([True, False])}
    safetensors_torch.save_file(tensors, tmp_path / "t.safetensors")
    expected = load_safetensors(tmp_path / "t.safetensors")
    with open(tmp_path / "t.safetensors", "rb") as f:
        read = read_safetensors(f, os.path.getsize(tmp_path / "t.safetensors"), "t.safetensors")
    assert list(read) == list(expected)
    assert all(bits(read[name]) == bits(expected[name]) for name in expected)
    with open(tmp_path / "t.safetensors", "rb") as f, pytest.raises(ValueError, match="truncated"):
        read_safetensors(f, os.path.getsize(tmp_path / "t.safetensors") - 1, "t.safetensors")
