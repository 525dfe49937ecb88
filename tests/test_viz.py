"""tinygrad_tx.viz: the picture holds exactly the graph autograd recorded (counted here by an independent
walk of grad_fn), clusters follow the module tree, folding and rolling count right, backward order is
the engine's, and hostile names cannot break the DOT. Rendering runs Graphviz's dot for real."""
import html
import re
import shutil
import subprocess

import numpy as np
import pytest

import tinygrad_tx as tg
import tinygrad_tx.nn as nn
from models.gpt2 import GPT2
from tinygrad_tx.autograd import engine
from tinygrad_tx.autograd.function import AccumulateGrad
from tinygrad_tx.viz import GraphvizNotFound, draw_graph, record_gradients, save_model_graph
from tinygrad_tx.viz import render
from tinygrad_tx.viz.dot import html_text, tooltip_text
from tinygrad_tx.viz.gradients import LogColorScale, predicted_order
from tinygrad_tx.viz.model_graph import example_batch

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")


# --- an independent count of the graph -------------------------------------------------------------------
def walk(*outputs):
    """Functions, leaf accumulators, constant arguments and edges reachable from outputs, by plain grad_fn walking."""
    functions, accumulators, stack = set(), set(), [t.grad_fn for t in outputs if t.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node in functions:
            continue
        functions.add(node)
        for parent in node.next_functions:
            if isinstance(parent, AccumulateGrad):
                accumulators.add(parent)
            elif parent is not None:
                stack.append(parent)
    constants = sum(1 for f in functions for parent, meta in zip(f.next_functions, f._input_meta)
                    if parent is None and meta is not None)
    tensor_inputs = sum(1 for f in functions for meta in f._input_meta if meta is not None)
    return functions, accumulators, constants, tensor_inputs + sum(1 for t in outputs if t.grad_fn is not None)


def kinds(drawing):
    counts = {}
    for node in drawing.nodes:
        counts[node.kind] = counts.get(node.kind, 0) + 1
    return counts


def dot_statements(source):
    """Node statements and edge statements as they appear in the DOT text."""
    nodes = re.findall(r"^\s*((?:op|t|g)\d+|more) \[", source, re.M)
    edges = re.findall(r"^\s*(\S+) -> (\S+) \[", source, re.M)
    return nodes, edges


def tiny_gpt2(**overrides):
    tg.manual_seed(0)
    return GPT2.from_preset("gpt2-tiny", **{"vocab_size": 65, **overrides})


def gpt2_loss(model):
    idx, targets = example_batch(model, 1, 8)
    return model(idx, targets)[1]


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


# --- the graph drawn is the graph recorded -----------------------------------------------------------------
def test_scalar_expression_nodes_and_edges_in_dataflow_order():
    a, b = tg.tensor(2.0, requires_grad=True), tg.tensor(-3.0, requires_grad=True)
    y = a * b + a
    drawing = draw_graph(y, names={"a": a, "b": b, "y": y})
    assert kinds(drawing) == {"leaf": 2, "op": 2, "output": 1}
    by_title = {n.rows[0][0]: n.id for n in drawing.nodes}
    pairs = [(a.source, a.target) for a in drawing.arrows]
    assert pairs == [(by_title["a"], by_title["Mul"]), (by_title["b"], by_title["Mul"]),
                     (by_title["Mul"], by_title["Add"]), (by_title["a"], by_title["Add"]),
                     (by_title["Add"], by_title["y"])]


@pytest.mark.parametrize("build", ["mlp", "gpt2"])
def test_counts_match_an_independent_walk(build):
    if build == "mlp":
        model = MLP()
        x = tg.randn(5, 3)
        outputs = (((model(x) - 1.0) ** 2).mean(),)
    else:
        model = tiny_gpt2()
        outputs = model(*example_batch(model))
    functions, accumulators, constants, edges = walk(*outputs)
    drawing = draw_graph(outputs, model=model)
    assert kinds(drawing) == {"op": len(functions), "leaf": len(accumulators), "constant": constants,
                              "output": len(outputs)}
    assert len(drawing.arrows) == edges
    nodes, dot_edges = dot_statements(drawing.source)
    assert len(nodes) == len(functions) + len(accumulators) + constants + len(outputs)
    assert len(dot_edges) == edges


def test_parameters_are_named_by_module_path_and_tied_weights_drawn_once():
    model = tiny_gpt2()
    drawing = draw_graph(gpt2_loss(model), model=model)
    leaves = [n.rows[0][0] for n in drawing.nodes if n.kind == "leaf"]
    assert "transformer.h.0.attn.c_attn.weight" in leaves and "transformer.ln_f.bias" in leaves
    assert len(leaves) == len(set(leaves)) == len(list(model.parameters()))
    tied = next(n.id for n in drawing.nodes if n.rows[0][0] == "transformer.wte.weight")
    assert sum(a.source == tied for a in drawing.arrows) == 2  # the embedding and lm_head


def test_clusters_follow_the_module_tree():
    model = tiny_gpt2()
    loss = gpt2_loss(model)
    functions, _, _, _ = walk(loss)
    paths = {id(m): p for p, m in model.named_modules()}
    expected = {tuple(paths[id(m)] for m in f.module_stack[:k]) for f in functions
                for k in range(1, len(f.module_stack) + 1)}
    drawing = draw_graph(loss, model=model)
    drawn = {tuple(paths[id(m)] for m in n.clusters[:k]) for n in drawing.nodes for k in range(1, len(n.clusters) + 1)}
    assert drawn == expected
    assert ("", "transformer.h.1", "transformer.h.1.attn", "transformer.h.1.attn.c_attn") in drawn
    for node in drawing.nodes:  # every op sits in exactly the modules that ran it
        if node.kind == "op":
            function = next(f for f in functions if f.name == node.rows[0][0] and tuple(f.module_stack) == node.clusters)
            assert function is not None
    # and the DOT nests subgraphs the same way: each cluster's parent is the module one level up
    parents = _cluster_parents(drawing.source)
    assert parents["transformer.h.1.attn"] == "transformer.h.1"
    assert parents["transformer.h.1"] == "GPT2"
    assert parents["transformer.h.1.attn.c_attn"] == "transformer.h.1.attn"


def _cluster_parents(source):
    """{cluster path (or class for the root): enclosing cluster's} from the subgraph nesting of the text."""
    parents, stack = {}, []
    for line in source.splitlines():
        if line.strip().startswith("subgraph cluster_"):
            stack.append(None)
        elif line.strip().startswith("graph [label=") and stack:
            texts = re.findall(r">([^<>]+)</", line)
            name = texts[1] if len(texts) > 1 else texts[0]
            stack[-1] = name
            parents[name] = stack[-2] if len(stack) > 1 else None
        elif line.strip() == "}" and stack:
            stack.pop()
    return parents


# --- folding, rolling, max_nodes ----------------------------------------------------------------------------------
def test_depth_folds_each_module_into_one_node_with_its_shapes_and_parameter_count():
    model = tiny_gpt2()
    loss = gpt2_loss(model)
    functions, _, _, _ = walk(loss)
    level1 = {id(f.module_stack[1]) for f in functions if len(f.module_stack) > 1}
    shallow_ops = [f for f in functions if len(f.module_stack) <= 1]
    drawing = draw_graph(loss, model=model, depth=1)
    counts = kinds(drawing)
    assert counts["module"] == len(level1) and counts["op"] == len(shallow_ops)
    block = next(n for n in drawing.nodes if n.kind == "module" and n.rows[1][0] == "transformer.h.0")
    texts = [text for text, _ in block.rows]
    block_params = sum(p.numel() for p in model.transformer.h[0].parameters())
    assert "in: 1\u00d78\u00d732" in texts and "out: 1\u00d78\u00d732" in texts
    assert any(t.startswith(f"{block_params / 1e3:.1f}K params") for t in texts)
    whole = draw_graph(loss, model=model, depth=0)
    assert kinds(whole) == {"module": 1, "output": 1}


def test_gpt2_124m_structure_at_depth_1_is_small_and_rolls_into_one_block_node():
    model = GPT2.from_preset("gpt2", n_embd=48, n_head=2, vocab_size=97)  # 12 layers as 124M, narrow for speed
    loss = gpt2_loss(model)
    drawing = draw_graph(loss, model=model, depth=1)
    assert len(drawing.nodes) < 40
    assert kinds(drawing)["module"] == 4 + 12  # wte, wpe, ln_f, lm_head and h.0-11 (dropout p=0 runs no op)
    rolled = draw_graph(loss, model=model, depth=1, roll_repeats=True)
    assert len(rolled.nodes) == len(drawing.nodes) - 11
    block = next(n for n in rolled.nodes if n.rows[0][0] == "Block \u00d712")
    assert block.rows[1][0] == "transformer.h.0\u201311"
    # at full depth the first block stays whole and the other eleven become one node
    full, rolled_full = draw_graph(loss, model=model), draw_graph(loss, model=model, roll_repeats=True)
    in_block = [f for f in walk(loss)[0] if any(m is model.transformer.h[5] for m in f.module_stack)]
    masks = sum(1 for f in in_block for p, meta in zip(f.next_functions, f._input_meta) if p is None and meta)
    per_block = len(in_block) + len(list(model.transformer.h[5].parameters())) + masks
    assert len(rolled_full.nodes) == len(full.nodes) - 11 * per_block + 1
    assert any(n.rows[0][0] == "Block \u00d711" for n in rolled_full.nodes)


def test_max_nodes_folds_modules_first_then_truncates():
    model = tiny_gpt2()
    loss = gpt2_loss(model)
    limited = draw_graph(loss, model=model, max_nodes=40)
    assert len(limited.nodes) <= 40 and limited.view.depth is not None
    assert any("max_nodes=40" in note for note in limited.view.notes)
    x = tg.randn(3, requires_grad=True)
    y = x
    for _ in range(300):
        y = y.tanh()
    chain = draw_graph(y.sum(), max_nodes=50)
    assert len(chain.nodes) == 50
    more = next(n for n in chain.nodes if n.kind == "more")
    assert more.rows[0][0] == "\u2026 254 more nodes"  # 300 tanh + sum + leaf + output = 303, 49 kept
    assert chain.nodes[0].kind != "more" and any(a.source == "more" for a in chain.arrows)


# --- saved tensors, gradients, values ------------------------------------------------------------------------
def test_show_saved_lists_saved_shapes_until_backward_frees_them():
    model = MLP()
    loss = model(tg.randn(5, 3, requires_grad=True)).sum()
    linear = next(n for n in draw_graph(loss, model=model, show_saved=True).nodes if n.rows[0][0] == "Linear")
    assert ("saved: 5\u00d73, 4\u00d73", "small") in linear.rows  # the input and the weight, not the bias
    loss.backward()
    linear = next(n for n in draw_graph(loss, model=model, show_saved=True).nodes if n.rows[0][0] == "Linear")
    assert any("freed by backward" in text for text, _ in linear.rows)


def test_recorded_gradient_norms_match_the_real_gradients():
    a = tg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    h = a * 3.0
    h.retain_grad()
    loss = (h.tanh() * 2.0).sum()
    with record_gradients():
        loss.backward(retain_graph=True)
    assert engine.backward_observers == []
    drawing = draw_graph(loss, names={"a": a, "h": h}, show_grads=True)
    leaf = next(n for n in drawing.nodes if n.rows[0][0] == "a")
    assert (f"\u2016grad\u2016 {np.linalg.norm(a.grad.numpy()):.2e}", "small") in leaf.rows
    into_tanh = next(arrow for arrow in drawing.arrows if arrow.target == _node_id(drawing, "Tanh"))
    assert f"\u2016g\u2016 {np.linalg.norm(h.grad.numpy()):.2e}" in into_tanh.label
    assert into_tanh.color == LogColorScale().color(float(np.linalg.norm(h.grad.numpy())))


def test_gradient_colors_show_vanishing_gradients_in_a_deep_tanh_mlp():
    layers = nn.Sequential(*[nn.Sequential(nn.Linear(8, 8), nn.Tanh()) for _ in range(12)])
    tg.manual_seed(0)
    loss = layers(tg.randn(4, 8)).sum()
    with record_gradients():
        loss.backward(retain_graph=True)
    drawing = draw_graph(loss, model=layers, depth=1, show_grads=True)
    modules = [n.id for n in drawing.nodes if n.kind == "module"]
    first, last = (next(a for a in drawing.arrows if a.target == m) for m in (modules[1], modules[-1]))
    norm = lambda arrow: float(arrow.label.split("\u2016g\u2016 ")[1].split()[0])  # noqa: E731
    assert norm(first) < norm(last) / 10  # the gradient shrinks on its way to the input
    scale = LogColorScale()
    assert scale.fraction(norm(first)) < scale.fraction(norm(last))
    assert scale.color(1.0) != scale.color(1e-5) != scale.color(1e2) and scale.fraction(1.0) == 0.5


def test_show_values_prints_micrograd_style_data_and_grad():
    a, b, c = (tg.tensor(v, requires_grad=True) for v in (2.0, -3.0, 10.0))
    e = a * b
    d = e + c
    f = tg.tensor(-2.0, requires_grad=True)
    L = d * f
    with record_gradients():
        L.backward(retain_graph=True)
    drawing = draw_graph(L, names=dict(a=a, b=b, c=c, e=e, d=d, f=f, L=L), show_values=True)
    leaf_a = next(n for n in drawing.nodes if n.rows[0][0] == "a")
    assert ("data 2.0000", "text") in leaf_a.rows and ("grad 6.0000", "text") in leaf_a.rows
    boxes = {n.value_rows[0]: n.value_rows[1:] for n in drawing.nodes if n.value_rows}
    assert boxes == {"e": ["data -6.0000", "grad -2.0000"], "d": ["data 4.0000", "grad -2.0000"],
                     "L": ["data -8.0000", "grad 1.0000"]}
    assert "rankdir=LR" in drawing.source and "op0_value -> op1" in drawing.source


# --- backward view ----------------------------------------------------------------------------------------------
def test_backward_view_numbers_steps_in_the_engines_visit_order():
    model = tiny_gpt2()
    loss = gpt2_loss(model)
    predicted = predicted_order([loss.grad_fn])
    with record_gradients():
        _, visit_order = engine.run_backward([loss], [tg.ones(())], retain_graph=True, create_graph=False)
    assert [node for node, _ in sorted(predicted.items(), key=lambda item: item[1])] == visit_order
    drawing = draw_graph(loss, model=model, backward=True)
    steps = sorted(int(n.rows[0][0][1:].split()[0]) for n in drawing.nodes if n.rows[0][0].startswith("#"))
    assert steps == list(range(1, len(visit_order) + 1))
    assert kinds(drawing).get("constant", 0) == 0  # no gradient flows to token ids or masks
    first = next(n for n in drawing.nodes if n.rows[0][0].startswith("#1 "))
    assert first.rows[0][0] == "#1 CrossEntropy.backward"


def test_backward_view_points_from_consumer_to_producer_and_marks_summed_gradients():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x + x).sum()
    drawing = draw_graph(y, names={"x": x}, backward=True)
    leaf = next(n for n in drawing.nodes if n.kind == "leaf")
    assert leaf.summed and ("\u03a3 of 3 incoming gradients", "small") in leaf.rows and "peripheries=2" in drawing.source
    mul = _node_id(drawing, "Mul.backward")
    assert sum(1 for a in drawing.arrows if a.source == mul and a.target == leaf.id) == 2
    assert [a.label.split()[0] for a in drawing.arrows if a.source == mul] == ["\u2202in0", "\u2202in1"]


