"""Tensor: an array on a device, plus the links that autograd follows.

A tensor holds `array` (a NumPy or CuPy array, reached only through its backend),
and, when it was computed from tensors that require grad, `grad_fn`: the Function
node that made it. Every method below either reads the array or calls a Function.
"""
import copy
import warnings
import weakref
from collections import namedtuple
from contextlib import nullcontext

from . import dtype as dtypes
from .autograd.bfloat16_compute import computes_in_float32
from .autograd.function import AccumulateGrad, VersionCounter
from .autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from .amp import autocast_mode as _autocast
from .backend import devices, get_backend, normalize_device, pinned
from .ops import elementwise, indexing, matmul, movement, reduce
from .ops.activation import Gelu
from .ops.dims import broadcast_shape, count_over, normalize_dim, normalize_dims
from .ops.softmax import LogSoftmax, Softmax
from .size import Size

_DTYPE_OF_ARRAY = {d.numpy_name: d for d in dtypes.ALL}
_SCALARS = (int, float, bool)

_DTYPE_OF_ARRAY_DTYPE = {}  # the array module's dtype objects -> DType; reading .name each time is slow


def _dtype_of(array):
    dtype = _DTYPE_OF_ARRAY_DTYPE.get(array.dtype)
    if dtype is None:
        dtype = _DTYPE_OF_ARRAY_DTYPE[array.dtype] = _DTYPE_OF_ARRAY[array.dtype.name]
    return dtype


ValuesAndIndices = namedtuple("ValuesAndIndices", ["values", "indices"])

# the legacy type names, as Tensor.type() spells them
_TYPE_NAMES = {dtypes.float32: "FloatTensor", dtypes.float64: "DoubleTensor", dtypes.float16: "HalfTensor",
               dtypes.bfloat16: "BFloat16Tensor",
               dtypes.int64: "LongTensor", dtypes.int32: "IntTensor", dtypes.bool_: "BoolTensor"}
_DTYPE_OF_TYPE_NAME = {name: dtype for dtype, name in _TYPE_NAMES.items()}


