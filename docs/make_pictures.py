"""Regenerate the pictures of docs/visualization.md in docs/images/:  python docs/make_pictures.py

Needs Graphviz's dot. Takes about half a minute, most of it making the 124M-parameter GPT-2.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import tinygrad_tx as tg  # noqa: E402
import tinygrad_tx.nn as nn  # noqa: E402
from models.gpt2 import GPT2  # noqa: E402
from tinygrad_tx.viz import draw_graph, record_gradients  # noqa: E402
from tinygrad_tx.viz.model_graph import example_batch  # noqa: E402

IMAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")


def save(drawing, name):
    path = drawing.save(os.path.join(IMAGES, name))
    print(f"{path}: {len(drawing.nodes)} nodes")


def micrograd_expression():
    """Karpathy's micrograd example, L = (a*b + c) * f, with values and gradients."""
    a, b, c, f = (tg.tensor(v, requires_grad=True) for v in (2.0, -3.0, 10.0, -2.0))
    e = a * b
    d = e + c
    L = d * f
    with record_gradients():  # so the intermediate gradients (of e and d) can be shown
        L.backward(retain_graph=True)
    save(draw_graph(L, names=dict(a=a, b=b, c=c, d=d, e=e, f=f, L=L), show_values=True), "expression.svg")


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3, 4)
        self.act = nn.Tanh()
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


def mlp():
    tg.manual_seed(0)
    model = MLP()
    x, y = tg.randn(8, 3), tg.randn(8, 1)
    loss = ((model(x) - y) ** 2).mean()
    save(draw_graph(loss, model=model, names={"loss": loss}, show_saved=True), "mlp.svg")


def gpt2_pictures():
    tg.manual_seed(0)
    model = GPT2.from_preset("gpt2")  # the 124M model
    idx, targets = example_batch(model, 1, 8)
    logits, loss = model(idx, targets)
    save(draw_graph(loss, model=model, depth=1, title="GPT-2 124M at depth=1"), "gpt2_depth1.svg")
    save(draw_graph(loss, model=model, depth=1, roll_repeats=True, title="GPT-2 124M, depth=1, roll_repeats=True"),
         "gpt2_depth1_rolled.svg")
    # requires_grad makes the input one named node: an input needing no gradient is drawn once per use,
    # since autograd keeps no reference to it that would tell two uses apart from two tensors
    block_input = tg.randn(1, 8, model.config.n_embd, requires_grad=True)
    block_output = model.transformer.h[0](block_input)
    save(draw_graph(block_output, model=model, names={"x": block_input, "block output": block_output},
                    show_saved=True, title="One GPT-2 block (transformer.h.0) at full depth, with saved tensors"),
         "gpt2_block.svg")


def gpt2_backward():
    tg.manual_seed(0)
    model = GPT2.from_preset("gpt2-tiny", vocab_size=65)
    logits, loss = model(*example_batch(model, 1, 8))
    with record_gradients():
        loss.backward(retain_graph=True)
    save(draw_graph(loss, model=model, depth=2, backward=True, show_grads=True, names={"loss": loss},
                    title="Backward through a 2-layer GPT-2, depth=2"), "gpt2_tiny_backward.svg")


class Layer(nn.Module):
    def __init__(self, width, residual):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.residual = residual

    def forward(self, x):
        y = self.linear(x).tanh()
        return x + y if self.residual else y


class DeepMLP(nn.Module):
    def __init__(self, depth, width, residual):
        super().__init__()
        self.layers = nn.ModuleList([Layer(width, residual) for _ in range(depth)])
        self.head = nn.Linear(width, 1)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def deep_mlps():
    """20 tanh layers with the default init, without and with residual connections."""
    for residual in (False, True):
        tg.manual_seed(0)
        model = DeepMLP(20, 32, residual)
        x, y = tg.randn(16, 32), tg.randn(16, 1)
        loss = ((model(x) - y) ** 2).mean()
        with record_gradients():
            loss.backward(retain_graph=True)
        title = "20 tanh layers " + ("with residual connections" if residual else "without residual connections")
        save(draw_graph(loss, model=model, depth=1, show_grads=True, show_shapes=False, show_dtypes=False,
                        show_constants=False, title=title),
             f"deep_mlp_{'residual' if residual else 'plain'}.svg")


if __name__ == "__main__":
    os.makedirs(IMAGES, exist_ok=True)
    micrograd_expression()
    mlp()
    deep_mlps()
    gpt2_backward()
    gpt2_pictures()
