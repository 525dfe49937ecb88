"""The backward pass: walk the graph from the outputs to the leaves in topological order.

1. Count, for every node reachable from the outputs, how many edges point into it
   (how many consumers will send it a gradient).
2. Start from the outputs' nodes. Pop a node whose consumers have all reported, sum the
   gradients they sent, call its backward, and send one gradient down each of its edges.
3. At a leaf's AccumulateGrad node, add the gradient into `leaf.grad`, then run the leaf's
   post-accumulate-grad hooks (distributed data parallelism starts reducing a gradient there).
4. When the walk is done, run the callbacks queued while it ran (queue_callback).

Both walks use an explicit stack, so a chain of 100,000 ops needs no recursion.
"""
from . import anomaly_mode
from .function import AccumulateGrad
from .grad_mode import enable_grad, no_grad

# observe(node, grad_output, input_grads) is called for each node backward runs, in order: tinygrad_tx.viz
# records gradient magnitudes this way. Left empty, it costs an empty loop per node.
backward_observers = []

# one list per backward running (a hook may run a backward of its own): the callbacks to run when it ends
_final_callbacks = []


def queue_callback(callback):
    """Run callback() once the backward pass now running has finished, as PyTorch's
    Variable._execution_engine.queue_callback: DDP waits there for its last gradient reductions."""
    if not _final_callbacks:
        raise RuntimeError("queue_callback: no backward pass is running; call it from a hook during backward")
    _final_callbacks[-1].append(callback)


def _count_dependencies(roots):
    dependencies = {}
    seen = set(roots)
    stack = list(roots)
    while stack:
        node = stack.pop()
        for parent in node.next_functions:
            if parent is None:
                continue
            dependencies[parent] = dependencies.get(parent, 0) + 1
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return dependencies


def run_backward(outputs, grad_outputs, retain_graph, create_graph, capture=None):
    """Propagate grad_outputs from outputs through the graph.

    capture: optional {node: None} for autograd.grad(); the gradient arriving at each such node
    is stored there instead of being accumulated into leaves' .grad.
    Returns the capture dict and the nodes in the order they ran.
    """
    roots = []
    pending = {}  # node -> gradient summed so far
    for output, grad in zip(outputs, grad_outputs):
        node = output.grad_fn if output.grad_fn is not None else output._grad_accumulator()
        if node not in pending:
            roots.append(node)
        _accumulate(pending, node, grad)
    dependencies = _count_dependencies(roots)
    needed = _nodes_leading_to(capture, roots, dependencies) if capture is not None else None
    ready = [node for node in roots if dependencies.get(node, 0) == 0]
    visit_order = []
    handed_out = {id(grad.array) for grad in grad_outputs}  # arrays others hold: a leaf's .grad must not be one
    _final_callbacks.append([])
    try:
        _walk(ready, pending, dependencies, needed, visit_order, capture, retain_graph, create_graph, handed_out)
    except BaseException:
        _final_callbacks.pop()  # a failed backward does not run its callbacks
        raise
    for callback in _final_callbacks.pop():
        callback()
    return capture, visit_order