class Tensor:
    __hash__ = object.__hash__  # == builds a tensor, so identity is the hash
    # a view whose grad_fn was made here (reading requires_grad, an op under no_grad) where PyTorch makes it only
    # when the view is used in an op that records the graph, or its is_leaf is read: to PyTorch's in-place check
    # it is still a leaf (see _refresh_view)
    _leaf_to_pytorch = False

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        dtype = dtypes.to_dtype(dtype)
        if isinstance(data, Tensor):
            device = device or data.device
            data = data.detach().to(device).array
        device = normalize_device(device)
        backend = get_backend(device)
        array = _as_backend_array(data, backend, dtype)
        self._init(array, device, backend)
        if requires_grad:
            self.requires_grad_()

    @classmethod
    def _make(cls, array, device, requires_grad=False, grad_fn=None):
        """Wrap an array that ops produced (no checks: the hot path)."""
        tensor = cls.__new__(cls)
        backend = get_backend(device)
        if not isinstance(array, backend.array_type):  # NumPy reductions can return scalars
            array = backend.asarray(array)
        tensor._init(array, device, backend)
        tensor._requires_grad = requires_grad
        tensor.grad_fn = grad_fn
        return tensor

    def _init(self, array, device, backend):
        self.array = array
        self.device = device if type(device) is devices.device else normalize_device(device)  # 'cpu' -> device('cpu')
        self.backend = backend
        self.dtype = _dtype_of(array)
        self._requires_grad = False
        self.grad = None
        self.grad_fn = None
        self._version = VersionCounter()
        self._hooks = []
        self._post_accumulate_grad_hooks = []
        self._retains_grad = False
        self._accumulator = None
        self._base = None  # for a view: the tensor that owns the memory, and the ops that made the view from it
        self._view_chain = ()
        self._view_version = 0  # the version of the memory when this view's grad_fn was made
        self._view_made_without_grad = False

    # --- what a tensor is -----------------------------------------------------------------------------
    @property
    def shape(self):
        return Size(self.array.shape)

    @property
    def ndim(self):
        return self.array.ndim

    def dim(self):
        return self.array.ndim

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[normalize_dim(dim, self.ndim, "size")]

    def numel(self):
        return int(self.array.size)

    def element_size(self):
        return self.dtype.itemsize

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def is_leaf(self):
        if self._base is not None and (self._view_version != self._version.value or self._leaf_to_pytorch):
            self._refresh_view(used=True)  # PyTorch's is_leaf makes a view's grad_fn, as reading its grad_fn does
        return self.grad_fn is None

    @property
    def is_cuda(self):
        return self.device.startswith("cuda")

    @property
    def requires_grad(self):
        if self._base is not None and self._view_version != self._version.value:
            self._refresh_view()
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    @property
    def data(self):
        """The values without the graph (shares memory), as PyTorch's .data."""
        return Tensor._make(self.array, self.device)

    @data.setter
    def data(self, value):
        """Swap the values (possibly for another device or dtype), keeping this object and its grad flag."""
        self.array, self.device, self.backend, self.dtype = value.array, value.device, value.backend, value.dtype
        self._version.value += 1

    def __repr__(self):
        values = self.backend.to_numpy(self.array)
        body = _array_string(values)
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.dtype not in (dtypes.default_float, dtypes.int64, dtypes.bool_):  # PyTorch names only the others
            extras.append(f"dtype=tinygrad_tx.{self.dtype.name}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __format__(self, format_spec):
        if self.ndim == 0:  # a 0-d tensor formats as its number: f"{loss:.4f}" (as PyTorch)
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

    # --- getting values out ------------------------------------------------------------------------------
    def numpy(self):
        """The values as a NumPy array (a copy when the tensor lives on a GPU)."""
        if self.requires_grad:
            raise RuntimeError("numpy(): the tensor requires grad; call tensor.detach().numpy()")
        return self.backend.to_numpy(self.array)

    def item(self):
        if self.numel() != 1:
            raise ValueError("item(): only a one-element tensor converts to a Python number, got shape "
                             f"{tuple(self.shape)}")
        return self.backend.to_numpy(self.array).reshape(()).item()

    def tolist(self):
        return self.backend.to_numpy(self.array).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.is_floating or self.numel() != 1:
            raise TypeError(f"only one-element integer tensors can be used as an index, got {self.dtype} "
                            f"{tuple(self.shape)}")
        return int(self.item())

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"the truth value of a tensor with {self.numel()} elements is ambiguous; "
                               "use .any() or .all()")
        return bool(self.item())

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    # --- device and dtype ------------------------------------------------------------------------------------
    def to(self, *args, **kwargs):
        """to(device), to(dtype), to(device, dtype), to(other_tensor); non_blocking= is accepted (copies between
        devices are synchronous), copy=True returns a new tensor even when nothing changes."""
        device, dtype, _, copy = to_arguments(args, kwargs)
        result = self
        if device is not None and normalize_device(device) != self.device:
            result = movement.ToDevice.apply(result, normalize_device(device))
        dtype = dtypes.to_dtype(dtype)
        if dtype is not None and dtype is not result.dtype:
            result = elementwise.Cast.apply(result, dtype)
        return self.clone() if copy and result is self else result

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None, non_blocking=False):
        return self.to(devices.cuda_device(device))

    def get_device(self):
        """The CUDA device index, or -1 on the CPU (as PyTorch)."""
        return -1 if self.device.index is None else self.device.index

    def pin_memory(self):
        """A copy in page-locked host memory, which a GPU copies from faster (self if it is there already);
        as PyTorch, only where a GPU is."""
        if self.device.type != "cpu":
            raise RuntimeError(f"pin_memory: cannot pin a tensor on {self.device}: only CPU tensors can be pinned")
        return self if self.is_pinned() else movement.PinMemory.apply(self)

    def is_pinned(self):
        return pinned.is_pinned(self.array)

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    def half(self):
        return self.to(dtypes.float16)

    def bfloat16(self):
        return self.to(dtypes.bfloat16)

    def long(self):
        return self.to(dtypes.int64)

    def int(self):
        return self.to(dtypes.int32)

    def bool(self):
        return self.to(dtypes.bool_)

    def type_as(self, other):
        return self.to(other.dtype)

    def type(self, dtype=None):
        """type() -> the legacy type name ('tinygrad_tx.FloatTensor'); type(dtype or such a name) -> a cast."""
        if dtype is None:
            return ("tinygrad_tx.cuda." if self.is_cuda else "tinygrad_tx.") + _TYPE_NAMES[self.dtype]
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            name = dtype.rsplit(".", 1)[-1]
            if name not in _DTYPE_OF_TYPE_NAME:
                raise ValueError(f"type: unknown tensor type {dtype!r}; known: {', '.join(_DTYPE_OF_TYPE_NAME)}")
            return self.to("cuda" if ".cuda." in dtype else "cpu", _DTYPE_OF_TYPE_NAME[name])
        return self.to(dtypes.to_dtype(dtype))

    def is_floating_point(self):
        return self.dtype.is_floating

    # --- autograd ---------------------------------------------------------------------------------------------
    def requires_grad_(self, requires_grad=True):
        if not self.is_leaf and requires_grad:
            return self  # a result in the graph already requires grad: nothing changes (as PyTorch)
        if not self.is_leaf:
            raise RuntimeError("requires_grad_: only leaf tensors can change requires_grad; "
                               "use detach() to make a new leaf from this result")
        if requires_grad and not self.dtype.is_floating:
            raise RuntimeError(f"requires_grad_: only floating point tensors can require gradients, got {self.dtype}")
        self._requires_grad = bool(requires_grad)
        return self

    def detach(self):
        """The same values (shared memory) as a new leaf outside the graph."""
        detached = Tensor._make(self.array, self.device)
        detached._version = self._version
        return detached

    def detach_(self):
        self.grad_fn = None
        self._requires_grad = False
        return self

    def retain_grad(self):
        """Keep .grad for a non-leaf tensor after backward (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: the tensor does not require grad")
        self._retains_grad = True

    def register_hook(self, hook):
        """hook(grad) -> new grad or None, called when the gradient for this tensor is computed."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does not require grad")
        self._hooks.append(hook)
        return _HookHandle(self._hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor) -> None, called on a leaf after backward has added a gradient into its .grad
        (DistributedDataParallel starts averaging a gradient there, while backward goes on)."""
        if not self.is_leaf:
            raise RuntimeError("register_post_accumulate_grad_hook: post accumulate grad hooks cannot be registered "
                               f"on a tensor that is not a leaf (this one was made by {self.grad_fn.name})")
        if not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: cannot register a hook on a tensor that does not "
                               "require grad")
        self._post_accumulate_grad_hooks.append(hook)
        return _HookHandle(self._post_accumulate_grad_hooks, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        from .autograd import backward
        backward(self, gradient, retain_graph, create_graph)

    def _grad_accumulator(self):
        accumulator = self._accumulator() if self._accumulator is not None else None
        if accumulator is None:
            accumulator = AccumulateGrad(self)
            self._accumulator = weakref.ref(accumulator)
        return accumulator

    # --- pickling and copying ------------------------------------------------------------------------------------
    def __reduce_ex__(self, protocol):
        """pickle keeps the class (a Parameter stays one), values, dtype, device and requires_grad; as in
        PyTorch, not .grad or the graph: an unpickled tensor is a leaf. Tensors sharing one array (x and
        x.detach()) share it again after unpickling, with their version counter."""
        return _rebuild_tensor, (type(self), self.backend.to_numpy(self.array), self.device, self.requires_grad,
                                 self._version)

    def __deepcopy__(self, memo):
        """copy.deepcopy, as PyTorch: new memory with the same values, device and requires_grad, and a deep
        copy of .grad. Through the memo, an object reached twice is copied once (tied weights stay tied)
        and tensors sharing one array share its copy. A view is copied as a tensor of its own."""
        if not self.is_leaf:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support the deepcopy "
                               f"protocol at the moment; this one was made by {self.grad_fn.name} "
                               "(deepcopy x.detach() to copy its values)")
        array = memo.get(id(self.array))
        if array is None:
            array = memo[id(self.array)] = self.backend.copy(self.array)
            memo.setdefault(id(memo), []).append(self.array)  # as copy._keep_alive: the id stays this array's
        copied = type(self).__new__(type(self))
        copied._init(array, self.device, self.backend)
        copied._version = copy.deepcopy(self._version, memo)
        copied._requires_grad = self._requires_grad
        memo[id(self)] = copied
        copied.grad = copy.deepcopy(self.grad, memo)
        return copied

    # --- creating tensors like this one --------------------------------------------------------------------------
    def new_zeros(self, shape, dtype=None):
        return self.new_full(shape, 0, dtype)

    def new_ones(self, shape, dtype=None):
        return self.new_full(shape, 1, dtype)

    def new_full(self, shape, value, dtype=None):
        dtype = dtypes.to_dtype(dtype) or self.dtype
        return Tensor._make(self.backend.full(_shape_arg(shape), value, dtype), self.device)

    def new_tensor(self, data, dtype=None):
        return Tensor(data, dtype=dtype or self.dtype, device=self.device)

    def new_empty(self, *size, dtype=None):
        return self.new_full(_shape_arg(size), 0, dtype)  # zero-filled, as empty()

    def clone(self):
        return movement.Copy.apply(self, True)

    # --- arithmetic ---------------------------------------------------------------------------------------------------
    def _binary(self, other, function, op_name, reverse=False, floating=False):
        a, b = _operands(self, other, op_name, floating)
        return function.apply(b, a) if reverse else function.apply(a, b)

    def add(self, other, alpha=1):
        return self._binary(other * alpha if alpha != 1 else other, elementwise.Add, "add")

    def sub(self, other, alpha=1):
        _refuse_bool(self, other, "sub")
        return self._binary(other * alpha if alpha != 1 else other, elementwise.Sub, "sub")

    def mul(self, other):
        return self._binary(other, elementwise.Mul, "mul")

    def div(self, other, rounding_mode=None):
        if rounding_mode == "floor":
            return self.floor_divide(other)
        if rounding_mode == "trunc":
            a, b = _operands(self, other, "div", floating=False)
            # an integer quotient stays exact: a - fmod(a, b) is a multiple of b
            return (a / b).trunc() if a.dtype.is_floating else (a - a.fmod(b)).floor_divide(b)
        if rounding_mode is not None:
            raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
        return self._binary(other, elementwise.Div, "div", floating=True)

    __add__ = add
    __sub__ = sub
    __mul__ = mul
    __truediv__ = div

    def __radd__(self, other):
        return self._binary(other, elementwise.Add, "add", reverse=True)

    def __rsub__(self, other):
        _refuse_bool(self, other, "sub")
        return self._binary(other, elementwise.Sub, "sub", reverse=True)

    def __rmul__(self, other):
        return self._binary(other, elementwise.Mul, "mul", reverse=True)

    def __rtruediv__(self, other):
        if isinstance(other, _SCALARS):  # other / x = other * (1 / x): the reciprocal keeps its output, not x
            return self.reciprocal() * other
        return self._binary(other, elementwise.Div, "div", reverse=True, floating=True)

    def reciprocal(self):
        return elementwise.Reciprocal.apply(self._floating())

    def neg(self):
        _refuse_bool(self, None, "neg")
        return elementwise.Neg.apply(self)

    __neg__ = negative = neg

    # --- //, % and fmod: PyTorch's floor semantics ------------------------------------------------------------------------
    def _division(self, other, function, op_name, reverse=False):
        a, b = _operands(self, other, op_name, floating=False)
        if reverse:
            a, b = b, a
        if a.dtype is dtypes.bool_:
            raise RuntimeError(f"{op_name}: not implemented for bool tensors (shapes {tuple(a.shape)} and "
                               f"{tuple(b.shape)})")
        if not a.dtype.is_floating and self.backend.any(b.array == 0):
            raise RuntimeError(f"{op_name}: ZeroDivisionError: integer division by zero (shapes {tuple(a.shape)} "
                               f"and {tuple(b.shape)})")
        return function.apply(a, b)

    def floor_divide(self, other):
        """self // other, rounded toward -inf (-7 // 2 == -4), as Python and PyTorch."""
        return self._division(other, elementwise.FloorDivide, "floor_divide")

    def __rfloordiv__(self, other):
        return self._division(other, elementwise.FloorDivide, "floor_divide", reverse=True)

    def remainder(self, other):
        """self % other, with the sign of other (-7 % 2 == 1), as Python and PyTorch."""
        return self._division(other, elementwise.Remainder, "remainder")

    def __rmod__(self, other):
        return self._division(other, elementwise.Remainder, "remainder", reverse=True)

    def fmod(self, other):
        """The remainder with the sign of self (fmod(-7, 2) == -1), as C."""
        return self._division(other, elementwise.Fmod, "fmod")

    __floordiv__, __mod__ = floor_divide, remainder

    def pow(self, exponent):
        if isinstance(exponent, _SCALARS):
            base = self if self.dtype.is_floating or isinstance(exponent, int) else self.to(dtypes.default_float)
            if not base.dtype.is_floating and exponent < 0:
                raise RuntimeError(f"pow: an integer tensor ({base.dtype}) to a negative integer power ({exponent}) "
                                   "is not an integer; use .float() first")
            return elementwise.PowScalar.apply(base, exponent)
        return self._binary(exponent, elementwise.Pow, "pow")

    __pow__ = pow

    def __rpow__(self, base):
        return self._binary(base, elementwise.Pow, "pow", reverse=True)

    def matmul(self, other):
        if not isinstance(other, Tensor):
            raise TypeError(f"matmul: expected a Tensor, got {type(other).__name__}")
        if _autocast._active:  # inside an autocast region: the product runs in half precision
            self, other = _autocast.cast_to_half(self, other)
        if self.ndim == 0 or other.ndim == 0:
            raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes {tuple(self.shape)} and "
                               f"{tuple(other.shape)}")
        if self.dtype is not other.dtype:
            raise RuntimeError(f"matmul: expected both operands to have the same dtype, got {self.dtype} "
                               f"{tuple(self.shape)} and {other.dtype} {tuple(other.shape)}")
        a = self.unsqueeze(0) if self.ndim == 1 else self
        b = other.unsqueeze(-1) if other.ndim == 1 else other
        if a.shape[-1] != b.shape[-2]:
            raise RuntimeError(f"matmul: shapes {tuple(self.shape)} and {tuple(other.shape)} cannot be multiplied "
                               f"({a.shape[-1]} != {b.shape[-2]})")
        try:
            broadcast_shape("matmul", a.shape[:-2], b.shape[:-2])
        except RuntimeError:
            raise RuntimeError(f"matmul: the batch dimensions of shapes {tuple(self.shape)} and {tuple(other.shape)} "
                               "cannot be broadcast together") from None
        if is_grad_enabled() and (self.requires_grad or other.requires_grad):
            # an operand PyTorch's matmul copies before multiplying is saved as that copy: it may then be edited in
            # place after the forward. Each operand is saved only for the other's gradient.
            copied_a, copied_b = matmul.pytorch_copies(matmul.Layout.of(self), matmul.Layout.of(other))
            a = movement.Copy.apply(a, False) if copied_a and other.requires_grad else a
            b = movement.Copy.apply(b, False) if copied_b and self.requires_grad else b
        out = matmul.Matmul.apply(a, b)
        if self.ndim == 1:
            out = out.squeeze(-2)._not_a_view()
        if other.ndim == 1:
            out = out.squeeze(-1)._not_a_view()
        return out

    __matmul__ = matmul

    def __rmatmul__(self, other):
        return Tensor(other, device=self.device, dtype=self.dtype).matmul(self)

    def mm(self, other):
        """The product of two matrices: unlike matmul, no 1-D operands and no batch."""
        _check_product_shapes(self, other, 2, "mm")
        return self.matmul(other)

    def bmm(self, other):
        """The products of two batches of matrices of one batch size (no broadcasting)."""
        _check_product_shapes(self, other, 3, "bmm")
        return self.matmul(other)

    # --- comparisons and logic (no gradient) -------------------------------------------------------------------------------
    def _compare(self, other, compare, op_name):
        a, b = _operands(self, other, op_name, floating=False)
        if b.dtype is not a.dtype:  # a number beside a bfloat16 tensor: compared as a bfloat16, as PyTorch does
            b = b.to(a.dtype)
        return Tensor._make(compare(a.array, b.array), self.device)

    def eq(self, other):
        return self._compare(other, lambda a, b: a == b, "eq")

    def ne(self, other):
        return self._compare(other, lambda a, b: a != b, "ne")

    def lt(self, other):
        return self._compare(other, lambda a, b: a < b, "lt")

    def le(self, other):
        return self._compare(other, lambda a, b: a <= b, "le")

    def gt(self, other):
        return self._compare(other, lambda a, b: a > b, "gt")

    def ge(self, other):
        return self._compare(other, lambda a, b: a >= b, "ge")

    __eq__, __ne__, __lt__, __le__, __gt__, __ge__ = eq, ne, lt, le, gt, ge

    def _logical(self, other, combine, op_name):
        a, b = _operands(self, other, op_name, floating=False)
        if a.dtype.is_floating:
            raise TypeError(f"{op_name}: expected bool or integer tensors, got {a.dtype}")
        return Tensor._make(combine(a.array, b.array), self.device)

    def __and__(self, other):
        return self._logical(other, lambda a, b: a & b, "and")

    def __or__(self, other):
        return self._logical(other, lambda a, b: a | b, "or")

    def __xor__(self, other):
        return self._logical(other, lambda a, b: a ^ b, "xor")

    def __invert__(self):
        if self.dtype.is_floating:
            raise TypeError(f"invert (~): expected a bool or integer tensor, got {self.dtype}")
        return Tensor._make(~self.array, self.device)

    def logical_not(self):
        return Tensor._make(self.backend.logical_not(self.array), self.device)

    def isfinite(self):
        return Tensor._make(self.backend.isfinite(self.array), self.device)

    def isnan(self):
        return Tensor._make(self.backend.isnan(self.array), self.device)

    def isinf(self):
        return Tensor._make(self.backend.isinf(self.array), self.device)

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """|self - other| <= atol + rtol * |other| elementwise; equal infinities are close, NaN only with equal_nan."""
        if not isinstance(other, Tensor):
            raise TypeError(f"isclose: expected a Tensor, got {type(other).__name__}")
        if self.dtype is not other.dtype:
            raise RuntimeError(f"isclose: expected both inputs to have the same dtype, got {self.dtype} "
                               f"{tuple(self.shape)} and {other.dtype} {tuple(other.shape)}")
        broadcast_shape("isclose", self.shape, other.shape)
        return Tensor._make(self.backend.isclose(self.array, other.array, rtol, atol, equal_nan), self.device)

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return bool(self.isclose(other, rtol, atol, equal_nan).all())

    def equal(self, other):
        """True if both have the same shape and elements (a Python bool, as PyTorch)."""
        return self.shape == other.shape and bool(self.eq(other).all())

    def sign(self):
        return Tensor._make(self.backend.sign(self.array), self.device)

    def all(self):
        return Tensor._make(self.array.all(), self.device)

    def any(self):
        return Tensor._make(self.array.any(), self.device)

    # --- pointwise math -----------------------------------------------------------------------------------------------------
    def _floating(self):
        return self if self.dtype.is_floating else self.to(dtypes.default_float)

    def exp(self):
        return elementwise.Exp.apply(self._floating())

    def log(self):
        return elementwise.Log.apply(self._floating())

    def sqrt(self):
        return elementwise.Sqrt.apply(self._floating())

    def rsqrt(self):
        return elementwise.Rsqrt.apply(self._floating())

    def tanh(self):
        return elementwise.Tanh.apply(self._floating())

    def sigmoid(self):
        return elementwise.Sigmoid.apply(self._floating())

    def relu(self):
        return elementwise.Relu.apply(self)

    def gelu(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        return Gelu.apply(self._floating(), approximate)

    def erf(self):
        return elementwise.Erf.apply(self._floating())

    def abs(self):
        return elementwise.Abs.apply(self)

    def sin(self):
        return elementwise.Sin.apply(self._floating())

    def cos(self):
        return elementwise.Cos.apply(self._floating())

    def square(self):
        return self * self

    def exp2(self):
        return elementwise.Exp2.apply(self._floating())

    def expm1(self):
        return elementwise.Expm1.apply(self._floating())

    def log2(self):
        return elementwise.Log2.apply(self._floating())

    def log1p(self):
        return elementwise.Log1p.apply(self._floating())

    def _rounded(self, function):
        # an integer is its own floor, ceil, round and trunc (a copy, as PyTorch)
        return function.apply(self) if self.dtype.is_floating else self.clone()

    def floor(self):
        return self._rounded(elementwise.Floor)

    def ceil(self):
        return self._rounded(elementwise.Ceil)

    def round(self, decimals=0):
        """To the nearest integer, halves to even; decimals > 0 rounds to that many decimal places, as PyTorch."""
        if decimals:
            scale = 10.0 ** decimals
            return (self * scale)._rounded(elementwise.Round) / scale
        return self._rounded(elementwise.Round)

    def trunc(self):
        return self._rounded(elementwise.Trunc)

    def frac(self):
        return self - self.trunc()

    def lerp(self, end, weight):
        """self + weight * (end - self): linear interpolation (an exponential moving average when used in place)."""
        return self + weight * (end - self)

    def addcmul(self, tensor1, tensor2, value=1):
        return self + tensor1 * tensor2 * value if value != 1 else self + tensor1 * tensor2

    def addcdiv(self, tensor1, tensor2, value=1):
        return self + tensor1 / tensor2 * value if value != 1 else self + tensor1 / tensor2

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            result = self if min is None else self.maximum(min)
            return result if max is None else result.minimum(max)
        # a float bound makes an integer tensor's result float32, as with any Python float (PyTorch's rule)
        floating_bound = isinstance(min, float) or isinstance(max, float)
        x = self.to(dtypes.default_float) if floating_bound and not self.dtype.is_floating else self
        return elementwise.Clamp.apply(x, min, max)

    clip = clamp

    def clamp_min(self, min):
        return self.clamp(min=min)

    def clamp_max(self, max):
        return self.clamp(max=max)

    def maximum(self, other):
        return self._binary(other, elementwise.Maximum, "maximum")

    def minimum(self, other):
        return self._binary(other, elementwise.Minimum, "minimum")

    def where(self, condition, other):
        """condition ? self : other (PyTorch's x.where(condition, y))."""
        return where(condition, self, other)

    def masked_fill(self, mask, value):
        result = where(mask, _scalar_like(value, self) if isinstance(value, _SCALARS) else value, self)
        return result.contiguous()  # PyTorch's masked_fill is C-contiguous whatever the input's layout

    def tril(self, diagonal=0):
        return self._triangle(diagonal, self.backend.tril, "tril")

    def triu(self, diagonal=0):
        return self._triangle(diagonal, self.backend.triu, "triu")

    def _triangle(self, diagonal, keep, op_name):
        if self.ndim < 2:
            raise RuntimeError(f"{op_name}: expected a tensor with at least 2 dimensions, got shape "
                               f"{tuple(self.shape)}")
        mask = keep(self.backend.full(self.shape[-2:], True, dtypes.bool_), diagonal)
        return self.masked_fill(~Tensor._make(mask, self.device), 0)

    # --- reductions -----------------------------------------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, dtype=None):
        x = self.to(dtype) if dtype is not None else self
        if dtype is None and (x.dtype is dtypes.bool_ or x.dtype is dtypes.int32):
            x = x.to(dtypes.int64)  # PyTorch sums bools and int32 as int64, unless told the dtype
        return reduce.Sum.apply(x, normalize_dims(dim, x.ndim, "sum"), keepdim)

    def cumsum(self, dim, dtype=None):
        """Running sums along dim; integers and bools sum as int64 unless dtype says otherwise (as PyTorch)."""
        x = self.to(dtype) if dtype is not None else self
        if dtype is None and not x.dtype.is_floating:
            x = x.to(dtypes.int64)
        dim = normalize_dim(dim, x.ndim, "cumsum")
        if x.ndim == 0:
            return reduce.Cumsum.apply(x.reshape(1), 0).reshape(())._not_a_view()
        return reduce.Cumsum.apply(x, dim)

    @computes_in_float32
    def mean(self, dim=None, keepdim=False):
        if not self.dtype.is_floating:
            raise RuntimeError(f"mean: expected a floating point tensor, got {self.dtype}; use .float() first")
        dims = normalize_dims(dim, self.ndim, "mean")
        count = count_over(self.shape, dims)
        return self.sum(dims, keepdim) * (1 / count if count else float("nan"))

    @computes_in_float32
    def var(self, dim=None, unbiased=None, keepdim=False, correction=None):
        """Variance with Bessel's correction by default (correction=1), as PyTorch."""
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        dims = normalize_dims(dim, self.ndim, "var")
        count = count_over(self.shape, dims)
        x = movement.CheckUnchanged.apply(self)  # PyTorch's var reads its input in backward: the same guard here
        centered = x - x.mean(dims, keepdim=True)
        return (centered * centered).sum(dims, keepdim) / max(count - correction, 0)

    @computes_in_float32
    def std(self, dim=None, unbiased=None, keepdim=False, correction=None):
        return elementwise.StdFromVar.apply(self.var(dim, unbiased, keepdim, correction))

    @computes_in_float32
    def norm(self, p="fro", dim=None, keepdim=False):
        """The vector p-norm over dim (every element when None), as torch.norm: p a number, inf, -inf or 'fro' (2)."""
        if not self.dtype.is_floating:
            raise RuntimeError(f"norm: expected a floating point tensor, got {self.dtype}; use .float() first")
        dims = normalize_dims(dim, self.ndim, "norm")
        if p in ("fro", 2):
            # the sqrt whose gradient is 0, not NaN, where every element is 0 (PyTorch's norm backward masks it too)
            return elementwise.StdFromVar.apply((self * self).sum(dims, keepdim))
        if not isinstance(p, (int, float)):
            raise ValueError(f"norm: p must be a number, inf, -inf or 'fro', got {p!r}")
        if p == float("inf"):
            return self.abs().amax(dims, keepdim)
        if p == -float("inf"):
            return self.abs().amin(dims, keepdim)
        if p == 0:  # the count of non-zero elements
            return (self != 0).to(self.dtype).sum(dims, keepdim)
        if p == 1:
            return self.abs().sum(dims, keepdim)
        return (self.abs() ** p).sum(dims, keepdim) ** (1 / p)

    def amax(self, dim=None, keepdim=False):
        return self._extreme(reduce.Amax, dim, keepdim, "amax")

    def amin(self, dim=None, keepdim=False):
        return self._extreme(reduce.Amin, dim, keepdim, "amin")

    def _extreme(self, function, dim, keepdim, op_name):
        dims = normalize_dims(dim, self.ndim, op_name)
        _refuse_empty_reduction(self, dims, op_name)
        return function.apply(self, dims, keepdim)

    def max(self, dim=None, keepdim=False):
        """max() -> the maximum (ties share the gradient); max(dim) -> (values, indices); max(tensor) -> maximum."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        if dim is None:
            return self.amax()
        if self.ndim == 0:  # a 0-d tensor is its own maximum, at index 0 (as PyTorch)
            return self._scalar_extreme(dim, "max")
        indices = self.argmax(normalize_dim(dim, self.ndim, "max"), keepdim=True)
        return self._values_at(indices, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        if dim is None:
            return self.amin()
        if self.ndim == 0:
            return self._scalar_extreme(dim, "min")
        indices = self.argmin(normalize_dim(dim, self.ndim, "min"), keepdim=True)
        return self._values_at(indices, dim, keepdim)

    def _scalar_extreme(self, dim, op_name):
        normalize_dim(dim, 0, op_name)
        values, indices = getattr(self.reshape(1), op_name)(0)
        return ValuesAndIndices(values, indices)

    def _values_at(self, indices, dim, keepdim):
        values = indexing.SelectAlong.apply(self, normalize_dim(dim, self.ndim, "max"), indices)
        if not keepdim:
            values, indices = values.squeeze(dim)._not_a_view(), indices.squeeze(dim)
        return ValuesAndIndices(values, indices)

    def argmax(self, dim=None, keepdim=False):
        return self._arg_extreme(self.backend.argmax, dim, keepdim, "argmax")

    def argmin(self, dim=None, keepdim=False):
        return self._arg_extreme(self.backend.argmin, dim, keepdim, "argmin")

    def _arg_extreme(self, find, dim, keepdim, op_name):
        _refuse_empty_reduction(self, normalize_dims(dim, self.ndim, op_name), op_name)
        if dim is None:  # the index into the flattened tensor; keepdim keeps every dim, of size 1
            flat_index = find(self.array.reshape(-1), 0, False).astype("int64")
            return Tensor._make(flat_index.reshape((1,) * self.ndim if keepdim else ()), self.device)
        axis = normalize_dim(dim, self.ndim, op_name)
        return Tensor._make(find(self.array, axis, keepdim).astype("int64"), self.device)

    @computes_in_float32
    def logsumexp(self, dim, keepdim=False):
        dims = normalize_dims(dim, self.ndim, "logsumexp")
        self = movement.CheckUnchanged.apply(self)  # PyTorch's logsumexp reads its input and output in backward
        if count_over(self.shape, dims) == 0:  # a sum of no exponentials: log 0 = -inf, as PyTorch
            shift = self.new_zeros(tuple(1 if i in dims else n for i, n in enumerate(self.shape)))
        else:
            shift = self.amax(dims, keepdim=True).detach()
        shift = shift.masked_fill(~shift.isfinite(), 0)  # an all -inf (or +inf) row: avoid inf - inf = NaN
        out = (self - shift).exp().sum(dim, keepdim=True).log() + shift
        return movement.CheckUnchanged.apply(out if keepdim else out.squeeze(dim))._not_a_view()

    def softmax(self, dim):
        (x,) = _autocast.cast_to_float32("softmax", self)  # autocast on a GPU: the sum of exponentials in float32
        return Softmax.apply(x._floating(), normalize_dim(dim, self.ndim, "softmax"))

    def log_softmax(self, dim):
        (x,) = _autocast.cast_to_float32("log_softmax", self)
        return LogSoftmax.apply(x._floating(), normalize_dim(dim, self.ndim, "log_softmax"))

    # --- shape -------------------------------------------------------------------------------------------------------------------
    def reshape(self, *shape):
        # always a new tensor, even for the same shape: a view made under no_grad must not carry the graph
        return movement.Reshape.apply(self, _resolve_shape(_shape_arg(shape), self.numel(), self.shape, "reshape"))

    def view(self, *shape):
        result = self.reshape(*shape)
        if result.numel() and not self.backend.is_view_of(result.array, self.array):
            raise RuntimeError(f"view: size {tuple(result.shape)} is not compatible with the input's size and "
                               f"stride (shape {tuple(self.shape)}, not contiguous); use .reshape(...) instead")
        return result

    def view_as(self, other):
        return self.reshape(other.shape)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def permute(self, *dims):
        dims = _shape_arg(dims)
        if sorted(normalize_dim(d, self.ndim, "permute") for d in dims) != list(range(self.ndim)):
            raise RuntimeError(f"permute: dims {dims} are not a permutation of the {self.ndim} dimensions of a "
                               f"tensor of shape {tuple(self.shape)}")
        return movement.Permute.apply(self, tuple(d % self.ndim for d in dims))

    def transpose(self, dim0, dim1):
        dims = list(range(self.ndim))
        a, b = normalize_dim(dim0, self.ndim, "transpose"), normalize_dim(dim1, self.ndim, "transpose")
        if dims:  # a 0-d tensor has nothing to swap
            dims[a], dims[b] = dims[b], dims[a]
        return movement.Permute.apply(self, tuple(dims))

    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"t: expects a tensor with at most 2 dimensions, got shape {tuple(self.shape)}; "
                               "use transpose")
        return self.transpose(0, -1) if self.ndim else self

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        if self.ndim == 0:
            warnings.warn("Tensor.mT is deprecated on 0-D tensors; it returns the tensor itself", UserWarning, 2)
            return self
        if self.ndim == 1:
            raise RuntimeError("mT: only supported on matrices or batches of matrices, got a 1-D tensor of shape "
                               f"{tuple(self.shape)}; use .T or unsqueeze first")
        return self.transpose(-2, -1)

    def expand(self, *shape):
        shape = _shape_arg(shape)
        if len(shape) < self.ndim:
            raise RuntimeError(f"expand: target shape {shape} has fewer dimensions than the tensor's "
                               f"{tuple(self.shape)}")
        leading = len(shape) - self.ndim
        if -1 in shape[:leading]:
            raise RuntimeError(f"expand: -1 in {shape} names a new leading dimension of the tensor of shape "
                               f"{tuple(self.shape)}; only existing dimensions can keep their size with -1")
        target = tuple(self.shape[i - leading] if n == -1 else n for i, n in enumerate(shape))
        for i, n in enumerate(self.shape):
            if n != 1 and n != target[leading + i]:
                raise RuntimeError(f"expand: cannot expand shape {tuple(self.shape)} to {shape} (dimension {i} is {n})")
        return movement.Expand.apply(self, target)

    def expand_as(self, other):
        return self.expand(other.shape)

    def unsqueeze(self, dim):
        dim = normalize_dim(dim, self.ndim + 1, "unsqueeze")
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        if not isinstance(dim, int) and len(dim) == 0:
            return self.view(self.shape)  # squeeze(()) names no dimension (normalize_dims would read it as all)
        dims = normalize_dims(dim, self.ndim, "squeeze")
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in dims and n == 1)))

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start = normalize_dim(start_dim, self.ndim, "flatten")
        end = normalize_dim(end_dim, self.ndim, "flatten")
        if start == end:
            return self  # nothing to merge: the tensor itself, as PyTorch
        merged = count_over(self.shape, range(start, end + 1))  # not -1: ambiguous when a dim is 0
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1:])

    def contiguous(self):
        if self.array.flags.c_contiguous:
            return self
        return movement.Copy.apply(self, False)

    def is_contiguous(self):
        return bool(self.array.flags.c_contiguous)

    def split(self, split_size_or_sections, dim=0):
        dim = normalize_dim(dim, self.ndim, "split")
        length = self.shape[dim]
        if isinstance(split_size_or_sections, int):
            if split_size_or_sections <= 0:
                raise ValueError(f"split: split size must be positive, got {split_size_or_sections}")
            sizes = [split_size_or_sections] * (length // split_size_or_sections)
            if length % split_size_or_sections or length == 0:  # an empty dim splits into one empty piece
                sizes.append(length % split_size_or_sections)
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != length:
                raise RuntimeError(f"split: sizes {sizes} do not add up to {length}, the size of dim {dim} of a "
                                   f"tensor of shape {tuple(self.shape)}")
        pieces, start = [], 0
        for size in sizes:
            index = (slice(None),) * dim + (slice(start, start + size),)
            pieces.append(self[index])
            start += size
        return tuple(pieces)

    def chunk(self, chunks, dim=0):
        length = self.shape[normalize_dim(dim, self.ndim, "chunk")]
        if length == 0:  # PyTorch: `chunks` empty pieces
            return self.split([0] * chunks, dim)
        return self.split(-(-length // chunks), dim)

    def unbind(self, dim=0):
        """The slices along dim, as a tuple of views: x.unbind(0) == (x[0], x[1], ...)."""
        _refuse_zero_dim(self, dim, "unbind")
        dim = normalize_dim(dim, self.ndim, "unbind")
        return tuple(self[(slice(None),) * dim + (i,)] for i in range(self.shape[dim]))

    def flip(self, *dims):
        """The elements in reverse order along each of dims (a copy)."""
        dims = _shape_arg(dims)
        normalized = tuple(normalize_dim(d, self.ndim, "flip") for d in dims)
        if len(set(normalized)) != len(normalized):
            raise RuntimeError(f"flip: dims {dims} name a dimension twice (tensor of shape {tuple(self.shape)})")
        return movement.Flip.apply(self, normalized if self.ndim else ())

    def roll(self, shifts, dims=None):
        """Shift the elements along dims, wrapping around; with dims None, along the flattened tensor."""
        shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
        if dims is None:
            if len(shifts) != 1:
                raise RuntimeError(f"roll: without dims, shifts must be one number, got {shifts}")
            return movement.Roll.apply(self, shifts[0], None)
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        if len(shifts) != len(dims):
            raise RuntimeError(f"roll: shifts {shifts} and dims {dims} must have the same length")
        for d in dims:
            _refuse_zero_dim(self, d, "roll")
        return movement.Roll.apply(self, shifts, tuple(normalize_dim(d, self.ndim, "roll") for d in dims))

    def repeat(self, *sizes):
        """Tile the tensor: x.repeat(2, 3) stacks 2 copies along dim 0 and 3 along dim 1 (new leading dims first)."""
        sizes = _shape_arg(sizes)
        if len(sizes) < self.ndim or any(n < 0 for n in sizes):
            raise RuntimeError(f"repeat: sizes {sizes} must be non-negative and at least as many as the dims of the "
                               f"tensor of shape {tuple(self.shape)}")
        shape = (1,) * (len(sizes) - self.ndim) + tuple(self.shape)
        # each dim of size n becomes a pair (repeats, n), with the tensor expanded along the first of the pair
        pairs = self.reshape(tuple(d for n in shape for d in (1, n)))
        pairs = pairs.expand(tuple(d for r, n in zip(sizes, shape) for d in (r, n)))
        result = pairs.reshape(tuple(r * n for r, n in zip(sizes, shape)))
        return result.clone() if result._base is not None else result  # new memory, never a view (as PyTorch)

    # --- indexing -------------------------------------------------------------------------------------------------------------------
    def __getitem__(self, index):
        index = _normalize_index(index, self)
        getitem = indexing.BasicGetitem if indexing.is_basic(index) else indexing.Getitem
        try:
            result = getitem.apply(self, index)
        except IndexError as error:
            raise IndexError(f"getitem: {error} (tensor of shape {tuple(self.shape)})") from None
        order = indexing.pytorch_dim_order(index, self.ndim, result.ndim)
        return result if order is None else result.permute(order).contiguous()._not_a_view()  # fresh, C order

    def __setitem__(self, index, value):
        self._write_at(index, value, "setitem")

    def _write_at(self, index, value, op_name, may_overlap=False):
        """self[index] = value. PyTorch writes a basic index as a copy into the view it selects, which it refuses
        where that view repeats an element (has_internal_overlap); an advanced index (index_put_), fill_ and
        masked_fill_ (may_overlap) it writes even then."""
        index = _normalize_index(index, self)
        value = value.to(self.dtype) if isinstance(value, Tensor) else _scalar_like(value, self)
        try:
            if not may_overlap and indexing.is_basic(index):
                as_view = index if any(item is Ellipsis for item in index) else index + (Ellipsis,)  # ints: 0-d view
                _refuse_overlapping_write(self, op_name, self.backend.getitem(self.array, as_view))
            if indexing.reorders_dims(index, self.ndim):
                # the value comes in PyTorch's order of the selected dims; NumPy writes it in its own order
                placeholder = self.backend.broadcast_to(self.backend.full((), False, dtypes.bool_), self.shape)
                numpy_shape = self.backend.getitem(placeholder, index).shape
                order = indexing.pytorch_dim_order(index, self.ndim, len(numpy_shape))
                inverse = sorted(range(len(order)), key=order.__getitem__)
                value = value.expand(tuple(numpy_shape[d] for d in order)).permute(inverse)
            if is_grad_enabled() and (self.requires_grad or value.requires_grad):
                if indexing.takes_a_view_first(index, self.shape):
                    self._leaf_to_pytorch = False  # the view PyTorch takes makes this tensor's grad_fn
                target, target_index = self, index
                if indexing.is_basic(index) and self.backend.has_internal_overlap(self.array):
                    # an expanded tensor: PyTorch writes a basic index through the view it selects, which may repeat
                    # no element (checked above), so that view takes the write's place in the graph, not all of this
                    target, target_index = self[index], (Ellipsis,)
                # only the indexed elements are written: where the tensor repeats an element (may_overlap), writing
                # all of the result would overwrite it with the old value of one of its repeats
                target._assign_inplace(
                    indexing.SetItem.apply(target._alias(), value, target_index), op_name, check_overlap=False,
                    write=lambda: target.backend.setitem(target.array, target_index, value.array))
            else:
                self.backend.setitem(self.array, index, value.array)
                self._version.value += 1
        except (IndexError, ValueError) as error:
            raise IndexError(f"setitem: cannot write a value of shape {tuple(value.shape)} at {index} of a tensor of "
                             f"shape {tuple(self.shape)}: {error}") from None

    def gather(self, dim, index):
        dim = normalize_dim(dim, self.ndim, "gather")
        if index.dtype.is_floating or index.ndim != self.ndim:
            raise RuntimeError(f"gather: index must be an integer tensor with as many dimensions as the input, got "
                               f"{index.dtype} {tuple(index.shape)} for input {tuple(self.shape)}")
        source = self
        if any(n < m for n, m in zip(index.shape, self.shape)):
            # PyTorch lets the index be smaller than the input outside dim: read only that corner
            source = self[tuple(slice(0, n) if i != dim else slice(None) for i, n in enumerate(index.shape))]
        bad = (index.array < 0) | (index.array >= self.shape[dim])
        if bad.any():
            raise IndexError(f"gather: index out of range for dim {dim} of size {self.shape[dim]}")
        return indexing.Gather.apply(source, dim, index)

    def index_select(self, dim, index):
        """The entries at index (a 1-D integer tensor) along dim: x.index_select(0, i) == x[i]."""
        dim = normalize_dim(dim, self.ndim, "index_select")
        if not isinstance(index, Tensor) or index.dtype not in (dtypes.int32, dtypes.int64) or index.ndim > 1:
            raise IndexError(f"index_select: index must be a 0-D or 1-D int32 or int64 tensor, got "
                             f"{getattr(index, 'dtype', type(index).__name__)} {tuple(getattr(index, 'shape', ()))}")
        size = self.shape[dim] if self.ndim else 1
        if index.numel() and (self.backend.any(index.array < 0) or self.backend.any(index.array >= size)):
            raise IndexError(f"index_select: index out of range for dim {dim} of size {size} (tensor of shape "
                             f"{tuple(self.shape)})")
        if self.ndim == 0:
            if index.numel() != 1:
                raise IndexError(f"index_select: a 0-d tensor takes one index, got {index.numel()}")
            return self.clone()
        return self[(slice(None),) * dim + (index.reshape(-1),)]

    def masked_select(self, mask):
        """The elements where mask (a bool tensor, broadcast against self) is True, as a 1-D tensor."""
        if not isinstance(mask, Tensor) or mask.dtype is not dtypes.bool_:
            raise RuntimeError("masked_select: expected a bool mask, got "
                               f"{getattr(mask, 'dtype', type(mask).__name__)}")
        shape = broadcast_shape("masked_select", self.shape, mask.shape)
        return self.expand(shape)[mask.expand(shape)]

    def nonzero(self, as_tuple=False):
        """The indices of the non-zero elements: (count, ndim) int64, or with as_tuple one 1-D tensor per dim."""
        if as_tuple and self.ndim == 0:  # as a 1-element vector, as PyTorch
            return self.reshape(1).nonzero(as_tuple=True)
        indices = self.backend.nonzero(self.array)
        if not as_tuple:
            return Tensor._make(indices, self.device)
        return tuple(Tensor._make(self.backend.copy(indices[:, d]), self.device) for d in range(self.ndim))

    # --- in-place ops ----------------------------------------------------------------------------------------------------------------
    def _alias(self, snapshot=False):
        """Another Tensor object for the same values and graph position, so an in-place op can
        take this tensor's place in the graph without making a cycle.

        snapshot=True copies the values: an op recorded for backward (x *= y saves x) must keep the
        values from before the write, which would otherwise overwrite them in the shared memory."""
        if snapshot:
            return Tensor._make(self.backend.copy(self.array), self.device, self.requires_grad, self.grad_fn)
        alias = Tensor._make(self.array, self.device, self.requires_grad, self.grad_fn)
        alias._version = self._version
        return alias

    def _refresh_view(self, used=False):
        """The memory was edited in place since this view's grad_fn was made (through the base or another view),
        so the base may stand elsewhere in the graph: make the view's grad_fn again from the base, as PyTorch
        regenerates a view's grad_fn when the version changed.

        PyTorch does so only when it needs the grad_fn (used: an op that records the graph takes the view, or
        is_leaf is read). A view that had none, made here for any other reason, stays a leaf to its in-place
        check: a view taken before its base required grad, then edited in place, raises PyTorch's leaf error."""
        if self._view_version != self._version.value:
            had_grad_fn = self.grad_fn is not None
            base = self._base
            regenerated = base
            with enable_grad():
                for function, arguments in self._view_chain:
                    regenerated = function.apply(regenerated, *arguments)
            if self.grad_fn is not None:
                self.grad_fn._output_ref = None  # its hooks and retained grad now belong to the new grad_fn
            self.grad_fn, self._requires_grad = regenerated.grad_fn, regenerated._requires_grad
            if self.grad_fn is not None:
                self.grad_fn._output_ref = weakref.ref(self)
            self._view_version = self._version.value
            if not had_grad_fn and self.grad_fn is not None:
                self._leaf_to_pytorch = True
        if used:
            self._leaf_to_pytorch = False

    def _not_a_view(self):
        """A result that PyTorch computes as a new tensor, here reshaped from an intermediate nobody else sees:
        it is no view to the user, so an in-place edit of it leaves its grad_fn where it is."""
        self._base, self._view_chain = None, ()
        return self

    def _positions_in_base(self):
        """(the flat index in the base of each element of this view, whether an index repeats: an expanded view)."""
        base = self._base
        positions = Tensor._make(self.backend.arange(0, base.numel(), 1, dtypes.int64).reshape(base.shape), self.device)
        with no_grad():
            for function, arguments in self._view_chain:
                positions = function.apply(positions, *arguments)
        repeats = any(function is movement.Expand for function, _ in self._view_chain) and \
            len(self.backend.xp.unique(positions.array)) != positions.numel()
        return positions.array, repeats

    def _assign_inplace(self, result, op_name, check_overlap=True, write=None):
        """Write result into this tensor's memory (or let write() put the new values there); if result is in the
        graph, take its place there."""
        if result.shape != self.shape:
            raise RuntimeError(f"{op_name}: the result has shape {tuple(result.shape)} but the tensor written in place "
                               f"has shape {tuple(self.shape)}")
        if result.dtype is not self.dtype and result.dtype.is_floating and not self.dtype.is_floating:
            raise RuntimeError(f"{op_name}: result type {result.dtype} can't be cast to the tensor's type "
                               f"{self.dtype} in place")
        if check_overlap:
            _refuse_overlapping_write(self, op_name)
        base = self._base
        if result.requires_grad:
            if self.requires_grad and self._leaf_to_pytorch:
                raise RuntimeError(f"{op_name}: a leaf tensor that requires grad (shape {tuple(self.shape)}) can't be "
                                   "modified in place while grad mode is on: this view was taken before its base "
                                   "required grad, and has not been used in an op since its base did, so autograd "
                                   "still counts it a leaf (as PyTorch); use it once first, or edit the base")
            if self.grad_fn is None and self.requires_grad:
                raise RuntimeError(f"{op_name}: a leaf tensor that requires grad (shape {tuple(self.shape)}) can't be "
                                   "modified in place while grad mode is on; do it inside no_grad()")
            if base is not None and self._view_made_without_grad:
                raise RuntimeError(f"{op_name}: this view (shape {tuple(self.shape)}) was made under no_grad and is "
                                   "being modified in place with grad mode on, so its base could not follow the edit; "
                                   "make the view outside no_grad, or edit it inside no_grad")
            if base is not None and base.is_leaf and base.requires_grad:
                raise RuntimeError(f"{op_name}: a view of a leaf tensor that requires grad (view {tuple(self.shape)}, "
                                   f"leaf {tuple(base.shape)}) can't be modified in place while grad mode is on; do it "
                                   "inside no_grad()")
            positions, repeats = self._positions_in_base() if base is not None else (None, False)
        if write is None:
            self.array[...] = result.array
        else:
            write()
        self._version.value += 1
        if result.requires_grad and base is not None:
            # the base takes the new values in the view's elements; the view then follows its base
            base._take_place_of(indexing.CopySlices.apply(base._alias(), result, positions, repeats))
            self._refresh_view(used=True)
        elif result.requires_grad:
            self._take_place_of(result)
        return self

    def _take_place_of(self, result):
        """This tensor now stands where `result` is in the graph (its values are already in this memory)."""
        if self.grad_fn is not None:
            self.grad_fn._output_ref = None
        self.grad_fn = result.grad_fn
        self.grad_fn._output_ref = weakref.ref(self)
        self._requires_grad = True

    def _inplace_op(self, op_name, compute, *others):
        """Write compute(self) into this tensor's memory; the tensor takes the result's place in the graph."""
        tracked = is_grad_enabled() and (self.requires_grad or any(isinstance(o, Tensor) and o.requires_grad
                                                                   for o in others))
        with no_grad() if not tracked else nullcontext():
            result = compute(self._alias(snapshot=tracked))
        return self._assign_inplace(result, op_name)

    def _inplace(self, other, function, op_name):
        return self._inplace_op(op_name + "_", lambda x: x._binary(other, function, op_name + "_"), other)

    def add_(self, other, alpha=1):
        return self._inplace(other * alpha if alpha != 1 else other, elementwise.Add, "add")

    def sub_(self, other, alpha=1):
        _refuse_bool(self, other, "sub_")
        return self._inplace(other * alpha if alpha != 1 else other, elementwise.Sub, "sub")

    def mul_(self, other):
        return self._inplace(other, elementwise.Mul, "mul")

    def div_(self, other):
        return self._inplace(other, elementwise.Div, "div")

    __iadd__, __isub__, __imul__, __itruediv__ = add_, sub_, mul_, div_

    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        self._write_at(..., value, "fill_", may_overlap=True)  # one value: a location written twice gets it twice
        return self

    def copy_(self, source):
        self[...] = source if isinstance(source, (Tensor, *_SCALARS)) else Tensor(source, dtype=self.dtype)
        return self

    def clamp_(self, min=None, max=None):
        return self._inplace_op("clamp_", lambda x: x.clamp(min, max), min, max)

    clip_ = clamp_

    def masked_fill_(self, mask, value):
        self._write_at(mask.expand(self.shape) if mask.shape != self.shape else mask, value, "masked_fill_",
                       may_overlap=True)
        return self

    def normal_(self, mean=0.0, std=1.0, generator=None):
        self[...] = Tensor._make(self.backend.randn(self.shape, self.dtype) * std + mean, self.device)
        return self

    def uniform_(self, low=0.0, high=1.0):
        self[...] = Tensor._make(self.backend.rand(self.shape, self.dtype) * (high - low) + low, self.device)
        return self

    # --- sorting (values carry a gradient) and sampling (no gradient) ----------------------------------------------------------
    def topk(self, k, dim=-1, largest=True, sorted=True):
        dim = normalize_dim(dim, self.ndim, "topk")
        if self.ndim == 0:  # one element: as a 1-element vector, then back to 0-d (PyTorch's rule)
            values, indices = self.reshape(1).topk(k, 0, largest)
            return ValuesAndIndices(values.reshape(()), indices.reshape(())) if k == 1 else (values, indices)
        if not 0 <= k <= self.shape[dim]:
            raise RuntimeError(f"topk: k={k} is out of range for dim {dim} of size {self.shape[dim]}")
        _, order = self.backend.sort(self.array, dim, descending=largest)
        keep = (slice(None),) * dim + (slice(0, k),)
        return self._sorted_values(Tensor._make(order[keep].astype("int64"), self.device), dim)

    def sort(self, dim=-1, descending=False, stable=False):
        """Sorted values and where they came from; ties keep their order (always stable)."""
        dim = normalize_dim(dim, self.ndim, "sort")
        if self.ndim == 0:
            values, indices = self.reshape(1).sort(0, descending)
            return ValuesAndIndices(values.reshape(()), indices.reshape(()))
        return self._sorted_values(self.argsort(dim, descending), dim)

    def argsort(self, dim=-1, descending=False, stable=False):
        """The indices that sort the tensor along dim; ties keep their order (always stable)."""
        dim = normalize_dim(dim, self.ndim, "argsort")
        if self.ndim == 0:
            return Tensor._make(self.backend.full((), 0, dtypes.int64), self.device)
        _, order = self.backend.sort(self.array, dim, descending)
        return Tensor._make(order.astype("int64"), self.device)

    def _sorted_values(self, indices, dim):
        """The values at indices along dim, read with gather so the gradient flows back to them (as PyTorch)."""
        return ValuesAndIndices(indexing.SelectAlong.apply(self, dim, indices), indices)

    def multinomial(self, num_samples, replacement=False):
        """Draw indices from each row's (unnormalized) probabilities."""
        if self.ndim not in (1, 2):
            raise RuntimeError("multinomial: expected a 1-D or 2-D tensor of probabilities, got shape "
                               f"{tuple(self.shape)}")
        probs = self.array.reshape(1, -1) if self.ndim == 1 else self.array
        if (probs < 0).any() or not self.backend.isfinite(probs).all() or (probs.sum(axis=-1) <= 0).any():
            raise RuntimeError("multinomial: probabilities must be finite, non-negative and have a positive sum")
        if not replacement and num_samples > probs.shape[-1]:
            raise RuntimeError(f"multinomial: cannot draw {num_samples} samples without replacement from "
                               f"{probs.shape[-1]} categories")
        probs = probs.astype("float64")
        samples = []
        for _ in range(num_samples):
            cumulative = self.backend.cumsum(probs, -1)
            draws = self.backend.rand((probs.shape[0], 1), dtypes.float64) * cumulative[:, -1:]
            chosen = self.backend.xp.minimum(self.backend.searchsorted_rows(cumulative, draws)[:, 0],
                                             probs.shape[-1] - 1)
            samples.append(chosen)
            if not replacement:
                probs[self.backend.xp.arange(probs.shape[0]), chosen] = 0
        result = self.backend.stack(samples, 1).astype("int64")
        return Tensor._make(result[0] if self.ndim == 1 else result, self.device)


def _inplace_version(name):
    """x.name_(...): x.name(...) written into x's own memory."""
    def method(self, *args, **kwargs):
        return self._inplace_op(name + "_", lambda x: getattr(x, name)(*args, **kwargs), *args, *kwargs.values())
    method.__name__ = method.__qualname__ = name + "_"
    method.__doc__ = f"In-place x.{name}(...)."
    return method


for _name in ("neg exp exp2 expm1 log log2 log1p sqrt rsqrt abs relu sigmoid tanh sin cos square floor ceil round "
              "trunc frac pow clamp_min clamp_max floor_divide remainder fmod lerp addcmul addcdiv").split():
    setattr(Tensor, _name + "_", _inplace_version(_name))
del _name
Tensor.__ipow__, Tensor.__ifloordiv__, Tensor.__imod__ = Tensor.pow_, Tensor.floor_divide_, Tensor.remainder_


class _HookHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _array_string(values):
    if values.dtype.name == "bfloat16":
        # ml_dtypes prints 6 digits, and whole numbers without a point: print its 3 digits as PyTorch prints
        # floats, up to 4 decimals, and 1. for one
        import numpy
        return numpy.array2string(values.astype("float32"), precision=4, separator=", ", prefix="tensor(")
    text = repr(values)  # "array([...], dtype=...)": keep what is between the parentheses, without the dtype
    inner = text[text.index("(") + 1:text.rindex(")")]
    if ", dtype=" in inner:
        inner = inner[:inner.rindex(", dtype=")]
    return inner.replace("\n      ", "\n       ")


def to_arguments(args, kwargs):
    """(device, dtype, non_blocking, copy) from what Tensor.to and Module.to take, as PyTorch: to(device),
    to(dtype), to(device, dtype), to(other_tensor) for its device and dtype, then non_blocking and copy,
    positionally or by name. A device is 'cpu', 'cuda', 'cuda:N', a device object or an index (of a GPU)."""
    kwargs = dict(kwargs)
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    flags = [kwargs.pop("non_blocking", False), kwargs.pop("copy", False)]
    if kwargs:
        raise TypeError(f"to() got an unexpected keyword argument {next(iter(kwargs))!r}")
    given_flags = 0
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, bool):
            if given_flags == len(flags):
                raise TypeError(f"to() takes at most {len(flags)} flags (non_blocking, copy), got another: {arg}")
            flags[given_flags] = arg
            given_flags += 1
        elif isinstance(arg, int) or (isinstance(arg, str) and arg.partition(":")[0] in devices.TYPES):
            device = arg
        else:
            dtype = arg
    return device, dtype, flags[0], flags[1]


