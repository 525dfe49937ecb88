"""save and load: what a training script saves (nested dicts, lists and tuples of tensors, NumPy arrays
and plain values), as torch.save and torch.load, in a format whose loading never runs code.

torch.save pickles, and unpickling a file runs whatever code its author put there. tinygrad_tx.save
writes a zip archive (stored, not compressed) of three kinds of member:

  object.json          {"format": "tinygrad_tx.save", "version": 1, "object": TREE}
  tensors.safetensors  the values of every tensor, in the safetensors format (serialization.py)
  arrays/N.npy         each NumPy array, in NumPy's own format

TREE is the object written as JSON. Strings, ints, bools, None, finite floats and lists are
themselves; every JSON object in it is a placeholder tagged with "type", so no value can pass for one:

  {"type": "dict", "items": {KEY: VALUE, ...}}       a dict whose keys are all strings (order kept)
  {"type": "dict", "pairs": [[KEY, VALUE], ...]}     any other dict; keys are str, int, float, bool,
                                                     None, or tuples of these
  {"type": "OrderedDict", ...}                       the same, loaded as a collections.OrderedDict
  {"type": "tuple", "items": [VALUE, ...]}
  {"type": "float", "value": "inf" | "-inf" | "nan"} the floats JSON cannot spell
  {"type": "Tensor" | "Parameter", "id": 0, "data": "obj['model']['lm_head.weight']",
   "device": "cuda:0", "requires_grad": true}        "data" names the values in tensors.safetensors
  {"type": "numpy.ndarray" | "numpy.generic", "id": 1, "data": "arrays/0.npy"}

Loading parses JSON, safetensors and .npy (with allow_pickle=False) and builds only the types above:
it looks up no class by name and calls no code from the file, so a hostile file can only fail to load.

What is shared stays shared where the values allow it. One Tensor or array object reached twice is
stored once and loads as one object. Distinct tensors over one array (a state_dict's tied weights, x
and x.detach()) store their values once and load as distinct tensors sharing memory, as torch.save
keeps a storage once. Views over part of an array (a slice, a transpose) are stored as tensors of their
own and load independent; lists and dicts reached twice load as two equal copies.

This is a module of its own rather than part of serialization.py: that one is the safetensors format,
a flat map of named tensors that other tools read too; this one stores a tree of Python values and
hands its tensors to that one.
"""
import dataclasses
import json
import math
import os
import zipfile
from collections import OrderedDict

import numpy as np

from .backend import normalize_device
from .nn.parameter import Parameter
from .serialization import open_for_atomic_write, read_safetensors, write_safetensors
from .tensor import Tensor

FORMAT, VERSION = "tinygrad_tx.save", 1
_OBJECT, _TENSORS, _ARRAYS = "object.json", "tensors.safetensors", "arrays/"
_STORABLE = "dict, OrderedDict, list, tuple, str, int, float, bool, None, Tensor, Parameter, NumPy arrays and scalars"
_KEY_TYPES = (str, int, float, bool, type(None))


def save(obj, f):
    """Write obj to f: a path (written atomically: a crash never leaves half a file) or a binary file object.

    Raises TypeError naming the first value it cannot store and where it is, e.g.
    "save: cannot store obj['config']['fn']: function".
    """
    encoder = _Encoder()
    tree = encoder.encode(obj, "obj")  # everything is checked before the file is touched
    if isinstance(f, (str, os.PathLike)):
        with open_for_atomic_write(os.fspath(f)) as file:
            encoder.write(tree, file, os.fspath(f))
    else:
        encoder.write(tree, f, _name_of(f))


def load(f, map_location=None, weights_only=True):
    """Read what save wrote, from a path or a binary file object.

    map_location, as torch.load's: None puts each tensor on the device it was saved from; a device
    ("cpu", "cuda", "cuda:1", or anything whose str() is one) puts every tensor there; a dict maps
    saved devices to devices ({"cuda:0": "cpu"}), others stay put; a function (tensor on the CPU,
    saved device) -> a Tensor, or None to leave it on its saved device.
    weights_only is accepted for torch's signature: this format holds only data, so loading is always
    as safe as torch's weights_only=True, whatever it says.
    """
    place = _placement(map_location)  # a wrong map_location fails before the file is read
    if isinstance(f, (str, os.PathLike)):
        with open(os.fspath(f), "rb") as file:
            return _load(file, os.fspath(f), place)
    return _load(f, _name_of(f), place)


