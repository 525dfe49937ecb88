"""The picture's graph: which captured nodes are drawn, folded into a module node or left out,
where the arrows go, and which module cluster each node sits in (describe.py writes their text).

Forward view: arrows follow the data (producer -> consumer). Backward view (`backward=True`):
arrows follow the gradients (consumer -> producer), ops are numbered in the order backward runs
them, and a node whose output fed several consumers is marked where their gradients are summed.
"""
from dataclasses import dataclass

from . import gradients
from .describe import Describer, edge_gradient
from .elements import View
from .modules import group_ops


def build_view(graph, names, options, depth):
    ops = graph.ops()
    folded = group_ops(ops, names, depth, options.roll_repeats) if names.model is not None else {}
    groups = {group.id: group for group in folded.values()}
    where = _where_drawn(graph, folded, groups)
    hidden = _hidden_tensors(graph, options)
    arrows = _arrows(graph, where, groups, hidden, options)
    context = Describer(graph, names, options, arrows)
    context.describe_groups(where, groups, folded)
    nodes, emitted = [], set()
    for node_id, node in graph.nodes.items():  # in data-flow order; a group where its first member was
        shown = where[node_id]
        if shown in emitted or node_id in hidden:
            continue
        emitted.add(shown)
        nodes.append(context.group_node(groups[shown]) if shown in groups else context.node(node))
    _place_tensors(nodes, arrows)
    view = View(nodes, [context.arrow(a) for a in arrows], context.cluster_titles(nodes), options, depth=depth)
    if options.show_grads and not any(gradients.recorded(op.function) for op in ops):
        view.notes.append("gradients of intermediate tensors were not recorded: run backward inside "
                          "tinygrad_tx.viz.record_gradients() to color every arrow")
    return view


def _where_drawn(graph, folded, groups):
    """Captured node id -> id of the node that shows it: itself, or the module node it is folded into.
    A leaf or constant goes into a module node when that module is all that uses it."""
    where = {op.id: folded[op.id].id if op.id in folded else op.id for op in graph.ops()}
    edges_out = graph.edges_out()
    for tensor in graph.tensors():
        targets = {where[edge.target] for edge in edges_out[tensor.id]}
        single = next(iter(targets)) if len(targets) == 1 else None
        where[tensor.id] = single if tensor.kind != "output" and single in groups else tensor.id
    return where


def _arrows(graph, where, groups, hidden, options):
    """One arrow per captured edge; edges into or out of a module node that carry the same shape merge."""
    arrows, merged = [], {}
    for edge in graph.edges:
        source, target = where[edge.source], where[edge.target]
        if source == target or edge.source in hidden or edge.target in hidden:
            continue
        gradient = edge_gradient(graph, edge) if options.show_grads or options.backward else None
        key = (source, target, edge.shape, edge.dtype) if source in groups or target in groups else None
        if key in merged:
            merged[key].count += 1
            merged[key].gradient = _larger(merged[key].gradient, gradient)
            continue
        arrow = _PendingArrow(source, target, edge, gradient)
        arrows.append(arrow)
        if key is not None:
            merged[key] = arrow
    return arrows


@dataclass(eq=False)
class _PendingArrow:
    source: str
    target: str
    edge: object
    gradient: float
    count: int = 1


def _hidden_tensors(graph, options):
    """Constants carry no gradient: the backward view leaves them out, and show_constants=False too.
    With show_values an op's value box already is its output."""
    hidden = set()
    if options.backward or not options.show_constants:
        hidden |= {t.id for t in graph.tensors("constant")}
    if options.show_values:
        hidden |= {t.id for t in graph.tensors("output")}
    return hidden


def _larger(a, b):
    return b if a is None else a if b is None else max(a, b)


def _place_tensors(nodes, arrows):
    """A drawn input tensor sits in the innermost cluster that holds all its consumers."""
    by_id = {node.id: node for node in nodes}
    consumers = {}
    for arrow in arrows:
        consumers.setdefault(arrow.source, []).append(by_id[arrow.target].clusters)
    for node in nodes:
        if node.kind in ("leaf", "constant") and node.id in consumers:
            chains = consumers[node.id]
            common = chains[0]
            for chain in chains[1:]:
                length = 0
                while length < min(len(common), len(chain)) and common[length] is chain[length]:
                    length += 1
                common = common[:length]
            node.clusters = common
