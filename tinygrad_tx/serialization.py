"""The safetensors format, read and written without extra dependencies.

A file is: 8 bytes (little-endian u64) giving the header's length, a JSON header mapping each
name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data that follows),
then the raw little-endian bytes. Loading it never runs code, unlike pickle.

The header comes from whoever wrote the file, so load_safetensors checks all of it before
using any of it: a corrupt or hostile file gives a ValueError that says what is wrong, never
a crash somewhere deeper or a tensor built from the wrong bytes.
"""
import contextlib
import json
import math
import os
import struct

import numpy as np

from . import dtype as dtypes
from .creation import from_numpy

# how each safetensors dtype lays out its bytes, as a NumPy dtype (the format is little-endian)
_FILE_LAYOUT = {"BOOL": "|b1", "I32": "<i4", "I64": "<i8", "F16": "<f2", "F32": "<f4", "F64": "<f8",
                "BF16": "<u2"}  # bfloat16's 16 bits: ml_dtypes' bfloat16 where it is installed, else widened to float32
_CODE_OF_DTYPE = {"bool": "BOOL", "int32": "I32", "int64": "I64", "float16": "F16", "bfloat16": "BF16",
                  "float32": "F32", "float64": "F64"}  # the engine's dtypes, all writable
_ENTRY_KEYS = {"dtype", "shape", "data_offsets"}
_MAX_HEADER_BYTES = 100_000_000  # the reference implementation's limit: a longer "header" is a corrupt length


@contextlib.contextmanager
def open_for_atomic_write(path, mode="wb"):
    """Write to path.tmp and rename it over path at the end: a crash never leaves a half-written path."""
    temporary = path + ".tmp"
    with open(temporary, mode) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())  # the bytes are on disk before the rename makes them the file
    os.replace(temporary, path)


def save_safetensors(tensors, path, metadata=None):
    """Write {name: Tensor} to path atomically."""
    header, arrays = _encode(tensors, metadata, path)  # refuses bad input before the file exists
    with open_for_atomic_write(os.fspath(path)) as f:
        _write(f, header, arrays)


def write_safetensors(tensors, f, metadata=None, name="<file>"):
    """Write {name: Tensor} to an open binary file, e.g. a member of a zip archive (name is for messages)."""
    _write(f, *_encode(tensors, metadata, name))


def _encode(tensors, metadata, where):
    """-> (the padded JSON header as bytes, the arrays to write after it in order)."""
    header, arrays, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, tensor in tensors.items():
        if name == "__metadata__" or tensor.dtype.name not in _CODE_OF_DTYPE:
            raise ValueError(f"save_safetensors: cannot write {name!r} of dtype {tensor.dtype.name} to {where}")
        code = _CODE_OF_DTYPE[tensor.dtype.name]
        # C order and the file's byte order; ascontiguousarray would turn a 0-d tensor into shape (1,)
        array = tensor.detach().numpy()
        if code == "BF16":  # ml_dtypes' bfloat16 is the format's: its bits, as they are
            array = array.view(np.uint16)
        array = array.astype(_FILE_LAYOUT[code], order="C", copy=False)
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        arrays.append(array)
        offset += array.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format aligns the data to 8 bytes
    return encoded, arrays


def _write(f, header, arrays):
    f.write(struct.pack("<Q", len(header)))
    f.write(header)
    for array in arrays:
        f.write(array.data)  # the array's own buffer: no second copy of the weights in memory


