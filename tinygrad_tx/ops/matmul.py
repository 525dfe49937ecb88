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
