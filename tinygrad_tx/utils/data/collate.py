"""Collating: turning a list of samples into one batch, with PyTorch's rules.

default_collate works on the structure of the first sample and recurses:
  Tensor                       -> stacked along a new first dimension
  NumPy array                  -> stacked into a Tensor (string and object arrays are refused)
  NumPy scalar                 -> a 1-d Tensor of its dtype
  Python float / int / bool    -> a 1-d float64 / int64 / bool Tensor (float64, as torch's default_collate
                                  makes, although tinygrad_tx.tensor([1.5]) is float32)
  str / bytes                  -> left as the list of samples
  dict (any Mapping)           -> the same kind of mapping, each key collated
  namedtuple                   -> the same namedtuple, each field collated
  tuple                        -> a list, each position collated (PyTorch returns a list here too)
  list (any Sequence)          -> the same kind of sequence, each position collated
NumPy dtypes the engine lacks (uint8, int16, float128...) widen as tinygrad_tx.tensor widens them:
integers to int64, so a batch of uint8 images is int64 where PyTorch's would be uint8.

default_convert is what a DataLoader with batch_size=None applies to each sample: NumPy arrays and
scalars become Tensors, containers are rebuilt the same way, everything else is left alone.
"""
import collections.abc
import copy
import re

import numpy as np

from ... import dtype as dtypes
from ...tensor import Tensor, stack

_STRING_OR_OBJECT_DTYPE = re.compile(r"[SaUO]")
_COLLATE_ERROR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _is_numpy(value):
    # np.str_ and np.bytes_ are strings, which stay as they are
    return type(value).__module__ == "numpy" and not isinstance(value, (str, bytes))


def default_collate(batch):
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(batch, 0)
    if _is_numpy(elem):
        if _STRING_OR_OBJECT_DTYPE.search(elem.dtype.str):
            raise TypeError(_COLLATE_ERROR.format(elem.dtype))
        if isinstance(elem, np.ndarray):
            shapes = {sample.shape for sample in batch}
            if len(shapes) > 1:
                raise RuntimeError(f"stack expects each array to be equal size, but got shapes {sorted(shapes)}")
            return Tensor(np.stack(batch))
        return Tensor(np.asarray(batch))  # NumPy scalars keep their dtype: float32 samples give a float32 batch
    if isinstance(elem, float):
        return Tensor(batch, dtype=dtypes.float64)
    if isinstance(elem, int):  # bool too: a batch of bools becomes a bool tensor, of ints an int64 tensor
        return Tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return _rebuild_mapping(elem, {key: default_collate([sample[key] for sample in batch]) for key in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple
        return type(elem)(*(default_collate(samples) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return _rebuild_sequence(elem, [default_collate(samples) for samples in zip(*batch)])
    raise TypeError(_COLLATE_ERROR.format(type(elem)))


def map_structure(function, data):
    """Apply `function` to every leaf of nested dicts, namedtuples, tuples and lists, rebuilding the
    containers as default_convert does (tuples become lists). Strings are leaves."""
    if isinstance(data, collections.abc.Mapping):
        return _rebuild_mapping(data, {key: map_structure(function, value) for key, value in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(map_structure(function, value) for value in data))
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _rebuild_sequence(data, [map_structure(function, value) for value in data])
    return function(data)


def _convert_leaf(value):
    if _is_numpy(value) and not _STRING_OR_OBJECT_DTYPE.search(value.dtype.str):
        return Tensor(value)
    return value


def default_convert(data):
    if isinstance(data, Tensor):
        return data
    if _is_numpy(data):  # an array is a leaf here, not a sequence to walk
        return _convert_leaf(data)
    return map_structure(_convert_leaf, data)


def _rebuild_mapping(original, collated):
    """A dict of the original's type (an OrderedDict stays one); a plain dict if that type can't be rebuilt."""
    try:
        if isinstance(original, collections.abc.MutableMapping):
            clone = copy.copy(original)  # keeps the attributes of a dict subclass
            clone.update(collated)
            return clone
        return type(original)(collated)
    except TypeError:
        return collated


def _rebuild_sequence(original, collated):
    """A tuple becomes a list; another sequence is rebuilt as its own type when that type allows it."""
    if isinstance(original, tuple):
        return collated
    try:
        if isinstance(original, collections.abc.MutableSequence):
            clone = copy.copy(original)
            clone[:] = collated
            return clone
        return type(original)(collated)
    except TypeError:
        return collated
