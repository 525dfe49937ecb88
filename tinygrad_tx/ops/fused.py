"""FusedFunction: an op computed in one pass over raw arrays, with a hand-derived backward.

The fast path (forward_arrays-style code in `forward`, and `backward_arrays`) keeps the
intermediates it needs and avoids the temporaries a chain of small ops would allocate.
`composed` states the same math with primitive Tensor ops: it is the definition the fast
path must agree with (tests compare the two), and when backward runs with create_graph=True
the engine differentiates `composed` instead, so higher-order gradients stay exact.

`forward` saves (save_for_backward, or saves_output) exactly the tensors `backward_arrays`
reads, so an in-place edit of one of them is caught, and an edit of anything else is allowed.
"""
from ..autograd import Function, grad
from ..autograd.function import tensor_class
from ..autograd.grad_mode import enable_grad, is_grad_enabled
from .elementwise import constant


class FusedFunction(Function):
    # argument positions whose values the derivatives do not depend on (an added bias): create_graph=True
    # lets them be edited in place after the forward, as PyTorch does
    free_arguments = ()

    @classmethod
    def apply(cls, *args):
        output = super().apply(*args)
        ctx = output.grad_fn
        if isinstance(ctx, cls):  # not a Cast: bfloat16 inputs ran in float32, whose op recorded these already
            # a result's place in the graph moves with in-place edits; backward wants the place it had here
            ctx.arguments = tuple(a._alias() if isinstance(a, tensor_class()) and a.grad_fn is not None else a
                                  for a in args)
            ctx.argument_versions = tuple(a._version.value if isinstance(a, tensor_class()) else None for a in args)
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
        if is_grad_enabled():
            return cls.backward_with_graph(ctx, grad_output)
        ctx.saved_tensors  # raises if a tensor backward_arrays reads was edited in place since forward
        grads = cls.backward_arrays(ctx, grad_output.array)
        return tuple(None if g is None else constant(grad_output, g) for g in grads)

    @classmethod
    def backward_with_graph(cls, ctx, grad_output):
        """The gradient as a graph of Tensor ops (create_graph=True): `composed` differentiated at the inputs.

        Each argument position gets its own stand-in node (a view of the argument), so the gradient for a
        position is the partial derivative through that position alone: in linear(w, w) each position
        contributes once, and the engine adds the two, as the chain rule asks."""
        ctx.saved_tensors
        _check_arguments_unchanged(ctx, getattr(ctx, "free_arguments", cls.free_arguments))
        wanted = [i for i, needs in enumerate(ctx.needs_input_grad) if needs]
        with enable_grad():
            arguments = cls.composed_arguments(ctx)
            stand_ins = list(arguments)
            for i in wanted:
                stand_ins[i] = arguments[i].view_as(arguments[i])
            output = cls.composed(ctx, *stand_ins)
        grads = grad(output, [stand_ins[i] for i in wanted], grad_output, create_graph=True, allow_unused=True)
        result = [None] * len(ctx.arguments)
        for i, g in zip(wanted, grads):
            result[i] = g if g is not None else ctx.arguments[i].new_zeros(ctx.arguments[i].shape)
        return tuple(result)

    @staticmethod
    def composed_arguments(ctx):
        """The arguments `composed` is differentiated at: the forward's, unless an op knows better."""
        return ctx.arguments

    def _release(self):
        super()._release()
        self.arguments = None
        self.saved_arrays = None


class AtForwardValues(Function):
    """x's place in the graph with values an op kept from its forward: `composed` can be differentiated at
    the forward's values of an argument the user has edited in place since (gradient: the identity)."""
    only_moves_values = True

    @staticmethod
    def forward(ctx, x, array):
        return array

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None


def _check_arguments_unchanged(ctx, free_arguments):
    """`composed` recomputes from the inputs: each it depends on must still hold its forward values."""
    for position, (argument, version) in enumerate(zip(ctx.arguments, ctx.argument_versions)):
        if version is not None and position not in free_arguments and argument._version.value != version:
            raise RuntimeError(
                f"{ctx.name}: input {position} (shape {tuple(argument.shape)}) was modified in place after the "
                "forward pass; a backward with create_graph=True recomputes this op from its inputs, so it needs "
                "their original values (clone the input before the in-place edit)")
