"""Matrix product of tensors with at least 2 dimensions; leading (batch) dimensions broadcast.
Tensor.matmul handles 1-D operands by adding and removing a dimension around this op."""
from ..autograd import Function
from .elementwise import unbroadcast


class Matmul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a.backend.matmul(a.array, b.array)

    @staticmethod
    def backward(ctx, grad_output):
        # C = A B  =>  dA = dC B^T,  dB = A^T dC, summed over broadcast batch dimensions
        a, b = ctx.saved_tensors
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = unbroadcast(grad_output @ b.transpose(-1, -2), a.shape)
        if ctx.needs_input_grad[1]:
            if b.ndim == 2 and a.ndim > 2:
                # a weight shared over a batch: one (K, M) @ (M, N) product instead of a batch of them
                grad_b = a.reshape(-1, a.shape[-1]).transpose(0, 1) @ grad_output.reshape(-1, grad_output.shape[-1])
            else:
                grad_b = unbroadcast(a.transpose(-1, -2) @ grad_output, b.shape)
        return grad_a, grad_b
