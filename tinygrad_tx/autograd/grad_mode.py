"""Whether ops record the graph: on by default, off inside `no_grad()`."""
import functools
import threading

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "enabled", True)


def _set_enabled(enabled):
    _state.enabled = bool(enabled)


class _GradMode:
    enabled = True

    def __enter__(self):
        self._previous = is_grad_enabled()
        _set_enabled(self.enabled)

    def __exit__(self, *exc):
        _set_enabled(self._previous)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Context manager and decorator: ops inside build no graph."""
    enabled = False


class enable_grad(_GradMode):
    """Turns recording back on inside a no_grad block (used by create_graph=True)."""
    enabled = True


class set_grad_enabled(_GradMode):
    """set_grad_enabled(mode) switches recording on or off at once; as a context manager (or decorator)
    it switches back at the end, as PyTorch's: `with set_grad_enabled(training): ...`."""

    def __init__(self, mode):
        self._previous = is_grad_enabled()
        self.enabled = bool(mode)
        _set_enabled(mode)

    def __enter__(self):
        pass  # already switched by __init__

    def __call__(self, fn):
        _set_enabled(self._previous)  # as a decorator it only applies while fn runs

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(self.enabled):
                return fn(*args, **kwargs)
        return wrapper


def is_inference_mode_enabled():
    return getattr(_state, "inference", False)


class inference_mode(_GradMode):
    """inference_mode(mode=True): no_grad for code that only evaluates, as a context manager or a decorator
    (with or without parentheses). As PyTorch's, inference_mode(False) turns grad on (inside no_grad too) and
    inference mode off. PyTorch also marks the tensors made inside as inference tensors, which later refuse
    to take part in autograd; tinygrad_tx does not: they are ordinary tensors without a graph, as under
    no_grad."""

    def __new__(cls, mode=True):
        if callable(mode):  # @inference_mode without parentheses
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode=True):
        self.mode = bool(mode)

    def __enter__(self):
        self._previous = (is_grad_enabled(), is_inference_mode_enabled())
        _set_enabled(not self.mode)
        _state.inference = self.mode

    def __exit__(self, *exc):
        _set_enabled(self._previous[0])
        _state.inference = self._previous[1]

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(self.mode):
                return fn(*args, **kwargs)
        return wrapper
