"""x W^T + b as one op: one matrix product over all leading dimensions, the bias added in place."""
from .dims import count_over
from .fused import AtForwardValues, FusedFunction


class Linear(FusedFunction):
    free_arguments = (2,)  # the bias is only added

    @staticmethod
    def forward(ctx, x, weight, bias):
        backend = x.backend
        rows = backend.reshape(x.array, (count_over(x.shape[:-1], range(x.ndim - 1)), x.shape[-1]))  # (N, in)
        ctx.saved_arrays = (None,)  # x's rows, where they had to be copied
        if ctx.needs_input_grad:  # each gradient reads the other operand; the bias is never read
            needs_x, needs_weight, _ = ctx.needs_input_grad
            if needs_weight and not backend.is_view_of(rows, x.array):
                # x's rows had to be copied to be one matrix: keep the copy, as PyTorch does, and x may change
                ctx.saved_arrays, ctx.free_arguments = (rows,), (0, 2)
            ctx.save_for_backward(x if needs_weight and ctx.saved_arrays[0] is None else None, weight if needs_x else None)
        out = backend.matmul(rows, backend.transpose(weight.array, (1, 0)))      # (N, out)
        if bias is not None:
            out += bias.array
        ctx.backend = backend
        return backend.reshape(out, x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward_arrays(ctx, grad_output):
        # dx = dy W,  dW = dy^T x,  db = sum of dy over rows
        x, weight, bias = ctx.arguments
        backend = ctx.backend
        n_rows = count_over(x.shape[:-1], range(x.ndim - 1))
        grad_rows = backend.reshape(grad_output, (n_rows, weight.shape[0]))       # (N, out)
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = backend.reshape(backend.matmul(grad_rows, weight.array), x.shape)
        if ctx.needs_input_grad[1]:
            (rows,) = ctx.saved_arrays
            rows = rows if rows is not None else backend.reshape(x.array, (n_rows, x.shape[-1]))
            grad_weight = backend.matmul(backend.transpose(grad_rows, (1, 0)), rows)
        if bias is not None and ctx.needs_input_grad[2]:
            grad_bias = backend.sum(grad_rows, 0, False)
        return grad_x, grad_weight, grad_bias

    @staticmethod
    def composed_arguments(ctx):
        (rows,) = ctx.saved_arrays
        if rows is None:
            return ctx.arguments
        x, *rest = ctx.arguments
        return (AtForwardValues.apply(x, ctx.backend.reshape(rows, x.shape)), *rest)

    @staticmethod
    def composed(ctx, x, weight, bias):
        out = x @ weight.transpose(0, 1)
        return out + bias if bias is not None else out