def _node_id(drawing, title_part):
    return next(n.id for n in drawing.nodes if title_part in n.rows[0][0])


# --- escaping --------------------------------------------------------------------------------------------------
HOSTILE = 'we"ird<{name}>\n\\N&amp;|]'


def test_hostile_names_are_escaped_and_survive_dot_verbatim(tmp_path):
    hostile_class = type('Bad"<Class>{}|\\', (nn.Module,), {"forward": lambda self, x: self._modules[HOSTILE](x)})
    model = hostile_class()
    model.add_module(HOSTILE, nn.Linear(3, 2))
    x = tg.randn(4, 3)
    out = model(x)
    drawing = draw_graph(out.sum(), model=model, names={'lab"el\\<b>': out}, title="title </TABLE> \\G")
    assert "\n" not in "".join(re.findall(r'label=<[^\n]*', drawing.source)).replace("\n", "")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed: the escaping was checked, its parse was not")
    result = subprocess.run(["dot", "-Tsvg"], input=drawing.source.encode(), capture_output=True)
    assert result.returncode == 0 and b"Warning" not in result.stderr and b"Error" not in result.stderr
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", result.stdout.decode())]
    for line in HOSTILE.split("\n"):
        assert line in texts  # the cluster label, verbatim (the newline became a line break)
    assert HOSTILE.split("\n")[1] + ".weight" in texts
    assert 'Bad"<Class>{}|\\' in texts and "title </TABLE> \\G" in texts


