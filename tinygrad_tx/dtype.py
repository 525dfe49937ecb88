"""Data types: a small closed set, named as in PyTorch.

Each DType knows its NumPy name (CuPy uses the same names) and whether it is a
floating type, which decides who may carry a gradient and how types promote.

bfloat16 (float32's top 16 bits: float32's range, 8 bits of precision) is not a NumPy type: the optional
ml_dtypes package adds it to NumPy (and CuPy 14 takes it from there). Without ml_dtypes, asking for a
bfloat16 tensor raises an ImportError that says how to install it.
"""
import math

try:
    import ml_dtypes  # noqa: F401  (importing it registers the NumPy dtype named 'bfloat16')
except ImportError:
    ml_dtypes = None


class DType:
    def __init__(self, name, numpy_name, is_floating, itemsize, rank, mantissa_bits=None):
        self.name = name
        self.numpy_name = numpy_name
        self.is_floating = is_floating
        self.itemsize = itemsize
        self.rank = rank  # position in the promotion order inside its category
        self.mantissa_bits = mantissa_bits  # floating types: the stored fraction bits, which fix eps and the range

    def __repr__(self):
        return f"tinygrad_tx.{self.name}"


bool_ = DType("bool", "bool", False, 1, 0)
int32 = DType("int32", "int32", False, 4, 1)
int64 = DType("int64", "int64", False, 8, 2)
float16 = DType("float16", "float16", True, 2, 3, mantissa_bits=10)
float32 = DType("float32", "float32", True, 4, 4, mantissa_bits=23)
float64 = DType("float64", "float64", True, 8, 5, mantissa_bits=52)

# float16's rank: neither of the two 16-bit floats holds the other's values, so together they promote to float32
bfloat16 = DType("bfloat16", "bfloat16", True, 2, 3, mantissa_bits=7)

ALL = (bool_, int32, int64, float16, bfloat16, float32, float64)
_BY_NAME = {d.name: d for d in ALL}
NO_BFLOAT16 = ("bfloat16 needs the ml_dtypes package, which gives NumPy a bfloat16 type, and it is not installed: "
               'pip install "tinygrad_tx[bf16]" (or use tinygrad_tx.float16 or float32)')
_BY_NAME.update({"float": float32, "double": float64, "half": float16, "long": int64, "int": int32})

default_float = float32  # what Python floats and the float factories make; set_default_dtype changes it


def get_default_dtype():
    return default_float


def set_default_dtype(dtype):
    """The dtype of tensor(1.5), zeros(2), randn(2), and of an integer tensor's float results (as PyTorch)."""
    global default_float
    dtype = to_dtype(dtype)
    if dtype is None or not dtype.is_floating:
        raise TypeError(f"set_default_dtype: only floating point types can be the default, got {dtype}")
    default_float = dtype


def to_dtype(obj):
    """Accepts a DType, its name, a Python type or a NumPy dtype."""
    if obj is bfloat16:
        return require_bfloat16()
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
        return to_dtype(_BY_NAME[name])
    raise TypeError(f"unsupported dtype {obj!r}; supported: {', '.join(d.name for d in ALL)}")


def require_bfloat16():
    """bfloat16, where ml_dtypes is installed to store it; else the ImportError that says how to install it."""
    if ml_dtypes is None:
        raise ImportError(NO_BFLOAT16)
    return bfloat16


def promote(a, b):
    """Result type of a binary op between two tensor dtypes (PyTorch's rule: the higher category wins;
    float16 with bfloat16 is float32, the smallest type that holds both)."""
    if a.rank == b.rank and a is not b:
        return float32
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


class finfo:
    """The limits of a floating dtype, as torch.finfo (IEEE 754: 1 sign bit, the exponent, the mantissa)."""
    def __init__(self, dtype=None):
        # bfloat16's limits need no storage: finfo answers without ml_dtypes
        dtype = bfloat16 if getattr(dtype, "name", dtype) == "bfloat16" else to_dtype(dtype) or default_float
        if not dtype.is_floating:
            raise TypeError(f"finfo: expected a floating point dtype, got {dtype}; use iinfo for integer types")
        self.dtype = dtype.name
        self.bits = dtype.itemsize * 8
        mantissa = dtype.mantissa_bits
        max_exponent = 2 ** (self.bits - mantissa - 2)  # 16 for float16, 128 for float32, 1024 for float64
        self.eps = 2.0 ** -mantissa  # the gap between 1 and the next representable number
        self.max = (2 - self.eps) * 2.0 ** (max_exponent - 1)
        self.min = -self.max
        self.tiny = self.smallest_normal = 2.0 ** (2 - max_exponent)
        self.resolution = 10.0 ** -int(mantissa * math.log10(2))  # the decimal digits the mantissa holds

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """The limits of an integer dtype, as torch.iinfo."""
    def __init__(self, dtype):
        dtype = to_dtype(dtype)
        if dtype is None or dtype.is_floating or dtype is bool_:
            raise TypeError(f"iinfo: expected an integer dtype, got {dtype}; use finfo for floating point types")
        self.dtype = dtype.name
        self.bits = dtype.itemsize * 8
        self.max = 2 ** (self.bits - 1) - 1
        self.min = -2 ** (self.bits - 1)

    def __repr__(self):
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"
