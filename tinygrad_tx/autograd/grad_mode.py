"""Whether ops record the graph: on by default, off inside `no_grad()`."""
import functools
import threading

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "enabled", True)


def set_grad_enabled(enabled):
    _state.enabled = bool(enabled)


class _GradMode:
    enabled = True

    def __enter__(self):
        self._previous = is_grad_enabled()
        set_grad_enabled(self.enabled)

    def __exit__(self, *exc):
        set_grad_enabled(self._previous)

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