# --- saving -----------------------------------------------------------------------------------------------------
class _Encoder:
    """Turns an object into the JSON tree, collecting its tensors and arrays on the way."""

    def __init__(self):
        self.tensors = {}        # name in tensors.safetensors -> a tensor holding those values
        self.arrays = {}         # member name -> NumPy array
        self.placeholders = {}   # id(tensor or array object) -> its placeholder, for objects reached twice
        self.data_names = {}     # id(tensor.array) -> its name in tensors.safetensors, for tensors sharing an array
        self.on_path = set()     # ids of the containers being encoded: one met again contains itself

    def encode(self, value, path):
        kind = type(value)
        if value is None or kind in (str, int, bool):
            return value
        if kind is float:
            return value if math.isfinite(value) else {"type": "float", "value": repr(value)}  # inf, -inf, nan
        if kind in (list, tuple, dict, OrderedDict):
            if id(value) in self.on_path:
                raise TypeError(f"save: cannot store {path}: it contains itself")
            self.on_path.add(id(value))
            try:
                return self._container(value, path)
            finally:
                self.on_path.discard(id(value))
        if kind in (Tensor, Parameter):
            return self._tensor(value, path)
        if kind is np.ndarray or isinstance(value, np.generic):
            return self._array(value, path)
        raise TypeError(f"save: cannot store {path}: {_describe(value)}")

    def _container(self, value, path):
        if type(value) is list:
            return [self.encode(item, f"{path}[{index}]") for index, item in enumerate(value)]
        if type(value) is tuple:
            return {"type": "tuple", "items": [self.encode(item, f"{path}[{index}]")
                                               for index, item in enumerate(value)]}
        node = {"type": type(value).__name__}  # dict or OrderedDict
        if all(type(key) is str for key in value):
            node["items"] = {key: self.encode(item, f"{path}[{key!r}]") for key, item in value.items()}
        else:
            node["pairs"] = [[self._key(key, path), self.encode(item, f"{path}[{key!r}]")]
                             for key, item in value.items()]
        return node

    def _key(self, key, path):
        if type(key) is tuple:
            return {"type": "tuple", "items": [self._key(part, path) for part in key]}
        if type(key) in _KEY_TYPES:
            return self.encode(key, path)
        raise TypeError(f"save: cannot store {path}: it has a key of type {_type_name(key)} ({key!r}); "
                        "keys can be str, int, float, bool, None, or tuples of these")

    def _tensor(self, tensor, path):
        node = self.placeholders.get(id(tensor))
        if node is None:
            name = self.data_names.setdefault(id(tensor.array), path)
            if name == path:  # the first tensor over this array: its values go in the file
                self.tensors[name] = tensor
            node = self.placeholders[id(tensor)] = {
                "type": type(tensor).__name__, "id": len(self.placeholders), "data": name,
                "device": tensor.device, "requires_grad": tensor.requires_grad}
        return node

    def _array(self, array, path):
        if array.dtype.hasobject:
            raise TypeError(f"save: cannot store {path}: a NumPy {type(array).__name__} of Python objects "
                            f"(dtype {array.dtype}), which only pickle could store")
        node = self.placeholders.get(id(array))
        if node is None:
            member = f"{_ARRAYS}{len(self.arrays)}.npy"
            self.arrays[member] = array
            kind = "numpy.ndarray" if type(array) is np.ndarray else "numpy.generic"
            node = self.placeholders[id(array)] = {"type": kind, "id": len(self.placeholders), "data": member}
        return node

    def write(self, tree, f, name):
        document = json.dumps({"format": FORMAT, "version": VERSION, "object": tree}, allow_nan=False)
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
            # ZipInfo's fixed date (1980) makes the same object give the same bytes
            archive.writestr(zipfile.ZipInfo(_OBJECT), document)
            with archive.open(zipfile.ZipInfo(_TENSORS), "w", force_zip64=True) as member:
                write_safetensors(self.tensors, member, name=f"{name}:{_TENSORS}")
            for member_name, array in self.arrays.items():
                with archive.open(zipfile.ZipInfo(member_name), "w", force_zip64=True) as member:
                    np.save(member, array, allow_pickle=False)