def _rebuild_tensor(cls, array, device, requires_grad, version):
    """pickle's constructor for a Tensor (see Tensor.__reduce_ex__)."""
    tensor = cls.__new__(cls)
    backend = get_backend(device)
    tensor._init(backend.asarray(array), device, backend)
    tensor._version = version
    tensor._requires_grad = requires_grad
    return tensor


# --- helpers shared by the methods above --------------------------------------------------------------------------------------
def _as_backend_array(data, backend, dtype):
    # NumPy scalars (np.float64 subclasses float) keep their own dtype, as in PyTorch
    if (isinstance(data, _SCALARS) and not hasattr(data, "dtype")) or isinstance(data, (list, tuple)):
        try:
            array = backend.asarray(data)
        except ValueError as error:
            raise ValueError(f"tensor: nested sequences must be rectangular (equal lengths at each depth): {error}") \
                from None
        inferred = _DTYPE_OF_ARRAY.get(array.dtype.name)
        if dtype is None and array.dtype.kind == "f":
            dtype = dtypes.default_float  # Python floats become float32, as in PyTorch
        elif dtype is None and array.dtype.kind in "iu":
            dtype = dtypes.int64
        elif dtype is None and inferred is None:
            raise TypeError(f"tensor: cannot make a tensor from data of type {array.dtype}")
    else:
        # a copy, as torch.tensor makes: later edits of the source array (or tensor) must not reach this one
        array = backend.copy(backend.asarray(data))
    if dtype is None:
        kind = array.dtype.kind
        dtype = _DTYPE_OF_ARRAY.get(array.dtype.name) or (
            dtypes.int64 if kind in "iu" else dtypes.float32 if kind == "f" else dtypes.bool_ if kind == "b" else None)
        if dtype is None:
            raise TypeError(f"tensor: unsupported array dtype {array.dtype}")
    return backend.astype(array, dtype)


