"""The words and numbers in the picture: node rows and arrow labels for ops, tensors and folded modules.
All of it is plain text; dot.py escapes it."""
from ..nn.parameter import Parameter
from ..tensor import Tensor
from . import gradients
from .capture import OpNode
from .elements import Arrow, Node
from .labels import count_text, norm_text, path_range_text, shape_text, tensor_text, values_text


class Describer:
    """Writes the text of the nodes and arrows of one view."""

    def __init__(self, graph, names, options, arrows):
        self.graph, self.names, self.options, self.arrows = graph, names, options, arrows
        self.edges_out = graph.edges_out()
        self.clustered = names.model is not None
        self.steps = self._steps() if options.backward else {}
        self.ops_in, self.group_leaves = {}, {}  # group id -> the ops / leaves (parameters) folded into it
        self.group_inputs, self.group_outputs = {}, {}  # group id -> captured edges crossing into / out of it

    def describe_groups(self, where, groups, folded):
        """What each module node stands for: its ops and parameters, and what flows in and out."""
        for op in self.graph.ops():
            if op.id in folded:
                self.ops_in.setdefault(folded[op.id].id, []).append(op)
        for tensor in self.graph.tensors("leaf"):
            if where[tensor.id] in groups:
                self.group_leaves.setdefault(where[tensor.id], []).append(tensor)
        for edge in self.graph.edges:
            source, target = where[edge.source], where[edge.target]
            if target in groups and source != target:
                self.group_inputs.setdefault(target, []).append(edge)
            if source in groups and source != target:
                self.group_outputs.setdefault(source, []).append(edge)

    # --- nodes ------------------------------------------------------------------------------------
    def node(self, node):
        if isinstance(node, OpNode):
            return self.op_node(node)
        return self.tensor_node(node)

    def op_node(self, op):
        function, o = op.function, self.options
        title = op.name
        if o.backward:
            title = f"#{self.steps.get(function, '?')} {op.name}.backward"
        rows = [(title, "title")]
        record = gradients.recorded(function)
        if o.show_grads and not o.show_values:
            rows.append((f"\u2016grad out\u2016 {norm_text(record.output_norm if record else None)}", "small"))
        if o.show_saved:
            rows.extend((text, "small") for text in _saved_texts(function))
        consumers = len(self.edges_out[op.id])
        summed = o.backward and consumers > 1
        if summed:
            rows.append((f"\u03a3 of {consumers} incoming gradients", "small"))
        node = Node(op.id, "op", rows, op.modules if self.clustered else (), summed=summed,
                    tooltip=self._module_tooltip(op.modules))
        if o.show_values:
            node.value_rows = self._value_cells(op)
        return node

    def tensor_node(self, tensor):
        o = self.options
        device = tensor.device
        if tensor.kind == "constant":
            rows = [("input (no grad)", "text")]
        elif tensor.kind == "output":
            rows = [(tensor.name, "title")]
        else:
            kind = "parameter" if isinstance(tensor.tensor, Parameter) else "leaf"
            rows = [(tensor.name or kind, "title")]
            if o.backward:
                step = self.steps.get(tensor.accumulator, "?")
                rows = [(f"#{step} AccumulateGrad", "title"), (f"\u2192 {tensor.name or kind}.grad", "text")]
        text = tensor_text(tensor.shape, tensor.dtype, o.show_shapes, o.show_dtypes, device)
        if text:
            rows.append((text, "small"))
        if o.show_values and tensor.tensor is not None:
            grad = tensor.tensor.grad
            rows.append((f"data {values_text(tensor.tensor.detach().cpu().numpy())}", "text"))
            rows.append((f"grad {values_text(grad.detach().cpu().numpy()) if grad is not None else '?'}", "text"))
        elif o.show_grads and tensor.kind != "constant":
            rows.append((f"\u2016grad\u2016 {norm_text(self._tensor_gradient_norm(tensor))}", "small"))
        consumers = len(self.edges_out[tensor.id])
        summed = o.backward and tensor.kind == "leaf" and consumers > 1
        if summed:
            rows.append((f"\u03a3 of {consumers} incoming gradients", "small"))
        return Node(tensor.id, tensor.kind, rows, summed=summed)

    def group_node(self, group):
        o = self.options
        first = group.modules[0]
        paths = [self.names.path(m) for m in group.modules]
        title = type(first).__name__ + (f" \u00d7{len(group.modules)}" if len(group.modules) > 1 else "")
        rows = [(title, "title"), (path_range_text(paths), "text")]
        if group.drawn_in_full is not None:
            rows.append((f"each identical to {self.names.path(group.drawn_in_full)}", "small"))
        inputs = _distinct(self.group_inputs.get(group.id, ()))
        outputs = _distinct(self.group_outputs.get(group.id, ()))
        for heading, edges in (("in", inputs), ("out", outputs)):
            if edges and o.show_shapes:
                rows.append((f"{heading}: " + ", ".join(shape_text(e.shape) for e in edges), "small"))
        parameters = {id(p): p.numel() for m in group.modules for p in m.parameters()}
        ops = self.ops_in[group.id]
        rows.append((f"{count_text(sum(parameters.values()))} params \u00b7 {len(ops)} op{'s' * (len(ops) != 1)}",
                     "small"))
        if o.show_grads:
            norms = [self._tensor_gradient_norm(t) for t in self.group_leaves.get(group.id, ())]
            if any(n is not None for n in norms):  # one norm over all its parameters' gradients
                total = sum(n * n for n in norms if n is not None) ** 0.5
                rows.append((f"\u2016grad params\u2016 {norm_text(total)}", "small"))
        if o.backward:
            steps = [self.steps[op.function] for op in ops if op.function in self.steps]
            if steps:
                span = f"step {min(steps)}" if min(steps) == max(steps) else f"steps {min(steps)}\u2013{max(steps)}"
                rows.append((f"backward {span}", "small"))
        return Node(group.id, "module", rows, group.clusters, tooltip=self._module_tooltip(group.clusters))

    # --- arrows -----------------------------------------------------------------------------------------
    def arrow(self, pending):
        o, edge = self.options, pending.edge
        parts = []
        if o.backward:
            if edge.position is not None:
                parts.append(f"\u2202in{edge.position}")
        text = tensor_text(edge.shape, edge.dtype, o.show_shapes, o.show_dtypes)
        if text:
            parts.append(text)
        if o.show_grads:
            parts.append(f"\u2016g\u2016 {norm_text(pending.gradient)}")
        if pending.count > 1:
            parts.append(f"\u00d7{pending.count}")
        arrow = Arrow(pending.source, pending.target, " ".join(parts), dashed=self._is_constant(edge),
                      count=pending.count)
        if o.show_grads:
            arrow.color = o.grad_scale.color(pending.gradient)
            arrow.width = o.grad_scale.width(pending.gradient)
        if o.backward:
            arrow.source, arrow.target = arrow.target, arrow.source
        return arrow

    # --- helpers ----------------------------------------------------------------------------------------
    def cluster_titles(self, nodes):
        titles = {}
        for node in nodes:
            for module in node.clusters:
                titles.setdefault(id(module), (type(module).__name__, self.names.path(module)))
        return titles

    def _steps(self):
        roots = [t.grad_fn for t in (o.tensor for o in self.graph.outputs) if t is not None and t.grad_fn is not None]
        nodes = [op.function for op in self.graph.ops()] + [t.accumulator for t in self.graph.tensors("leaf")
                                                            if t.accumulator is not None]
        return gradients.visit_order(roots, nodes)

    def _is_constant(self, edge):
        return getattr(self.graph.nodes[edge.source], "kind", None) == "constant"

    def _tensor_gradient_norm(self, tensor):
        """What this graph's backward delivered, when it was recorded; else what .grad holds."""
        node = tensor.accumulator
        if tensor.kind == "output" and tensor.tensor is not None:
            node = tensor.tensor.grad_fn
        record = gradients.recorded(node) if node is not None else None
        if record is not None:
            return record.output_norm
        grad = tensor.tensor.grad if tensor.tensor is not None else None
        return gradients.norm(grad) if grad is not None else None

    def _module_tooltip(self, modules):
        return " > ".join(f"{type(m).__name__} {self.names.path(m)}".strip() for m in modules)

    def _value_cells(self, op):
        """micrograd's value box: [name |] data | grad, for the tensor the op produced."""
        function = op.function
        output = _output_tensor(function, self.graph)
        name = next((o.name for o in self.graph.outputs if o.tensor is not None and o.tensor.grad_fn is function), None)
        name = name or op.output_name
        data = output.detach().cpu().numpy() if output is not None else None
        grad = output.grad if output is not None and output.grad is not None else None
        if grad is not None:
            grad = grad.detach().cpu().numpy()
        elif (record := gradients.recorded(function)) is not None:
            grad = record.output_values
        cells = [name] if name else []
        cells.append(f"data {values_text(data)}")
        cells.append(f"grad {values_text(grad)}")
        return cells