def _describe(value):
    """The type of a value save refuses, with what to store instead where there is an obvious answer."""
    name = _type_name(value)
    if isinstance(value, (set, frozenset)):
        return f"{name} (store a list or a tuple: a set has no order to restore)"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return f"{name}, a dataclass (store dataclasses.asdict(value))"
    if isinstance(value, dict):
        return f"{name} (of the dicts, only dict and OrderedDict are stored: convert it with dict(value))"
    if isinstance(value, (Tensor, np.ndarray)):
        return f"{name}, a subclass (store a Tensor, a Parameter or a NumPy array)"
    if callable(getattr(value, "state_dict", None)):
        return f"{name} (store its state_dict())"
    return f"{name} (storable: {_STORABLE})"


def _type_name(value):
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _name_of(f):
    """How messages name a file object: its path when it has one (open files), else its type."""
    name = getattr(f, "name", None)
    return name if isinstance(name, str) else f"<{type(f).__name__}>"


# --- loading ----------------------------------------------------------------------------------------------------
def _placement(map_location):
    """torch.load's map_location as one function: (tensor on the CPU, device it was saved from) -> device or Tensor."""
    if map_location is None:
        return lambda tensor, saved: saved
    if isinstance(map_location, dict):
        mapping = {normalize_device(saved): normalize_device(device) for saved, device in map_location.items()}
        return lambda tensor, saved: mapping.get(saved, saved)
    if callable(map_location):
        def place(tensor, saved):
            placed = map_location(tensor, saved)
            if placed is not None and not isinstance(placed, Tensor):
                raise TypeError(f"load: map_location returned a {type(placed).__name__}; it must return a Tensor "
                                "or None (for the saved device)")
            return saved if placed is None else placed
        return place
    device = normalize_device(map_location)
    return lambda tensor, saved: device


def _load(f, name, place):
    start = f.tell()
    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, EOFError, ValueError):
        f.seek(start)
        raise ValueError(f"load: {name} {_what_it_is(f.read(16))}; tinygrad_tx.load reads only files written "
                         "by tinygrad_tx.save") from None
    with archive:
        members = archive.namelist()
        if _OBJECT not in members:
            raise ValueError(f"load: {name} {_what_zip_it_is(members)}")
        decoder = _Decoder(archive, name, place)
        document = decoder.read(lambda: json.loads(archive.read(_OBJECT)), _OBJECT)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"load: {name} is a zip archive with an {_OBJECT} that tinygrad_tx.save did not write")
        if document.get("version") != VERSION:
            raise ValueError(f"load: {name} is in tinygrad_tx.save format version {document.get('version')!r}; "
                             f"this version of tinygrad_tx reads version {VERSION}")
        if "object" not in document:
            decoder.damaged(f"its {_OBJECT} has no object")
        try:
            return decoder.decode(document["object"])
        except RecursionError:
            decoder.damaged(f"its {_OBJECT} nests deeper than Python can follow")


def _what_it_is(head):
    """What a file that is not a zip archive looks like, from its first bytes."""
    if not head:
        return "is empty"
    if head.startswith(b"PK"):
        return "is a damaged zip archive (truncated?)"
    if head.startswith(b"\x80"):
        return "is a pickle (torch.save's legacy format, or pickle.dump), and unpickling runs code from the file"
    if len(head) > 8 and head[8:9] == b"{":
        return "is a safetensors file: read it with tinygrad_tx.serialization.load_safetensors"
    return f"is not a zip archive (it starts with {head[:8]!r})"


def _what_zip_it_is(members):
    pickles = [member for member in members if member == "data.pkl" or member.endswith("/data.pkl")]
    if pickles:
        return (f"was written by torch.save: a zip archive holding a pickle ({pickles[0]}), which tinygrad_tx.load "
                "never reads, since unpickling runs code from the file. In PyTorch, save the tensors with "
                "safetensors.torch.save_file(state_dict, path) and read them with "
                "tinygrad_tx.serialization.load_safetensors(path)")
    shown = ", ".join(members[:5]) + (", ..." if len(members) > 5 else "")
    return f"is a zip archive but not a tinygrad_tx.save file (no {_OBJECT}; it holds {shown or 'nothing'})"