def load_safetensors(path, device="cpu"):
    """Read a safetensors file into {name: Tensor}. BF16 tensors are bfloat16 where ml_dtypes is installed; without
    it they become float32 (exactly: bf16 is float32's top half).

    Each tensor's bytes are read straight into the array its Tensor keeps, so loading needs about the
    file's size in memory (benchmarks/load_memory.py measures it), the file is never written, and it
    is not held open afterwards.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        return read_safetensors(f, file_size, path, device)


def read_safetensors(f, size, name, device="cpu"):
    """Read {name: Tensor} from an open binary file whose next `size` bytes are a safetensors file.

    The header is checked before any of it is used, then the tensors are read front to back, without
    seeking, so this reads a member of a zip archive or a BytesIO as well as a file on disk.
    """
    header, data_start = _read_header(f, size, name)
    _validate_header(header, size - data_start, name)
    header.pop("__metadata__", None)
    tensors = {}
    for key, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"]):  # the validated tiling
        # a tensor over the array just filled: Tensor(array) would copy it, holding the weights twice
        tensors[key] = from_numpy(_read_array(f, entry, name, key)).to(device)
    return {key: tensors[key] for key in header}  # in the header's order


def _read_header(f, file_size, path):
    """-> (the parsed JSON header, where the data section starts in the file)."""
    _require(file_size >= 8, path, f"is {file_size} bytes long, too short to hold the 8-byte header length")
    (length,) = struct.unpack("<Q", f.read(8))
    _require(length <= _MAX_HEADER_BYTES, path, f"claims a {length}-byte header, longer than any real one")
    _require(8 + length <= file_size, path, f"claims a {length}-byte header but has only {file_size - 8} bytes after "
                                            "the length (is the file truncated?)")
    try:
        header = json.loads(f.read(length), object_pairs_hook=_refuse_duplicate_names)
    except (ValueError, RecursionError) as error:  # bad UTF-8 and bad JSON are ValueErrors; deep nesting recurses
        raise ValueError(f"load_safetensors: {path} has a header that is not valid JSON ({error})") from None
    _require(isinstance(header, dict), path, f"has a header that is a JSON {type(header).__name__}, not an object")
    return header, 8 + length


def _refuse_duplicate_names(pairs):
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"a name appears twice: {next(n for n in names if names.count(n) > 1)!r}")
    return dict(pairs)


def _validate_header(header, data_size, path):
    """Every check load_safetensors relies on, in the order that lets each assume the ones before."""
    metadata = header.get("__metadata__", {})
    _require(isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values()), path,
             "has a __metadata__ that is not a map from strings to strings")
    entries = {name: entry for name, entry in header.items() if name != "__metadata__"}
    for name, entry in entries.items():
        _validate_entry(name, entry, data_size, path)
    # the format stores the tensors back to back: sorted by where they begin, they tile the data section
    position = 0
    for name, entry in sorted(entries.items(), key=lambda item: item[1]["data_offsets"]):
        begin, end = entry["data_offsets"]
        _require(begin >= position, path, f"overlaps the tensor before it (starts at byte {begin}, before {position})",
                 name)
        _require(begin <= position, path, f"starts at byte {begin}, leaving a gap after the tensor before it "
                                          f"(which ends at byte {position})", name)
        position = end
    _require(position == data_size, path, f"has {data_size - position} bytes after its last tensor "
                                          "that belong to no tensor")


def _validate_entry(name, entry, data_size, path):
    _require(isinstance(entry, dict), path, "is not a JSON object with dtype, shape and data_offsets", name)
    _require(_ENTRY_KEYS <= entry.keys(), path, f"is missing {', '.join(sorted(_ENTRY_KEYS - entry.keys()))}", name)
    _require(entry.keys() <= _ENTRY_KEYS, path, f"has unknown keys {', '.join(sorted(entry.keys() - _ENTRY_KEYS))}",
             name)
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    _require(isinstance(code, str) and code in _FILE_LAYOUT, path,
             f"has unknown dtype {code!r} (known: {', '.join(_FILE_LAYOUT)})", name)
    _require(isinstance(shape, list) and all(_is_int(n) and n >= 0 for n in shape), path,
             f"has shape {shape!r}, not a list of non-negative integers", name)
    _require(isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_int, offsets)), path,
             f"has data_offsets {offsets!r}, not a pair of integers", name)
    begin, end = offsets
    _require(0 <= begin <= end, path, f"has data_offsets [{begin}, {end}], not 0 <= begin <= end", name)
    _require(end <= data_size, path, f"has data_offsets ending at byte {end}, past the end of the "
                                     f"{data_size}-byte data section (is the file truncated?)", name)
    needed = np.dtype(_FILE_LAYOUT[code]).itemsize * math.prod(shape)
    _require(end - begin == needed, path, f"has {end - begin} bytes of data, but dtype {code} and shape {shape} "
                                          f"need {needed}", name)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true would pass as 1 otherwise


def _require(condition, path, problem, name=None):
    if not condition:
        where = f"tensor {name!r} in {path}" if name is not None else path
        raise ValueError(f"load_safetensors: {where} {problem}")


def _read_array(f, entry, path, name):
    """One tensor's bytes from f, read into the NumPy array the engine holds, a chunk at a time.

    Reading into the final array (not memory-mapping the file and copying) keeps one copy of the
    weights in memory. Chunks keep file objects without a real readinto (a zip member reads into a
    temporary bytes object first) from making a temporary as big as the tensor.
    """
    layout, shape = np.dtype(_FILE_LAYOUT[entry["dtype"]]), tuple(entry["shape"])
    per_chunk = _CHUNK_BYTES // layout.itemsize
    if entry["dtype"] != "BF16" or dtypes.ml_dtypes is not None:
        array = np.empty(shape, layout)
        flat = array.reshape(-1)  # a view: the array is freshly allocated, so C-ordered
        for start in range(0, flat.size, per_chunk):
            _fill(f, flat[start:start + per_chunk], path, name)
        return array.view(dtypes.ml_dtypes.bfloat16) if entry["dtype"] == "BF16" else array
    # no bfloat16 type: bf16's bits are the top half of a float32's, so widen each chunk as it arrives
    array = np.empty(shape, np.float32)
    widened = array.reshape(-1).view(np.uint32)
    staging = np.empty(min(widened.size, per_chunk), layout)
    for start in range(0, widened.size, per_chunk):
        bits = staging[:min(per_chunk, widened.size - start)]
        _fill(f, bits, path, name)
        np.left_shift(bits, 16, out=widened[start:start + bits.size], dtype=np.uint32)
    return array


_CHUNK_BYTES = 1 << 24


def _fill(f, array, path, name):
    """Fill a contiguous array with the next bytes of f."""
    buffer = memoryview(array).cast("B")
    filled = 0
    while filled < len(buffer):  # readinto may stop short of a full buffer; 0 means the data ended
        count = f.readinto(buffer[filled:])
        _require(count, path, "ends inside its data (is the file truncated?)", name)
        filled += count