def _distinct(edges):
    seen, result = set(), []
    for edge in edges:
        key = (edge.shape, getattr(edge.dtype, "name", edge.dtype))
        if key not in seen:
            seen.add(key)
            result.append(edge)
    return result


def _saved_texts(function):
    """What an op keeps for its backward: saved tensors, raw arrays (fused ops), its own output."""
    if function._freed:
        return ["saved: freed by backward (retain_graph=True keeps it)"]
    tensors = [shape_text(s.tensor.shape) for s in function._saved if s is not None]
    arrays = [shape_text(getattr(a, "shape", ())) for a in (getattr(function, "saved_arrays", None) or ())]
    if function._output is not None:
        tensors.append(f"output {shape_text(getattr(function._output[0], 'shape', ()))}")
    texts = []
    if tensors:
        texts.append("saved: " + ", ".join(tensors))
    if arrays:
        texts.append("arrays: " + ", ".join(arrays))
    return texts or ["saved: nothing"]


def _output_tensor(function, graph):
    """The tensor an op produced, if anything still holds it (the caller, a consumer's saved tensors)."""
    output = function._output_ref() if function._output_ref is not None else None
    if output is not None:
        return output
    for op in graph.ops():
        for saved in op.function._saved:
            if saved is not None and saved.tensor.grad_fn is function:
                return saved.tensor
    if function._output is not None:
        return Tensor._make(function._output[0], function._device)
    return None


def edge_gradient(graph, edge):
    """Norm of the gradient that flowed back along a captured edge, when backward recorded it."""
    target = graph.nodes[edge.target]
    if isinstance(target, OpNode):
        record = gradients.recorded(target.function)
        if record is None or edge.position >= len(record.input_norms):
            return None
        return record.input_norms[edge.position]
    if target.tensor is not None and target.tensor.grad is not None:  # an output that retained its gradient
        return gradients.norm(target.tensor.grad)
    record = gradients.recorded(graph.nodes[edge.source].function)
    return record.output_norm if record is not None else None
