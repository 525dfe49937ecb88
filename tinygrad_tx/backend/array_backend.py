"""The array interface every op is written against.

An ArrayBackend wraps one array module (NumPy, or CuPy which mirrors NumPy's API)
and exposes the few dozen primitives the ops need. Op code calls these methods and
never imports numpy or cupy, so a new device only has to provide this class.
"""


class ArrayBackend:
    name = "abstract"
    kernels = None  # hand-written kernels for the fused ops (CupyBackend's CUDA kernels); None: array code only

    def __init__(self, xp, device):
        self.xp = xp  # the array module: numpy or cupy
        self.array_type = xp.ndarray
        self.device = device
        from ..random import initial_seed  # a device first used after manual_seed() starts seeded
        self.seed(initial_seed(device.split(":")[0]))

    # --- allocation and conversion -------------------------------------------
    def asarray(self, data, dtype=None):
        return self.xp.asarray(data, dtype=dtype.numpy_name if dtype else None)

    def to_numpy(self, array):
        raise NotImplementedError

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=dtype.numpy_name)

    def full(self, shape, value, dtype):
        return self.xp.full(shape, value, dtype=dtype.numpy_name)

    def arange(self, start, stop, step, dtype):
        return self.xp.arange(start, stop, step, dtype=dtype.numpy_name)

    def linspace(self, start, stop, steps, dtype):
        return self.xp.linspace(start, stop, steps, dtype="float64").astype(dtype.numpy_name)

    def eye(self, n, m, dtype):
        return self.xp.eye(n, m, dtype=dtype.numpy_name)

    def astype(self, array, dtype):
        return array.astype(dtype.numpy_name, copy=False)

    def copy(self, array, keep_layout=False):
        # keep_layout, as PyTorch's preserve_format: a dense array (a permutation of a C-contiguous one) keeps its
        # order of dims in memory; anything else (a slice with gaps, an expanded array) becomes C-contiguous
        return array.copy(order="K" if keep_layout and _is_dense(array) else "C")

    def contiguous(self, array):
        # ascontiguousarray would also turn a 0-d array into a 1-d one
        return array if array.flags.c_contiguous else self.xp.ascontiguousarray(array)

    # --- randomness ----------------------------------------------------------
    def seed(self, seed):
        self.generator = self.xp.random.default_rng(seed)

    def get_rng_state(self):
        raise NotImplementedError

    def set_rng_state(self, state):
        raise NotImplementedError

    def randn(self, shape, dtype):
        return self.generator.standard_normal(shape, dtype="float64").astype(dtype.numpy_name)

    def rand(self, shape, dtype):
        return self.generator.random(shape, dtype="float64").astype(dtype.numpy_name)

    def randint(self, low, high, shape, dtype):
        return self.generator.integers(low, high, size=shape).astype(dtype.numpy_name)

    def reserve_random_words(self, n):
        """(seed, first block) of n words of a counter-based stream, skipped over for a kernel to make where it
        needs them (attention's dropout); None where the generator is not counter-based, as NumPy's."""
        return None

    def random_words(self, n, seed, first_block):
        """n uint32 words of the counter-based stream of `seed` from block first_block (see reserve_random_words)."""
        raise NotImplementedError(f"{self.device} has no counter-based random stream")

    # --- elementwise -----------------------------------------------------------
    # arithmetic (+ - * / ** and comparisons) uses the arrays' own operators, which both modules share
    def exp(self, a): return self.xp.exp(a)
    def log(self, a): return self.xp.log(a)
    def sqrt(self, a): return self.xp.sqrt(a)
    def tanh(self, a): return self.xp.tanh(a)
    def sin(self, a): return self.xp.sin(a)
    def cos(self, a): return self.xp.cos(a)
    def abs(self, a): return self.xp.abs(a)
    def sign(self, a): return self.xp.sign(a)
    def maximum(self, a, b): return self.xp.maximum(a, b)
    def minimum(self, a, b): return self.xp.minimum(a, b)
    def where(self, condition, a, b): return self.xp.where(condition, a, b)
    def clip(self, a, low, high): return self.xp.clip(a, low, high)
    def isfinite(self, a): return self.xp.isfinite(a)
    def isnan(self, a): return self.xp.isnan(a)
    def isinf(self, a): return self.xp.isinf(a)
    def isclose(self, a, b, rtol, atol, equal_nan): return self.xp.isclose(a, b, rtol, atol, equal_nan)
    def floor_divide(self, a, b): return self.xp.floor_divide(a, b)  # rounds toward -inf, as Python's //
    def remainder(self, a, b): return self.xp.remainder(a, b)  # the sign of b, as Python's %
    def fmod(self, a, b): return self.xp.fmod(a, b)  # the sign of a, as C's fmod
    def floor(self, a): return self.xp.floor(a)
    def ceil(self, a): return self.xp.ceil(a)
    def round(self, a): return self.xp.round(a)  # halves to even, as PyTorch
    def trunc(self, a): return self.xp.trunc(a)
    def exp2(self, a): return self.xp.exp2(a)
    def log2(self, a): return self.xp.log2(a)
    def log1p(self, a): return self.xp.log1p(a)
    def expm1(self, a): return self.xp.expm1(a)
    def logical_not(self, a): return self.xp.logical_not(a)

    def erf(self, a):
        """erf in a's dtype. The libraries' own erf may widen (CuPy's maps float16 to float64, which would turn a
        float16 graph into float64) or lack a type (bfloat16): those compute in float32 and round back."""
        if a.dtype.name not in ("float32", "float64"):
            a32 = a.astype("float32")
            return self.library_erf(a32).astype(a.dtype)
        return self.library_erf(a).astype(a.dtype, copy=False)

    def library_erf(self, a):
        """The array library's erf, float32 or float64 in; its result dtype may differ from a's."""
        raise NotImplementedError

    # --- reductions --------------------------------------------------------------
    def sum(self, a, axis, keepdims): return a.sum(axis=axis, keepdims=keepdims)
    def max(self, a, axis, keepdims): return a.max(axis=axis, keepdims=keepdims)
    def min(self, a, axis, keepdims): return a.min(axis=axis, keepdims=keepdims)
    def argmax(self, a, axis, keepdims): return self.xp.argmax(a, axis=axis, keepdims=keepdims)
    def argmin(self, a, axis, keepdims): return self.xp.argmin(a, axis=axis, keepdims=keepdims)
    def any(self, a): return bool(a.any())

    # --- linear algebra -----------------------------------------------------------
    def matmul(self, a, b):
        # (B, T, C) @ (C, N) as one 2-D product: BLAS runs it much faster than a batched loop
        if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous and a.shape[-1]:
            return (a.reshape(-1, a.shape[-1]) @ b).reshape(*a.shape[:-1], b.shape[-1])
        return self.contiguous(self.xp.matmul(a, b))  # C order, as PyTorch's (NumPy's follows strided batch operands)

    def qr(self, a):
        """(Q, R) of a 2-D array, the reduced factorization (nn.init.orthogonal_ needs it)."""
        return self.xp.linalg.qr(a)

    # --- movement ------------------------------------------------------------------
    def reshape(self, a, shape): return a.reshape(shape)
    def transpose(self, a, axes): return a.transpose(axes)
    def broadcast_to(self, a, shape):
        if a.size == _count(shape):  # nothing repeats (only dims of size 1 added): a writable view, as PyTorch's
            return a.reshape(shape)
        if _count(shape) == 0:
            return self.xp.empty(shape, a.dtype)
        # a view that reads each element of a stretched dim from one place (stride 0), writable where `a` is, as
        # PyTorch's expand: writing into it is refused only where a write would reach one element twice (see
        # has_internal_overlap), so a slice of it that repeats nothing may be written
        leading = len(shape) - a.ndim
        strides = []
        for i, n in enumerate(shape):
            own = a.shape[i - leading] if i >= leading else 1
            if own not in (1, n):
                raise ValueError(f"cannot broadcast an array of shape {a.shape} to {tuple(shape)}")
            strides.append(a.strides[i - leading] if i >= leading and own == n else 0)
        return self.xp.lib.stride_tricks.as_strided(a, tuple(shape), tuple(strides))
    def concatenate(self, arrays, axis): return self.xp.concatenate(arrays, axis=axis)
    def flip(self, a, axes): return self.xp.flip(a, axes)
    def roll(self, a, shifts, axes): return self.xp.roll(a, shifts, axes)
    def stack(self, arrays, axis): return self.xp.stack(arrays, axis=axis)
    def tril(self, a, k): return self.xp.tril(a, k)
    def triu(self, a, k): return self.xp.triu(a, k)

    # --- indexing --------------------------------------------------------------------
    def getitem(self, a, index): return a[index]

    def has_internal_overlap(self, a):
        """Whether two elements of `a` are one memory location: a dim that an expand stretched (stride 0).
        PyTorch refuses a write into such a tensor with this same test."""
        return a.size > 0 and any(stride == 0 and n > 1 for n, stride in zip(a.shape, a.strides))

    def is_view_of(self, view, array):
        """Whether `view` reads `array`'s memory (a reshape that had to copy does not)."""
        return _memory_owner(view) is _memory_owner(array)

    def setitem(self, a, index, value):
        a[index] = value

    def nonzero(self, a):
        """The indices of the non-zero elements, one row per element: (count, a.ndim), int64."""
        return self.xp.stack(self.xp.nonzero(a), axis=1).astype("int64") if a.ndim else \
            self.xp.zeros((int(a != 0), 0), dtype="int64")

    def take_along_axis(self, a, indices, axis):
        return self.xp.take_along_axis(a, indices, axis=axis)

    def index_add(self, target, index, values):
        """target[index] += values, accumulating repeated indices."""
        raise NotImplementedError

    def scatter_add_along_axis(self, shape, indices, values, axis, dtype):
        """The adjoint of take_along_axis: zeros(shape) with values added at indices along axis."""
        out = self.full(shape, 0, dtype)
        grids = list(self.xp.meshgrid(*[self.xp.arange(n) for n in indices.shape], indexing="ij"))
        grids[axis] = indices
        self.index_add(out, tuple(grids), values)
        return out

    def embedding_backward(self, indices, grad, num_embeddings):
        """Sum rows of grad (N, D) into a (num_embeddings, D) table by index (N,)."""
        # a one-hot matmul beats a scatter-add for small tables; a scatter-add wins for large ones
        if num_embeddings <= 1024:
            one_hot = (indices[None, :] == self.xp.arange(num_embeddings)[:, None]).astype(grad.dtype)
            return one_hot @ grad
        out = self.xp.zeros((num_embeddings, grad.shape[1]), dtype=grad.dtype)
        self.index_add(out, indices, grad)
        return out

    def sort(self, a, axis, descending):
        order = self.xp.argsort(-a if descending else a, axis=axis, kind="stable")
        return self.xp.take_along_axis(a, order, axis=axis), order

    def cumsum(self, a, axis): return self.xp.cumsum(a, axis=axis)

    def searchsorted_rows(self, cumulative, values):
        """For each row r: the first index i with cumulative[r, i] > values[r, k]."""
        return (cumulative[:, None, :] <= values[:, :, None]).sum(axis=-1)

    def nbytes_in_use(self):
        return 0


def _memory_owner(array):
    # NumPy and CuPy point a view's .base at the array that owns the memory, however deep the chain of views;
    # as_strided (expand) puts a wrapper between, whose .base is the array it viewed, itself maybe a view
    while getattr(array, "base", None) is not None:
        array = array.base
    return array


def _count(shape):
    count = 1
    for n in shape:
        count *= n
    return count


def _is_dense(array):
    """Whether the elements fill a block of memory without gaps or repeats, in some order of the dims."""
    expected = array.itemsize
    for stride, size in sorted((abs(s), n) for s, n in zip(array.strides, array.shape) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True
