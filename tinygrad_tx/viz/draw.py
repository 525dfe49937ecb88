"""draw_graph: the one call that turns tensors into a picture of the graph that made them."""
from ..tensor import Tensor
from .capture import capture
from .dot import write_dot
from .gradients import LogColorScale
from .modules import ModuleNames
from .render import Drawing
from .summarize import view_within_limit
from .elements import Options


def draw_graph(*outputs, model=None, names=None, show_shapes=True, show_dtypes=True, show_saved=False,
               show_grads=False, show_values=False, show_constants=True, backward=False, depth=None,
               roll_repeats=False, max_nodes=1000, rankdir=None, grad_range=(1e-6, 1e2), title=None):
    """Draw the autograd graph behind `outputs` (tensors, or tuples of them such as a model's (logits, loss)).

    model: an nn.Module; its parameters are named by path (transformer.h.0.attn.c_attn.weight) and ops
        are grouped into nested clusters by the module that ran them.
    names: {name: tensor} (or (name, tensor) pairs) naming leaves, intermediate tensors and outputs.
    show_shapes, show_dtypes: on nodes and arrows. show_saved: what each op keeps for backward.
    show_grads: gradient norms, arrows colored on a log scale from grad_range[0] (blue: vanishing) to
        grad_range[1] (red: exploding); intermediate gradients need backward run inside record_gradients().
    show_values: micrograd-style value boxes (data and grad) for tiny tensors.
    show_constants: draw inputs that need no gradient (token ids, masks, data) as dashed boxes.
    backward: draw the gradient flow instead: steps numbered in the order backward runs them.
    depth: fold every module deeper than this many levels into one node (0: the whole model is one node).
    roll_repeats: fold runs of identical sibling modules (GPT-2's blocks) into one node marked xN.
    max_nodes: beyond this many nodes, fold deeper modules and then truncate, rather than draw a hairball.
    rankdir: "TB" (default), "LR" (default with show_values), "BT" or "RL".
    """
    tensors = _flatten(outputs)
    named = _named_tensors(names, model)
    options = Options(show_shapes=show_shapes, show_dtypes=show_dtypes, show_saved=show_saved,
                      show_grads=show_grads, show_values=show_values and not backward,
                      show_constants=show_constants, backward=backward, depth=depth, roll_repeats=roll_repeats,
                      max_nodes=max_nodes, rankdir=rankdir or ("LR" if show_values else "TB"),
                      grad_scale=LogColorScale(*grad_range), title=title)
    if options.rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"draw_graph: rankdir must be TB, LR, BT or RL, got {rankdir!r}")
    if depth is not None and depth < 0:
        raise ValueError(f"draw_graph: depth must be 0 or more, got {depth}")
    if max_nodes is not None and max_nodes < 2:
        raise ValueError(f"draw_graph: max_nodes must be at least 2, got {max_nodes}")
    graph = capture(tensors, named)
    view = view_within_limit(graph, ModuleNames(model), options)
    return Drawing(write_dot(view), view)


def _flatten(outputs):
    tensors = []
    for item in outputs:
        if isinstance(item, (tuple, list)):
            tensors.extend(_flatten(item))
        elif isinstance(item, Tensor):
            tensors.append(item)
        elif item is not None:
            raise TypeError(f"draw_graph: expected tensors (or tuples of them), got {type(item).__name__}")
    if not tensors:
        raise TypeError("draw_graph: give at least one tensor, e.g. draw_graph(loss)")
    return tensors


def _named_tensors(names, model):
    """User names first (they win), then the model's parameter and buffer paths."""
    pairs = list(names.items()) if isinstance(names, dict) else list(names or ())
    for name, tensor in pairs:
        if not isinstance(tensor, Tensor):
            raise TypeError(f"draw_graph: names[{name!r}] is a {type(tensor).__name__}, not a tensor")
    if model is not None:
        pairs += list(model.named_parameters()) + list(model.named_buffers())
    return [(str(name), tensor) for name, tensor in pairs]
