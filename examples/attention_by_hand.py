"""Scaled dot-product attention on five tokens, one step at a time, then one backward pass.

"I love to eat pizza": each token has a 3-number embedding, and the embeddings are used directly as the
queries, the keys and the values (no W^Q, W^K, W^V), so d_k = 3:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

docs/transformer.md walks through the printed numbers.

    python examples/attention_by_hand.py
"""
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

import tinygrad_tx as tg  # noqa: E402
import tinygrad_tx.nn.functional as F  # noqa: E402
from tinygrad_tx.autograd import gradcheck  # noqa: E402

TOKENS = ["I", "love", "to", "eat", "pizza"]
EMBEDDINGS = [[0.1, 0.2, 0.3],
              [0.4, 0.5, 0.6],
              [0.7, 0.8, 0.9],
              [1.0, 1.1, 1.2],
              [1.3, 1.4, 1.5]]
CHOSEN = (1, 0)   # the output whose gradient we follow: "love", first component


def show(title, matrix, columns=None):
    values = matrix.detach().numpy()
    columns = columns or [f"[{j}]" for j in range(values.shape[1])]
    print(f"\n{title}")
    print(" " * 8 + "".join(f"{c:>9}" for c in columns))
    for token, row in zip(TOKENS, values):
        print(f"{token:>8}" + "".join(f"{v:9.4f}" for v in row))


def attention(x):
    """The five tokens' attention outputs, with Q = K = V = x, written out as the formula reads."""
    d_k = x.shape[-1]
    scores = x @ x.T                             # (5, 5): Q K^T, one dot product per (query, key) pair
    scaled = scores / math.sqrt(d_k)             # (5, 5)
    weights = scaled.softmax(-1)                 # (5, 5): each query's row sums to 1
    return scores, scaled, weights, weights @ x  # outputs (5, 3): weighted averages of the values


def main():
    x = tg.tensor(EMBEDDINGS, dtype=tg.float64, requires_grad=True)   # (5, 3)
    show("Embeddings (= Q = K = V), d_k = 3", x)

    scores, scaled, weights, outputs = attention(x)
    show("Q K^T (row: query token, column: key token)", scores, TOKENS)
    show(f"Q K^T / sqrt(3)   (sqrt(3) = {math.sqrt(3):.4f})", scaled, TOKENS)
    show("softmax over each row: attention weights", weights, TOKENS)
    row_sums = weights.sum(-1).detach().numpy()
    assert np.allclose(row_sums, 1.0), row_sums
    print(f"\nrow sums: {np.array2string(row_sums, precision=6)}  (each 1, asserted)")
    show("outputs = weights @ V", outputs)

    fused = F.scaled_dot_product_attention(x, x, x)
    assert np.allclose(fused.detach().numpy(), outputs.detach().numpy())
    print("\nF.scaled_dot_product_attention(x, x, x) gives the same outputs (asserted).")

    # one backward pass: how does the chosen output move when each embedding moves?
    token, component = CHOSEN
    chosen = outputs[token, component]
    chosen.backward()
    print(f"\nBackward from outputs[{token}, {component}] (token {TOKENS[token]!r}, component {component}) "
          f"= {chosen.item():.6f}")
    show("d outputs[1, 0] / d embeddings (x is Q, K and V at once: the three paths add up)", x.grad)

    # the three paths apart: the same numbers fed in as separate Q, K and V leaves
    q, k, v = (tg.tensor(EMBEDDINGS, dtype=tg.float64, requires_grad=True) for _ in range(3))
    (((q @ k.T) / math.sqrt(3)).softmax(-1) @ v)[token, component].backward()
    for name, leaf in (("as a query", q), ("as a key", k), ("as a value", v)):
        show(f"  ... through x {name}", leaf.grad)
    assert np.allclose(q.grad.numpy() + k.grad.numpy() + v.grad.numpy(), x.grad.numpy())
    print("\nquery + key + value paths = the gradient above (asserted).")

    # the same gradient, checked against central differences (float64)
    assert gradcheck(lambda e: attention(e)[3][token, component], (x.detach().requires_grad_(),))
    assert gradcheck(lambda e: attention(e)[3], (x.detach().requires_grad_(),))
    print("\ngradcheck (float64, central differences): the gradient of outputs[1, 0] and of all 15 outputs "
          "agree with backward().")


if __name__ == "__main__":
    main()
