"""Matrix product of tensors with at least 2 dimensions; leading (batch) dimensions broadcast.
Tensor.matmul handles 1-D operands by adding and removing a dimension around this op."""
from ..autograd import Function
from .dims import count_over
from .elementwise import save_operands, unbroadcast


class Matmul(Function):
    @staticmethod
    def forward(ctx, a, b):
        save_operands(ctx, a, b)
        return a.backend.matmul(a.array, b.array)

    @staticmethod
    def backward(ctx, grad_output):
        # C = A B  =>  dA = dC B^T,  dB = A^T dC, summed over broadcast batch dimensions
        a, b = ctx.saved_tensors
        (shape_a, _), (shape_b, _) = ctx._input_meta
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = unbroadcast(grad_output @ b.transpose(-1, -2), shape_a)
        if ctx.needs_input_grad[1]:
            if len(shape_b) == 2 and a.ndim > 2:
                # a weight shared over a batch: one (K, M) @ (M, N) product instead of a batch of them
                n_rows = count_over(a.shape, range(a.ndim - 1))  # not -1: ambiguous when a dim is 0
                grad_b = a.reshape(n_rows, a.shape[-1]).transpose(0, 1) @ grad_output.reshape(n_rows, shape_b[-1])
            else:
                grad_b = unbroadcast(a.transpose(-1, -2) @ grad_output, shape_b)
        return grad_a, grad_b


def pytorch_copies(a, b):
    """(a copied, b copied): which operands of a @ b PyTorch's matmul multiplies as a copy it makes itself.

    PyTorch folds batch dimensions with reshape, which copies when the layout cannot be viewed that
    way; the product then saves that copy, so an in-place edit of the operand after the forward is
    allowed. Which reshapes run follows PyTorch's matmul (aten/src/ATen/native/LinearAlgebra.cpp):
    a 3-D or larger operand times a 1-D or 2-D one folds its batch into rows, the rest broadcast the
    batch dimensions and fold them into one. a and b are Layouts of the operands as given (1-D included)."""
    if len(a.shape) <= 2 and len(b.shape) <= 2:  # dot, mv, mm: no reshape
        return False, False
    return _copies(a, b)


class Layout:
    """What the rule reads of an operand: shape, strides in elements, requires_grad."""
    def __init__(self, shape, strides, requires_grad):
        self.shape, self.strides, self.requires_grad = tuple(shape), tuple(strides), requires_grad

    @classmethod
    def of(cls, tensor):
        itemsize = tensor.array.itemsize
        return cls(tensor.shape, (s // itemsize for s in tensor.array.strides), tensor.requires_grad)

    @classmethod
    def c_ordered(cls, shape, requires_grad):
        """A fresh result's layout."""
        strides, step = [], 1
        for n in reversed(shape):
            strides.insert(0, step)
            step *= max(n, 1)
        return cls(shape, strides, requires_grad)

    def dropped_first(self):
        return Layout(self.shape[1:], self.strides[1:], self.requires_grad)

    def transposed(self):  # .mT
        return Layout(self.shape[:-2] + self.shape[:-3:-1], self.strides[:-2] + self.strides[:-3:-1],
                      self.requires_grad)


def _copies(a, b):
    ndim_a, ndim_b = len(a.shape), len(b.shape)
    if _folds(a, b):
        # the larger operand (b transposed when it is b) becomes rows: (batch * rows, columns)
        larger = b.transposed() if ndim_b > ndim_a else a
        copied = not _reshape_is_view(larger, (count_over(larger.shape, range(len(larger.shape) - 1)),
                                               larger.shape[-1]))
        return (False, copied) if ndim_b > ndim_a else (copied, False)
    if ndim_a == 3 and ndim_b == 3 and a.shape[0] != b.shape[0]:  # a batch of one that broadcasts: dropped
        if a.shape[0] == 1 and a.requires_grad:
            return _copies(a.dropped_first(), b)
        if b.shape[0] == 1 and b.requires_grad:
            return _copies(a, b.dropped_first())
    # both expanded to the common batch, which is then folded into one dimension
    batch = _broadcast(a.shape[:-2], b.shape[:-2])
    rows = a.shape[-2] if ndim_a > 1 else 1
    batch_count = count_over(batch, range(len(batch)))
    copied_a = not _reshape_is_view(_expanded(a, batch + (rows, a.shape[-1])), (batch_count, rows, a.shape[-1]))
    b_matrix = b.shape[-2:] if ndim_b > 1 else b.shape
    copied_b = not _reshape_is_view(_expanded(b, batch + b_matrix), (batch_count,) + b_matrix)
    return copied_a, copied_b


def _folds(a, b):
    """PyTorch's should_fold: multiply as one matrix product, the larger operand's batch folded into its rows."""
    larger, smaller = (a, b) if len(a.shape) >= len(b.shape) else (b.transposed(), a)
    if not (len(larger.shape) >= 3 and len(smaller.shape) <= 2):
        return False
    if smaller.requires_grad:  # folding keeps the smaller operand's gradient a matrix, not a batch of them
        return True
    if len(a.shape) == 2:  # 2-D @ batch: the folded product would need a transposed copy of its result
        return False
    if 0 in larger.shape:
        return True
    shape, strides = larger.shape, larger.strides
    return all(strides[i] == strides[i + 1] * shape[i + 1] for i in range(len(shape) - 2))


def _broadcast(shape_a, shape_b):
    ndim = max(len(shape_a), len(shape_b))
    padded_a, padded_b = (1,) * (ndim - len(shape_a)) + shape_a, (1,) * (ndim - len(shape_b)) + shape_b
    return tuple(max(m, n) if 1 in (m, n) else m for m, n in zip(padded_a, padded_b))


def _expanded(layout, shape):
    """layout.expand(shape): new and stretched dimensions read one element (stride 0)."""
    lead = len(shape) - len(layout.shape)
    strides = tuple(0 if i < lead or layout.shape[i - lead] != n else layout.strides[i - lead]
                    for i, n in enumerate(shape))
    return Layout(shape, strides, layout.requires_grad)


def _reshape_is_view(layout, new_shape):
    """Whether reshape can be a view of this layout (PyTorch's computeStride): each run of dimensions that
    the new shape merges or splits must be contiguous within itself. Size-1 dimensions never matter."""
    shape, strides = layout.shape, layout.strides
    if 0 in shape or not shape:
        return True
    new_index = len(new_shape) - 1
    chunk_stride, chunk_count, new_count = strides[-1], 1, 1
    for index in range(len(shape) - 1, -1, -1):
        chunk_count *= shape[index]
        if index == 0 or (shape[index - 1] != 1 and strides[index - 1] != chunk_count * chunk_stride):
            # the end of a contiguous run: the new shape's dimensions must cover it exactly
            while new_index >= 0 and (new_count < chunk_count or new_shape[new_index] == 1):
                new_count *= new_shape[new_index]
                new_index -= 1
            if new_count != chunk_count:
                return False
            if index > 0:
                chunk_stride, chunk_count, new_count = strides[index - 1], 1, 1
    return new_index == -1
