"""max_nodes: past a size, a picture of a graph stops being readable, so summarize it instead.

First fold modules level by level, deepest first (with a model the structure survives: a GPT-2
becomes its blocks); when that is not enough (no model, or a flat graph), keep the nodes closest to
the outputs and stand one "... N more nodes" node in for the rest.
"""
from .elements import Arrow, Node
from .view import build_view


def view_within_limit(graph, names, options):
    view = build_view(graph, names, options, options.depth)
    limit = options.max_nodes
    if limit is None or view.node_count() <= limit:
        return view
    if names.model is not None:
        deepest = max((len(op.modules) for op in graph.ops()), default=0)
        start = deepest - 1 if options.depth is None else min(options.depth, deepest) - 1
        for depth in range(start, -1, -1):
            view = build_view(graph, names, options, depth)
            if view.node_count() <= limit:
                view.notes.append(f"modules deeper than level {depth} are folded to stay within max_nodes={limit} "
                                  "(pass a larger max_nodes, or depth=, to choose)")
                return view
    return truncate(view, limit)


def truncate(view, limit):
    """Keep the limit - 1 nodes nearest the outputs; one node stands for the rest."""
    toward_inputs = {}
    for arrow in view.arrows:
        # forward arrows point at the outputs, backward ones away from them
        near, far = (arrow.source, arrow.target) if view.options.backward else (arrow.target, arrow.source)
        toward_inputs.setdefault(near, []).append(far)
    kept = [node.id for node in view.nodes if node.kind == "output"]
    seen = set(kept)
    for node_id in kept:  # breadth-first: kept grows while it is walked
        if len(kept) >= limit - 1:
            break
        for neighbour in toward_inputs.get(node_id, []):
            if neighbour not in seen:
                seen.add(neighbour)
                kept.append(neighbour)
    kept = set(kept[:limit - 1])
    dropped = len(view.nodes) - len(kept)
    more = Node("more", "more", [(f"\u2026 {dropped} more nodes", "title"),
                                 (f"max_nodes={limit}: pass a larger one, or a model and depth=", "small")])
    arrows, seen_arrows = [], set()
    for arrow in view.arrows:
        source = arrow.source if arrow.source in kept else more.id
        target = arrow.target if arrow.target in kept else more.id
        if source == target == more.id:
            continue
        if more.id in (source, target):
            if (source, target) in seen_arrows:
                continue
            seen_arrows.add((source, target))
            arrow = Arrow(source, target, "", arrow.color, arrow.width, arrow.dashed)
        arrows.append(arrow)
    view.nodes = [node for node in view.nodes if node.id in kept] + [more]
    view.arrows = arrows
    view.notes.append(f"{dropped} nodes farthest from the outputs are summarized (max_nodes={limit})")
    return view