def _walk(ready, pending, dependencies, needed, visit_order, capture, retain_graph, create_graph, handed_out):
    with (enable_grad() if create_graph else no_grad()):
        while ready:
            node = ready.pop()
            if node not in pending:  # every consumer sent None: nothing flows below here
                _release_edges(node, dependencies, ready)
                continue
            grad = pending.pop(node)
            grad.__dict__.pop("_scattered", None)  # now anyone may see it (hooks, .grad): no more edits in place
            visit_order.append(node)
            if isinstance(node, AccumulateGrad) and (capture is None or node in capture):
                grad = _run_leaf_hooks(node, grad)  # autograd.grad() returns a leaf's gradient after its hooks too
            if capture is not None and node in capture:
                capture[node] = grad
            if isinstance(node, AccumulateGrad):
                for observe in backward_observers:
                    observe(node, grad, ())
                if capture is None:
                    _accumulate_into_leaf(node, grad, create_graph, handed_out)
                continue
            if needed is not None and node not in needed:
                _release_edges(node, dependencies, ready)
                continue
            grad = _run_tensor_hooks(node, grad)
            if getattr(node, "gradient_is_a_slice", False) and \
                    _add_into_pending_slice(node, grad, pending, create_graph):
                if not retain_graph:
                    node._release()
                _release_edges(node, dependencies, ready)
                continue
            input_grads = node.backward(node, grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            input_grads = _check_gradients(node, input_grads)
            if anomaly_mode.enabled:
                anomaly_mode.check_gradients_finite(node, input_grads)
            for observe in backward_observers:
                observe(node, grad, input_grads)
            if not retain_graph:
                node._release()
            for parent, input_grad in zip(node.next_functions, input_grads):
                if parent is None:
                    continue
                if input_grad is not None:
                    _accumulate(pending, parent, input_grad)
                dependencies[parent] -= 1
                if dependencies[parent] == 0:
                    ready.append(parent)


def _nodes_leading_to(targets, roots, dependencies):
    """The nodes from which some target is reachable: autograd.grad() runs only those."""
    order = []  # a topological order, found by a dry run of the walk
    remaining = dict(dependencies)
    stack = [node for node in roots if remaining.get(node, 0) == 0]
    while stack:
        node = stack.pop()
        order.append(node)
        for parent in node.next_functions:
            if parent is not None:
                remaining[parent] -= 1
                if remaining[parent] == 0:
                    stack.append(parent)
    needed = set()
    for node in reversed(order):
        if node in targets or any(parent in needed for parent in node.next_functions if parent is not None):
            needed.add(node)
    return needed


def _release_edges(node, dependencies, ready):
    """Skip a node: its parents stop waiting for it."""
    for parent in node.next_functions:
        if parent is not None:
            dependencies[parent] -= 1
            if dependencies[parent] == 0:
                ready.append(parent)


def _accumulate(pending, node, grad):
    held = pending.get(node)
    if held is None:
        pending[node] = grad
    elif getattr(held, "_scattered", None) and getattr(grad, "_scattered", None) and held.dtype is grad.dtype:
        # gradients of slices of one tensor (q, k, v = qkv.split(n, -1)): each is zeros but for its slice, and
        # `held` is the engine's alone, so the other's slice is added into it in place rather than the whole arrays
        # summed (4x faster for GPT-2's q, k and v)
        _add_at(held, *grad._scattered)
    else:
        pending[node] = held + grad


def _add_into_pending_slice(node, grad, pending, create_graph):
    """The backward of x[index] (a basic index) where x's gradient so far is a scattered one the engine alone holds
    (see _accumulate): grad is added into its slice there, without the zeros around it that backward would build
    first. Not where the walk is watched or builds a graph: there every node runs its own backward."""
    if create_graph or backward_observers or anomaly_mode.enabled:
        return False
    held = pending.get(node.next_functions[0])
    if held is None or not getattr(held, "_scattered", None) or held.dtype is not grad.dtype:
        return False
    _add_at(held, node.index, grad.array)
    return True


def _add_at(held, index, values):
    target = held.array[index]
    if getattr(target, "base", None) is not None:  # a view of held: add in place
        target += values
    else:  # an index of ints alone reads a copy (a NumPy scalar): read, add, write back
        held.backend.setitem(held.array, index, target + values)


def _run_tensor_hooks(node, grad):
    output = node._output_ref() if node._output_ref is not None else None
    if output is None:
        return grad
    for hook in output._hooks:
        result = hook(grad)
        grad = result if result is not None else grad
    if output._retains_grad:  # autograd.grad() fills it too, as PyTorch
        output.grad = grad.detach() if output.grad is None else (output.grad + grad).detach()
    return grad


def _run_leaf_hooks(node, grad):
    leaf = node.leaf_ref()
    for hook in leaf._hooks if leaf is not None else ():
        result = hook(grad)
        grad = result if result is not None else grad
    return grad


def _accumulate_into_leaf(node, grad, create_graph, handed_out):
    leaf = node.leaf_ref()
    if leaf is None:
        return
    if not create_graph:
        grad = grad.detach()
        if leaf.grad is None and (not grad.array.flags.owndata or id(grad.array) in handed_out):
            # .grad is the leaf's own array, as in PyTorch: a broadcast view repeats one element, and one
            # gradient can reach two leaves (a + b) or be the caller's tensor; an in-place edit of one
            # (zero_grad, clipping) must not reach the others
            grad = grad.clone()
        handed_out.add(id(grad.array))
    leaf.grad = grad if leaf.grad is None else leaf.grad + grad
    for hook in leaf._post_accumulate_grad_hooks:
        hook(leaf)


def _check_gradients(node, input_grads):
    """Custom Functions get a clear error for a wrong gradient instead of a broken sum later."""
    if len(input_grads) != len(node.next_functions):
        raise RuntimeError(f"{node.name}.backward returned {len(input_grads)} gradients; "
                           f"its forward took {len(node.next_functions)} arguments")
    checked = []
    for position, (grad, meta) in enumerate(zip(input_grads, node._input_meta)):
        if grad is not None and meta is not None:
            shape, dtype = meta
            if grad.shape != shape:
                raise RuntimeError(f"{node.name}.backward returned a gradient of shape {tuple(grad.shape)} "
                                   f"for input {position} of shape {tuple(shape)}")
            if grad.dtype is not dtype:
                grad = grad.to(dtype)
        checked.append(grad)
    return checked
