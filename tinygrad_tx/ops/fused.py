"""FusedFunction: an op computed in one pass over raw arrays, with a hand-derived backward.

The fast path (forward_arrays-style code in `forward`, and `backward_arrays`) keeps the
intermediates it needs and avoids the temporaries a chain of small ops would allocate.
`composed` states the same math with primitive Tensor ops: it is the definition the fast
path must agree with (tests compare the two), and when backward runs with create_graph=True
the engine differentiates `composed` instead, so higher-order gradients stay exact.
"""
from ..autograd import Function, grad
from ..autograd.function import tensor_class
from ..autograd.grad_mode import enable_grad, is_grad_enabled
from .elementwise import constant


class FusedFunction(Function):
    @classmethod
    def apply(cls, *args):
        output = super().apply(*args)
        ctx = output.grad_fn
        if ctx is not None:
            ctx.arguments = args
            ctx.save_for_backward(*(a for a in args if isinstance(a, tensor_class())))
        return output

    @staticmethod
    def composed(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward_arrays(ctx, grad_output):
        """One gradient array (or None) per forward argument."""
        raise NotImplementedError

    @classmethod
    def backward(cls, ctx, grad_output):
        ctx.saved_tensors  # raises if an input was edited in place since forward
        if is_grad_enabled():
            return cls._differentiate_composed(ctx, grad_output)
        grads = cls.backward_arrays(ctx, grad_output.array)
        return tuple(None if g is None else constant(grad_output, g) for g in grads)

    @classmethod
    def _differentiate_composed(cls, ctx, grad_output):
        wanted = [i for i, needs in enumerate(ctx.needs_input_grad) if needs]
        with enable_grad():
            output = cls.composed(ctx, *ctx.arguments)
        grads = grad(output, [ctx.arguments[i] for i in wanted], grad_output, create_graph=True, allow_unused=True)
        result = [None] * len(ctx.arguments)
        for i, g in zip(wanted, grads):
            result[i] = g if g is not None else ctx.arguments[i].new_zeros(ctx.arguments[i].shape)
        return tuple(result)

    def _release(self):
        super()._release()
        self.arguments = None
        self.saved_arrays = None
