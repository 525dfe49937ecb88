"""Data types: a small closed set, named as in PyTorch.

Each DType knows its NumPy name (CuPy uses the same names) and whether it is a
floating type, which decides who may carry a gradient and how types promote.
"""


class DType:
    def __init__(self, name, numpy_name, is_floating, itemsize, rank):
        self.name = name
        self.numpy_name = numpy_name
        self.is_floating = is_floating
        self.itemsize = itemsize
        self.rank = rank  # position in the promotion order inside its category

    def __repr__(self):
        return f"tinygrad_tx.{self.name}"


bool_ = DType("bool", "bool", False, 1, 0)
int32 = DType("int32", "int32", False, 4, 1)
int64 = DType("int64", "int64", False, 8, 2)
float16 = DType("float16", "float16", True, 2, 3)
float32 = DType("float32", "float32", True, 4, 4)
float64 = DType("float64", "float64", True, 8, 5)

ALL = (bool_, int32, int64, float16, float32, float64)
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update({"float": float32, "double": float64, "half": float16, "long": int64, "int": int32})

default_float = float32


def to_dtype(obj):
    """Accepts a DType, its name, a Python type or a NumPy dtype."""
    if obj is None or isinstance(obj, DType):
        return obj
    if obj is float:
        return default_float
    if obj is int:
        return int64
    if obj is bool:
        return bool_
    if isinstance(obj, str):
        name = obj
    elif isinstance(obj, type):  # a NumPy scalar type such as np.float64
        name = obj.__name__
    else:  # a NumPy (or CuPy) dtype object
        name = getattr(obj, "name", None)
    if name in _BY_NAME:
        return _BY_NAME[name]
    raise TypeError(f"unsupported dtype {obj!r}; supported: {', '.join(d.name for d in ALL)}")


def promote(a, b):
    """Result type of a binary op between two tensor dtypes (PyTorch's rule: the higher category wins)."""
    return a if a.rank >= b.rank else b


def scalar_result(tensor_dtype, scalar):
    """A Python scalar is 'weak': it only lifts the tensor's category (int tensor * 2.5 -> float32)."""
    if isinstance(scalar, bool) or tensor_dtype.is_floating:
        return tensor_dtype
    if isinstance(scalar, float):
        return default_float
    if tensor_dtype is bool_ and isinstance(scalar, int):
        return int64
    return tensor_dtype
