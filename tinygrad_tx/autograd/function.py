"""Function: one node of the graph, holding an op's forward and backward side by side.

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):                 # Tensors in, backend array out
            ctx.save_for_backward(a, b)
            return a.array * b.array

        @staticmethod
        def backward(ctx, grad_output):         # Tensors in, one gradient per forward argument out
            a, b = ctx.saved_tensors
            return grad_output * b, grad_output * a

`Mul.apply(a, b)` runs forward and, when a gradient is needed, makes the Function
instance (the `ctx`) the output's `grad_fn`, with edges to the nodes that made each input.
Backward is written with Tensor ops, so running it with the graph on (create_graph=True)
records its own graph, and higher-order gradients come for free.
"""
import weakref

from ..dtype import bfloat16
from . import anomaly_mode
from .grad_mode import is_grad_enabled


class VersionCounter:
    """Shared by a tensor and its views; bumped by every in-place edit."""
    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class SavedTensor:
    """A tensor saved for backward, with the version it had when saved."""
    __slots__ = ("tensor", "version")

    def __init__(self, tensor):
        self.tensor = tensor
        self.version = tensor._version.value

    def unpack(self, op_name, position):
        if self.tensor._version.value != self.version:
            raise RuntimeError(
                f"{op_name}: a tensor it saved for backward (input {position}, shape {tuple(self.tensor.shape)}) "
                f"was modified in place after the forward pass (version {self.version} -> "
                f"{self.tensor._version.value}); clone it before the in-place edit")
        return self.tensor


class module_scope:
    """While a Module runs, the ops it records remember the chain of modules that ran them
    (outermost first), so a picture of the graph can group ops by module."""
    stack = ()

    def __init__(self, module):
        self.module = module

    def __enter__(self):
        self.previous = module_scope.stack
        module_scope.stack = self.previous + (self.module,)

    def __exit__(self, *exc):
        module_scope.stack = self.previous