class _Decoder:
    """Builds the object from the JSON tree, checking each placeholder before it uses it."""

    def __init__(self, archive, name, place):
        self.archive, self.name, self.place = archive, name, place
        self.tensors = None      # the values in tensors.safetensors, read when the first tensor needs them
        self.by_id = {}          # placeholder id -> the object loaded for it (an object saved twice loads once)
        self.by_data = {}        # name in tensors.safetensors -> the tensor placed on its device

    def damaged(self, problem):
        raise ValueError(f"load: {self.name} is a damaged tinygrad_tx.save file: {problem}")

    def read(self, reader, member):
        """reader() with the errors a damaged or hostile member gives turned into one clear message."""
        try:
            return reader()
        except (zipfile.BadZipFile, EOFError, KeyError, ValueError, RecursionError) as error:
            self.damaged(f"{member}: {error}")

    def decode(self, node):
        if node is None or type(node) in (str, int, bool, float):
            return node
        if type(node) is list:
            return [self.decode(item) for item in node]
        kind = node.get("type") if type(node) is dict else None
        if kind in ("dict", "OrderedDict"):
            container = dict if kind == "dict" else OrderedDict
            if type(node.get("items")) is dict:
                return container((key, self.decode(value)) for key, value in node["items"].items())
            pairs = node.get("pairs")
            if type(pairs) is list and all(type(pair) is list and len(pair) == 2 for pair in pairs):
                return container((self._key(key), self.decode(value)) for key, value in pairs)
            self.damaged(f"a {kind} has neither an 'items' object nor a 'pairs' list of pairs")
        if kind == "tuple" and type(node.get("items")) is list:
            return tuple(self.decode(item) for item in node["items"])
        if kind == "float" and node.get("value") in ("inf", "-inf", "nan"):
            return float(node["value"])
        if kind in ("Tensor", "Parameter"):
            return self._remembered(node, self._tensor)
        if kind in ("numpy.ndarray", "numpy.generic"):
            return self._remembered(node, self._array)
        self.damaged(f"its object holds {json.dumps(node)[:200]}, which is no value save writes")

    def _key(self, node):
        key = self.decode(node)
        try:
            hash(key)
        except TypeError:
            self.damaged(f"a dict key is a {type(key).__name__}, which cannot be a key")
        return key

    def _remembered(self, node, build):
        identity = node.get("id")
        if type(identity) is not int:
            self.damaged(f"a {node['type']} has id {identity!r}, not an integer")
        if identity not in self.by_id:
            self.by_id[identity] = build(node)
        return self.by_id[identity]

    def _tensor(self, node):
        if self.tensors is None:
            info = self.read(lambda: self.archive.getinfo(_TENSORS), _TENSORS)
            with self.archive.open(info) as member:
                self.tensors = self.read(lambda: read_safetensors(member, info.file_size, f"{self.name}:{_TENSORS}"),
                                         _TENSORS)
        data, saved, requires_grad = node.get("data"), node.get("device"), node.get("requires_grad")
        if not isinstance(data, str) or data not in self.tensors:
            self.damaged(f"a {node['type']} refers to values {data!r}, which {_TENSORS} does not hold")
        if type(requires_grad) is not bool:
            self.damaged(f"tensor {data!r} has requires_grad {requires_grad!r}, not true or false")
        if requires_grad and not self.tensors[data].dtype.is_floating:
            self.damaged(f"tensor {data!r} requires grad but is of dtype {self.tensors[data].dtype.name}")
        base = self.by_data.get(data)
        if base is None:
            base = self.by_data[data] = self._placed(self.tensors[data], self._device(saved, data))
        if node["type"] == "Parameter":
            return Parameter(base, requires_grad)
        return base.detach().requires_grad_(requires_grad)  # a tensor of its own over the same memory

    def _device(self, saved, data):
        if isinstance(saved, str):
            try:
                return normalize_device(saved)
            except ValueError:
                pass
        self.damaged(f"tensor {data!r} has device {saved!r}, not 'cpu' or 'cuda:N'")

    def _placed(self, tensor, saved):
        placed = self.place(tensor, saved)
        if isinstance(placed, Tensor):
            return placed.detach()
        try:
            return tensor.to(placed)
        except (RuntimeError, ImportError) as error:
            raise RuntimeError(f"load: {self.name} holds tensors saved on {saved}, which cannot be used here "
                               f"({error}); pass map_location='cpu' to load them onto the CPU") from error

    def _array(self, node):
        member = node.get("data")
        if not isinstance(member, str) or not member.startswith(_ARRAYS):
            self.damaged(f"a {node['type']} refers to {member!r}, which is not one of its arrays")

        def read_array():
            with self.archive.open(member) as file:
                return np.load(file, allow_pickle=False)
        array = self.read(read_array, member)
        if node["type"] == "numpy.ndarray":
            return array
        if array.ndim != 0:
            self.damaged(f"{member} holds an array of shape {array.shape} for a NumPy scalar")
        return array[()]
