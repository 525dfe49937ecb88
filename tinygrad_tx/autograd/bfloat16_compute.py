"""How ops compute on bfloat16 tensors: in float32, with each op's result rounded to bfloat16 once,
as PyTorch's CPU kernels do.

NumPy has no bfloat16 arithmetic of its own. ml_dtypes' ufuncs widen, compute and round on every call,
so an op written as several array steps (sigmoid's 0.5 * (1 + tanh(x / 2)), a softmax, a layer norm)
would round after each step, and NumPy's matrix product of two bfloat16 arrays comes back float32.
So every Function that computes runs on float32 copies of its bfloat16 inputs, and its float32
result is rounded to bfloat16:

    x (bfloat16) -> Cast to float32 -> the op, in float32 -> Cast to bfloat16 -> out (bfloat16)

The casts are ordinary graph nodes: the op's backward runs in float32 as well, and each input's
gradient is rounded to bfloat16 once by the backward of its cast, so a bfloat16 leaf gets a bfloat16
gradient. Functions that only move values (reshape, indexing, cat, where, a cast) set
`only_moves_values` and run on the bfloat16 arrays as they are: their results are exact, and views
must share their base's memory.

Composite methods that PyTorch runs as one kernel with a float32 accumulator (mean, var, std,
logsumexp, norm) use `computes_in_float32` to do the same: the whole method in float32, one rounding.
"""
import functools

from ..dtype import bfloat16, float32


def run_in_float32(function, args, kwargs):
    """function.apply(*args) with the bfloat16 tensors among args widened to float32, and a float32 result
    rounded to bfloat16 (a Python number beside a bfloat16 tensor arrives as a float32 0-d tensor, unrounded,
    as PyTorch keeps its scalars in float32)."""
    output = function.apply(*(_widened(a) if getattr(a, "dtype", None) is bfloat16 else a for a in args), **kwargs)
    if output.dtype is not float32:  # an integer or bool result (argmax-like ops, comparisons)
        return output
    rounded = output.to(bfloat16)
    # an in-place edit of the result is one of the output the op saved for backward: the same version check
    rounded._version = output._version
    ctx = output.grad_fn
    if ctx is not None and ctx._output is not None:
        # a backward that reads the output reads it rounded, as PyTorch's does (a sigmoid of 0.9997 is 1 in
        # bfloat16, and its gradient 0); in float32 arrays, which the array code of backward computes in
        ctx._output = (output.backend.astype(rounded.array, float32),) + ctx._output[1:]
    return rounded


def _widened(tensor):
    widened = tensor.to(float32)
    # the op saves the float32 copy: an in-place edit of the original must still fail its version check
    widened._version = tensor._version
    return widened


def computes_in_float32(method):
    """For a composite Tensor method: on a bfloat16 tensor, run the whole method in float32 and round its
    result once, as PyTorch's single kernel with a float32 accumulator does."""
    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        if self.dtype is not bfloat16:
            return method(self, *args, **kwargs)
        return method(_widened(self), *args, **kwargs).to(bfloat16)
    return wrapped


def unsupported(op_name, tensors, error):
    """The error for an op the array library cannot run on bfloat16 arrays (an op that moves values, or a device
    kernel, reads them as they are): it names the op and says what to do, instead of the library's traceback."""
    operands = ", ".join(f"{t.dtype.name} {tuple(t.shape)}" for t in tensors)
    return TypeError(f"{op_name}: {tensors[0].backend.name} cannot run this op on bfloat16 tensors ({operands}): "
                     f"{error}. Cast to float32 first (.float()) and back after (.bfloat16())")
