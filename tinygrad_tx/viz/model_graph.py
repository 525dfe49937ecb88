"""save_model_graph: a picture of a language model's training graph (forward and loss on a tiny batch),
for programs such as the training loop that want one without building inputs themselves."""
import os

import numpy as np

from .. import random as tg_random
from ..autograd.grad_mode import enable_grad
from ..creation import tensor
from .draw import draw_graph
from .gradients import record_gradients
from .render import dot_program


def example_batch(model, batch_size=1, seq_len=8):
    """Token ids and next-token targets for a model with config.vocab_size and config.block_size.
    Made without random numbers, so drawing a model never shifts the seeded streams a run relies on."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "vocab_size"):
        raise TypeError(f"save_model_graph: cannot make token inputs for {type(model).__name__} (it has no "
                        "config.vocab_size); pass inputs=(...) that model(*inputs) accepts")
    seq_len = min(seq_len, getattr(config, "block_size", seq_len))
    device = next(iter(model.parameters())).device
    steps = np.arange(batch_size * (seq_len + 1)).reshape(batch_size, seq_len + 1)
    tokens = tensor((steps * 7919) % config.vocab_size, dtype="int64", device=device)  # varied yet repeatable
    return tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()


def model_graph(model, inputs=None, batch_size=1, seq_len=8, show_grads=False, **draw_options):
    """Run model(*inputs) (a language model's (idx, targets) by default) and draw the graph of its outputs.

    Dropout draws random numbers in training mode; the generator is put back afterwards. With
    show_grads, backward runs while recording and the parameters' .grad are put back as they were.
    """
    inputs = example_batch(model, batch_size, seq_len) if inputs is None else inputs
    device = next(iter(model.parameters())).device
    rng_state = tg_random.get_rng_state(device)
    try:
        with enable_grad():
            outputs = model(*inputs)
        if show_grads:
            _backward_keeping_grads(model, _loss_of(outputs))
    finally:
        tg_random.set_rng_state(rng_state, device)
    return draw_graph(outputs, model=model, show_grads=show_grads, **draw_options)


def save_model_graph(model, path, depth=1, inputs=None, fallback_to_dot=True, **draw_options):
    """Write a picture of model's training graph to path (.svg, .png, .pdf or .dot) and return the path written.

    Without Graphviz's dot program an image cannot be made: with fallback_to_dot the DOT text goes to
    the same name ending in .dot instead, with a printed note.
    """
    drawing = model_graph(model, inputs, depth=depth, **draw_options)
    is_image = os.path.splitext(path)[1].lower() in (".svg", ".png", ".pdf")
    if is_image and dot_program() is None and fallback_to_dot:
        path = os.path.splitext(path)[0] + ".dot"
        print(f"Graphviz's dot program is missing, so the model graph is written as DOT text to {path} "
              "(install graphviz, then: dot -Tsvg graph.dot -o graph.svg)")
    return drawing.save(path)


def _loss_of(outputs):
    """The scalar to run backward from: the loss in (logits, loss), or a single scalar output."""
    candidates = [o for o in (outputs if isinstance(outputs, (tuple, list)) else (outputs,)) if o is not None]
    scalars = [o for o in candidates if o.numel() == 1 and o.requires_grad]
    if not scalars:
        raise ValueError("show_grads: the model returned no scalar loss to run backward from")
    return scalars[-1]


def _backward_keeping_grads(model, loss):
    saved = [(p, p.grad) for p in model.parameters()]
    try:
        for p, _ in saved:
            p.grad = None
        with record_gradients():
            loss.backward(retain_graph=True)
    finally:
        for p, grad in saved:  # the drawing reads the recorded gradients, not .grad
            p.grad = grad