def test_escape_functions():
    assert html_text('a<b>&"c\\d\ne') == "a&lt;b&gt;&amp;&quot;c\\\\d<BR/>e"
    assert html_text("bell\x07 ok") == "bell ok"
    assert tooltip_text('q"\\n\nx') == '"q\\"\\\\\\\\n x"'


# --- output -----------------------------------------------------------------------------------------------------
@needs_dot
def test_renders_a_two_layer_gpt2_to_svg_png_and_pdf(tmp_path):
    model = tiny_gpt2()
    drawing = draw_graph(gpt2_loss(model), model=model, show_saved=True)
    svg = drawing.save(str(tmp_path / "gpt2.svg"))
    text = open(svg).read()
    assert text.count('class="node"') == len(drawing.nodes) and "transformer.h.1.attn.c_attn.weight" in text
    assert drawing._repr_mimebundle_()["image/svg+xml"].startswith("<?xml")
    for fmt, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF")):
        with open(drawing.save(str(tmp_path / f"gpt2.{fmt}")), "rb") as f:
            assert f.read(4) == magic


def test_dot_text_needs_no_graphviz_and_images_say_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    x = tg.randn(2, requires_grad=True)
    drawing = draw_graph((x * 2).sum())
    assert open(drawing.save(str(tmp_path / "g.dot"))).read() == drawing.source
    with pytest.raises(GraphvizNotFound, match="apt-get install graphviz"):
        drawing.save(str(tmp_path / "g.svg"))
    assert "apt-get install graphviz" in drawing._repr_mimebundle_()["text/plain"]
    with pytest.raises(ValueError, match="cannot tell the format"):
        drawing.save(str(tmp_path / "g.jpeg"))
    written = save_model_graph(tiny_gpt2(), str(tmp_path / "graph.svg"))
    assert written.endswith("graph.dot") and open(written).read().startswith("digraph")


