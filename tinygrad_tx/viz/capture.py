"""Capture: walk the grad_fn chain of some tensors into a plain graph of ops, tensors and edges.

This is the full-detail graph, exactly as autograd recorded it: one OpNode per Function, one
TensorNode per leaf (deduplicated through its AccumulateGrad node), per input that needs no
gradient ("constant": indices, masks, data), and per output asked for. Each edge is one tensor
argument of one Function, pointing the way data flowed (producer -> consumer). Everything
later (module grouping, labels, DOT) reads this and never the autograd objects directly.

Intermediate tensors are usually freed by now, so their shape and dtype come from the consumer's
`_input_meta`, which Function.apply records for exactly this reason.
"""
from dataclasses import dataclass, field

from ..autograd.function import AccumulateGrad


@dataclass(eq=False)
class OpNode:
    id: str
    function: object          # the Function instance (its class name is the op's name)
    modules: tuple = ()       # the nn.Modules whose forward was running, outermost first
    output_name: str = None   # a user-given name for the tensor it produced

    @property
    def name(self):
        return self.function.name


@dataclass(eq=False)
class TensorNode:
    id: str
    kind: str                 # "leaf" (requires grad), "constant" (needs no grad) or "output"
    shape: tuple
    dtype: object
    device: str
    tensor: object = None     # the tensor, when it is still reachable (leaves, outputs)
    accumulator: object = None  # a leaf's AccumulateGrad node, where backward delivers its gradient
    name: str = None          # a parameter path or a user-given name


@dataclass(eq=False)
class Edge:
    source: str               # node id of the producer
    target: str               # node id of the consumer
    shape: tuple
    dtype: object
    position: int = None      # which forward argument of the consumer (None for an output's edge)


@dataclass(eq=False)
class Graph:
    nodes: dict = field(default_factory=dict)   # id -> OpNode | TensorNode, producers before consumers
    edges: list = field(default_factory=list)
    outputs: list = field(default_factory=list)  # the TensorNodes of the tensors drawn

    def ops(self):
        return [n for n in self.nodes.values() if isinstance(n, OpNode)]

    def tensors(self, kind=None):
        return [n for n in self.nodes.values() if isinstance(n, TensorNode) and kind in (None, n.kind)]

    def edges_out(self):
        """node id -> edges leaving it."""
        result = {node_id: [] for node_id in self.nodes}
        for edge in self.edges:
            result[edge.source].append(edge)
        return result


def capture(outputs, named_tensors=()):
    """The graph behind `outputs` (Tensors). named_tensors: (name, tensor) pairs naming leaves,
    intermediate tensors or outputs; the first name given to a tensor wins."""
    names, output_names = {}, {}  # id(tensor) -> name; Function -> name of the tensor it produced
    for name, tensor in named_tensors:
        names.setdefault(id(tensor), name)
        if tensor.grad_fn is not None:
            output_names.setdefault(tensor.grad_fn, name)
    graph = Graph()
    functions = _functions_in_dataflow_order([t.grad_fn for t in outputs if t.grad_fn is not None])
    op_ids = {}
    for function in functions:
        op = OpNode(f"op{len(op_ids)}", function, tuple(function.module_stack), output_names.get(function))
        op_ids[function] = op.id
        graph.nodes[op.id] = op
    leaf_ids = {}  # AccumulateGrad -> node id
    counter = [0]

    def new_tensor(kind, shape, dtype, device, tensor=None, accumulator=None, name=None):
        node = TensorNode(f"t{counter[0]}", kind, tuple(shape), dtype, device, tensor, accumulator, name)
        counter[0] += 1
        graph.nodes[node.id] = node
        return node

    for function in functions:
        for position, (parent, meta) in enumerate(zip(function.next_functions, function._input_meta)):
            if meta is None:
                continue  # a Python number or None: not a tensor, nothing to draw
            shape, dtype = meta
            if parent is None:
                source = new_tensor("constant", shape, dtype, function._device).id
            elif isinstance(parent, AccumulateGrad):
                if parent not in leaf_ids:
                    leaf = parent.leaf_ref()
                    device = leaf.device if leaf is not None else function._device
                    name = names.get(id(leaf)) if leaf is not None else None
                    leaf_ids[parent] = new_tensor("leaf", shape, dtype, device, leaf, parent, name).id
                source = leaf_ids[parent]
            else:
                source = op_ids[parent]
            graph.edges.append(Edge(source, op_ids[function], tuple(shape), dtype, position))
    _reorder(graph)
    for index, tensor in enumerate(outputs):
        name = names.get(id(tensor)) or ("output" if len(outputs) == 1 else f"output {index}")
        if tensor.grad_fn is None and tensor.requires_grad and tensor._grad_accumulator() in leaf_ids:
            node = graph.nodes[leaf_ids[tensor._grad_accumulator()]]  # a leaf that is also drawn as an input
        else:
            kind = "leaf" if tensor.grad_fn is None else "output"
            accumulator = tensor._grad_accumulator() if kind == "leaf" and tensor.requires_grad else None
            node = new_tensor(kind, tensor.shape, tensor.dtype, tensor.device, tensor, accumulator, name)
            if tensor.grad_fn is not None:
                graph.edges.append(Edge(op_ids[tensor.grad_fn], node.id, tuple(tensor.shape), tensor.dtype))
        node.name = node.name or name
        graph.outputs.append(node)
    return graph


def _functions_in_dataflow_order(roots):
    """Every Function reachable from roots, each after all the Functions that fed it (iterative DFS)."""
    order, done, on_stack = [], set(), set()
    stack = [(root, False) for root in reversed(roots)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            if node not in done:
                done.add(node)
                order.append(node)
            continue
        if node in done or node in on_stack:
            continue
        on_stack.add(node)
        stack.append((node, True))
        for parent in reversed(node.next_functions):  # first argument first
            if parent is not None and not isinstance(parent, AccumulateGrad) and parent not in done:
                stack.append((parent, False))
    return order


def _reorder(graph):
    """Put each input tensor just before its first consumer, so the DOT text reads in data-flow order."""
    first_use = {}
    for index, edge in enumerate(graph.edges):
        first_use.setdefault(edge.source, index)
    ops = [n for n in graph.nodes.values() if isinstance(n, OpNode)]
    inputs_before = {op.id: [] for op in ops}
    for node in graph.nodes.values():
        if isinstance(node, TensorNode):
            inputs_before[graph.edges[first_use[node.id]].target].append(node)
    ordered = {}
    for op in ops:
        for tensor in inputs_before[op.id]:
            ordered[tensor.id] = tensor
        ordered[op.id] = op
    graph.nodes = ordered
