"""The safetensors format, read and written without extra dependencies.

A file is: 8 bytes (little-endian u64) giving the header's length, a JSON header mapping each
name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data that follows),
then the raw little-endian bytes. Loading it never runs code, unlike pickle.
"""
import json
import os
import struct

import numpy as np

from .tensor import Tensor

_TO_FILE = {"float16": "F16", "float32": "F32", "float64": "F64", "int32": "I32", "int64": "I64", "bool": "BOOL"}
_FROM_FILE = {code: name for name, code in _TO_FILE.items()}


def save_safetensors(tensors, path, metadata=None):
    """Write {name: Tensor} to path atomically (a crash never leaves a half-written file)."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, tensor in tensors.items():
        array = np.ascontiguousarray(tensor.detach().numpy())
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _TO_FILE[tensor.dtype.name], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format aligns the data to 8 bytes
    temporary = path + ".tmp"
    with open(temporary, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for data in chunks:
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def load_safetensors(path, device="cpu"):
    """Read a safetensors file into {name: Tensor}."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"load_safetensors: {path} is too short to be a safetensors file")
    (header_length,) = struct.unpack("<Q", raw[:8])
    if 8 + header_length > len(raw):
        raise ValueError(f"load_safetensors: {path} has a header length of {header_length} bytes beyond its end")
    header = json.loads(raw[8:8 + header_length])
    data = memoryview(raw)[8 + header_length:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] not in _FROM_FILE:
            raise ValueError(f"load_safetensors: {name} in {path} has unsupported dtype {entry['dtype']}")
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=np.dtype(_FROM_FILE[entry["dtype"]]).newbyteorder("<"))
        tensors[name] = Tensor(array.reshape(entry["shape"]).copy(), device=device)
    return tensors
