"""A small expression, its graph node by node, the order backward visits it, and a gradient check.

    python examples/autograd_walkthrough.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import tinygrad_tx as tg  # noqa: E402
from tinygrad_tx.autograd import AccumulateGrad, gradcheck  # noqa: E402
from tinygrad_tx.autograd.engine import run_backward  # noqa: E402


def describe(node, names):
    if isinstance(node, AccumulateGrad):
        return f"AccumulateGrad -> {names.get(id(node.leaf_ref()), 'leaf')}.grad"
    return node.name


def print_graph(output, names):
    """Every node once, each with the nodes its backward sends gradients to."""
    seen, stack = set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        edges = [describe(parent, names) for parent in node.next_functions if parent is not None]
        print(f"  {describe(node, names):<28} sends gradients to: {', '.join(edges) or '-'}")
        stack.extend(node.next_functions)


def main():
    x = tg.tensor([0.5, -1.0, 2.0], dtype=tg.float64, requires_grad=True)
    w = tg.tensor([1.5, 0.25, -0.75], dtype=tg.float64, requires_grad=True)
    names = {id(x): "x", id(w): "w"}

    # L = sum(tanh(x * w) + x^2): x is used twice, so its gradient accumulates from two paths
    loss = ((x * w).tanh() + x * x).sum()
    print(f"L = sum(tanh(x * w) + x * x) = {loss.item():.6f}\n\nthe graph, from the output back to the leaves:")
    print_graph(loss, names)

    one = tg.ones((), dtype=tg.float64)
    _, order = run_backward([loss], [one], retain_graph=False, create_graph=False)
    print("\nthe order backward ran the nodes (each after all of its consumers):")
    print("  " + " -> ".join(describe(node, names) for node in order))

    print(f"\ndL/dx = {x.grad.tolist()}")
    print(f"dL/dw = {w.grad.tolist()}")
    expected_x = (w * (1 - (x * w).tanh() ** 2) + 2 * x).tolist()
    print(f"by hand: dL/dx = w (1 - tanh(xw)^2) + 2x = {expected_x}")

    ok = gradcheck(lambda x, w: ((x * w).tanh() + x * x).sum(), (x, w))
    print(f"\ngradcheck against central differences: {'passed' if ok else 'failed'}")

    # a second derivative: d/dx of (dL/dx) summed
    x.grad = None
    (first,) = tg.autograd.grad(((x * w).tanh() + x * x).sum(), x, create_graph=True)
    (second,) = tg.autograd.grad(first.sum(), x)
    print(f"d/dx sum(dL/dx) = {second.tolist()} (a Hessian-vector product with v = 1)")


if __name__ == "__main__":
    main()