class Function:
    """Base of every differentiable op. See the module docstring for how to write one."""
    # ops whose output aliases their first input's memory share its version counter
    returns_view = False
    # ops whose backward needs their own output set this; backward then reads ctx.output
    saves_output = False
    # ops that only move or select values (reshape, indexing, cat, cast) set this: they run on bfloat16 arrays
    # as they are, where every other op computes in float32 (see bfloat16_compute)
    only_moves_values = False

    def __init__(self):
        self.next_functions = ()
        self.needs_input_grad = ()
        self._saved = ()
        self._freed = False
        self._output = None  # (array, version counter, version) when saves_output
        self._output_ref = None  # weakref to the output tensor, for its hooks and retain_grad
        self._input_meta = ()
        self.module_stack = ()

    @property
    def name(self):
        return type(self).__name__

    # --- used inside forward -------------------------------------------------------------
    def save_for_backward(self, *tensors):
        self._saved = tuple(None if t is None else SavedTensor(t) for t in tensors)

    # --- used inside backward --------------------------------------------------------------
    @property
    def saved_tensors(self):
        self._check_not_freed()
        return tuple(None if s is None else s.unpack(self.name, i) for i, s in enumerate(self._saved))

    @property
    def output(self):
        """This op's output, rebuilt without a reference cycle (output -> grad_fn -> output)."""
        self._check_not_freed()
        array, counter, version = self._output
        if counter.value != version:
            raise RuntimeError(f"{self.name}: its output was modified in place after the forward pass; "
                               "its backward needs the original values")
        tensor = tensor_class()._make(array, self._device, requires_grad=True, grad_fn=self)
        tensor._version = counter
        return tensor

    def _check_not_freed(self):
        if self._freed:
            raise RuntimeError(
                f"{self.name}: trying to backward through the graph a second time (or to read saved tensors "
                "after backward freed them). Pass retain_graph=True to the first backward() to keep the graph.")

    def _release(self):
        self._saved = ()
        self._output = None
        self._freed = True

    # --- the op interface ------------------------------------------------------------------
    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError

    @classmethod
    def computes_bfloat16_itself(cls, *args, **kwargs):
        """Whether this call computes its bfloat16 inputs in float32 and rounds once by itself (a device kernel
        that reads bfloat16): then they reach forward as they are, not widened to float32 first."""
        return False

    @classmethod
    def apply(cls, *args, **kwargs):
        Tensor = tensor_class()
        tensors = [a for a in args if isinstance(a, Tensor)]
        if not cls.only_moves_values:
            for t in tensors:
                if t.dtype is bfloat16:
                    if cls.computes_bfloat16_itself(*args, **kwargs):
                        break
                    from .bfloat16_compute import run_in_float32
                    return run_in_float32(cls, args, kwargs)
        device = tensors[0].device
        for t in tensors[1:]:
            if t.device != device:
                shapes = ", ".join(f"{tuple(t.shape)} on {t.device}" for t in tensors)
                raise RuntimeError(f"{cls.__name__}: expected all tensors on one device, got {shapes}")
        for t in tensors:
            if t._base is not None and (t._view_version != t._version.value or t._leaf_to_pytorch):
                t._refresh_view(used=is_grad_enabled())  # PyTorch makes an input view's grad_fn when recording
        ctx = cls()
        ctx._device = device
        requires_grad = is_grad_enabled() and any(t.requires_grad for t in tensors)
        if requires_grad:
            ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        try:
            output_array = cls.forward(ctx, *args, **kwargs)
        except (TypeError, NotImplementedError) as error:
            if not any(t.dtype is bfloat16 for t in tensors):
                raise
            from .bfloat16_compute import unsupported
            raise unsupported(cls.__name__, tensors, error) from error
        device = getattr(ctx, "output_device", device)  # set by ops that move data between devices
        output = Tensor._make(output_array, device)
        requires_grad = requires_grad and output.dtype.is_floating  # an int or bool result (a cast) has no gradient
        if requires_grad:
            output._requires_grad, output.grad_fn = True, ctx
        if cls.returns_view and tensors[0].backend.is_view_of(output_array, tensors[0].array):
            # a view shares the version counter, and remembers its base and how it was made from it, so an
            # in-place edit of either one can rewire the graph of the other
            source = tensors[0]
            output._version = source._version
            output._base = source if source._base is None else source._base
            output._view_chain = source._view_chain + ((cls, args[1:]),)
            output._view_version = output._version.value
            output._view_made_without_grad = not is_grad_enabled()
        if requires_grad:
            ctx.next_functions = tuple(_edge(a) for a in args)
            ctx._input_meta = tuple((a.shape, a.dtype) if isinstance(a, Tensor) else None for a in args)
            ctx._output_ref = weakref.ref(output)
            ctx.module_stack = module_scope.stack
            if anomaly_mode.enabled:
                ctx.forward_call_site = anomaly_mode.user_call_site()
            if cls.saves_output:
                ctx._output = (output_array, output._version, output._version.value)
        return output


def tensor_class():
    """Tensor, imported on first use: tensor.py itself imports this module."""
    global _Tensor
    if _Tensor is None:
        from ..tensor import Tensor
        _Tensor = Tensor
    return _Tensor


_Tensor = None


def _edge(arg):
    """The node an input's gradient flows to: its grad_fn, or the accumulator of a leaf."""
    if not isinstance(arg, tensor_class()) or not arg.requires_grad:
        return None
    if arg.grad_fn is not None:
        return arg.grad_fn
    return arg._grad_accumulator()


class AccumulateGrad:
    """The graph's sink for a leaf tensor: adds the incoming gradient to `leaf.grad`."""
    name = "AccumulateGrad"
    next_functions = ()
    _freed = False

    def __init__(self, leaf):
        self.leaf_ref = weakref.ref(leaf)  # a leaf outlives its graph, never the other way round
