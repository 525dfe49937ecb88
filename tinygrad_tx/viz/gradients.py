"""Gradients for the picture: recorded while backward runs, then read by the drawing.

Leaves keep their gradient in `.grad`, but an intermediate tensor's gradient exists only for a
moment inside backward. `record_gradients()` adds an observer to the engine for the duration of
a `with` block and keeps, per graph node, the order backward visited it, the norm of the gradient
of its output, and the norm of the gradient it sent to each input (plus the values themselves for
tiny tensors, for the scalar teaching view). Records are keyed weakly by node, so they vanish with
the graph they describe.
"""
import colorsys
import contextlib
import math
import weakref
from dataclasses import dataclass

from ..autograd import engine
from ..autograd.grad_mode import no_grad

SMALL = 16  # tensors with at most this many elements keep their values, not just a norm
CHUNK = 1 << 20

_records = weakref.WeakKeyDictionary()  # graph node -> NodeGradients
_visits = [0]


@dataclass
class NodeGradients:
    order: int                # a global visit counter: only the relative order within one graph means anything
    output_norm: float        # norm of the gradient of the node's output (for a leaf: of the gradient it received)
    output_values: object     # that gradient as a NumPy array, when it is small; else None
    input_norms: tuple        # per forward argument, the norm of the gradient sent to it (None: none sent)


def recorded(node):
    return _records.get(node)


@contextlib.contextmanager
def record_gradients():
    """Record gradient norms and the visit order of every backward run inside the block."""
    engine.backward_observers.append(_observe)
    try:
        yield
    finally:
        engine.backward_observers.remove(_observe)


def backward_and_record(tensor, gradient=None, retain_graph=True):
    """tensor.backward() while recording; the graph is kept by default so it can still be drawn with its saved tensors."""
    with record_gradients():
        tensor.backward(gradient, retain_graph=retain_graph)


def _observe(node, grad_output, input_grads):
    _visits[0] += 1
    with no_grad():
        values = grad_output.detach().cpu().numpy().copy() if grad_output.numel() <= SMALL else None
        _records[node] = NodeGradients(_visits[0], norm(grad_output), values,
                                       tuple(None if g is None else norm(g) for g in input_grads))


def norm(tensor):
    """The 2-norm as a Python float, computed in float64 so float16 gradients do not overflow."""
    with no_grad():
        flat = tensor.detach().cpu().numpy().reshape(-1)
    total = 0.0
    for start in range(0, flat.size, CHUNK):  # in chunks: an embedding's gradient has tens of millions of entries
        part = flat[start:start + CHUNK].astype("float64")
        total += float(part @ part)
    return math.sqrt(total)


class LogColorScale:
    """Gradient norms to colors on a log scale: blue for vanishing (low and below), green around 1,
    red for exploding (high and above).

    The range is fixed (not fitted to the graph), so two pictures drawn with the same scale can be
    compared: a deep tanh MLP without residual connections turns blue towards its input, one with
    them stays green.
    """

    def __init__(self, low=1e-6, high=1e2):
        if not 0 < low < 1 < high:
            raise ValueError(f"gradient color scale: need 0 < low < 1 < high, got low={low}, high={high}")
        self.low, self.high = low, high

    def fraction(self, value):
        """Where value sits on the scale: 0.0 at low, 0.5 at 1 (green), 1.0 at high; log-spaced, clamped."""
        if value is None:
            return None
        if not math.isfinite(value):
            return 1.0
        if value <= 0:
            return 0.0
        exponent = math.log10(value)
        if exponent < 0:
            fraction = 0.5 * (1.0 - exponent / math.log10(self.low))
        else:
            fraction = 0.5 + 0.5 * exponent / math.log10(self.high)
        return min(1.0, max(0.0, fraction))

    def color(self, value):
        """A "#rrggbb" color; gray when there is no gradient to show."""
        fraction = self.fraction(value)
        if fraction is None:
            return "#999999"
        hue = 0.66 * (1.0 - fraction)  # 0.66 blue -> 0.33 green -> 0.0 red
        red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 0.85)
        return "#%02x%02x%02x" % (round(red * 255), round(green * 255), round(blue * 255))

    def width(self, value):
        fraction = self.fraction(value)
        return 1.0 if fraction is None else 0.8 + 3.2 * fraction

    def ticks(self):
        """Powers of ten spanning the scale, for the legend."""
        low, high = math.floor(math.log10(self.low)), math.ceil(math.log10(self.high))
        step = max(1, (high - low) // 8)
        return [10.0 ** e for e in range(low, high + 1, step)]


def predicted_order(roots):
    """{node: step} in the order the engine's backward walk will visit the graph below roots (the
    Functions backward starts from). It mirrors engine.run_backward: a node runs once all its
    consumers have sent their gradient, and the most recently readied node runs first."""
    dependencies = engine._count_dependencies(roots)
    ready = [node for node in dict.fromkeys(roots) if dependencies.get(node, 0) == 0]
    order = {}
    while ready:
        node = ready.pop()
        order[node] = len(order) + 1
        for parent in node.next_functions:
            if parent is not None:
                dependencies[parent] -= 1
                if dependencies[parent] == 0:
                    ready.append(parent)
    return order


def visit_order(roots, nodes):
    """{node: step} as backward visited these nodes when it ran while recording, else as it will visit them."""
    seen = sorted((record.order, id(node), node) for node in nodes if (record := recorded(node)) is not None)
    if seen:
        return {node: step for step, (_, _, node) in enumerate(seen, start=1)}
    return predicted_order(roots)
