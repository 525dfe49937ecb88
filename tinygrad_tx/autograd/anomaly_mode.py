"""detect_anomaly(): find the op whose backward first produced NaN or inf.

Inside it, every op recorded for backward remembers where user code called it (file:line), and
backward checks each gradient it computes; the first that is not finite raises an error naming
the op, its input shapes and that call site. Both cost time, so they are off by default.
"""
import functools
import os
import traceback

enabled = False  # read directly by the hot paths (Function.apply, the backward walk)

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def is_anomaly_enabled():
    return enabled


class detect_anomaly:
    """Context manager and decorator, as torch.autograd.detect_anomaly."""

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __enter__(self):
        global enabled
        self._previous = enabled
        enabled = self.check_nan

    def __exit__(self, *exc):
        global enabled
        enabled = self._previous

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)
        return wrapper


class set_detect_anomaly(detect_anomaly):
    """set_detect_anomaly(mode) switches at once; as a context manager it switches back at the end."""

    def __init__(self, mode, check_nan=True):
        global enabled
        super().__init__(check_nan)
        self._previous, enabled = enabled, bool(mode) and check_nan

    def __enter__(self):
        pass  # already switched by __init__


def user_call_site():
    """'file:line in function: code' of the innermost caller outside this package."""
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR + os.sep):
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return "inside tinygrad_tx"


def check_gradients_finite(node, input_grads):
    """Raise naming `node` if one of the gradients its backward returned holds NaN or inf."""
    for position, grad in enumerate(input_grads):
        if grad is None or not grad.dtype.is_floating or bool(grad.backend.isfinite(grad.array).all()):
            continue
        kind = "NaN" if bool(grad.backend.xp.isnan(grad.array).any()) else "inf"
        shapes = ", ".join(str(tuple(meta[0])) for meta in node._input_meta if meta is not None)
        site = getattr(node, "forward_call_site", None) or \
            "unknown (the forward pass ran outside detect_anomaly(); run it inside to see where)"
        raise RuntimeError(f"detect_anomaly: {node.name} backward returned {kind} in the gradient for its input "
                           f"{position} (inputs of shapes {shapes}); the {node.name} was called at {site}")
