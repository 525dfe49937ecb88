"""Pictures of the computation graph, from a scalar expression up to a whole GPT-2.

    from tinygrad_tx.viz import draw_graph, record_gradients
    logits, loss = model(idx, targets)
    draw_graph(loss, model=model, depth=1).save("gpt2.svg")       # one node per block
    with record_gradients():
        loss.backward(retain_graph=True)
    draw_graph(loss, model=model, show_grads=True)                  # arrows colored by gradient size

See docs/visualization.md. Writing .dot needs nothing; images need Graphviz's `dot` program.
"""
from .draw import draw_graph
from .gradients import LogColorScale, backward_and_record, record_gradients
from .model_graph import save_model_graph
from .render import Drawing, GraphvizNotFound, dot_program

__all__ = ["draw_graph", "record_gradients", "backward_and_record", "save_model_graph", "Drawing",
           "GraphvizNotFound", "LogColorScale", "dot_program"]