def test_save_model_graph_leaves_rng_and_grads_alone(tmp_path):
    model = tiny_gpt2(dropout=0.1)
    state = tg.get_rng_state()
    save_model_graph(model, str(tmp_path / "graph.dot"), depth=1, show_grads=True)
    assert tg.get_rng_state() == state
    assert all(p.grad is None for p in model.parameters())
    assert "Dropout" in open(tmp_path / "graph.dot").read()


def test_cli_draws_a_preset_and_a_checkpoint(tmp_path, capsys):
    from tinygrad_tx.checkpoint import save_checkpoint
    from tinygrad_tx.viz.__main__ import main
    out = tmp_path / "preset.dot"
    assert main(["--preset", "gpt2-tiny", "--vocab-size", "65", "--depth", "1", "--out", str(out)]) == 0
    assert "Block" in out.read_text()
    model = tiny_gpt2()
    save_checkpoint(str(tmp_path), model, model.configure_optimizers(0.1, 1e-3), {"model_config": model.config_dict()})
    out = tmp_path / "checkpoint.dot"
    assert main(["--checkpoint", str(tmp_path), "--roll-repeats", "--depth", "1", "--out", str(out)]) == 0
    assert "Block \u00d72" in out.read_text()
    assert main(["--checkpoint", str(tmp_path / "missing"), "--out", str(out)]) == 1
    assert "no checkpoint" in capsys.readouterr().err


def test_observer_list_is_left_empty_even_when_backward_fails():
    x = tg.tensor([1.0], requires_grad=True)
    y = x * 2
    y.sum().backward()
    with pytest.raises(RuntimeError):
        with record_gradients():
            y.sum().backward()  # the graph was freed: a second backward fails
    assert engine.backward_observers == []