def _refuse_overlapping_write(tensor, op_name, written=None):
    """written: the array the op writes, when it is part of the tensor (a basic index's view)."""
    written = tensor.array if written is None else written
    if tensor.backend.has_internal_overlap(written):  # expand() repeats elements through one memory location
        raise RuntimeError(f"{op_name}: unsupported operation: more than one element of the written-to tensor (an "
                           f"expanded tensor, here of shape {tuple(written.shape)}) refers to a single memory "
                           "location; clone() it before the in-place edit")


def _refuse_zero_dim(tensor, dim, op_name):
    """Ops that pick a dim to walk along have none in a 0-d tensor (where reductions accept dim 0 or -1)."""
    if tensor.ndim == 0:
        raise IndexError(f"{op_name}: dimension {dim} specified, but a 0-d tensor has no dimensions")


def _refuse_empty_reduction(tensor, dims, op_name):
    """max/min have no value over no elements; over the other dims an empty tensor is fine (as PyTorch)."""
    if count_over(tensor.shape, dims) == 0:
        raise RuntimeError(f"{op_name}: cannot reduce over an empty dimension (tensor of shape {tuple(tensor.shape)}, "
                           f"dims {dims})")


def _check_product_shapes(a, b, ndim, op_name):
    """mm and bmm: both operands ndim-D, the same batch size, and inner dims that match."""
    if not isinstance(b, Tensor):
        raise TypeError(f"{op_name}: expected a Tensor, got {type(b).__name__}")
    if a.ndim != ndim or b.ndim != ndim:
        raise RuntimeError(f"{op_name}: expected two {ndim}-D tensors, got shapes {tuple(a.shape)} and "
                           f"{tuple(b.shape)}")
    if ndim == 3 and a.shape[0] != b.shape[0]:
        raise RuntimeError(f"{op_name}: batch sizes differ, shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[-1] != b.shape[-2]:
        raise RuntimeError(f"{op_name}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
                           f"({a.shape[-1]} != {b.shape[-2]})")
    if a.dtype is not b.dtype:
        raise RuntimeError(f"{op_name}: expected both operands to have the same dtype, got {a.dtype} and {b.dtype}")


def _refuse_bool(tensor, other, op_name):
    """- on a bool tensor is almost always a botched mask inversion: refuse it, as PyTorch does."""
    if tensor.dtype is dtypes.bool_ or (isinstance(other, Tensor) and other.dtype is dtypes.bool_):
        raise RuntimeError(f"{op_name}: subtraction and negation are not supported for bool tensors; "
                           "use ~ or logical_not() to invert a mask")


def _scalar_like(value, tensor, dtype=None):
    return Tensor._make(tensor.backend.full((), value, dtype or tensor.dtype), tensor.device)


def _operands(a, b, op_name, floating):
    """Bring a binary op's operands to one device and one dtype, with PyTorch's promotion."""
    if isinstance(b, _SCALARS):
        dtype = dtypes.scalar_result(a.dtype, b)
        if floating and not dtype.is_floating:
            dtype = dtypes.default_float
        # a number beside a bfloat16 tensor stays float32 (the op computes in float32 anyway), as PyTorch keeps
        # its scalars: x * 0.1 is x times 0.1, not times 0.1 rounded to bfloat16 (0.10009765625)
        return a.to(dtype), _scalar_like(b, a, dtypes.float32 if dtype is dtypes.bfloat16 else dtype)
    if not isinstance(b, Tensor):
        raise TypeError(f"{op_name}: unsupported operand type {type(b).__name__} (expected a Tensor or a number)")
    if a.device != b.device:
        raise RuntimeError(f"{op_name}: expected both tensors on the same device, got {tuple(a.shape)} on {a.device} "
                           f"and {tuple(b.shape)} on {b.device}")
    if a.shape != b.shape and a.ndim and b.ndim:
        broadcast_shape(op_name, a.shape, b.shape)
    dtype = _result_dtype(a, b)
    if floating and not dtype.is_floating:
        dtype = dtypes.default_float
    return a.to(dtype), b.to(dtype)


def _category(dtype):
    return 2 if dtype.is_floating else 0 if dtype is dtypes.bool_ else 1


def _result_dtype(a, b):
    """A 0-d tensor beside a dimensioned one only matters if it is of a higher category (PyTorch's rule)."""
    if (a.ndim == 0) == (b.ndim == 0):
        return dtypes.promote(a.dtype, b.dtype)
    dimensioned, zero_dim = (a, b) if b.ndim == 0 else (b, a)
    if _category(zero_dim.dtype) > _category(dimensioned.dtype):
        return zero_dim.dtype
    return dimensioned.dtype


def _shape_arg(shape):
    """reshape(2, 3) and reshape((2, 3)) both mean (2, 3)."""
    if isinstance(shape, int):
        return (shape,)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


def _resolve_shape(shape, numel, old_shape, op_name):
    if shape.count(-1) > 1:
        raise RuntimeError(f"{op_name}: only one dimension can be -1, got {shape}")
    known = 1
    for n in shape:
        if n != -1:
            known *= n
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"{op_name}: shape {shape} is invalid for a tensor of shape {tuple(old_shape)} "
                               f"({numel} elements)")
        shape = tuple(numel // known if n == -1 else n for n in shape)
    elif known != numel:
        raise RuntimeError(f"{op_name}: shape {shape} is invalid for a tensor of shape {tuple(old_shape)} "
                           f"({numel} elements)")
    return shape


def _normalize_index(index, tensor):
    """Turn an index into a tuple of ints, slices, None, Ellipsis and backend integer/bool arrays.
    A 0-d integer tensor or array is an int (x[i] is then a view, as in PyTorch); a Python bool is a 0-d mask."""
    if not isinstance(index, tuple):
        index = (index,)
    normalized = []
    for item in index:
        if isinstance(item, Tensor):
            if item.device != tensor.device:
                raise RuntimeError(f"getitem: index on {item.device} for a tensor on {tensor.device}")
            if item.dtype.is_floating:
                raise IndexError(f"getitem: tensors used as indices must be integer or bool, got {item.dtype}")
            item = item.array
        elif isinstance(item, (list, bool)) or type(item).__module__ in ("numpy", "cupy"):
            item = tensor.backend.asarray(item, dtypes.int64 if isinstance(item, list) and not item else None)
            if item.dtype.kind == "f":
                raise IndexError(f"getitem: arrays used as indices must be integer or bool, got {item.dtype}")
        elif not (item is None or item is Ellipsis or isinstance(item, (int, slice))):
            raise IndexError(f"getitem: unsupported index {item!r} of type {type(item).__name__}")
        if not isinstance(item, (int, slice)) and item is not None and item is not Ellipsis \
                and item.ndim == 0 and item.dtype.kind in "iu":
            item = int(item)
        normalized.append(item)
    return tuple(normalized)


# --- functions over several tensors ----------------------------------------------------------------------------------------------------
def where(condition, input=None, other=None):
    """condition ? input : other, elementwise; input and other may be numbers. where(condition) is
    condition.nonzero(as_tuple=True)."""
    if input is None and other is None and isinstance(condition, Tensor):
        return condition.nonzero(as_tuple=True)
    if not isinstance(condition, Tensor) or condition.dtype is not dtypes.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got "
                        f"{getattr(condition, 'dtype', type(condition).__name__)}")
    if not isinstance(input, (Tensor, *_SCALARS)) or not isinstance(other, (Tensor, *_SCALARS)):
        raise TypeError(f"where: input and other must be tensors or numbers, got {type(input).__name__} and "
                        f"{type(other).__name__}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):  # two numbers: their own dtype, as PyTorch
        dtype = dtypes.default_float if isinstance(input, float) or isinstance(other, float) else \
            dtypes.bool_ if isinstance(input, bool) and isinstance(other, bool) else dtypes.int64
        input = _scalar_like(input, condition, dtype)
    if not isinstance(input, Tensor):
        input = _scalar_like(input, other, dtypes.scalar_result(other.dtype, input))
    if not isinstance(other, Tensor):
        other = _scalar_like(other, input, dtypes.scalar_result(input.dtype, other))
    a, b = _operands(input, other, "where", floating=False)
    if condition.device != a.device:
        raise RuntimeError(f"where: condition is on {condition.device}, values on {a.device}")
    broadcast_shape("where", condition.shape, a.shape, b.shape)
    return elementwise.Where.apply(condition, a, b)


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat: expected a non-empty list of tensors")
    first = tensors[0]
    dim = normalize_dim(dim, first.ndim, "cat")
    for t in tensors[1:]:
        if t.device != first.device:
            raise RuntimeError(f"cat: tensors on different devices: {first.device} and {t.device}")
        if t.ndim != first.ndim or any(n != m for i, (n, m) in enumerate(zip(t.shape, first.shape)) if i != dim):
            raise RuntimeError(f"cat: shapes {tuple(first.shape)} and {tuple(t.shape)} differ outside dim {dim}")
    dtype = first.dtype
    for t in tensors[1:]:
        dtype = dtypes.promote(dtype, t.dtype)
    return movement.Cat.apply(dim, *(t.to(dtype) for t in tensors))


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack: expected a non-empty list of tensors")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise RuntimeError(f"stack: all tensors must have the same shape, got {tuple(tensors[0].shape)} and "
                               f"{tuple(t.shape)}")
    dim = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([t.unsqueeze(dim) for t in tensors], dim)
