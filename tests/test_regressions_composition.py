"""Compositions of ops where tinygrad_tx and PyTorch once disagreed, each cut down to a few lines.

Each program is written as tests/random_programs.py writes them (`t` is the tensor library, `F` its
functional module, `D` the input arrays; leaves are named a, b, c) and runs on both libraries: values,
requires_grad and is_leaf of every name, the leaves' gradients, autograd.grad's results and whether an
error is raised must agree. When both refuse a program it passes, whichever line each refused.
"""
import textwrap

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from conftest import randn
from random_programs import compare_runs, one_thread, run_source


def assert_agrees(program, *arrays):
    lines = textwrap.dedent(program).strip().splitlines()
    with one_thread():
        ours = run_source(lines, list(arrays), "tinygrad_tx")
        theirs = run_source(lines, list(arrays), "torch")
        problems = compare_runs(ours, theirs, lines)
    assert not problems, "\n".join(problems) + "\nprogram:\n" + "\n".join(lines)


def positive(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape)


# --- second order through a fused op given one tensor in several argument positions ---------------------------
SECOND_ORDER = """
    a = t.tensor(D[0], requires_grad=True)
    y = {expression}
    gs = t.autograd.grad((y * t.tensor(D[1])).sum(), [a], create_graph=True)
    s = (gs[0] * t.tensor(D[2])).sum() + (gs[0] * gs[0]).sum()
    gs2 = t.autograd.grad(s, [a])
"""


@pytest.mark.parametrize("expression, shape, out_shape", [
    ("F.linear(a, a)", (3, 3), (3, 3)),
    ("F.linear(a, a, a[0])", (3, 3), (3, 3)),
    ("F.scaled_dot_product_attention(a, a, a)", (2, 3, 4), (2, 3, 4)),
    ("F.scaled_dot_product_attention(a, a, a, is_causal=True)", (3, 2), (3, 2)),
    ("F.layer_norm(a, (4,), weight=a, bias=a)", (4,), (4,)),
    ("F.layer_norm(a, (3,), weight=a[0], bias=a[1])", (2, 3), (2, 3)),
    ("F.cross_entropy(a, a.softmax(1), reduction='none')", (2, 3), (2,)),
    ("F.gelu(a) * a", (5,), (5,)),
])
def test_second_order_through_fused_op_with_repeated_input(expression, shape, out_shape):
    assert_agrees(SECOND_ORDER.format(expression=expression), randn(*shape), randn(*out_shape, seed=1),
                  randn(*shape, seed=2))


# --- in-place edits of an op's input or output after the op, then backward ---------------------------------
# Backward must raise exactly when torch's does: when the op saved the edited tensor for its backward.
# The edit runs under no_grad, so it changes nothing but the values (and keeps them well-conditioned).
EDIT_AFTER_OP = """
    a = t.tensor(D[0], requires_grad=True)
    b = t.tensor(D[1], requires_grad=True)
    h = a * 1.0
    y = {expression}
    with t.no_grad(): {edited}.mul_(1.5)
    loss = (y * t.tensor(D[2])).sum()
    loss.backward()
"""
ROW = (2, 3)
OPS_AFTER_WHICH_TO_EDIT = [  # (expression of h and b, shape of y)
    ("h * 2.0", ROW), ("h * h", ROW), ("h * b", ROW), ("1 / h", ROW), ("h / b", ROW), ("b / h", ROW),
    ("h + b", ROW), ("h.exp()", ROW), ("h.log()", ROW), ("h.sqrt()", ROW), ("h.rsqrt()", ROW), ("h.tanh()", ROW),
    ("h.sigmoid()", ROW), ("h.relu()", ROW), ("F.gelu(h)", ROW), ("F.gelu(h, approximate='tanh')", ROW),
    ("h.erf()", ROW), ("h.abs()", ROW), ("h.clamp(0.8, 1.5)", ROW), ("h ** 2", ROW), ("h ** b", ROW),
    ("2.0 ** h", ROW), ("h.sin()", ROW), ("t.maximum(h, b)", ROW), ("t.where(t.tensor([True, False, True]), h, b)", ROW),
    ("h.softmax(-1)", ROW), ("h.log_softmax(-1)", ROW), ("h.sum()", ()), ("h.mean(0)", (3,)), ("h.var(1)", (2,)),
    ("h.std(1)", (2,)), ("h.amax(1)", (2,)), ("h.max(1).values", (2,)), ("h.logsumexp(1)", (2,)),
    ("F.layer_norm(h, (3,))", ROW), ("F.layer_norm(h, (3,), weight=b[0], bias=b[1])", ROW),
    ("F.linear(h, b)", (2, 2)), ("h @ b.mT", (2, 2)), ("h.gather(1, t.tensor([[0, 2], [1, 1]]))", (2, 2)),
    ("h[[1, 0, 1]]", (3, 3)), ("t.cat([h, b])", (4, 3)), ("t.stack([h, b])", (2, 2, 3)),
    ("F.cross_entropy(h, t.tensor([2, 0]))", ()), ("F.cross_entropy(h, t.tensor([2, 0]), reduction='none')", (2,)),
    ("F.cross_entropy(h, b.softmax(1))", ()), ("F.scaled_dot_product_attention(h, b, b)", ROW),
    ("F.scaled_dot_product_attention(h, h, b)", ROW), ("F.scaled_dot_product_attention(b, b, h)", ROW),
    ("h.tril()", ROW), ("h.masked_fill(t.tensor([True, False, False]), 0.5)", ROW),
]


@pytest.mark.parametrize("edited", ["h", "y"])
@pytest.mark.parametrize("expression, shape", OPS_AFTER_WHICH_TO_EDIT, ids=[e for e, _ in OPS_AFTER_WHICH_TO_EDIT])
def test_backward_after_editing_an_input_or_output_raises_as_torch(expression, shape, edited):
    assert_agrees(EDIT_AFTER_OP.format(expression=expression, edited=edited), positive(*ROW), positive(*ROW, seed=1),
                  randn(*shape, seed=2))


def test_backward_after_editing_a_product_operand_in_grad_mode():
    # y = h * 2.0 needs nothing of h: editing h afterwards is fine (torch saves nothing for it)
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        h = a * 1.0
        y = h * 2.0
        h.add_(1)
        loss = y.sum()
        loss.backward()
    """, randn(3))


# --- in-place edits that torch accepts: the tensor edited is no view, whatever the op does inside -------------
EDIT_IN_GRAD_MODE = """
    a = t.tensor(D[0], requires_grad=True)
    h = a * 1.0
    y = {expression}
    {edit}
    loss = (y * t.tensor(D[1])).sum() + (h * t.tensor(D[2])).sum()
    loss.backward()
"""


@pytest.mark.parametrize("expression, edit, shape, out_shape", [
    ("h.min(1).values", "y.mul_(2.0)", (2, 3), (2,)),
    ("h.max(-1).values", "y.add_(1.0)", (2, 3), (2,)),
    ("F.cross_entropy(h, t.tensor([0, 2]), reduction='none')", "y.mul_(2.0)", (2, 3), (2,)),
    ("t.stack([h, h])", "h.add_(1.0)", (3,), (2, 3)),
    ("h @ t.tensor(D[3])", "h.add_(1.0)", (3,), (2,)),
    ("t.tensor(D[3]).mT @ h", "h.add_(1.0)", (3,), (2,)),
    ("F.cross_entropy(h, t.tensor([[0, 1], [2, 0]]))", "h.add_(1.0)", (2, 3, 2), ()),
    ("F.cross_entropy(h, t.tensor(1))", "h.add_(1.0)", (3,), ()),
    ("h.max(0).values", "h.add_(1.0)", (), ()),
])
def test_edit_in_place_where_torch_has_no_view(expression, edit, shape, out_shape):
    assert_agrees(EDIT_IN_GRAD_MODE.format(expression=expression, edit=edit), randn(*shape), randn(*out_shape, seed=1),
                  randn(*shape, seed=2), randn(3, 2, seed=3))


def test_edit_of_a_linear_layers_input_whose_weight_is_made_from_it():
    # torch's linear of a non-contiguous 3-D input keeps a folded copy of it: editing the input is fine
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        h = a.sin()
        x = h.mT
        y = F.linear(x, x.reshape(-1, 4))
        h.div_(2.0)
        loss = (y * t.tensor(D[1])).sum()
        loss.backward()
    """, randn(4, 4, 3), randn(4, 3, 12, seed=1))


def test_edit_of_the_output_of_attention_on_strided_queries():
    # torch's CPU attention takes its math path for queries and keys split off the last dim, and that path
    # does not keep the output: editing it is fine
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        b = t.tensor(D[1], requires_grad=True)
        q, k = a.split(1, 3)
        y = F.scaled_dot_product_attention(q, k, b, scale=0.3)
        y.mul_(-1.5)
        loss = (y * t.tensor(D[2])).sum()
        loss.backward()
    """, randn(2, 2, 3, 2), randn(2, 2, 3, 4, seed=1), randn(2, 2, 3, 4, seed=2))


def test_retained_grad_of_a_tensor_edited_in_place_after_a_reduction():
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        h = (a * 2).min(1).values
        h.add_(1.0)
        h.retain_grad()
        y = h * 3
        y.sum().backward()
    """, randn(2, 3))


@pytest.mark.parametrize("expression", ["a @ a", "(a * 2.0).min(0).values", "a.max(0).values", "(a * 2.0).sum(0)",
                                        "F.cross_entropy(a.unsqueeze(0), t.tensor([1]), reduction='none')"])
def test_retained_grad_after_an_edit_under_no_grad(expression):
    # an edit under no_grad leaves the graph alone: every earlier use of the tensor still reaches its .grad
    assert_agrees(f"""
        a = t.tensor(D[0], requires_grad=True)
        h = {expression}
        w = h * 5.0
        with t.no_grad(): h.add_(-1.5)
        h.retain_grad()
        loss = (h * 3.0).sum() + w.sum()
        loss.backward()
    """, randn(4))


def test_view_taken_under_no_grad_then_edited_with_a_value_that_requires_grad():
    # torch refuses: "A view was created in no_grad mode and is being modified inplace with grad mode enabled"
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        h = a * 1.0
        with t.no_grad(): v = h[0]
        v.mul_(a.sum())
    """, randn(2, 3))


@pytest.mark.parametrize("edit", ["h.mul_(2.0)", "h[0] = 0.5", "h[t.tensor(1)] = 0.5", "with t.no_grad(): h.mul_(2.0)"])
@pytest.mark.parametrize("expression, out_shape", [
    ("F.cross_entropy(h, t.tensor([1, 2]), reduction='none')", (2,)), ("F.cross_entropy(h, t.tensor([1, 2]))", ()),
    ("F.cross_entropy(h, b.softmax(1))", ()), ("h.softmax(-1)", ROW), ("h.log_softmax(-1)", ROW),
    ("F.layer_norm(h, (3,))", ROW), ("F.gelu(h)", ROW), ("F.linear(h, b)", (2, 2)),
    ("F.scaled_dot_product_attention(h, b, b)", ROW), ("h.logsumexp(1)", (2,)),
])
def test_second_order_after_editing_a_fused_ops_input(expression, out_shape, edit):
    # the gradient of the gradient must be torch's, or both must refuse: never a silently different number
    assert_agrees(f"""
        a = t.tensor(D[0], requires_grad=True)
        b = t.tensor(D[1], requires_grad=True)
        h = -a
        y = {expression}
        {edit}
        gs = t.autograd.grad((y * t.tensor(D[2])).sum(), [a, b], create_graph=True, allow_unused=True)
        squares = [g * g if g is not None else None for g in gs]
        s = weighted(gs, [t.tensor(D[3]), t.tensor(D[4])]) + weighted(squares, [t.tensor(D[3]), t.tensor(D[4])])
        gs2 = grad_or_none(s, [a, b])
    """, randn(*ROW), randn(*ROW, seed=1), randn(*out_shape, seed=2), randn(*ROW, seed=3), randn(*ROW, seed=4))


def test_create_graph_through_a_fused_op_whose_input_was_edited_afterwards():
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        h = a * 1.0
        y = F.cross_entropy(h, t.tensor([1]))
        with t.no_grad(): h.mul_(2)
        gs = t.autograd.grad(y, [a], create_graph=True)
    """, randn(1, 3))


# --- views of tensors that do not require grad, written with values that do ---------------------------------------
@pytest.mark.parametrize("write", [
    "buf[0][:] = a",
    "buf[0].copy_(a)",
    "buf[1].add_(a * 2)",
    "buf[::2].copy_(t.stack([a, a]) * 3)",
    "buf.T[1] = a[:2]",
    "buf[:, 1:][0] = a[1:]",
    "buf[1][2] = a.sum()",
    "buf.view(-1)[1:4] = a.tanh()",
])
def test_write_into_a_view_of_a_tensor_without_grad(write):
    assert_agrees(f"""
        a = t.tensor(D[0], requires_grad=True)
        buf = t.zeros(3, 3, dtype=t.float64)
        {write}
        loss = (buf * t.tensor(D[1])).sum()
        loss.backward()
    """, randn(3), randn(3, 3, seed=1))


def test_write_into_a_strided_view_of_a_detached_copy():
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        base = a.detach().clone()
        base[::2].copy_(a[1::2] * 3)
        loss = (base * t.tensor(D[1])).sum()
        loss.backward()
    """, randn(4), randn(4, seed=1))


# --- results laid out as torch lays them out, so that a later view is a view in both -------------------------------
@pytest.mark.parametrize("result", ["t.cat([x.mT, x.mT], 1)", "t.stack([x.mT, x.mT], 0)", "x.mT[:, t.tensor([0, 2])]",
                                    "x.mT.masked_fill(t.tensor([True, False, True]), 1.0)",
                                    "t.where(t.tensor([True, False, True]), x.mT, 0.0)", "x.mT.tril()",
                                    "x.mT.contiguous()", "x.mT * 2.0", "x.mT.clone()"])
@pytest.mark.parametrize("view", ["y.view(-1)", "y.flatten()", "y.reshape(-1)", "y.unsqueeze(0).flatten(0, 1)"])
def test_write_through_a_view_of_a_fresh_result(result, view):
    # torch makes most results contiguous (elementwise ops and clone keep their input's strides): a view of
    # them is a view, and a write through it reaches the result; where torch cannot view, view() raises
    assert_agrees(f"""
        x = t.tensor(D[0])
        y = {result}
        v = {view}
        v.fill_(0.5)
    """, randn(3, 4))


def test_gradient_through_a_write_into_a_flattened_cat():
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        y = t.cat([a.mT, a.mT], 1)
        z = y.unsqueeze(0)
        v = y.flatten()
        v[:3] = 0.5
        loss = (z * t.tensor(D[1])).sum()
        loss.backward()
    """, randn(3, 4), randn(1, 4, 6, seed=1))


# --- a full integer index gives a 0-d view, not a copy -------------------------------------------------------------
@pytest.mark.parametrize("write", ["x[0].fill_(1.5)", "x[-1].copy_(t.tensor(2.5, dtype=t.float64))",
                                   "x[1].add_(1.0)", "m[1, 2].mul_(0.0)", "m[0][1].fill_(3.0)"])
def test_write_through_a_zero_dim_view(write):
    assert_agrees(f"""
        x = t.tensor(D[0])
        m = t.tensor(D[1])
        {write}
    """, randn(3), randn(2, 3, seed=1))


def test_zero_dim_view_sees_later_writes_to_its_base():
    assert_agrees("""
        x = t.tensor(D[0])
        v = x[1]
        x.add_(1.0)
        w = v * 1.0
    """, randn(3))


def test_copy_of_a_python_float_keeps_float64():
    ours = tg.zeros(2, dtype=tg.float64).copy_(0.1)
    theirs = torch.zeros(2, dtype=torch.float64).copy_(torch.tensor(0.1, dtype=torch.float64))
    assert ours.tolist() == theirs.tolist()


# --- an int and an index array separated by a slice, None or Ellipsis: torch indexes with the int first ------------
@pytest.mark.parametrize("index, shape", [
    ("1, :, [0, 2]", (2, 3, 4)), ("[0, 1], :, 2", (2, 3, 4)), ("1, None, [0, 2, 2]", (2, 3, 4)),
    ("t.tensor(1), :, [3, 0]", (2, 3, 4)), ("1, ..., [0, 2]", (2, 3, 4)), (":, 0, :, [1, 1]", (2, 3, 4, 2)),
    ("-1, [0, 2], :, 1", (2, 3, 4, 2)),
    (":, 0, ..., t.tensor([0, 0, 1])", (1, 2, 3)),      # the Ellipsis stands for no dimension
    (":, [3, 3, 2, 0], ..., -4", (4, 5, 4)),           # the same shape either way: only the values tell
])
def test_int_and_index_array_separated(index, shape):
    assert_agrees(f"""
        a = t.tensor(D[0], requires_grad=True)
        y = a[{index}]
        loss = (y * y.detach()).sum()
        loss.backward()
    """, randn(*shape))


def test_int_and_index_array_separated_setitem():
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        b = t.tensor(D[1], requires_grad=True)
        h = a * 1.0
        h[1, :, [0, 2]] = b
        loss = (h * t.tensor(D[2])).sum()
        loss.backward()
    """, randn(2, 3, 4), randn(3, 2, seed=1), randn(2, 3, 4, seed=2))


# --- views are new tensors, except where torch returns the tensor itself --------------------------------------------
@pytest.mark.parametrize("expression", ["a.reshape(a.shape)", "a.view(2, 3)", "a.view_as(a)", "a.squeeze()",
                                        "a.squeeze(0)", "a.transpose(0, 0)", "a.expand(2, 3)", "a.permute(0, 1)",
                                        "a[...]", "a[:]", "a.flatten()", "a.flatten(1)", "a.flatten(0, 0)",
                                        "a.contiguous()", "a.unsqueeze(0).squeeze(0)"])
def test_view_or_same_tensor_as_torch(expression):
    assert_agrees(f"""
        a = t.tensor(D[0], requires_grad=True)
        v = {expression}
        v.retain_grad()
        loss = (v * t.tensor(D[1])).sum()
        loss.backward()
    """, randn(2, 3), randn(2, 3, seed=1))


@pytest.mark.parametrize("shape", [(), (3,)])
def test_matrix_transpose_of_fewer_than_two_dims_raises(shape):
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        v = a.mT
    """, randn(*shape))


# --- zero-size tensors --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("expression, shape", [
    ("a.softmax(-1)", (0, 3)), ("a.log_softmax(0)", (0, 3)), ("a.softmax(-1)", (2, 0)),
    ("F.layer_norm(a, (3,))", (0, 3)), ("F.layer_norm(a, (0,))", (2, 0)), ("F.layer_norm(a, (2, 0))", (2, 0)),
    ("a.amax(0)", (2, 0)), ("a.amin(1)", (0, 2)), ("a.max(0).values", (2, 0)), ("a.min(1).values", (0, 3)),
    ("a.logsumexp(1)", (0, 3)), ("a.logsumexp(0)", (2, 0)), ("a.var(0)", (3, 0)), ("a.std(1)", (0, 3)),
    ("a @ a.mT", (0, 3)), ("a.mT @ a", (0, 3)), ("a @ a.mT", (2, 0)), ("F.linear(a, t.tensor(D[1]))", (0, 2)),
    ("a.flatten(1, 2)", (0, 3, 2)), ("a.flatten()", (2, 0, 3)), ("a.reshape(0, -1)", (0, 3)),
    ("a.split(2, 0)[0]", (0, 3)), ("a.split([0, 2], 1)[0]", (3, 2)), ("a.chunk(2, 0)[0]", (0, 3)),
    ("a.chunk(1, 1)[0]", (2, 0)), ("F.scaled_dot_product_attention(a, a, a)", (2, 0, 3)),
    ("F.scaled_dot_product_attention(a, a, a)", (2, 3, 0)), ("F.cross_entropy(a, t.tensor([], dtype=t.int64), "
                                                              "reduction='sum')", (0, 3)),
    ("a[t.tensor([0, 1]), 3:, t.tensor([1, 0])]", (2, 2, 2)), ("t.cat([a, a], 1)", (0, 2)),
    ("t.stack([a, a]).sum(0)", (2, 0)), ("a.gather(1, t.tensor(D[1]).long()[:0])", (0, 3)),
    ("a[t.tensor([1, 1])]", (2, 0)), ("a[[0, 1], :, 1]", (2, 0, 3)),
])
def test_zero_size(expression, shape):
    assert_agrees(f"""
        a = t.tensor(D[0], requires_grad=True)
        y = {expression}
        loss = y.sum()
        loss.backward()
    """, randn(*shape), np.zeros((3, 2)))


@pytest.mark.parametrize("expression", ["a.softmax(0)", "a.log_softmax(-1)", "F.softmax(a, dim=0)", "a.logsumexp(0)",
                                        "a.max(0).values", "a.sum(0)", "a.amax(-1)"])
def test_reduction_over_the_dim_of_a_zero_dim_tensor(expression):
    assert_agrees(f"""
        a = t.tensor(D[0], requires_grad=True)
        y = {expression}
        loss = y * 2.0
        loss.backward()
    """, randn())


@pytest.mark.parametrize("index", ["[]", ":, []", "[], 1", "None, [], 1"])
def test_empty_index_list(index):
    assert_agrees(f"""
        a = t.tensor(D[0], requires_grad=True)
        y = a[{index}]
        h = a * 1.0
        h[{index}] = 0.5
        loss = y.sum() + (h * t.tensor(D[0])).sum()
        loss.backward()
    """, randn(2, 3))


@pytest.mark.parametrize("view", ["b.expand_as(b)", "b.expand(2, 3)", "b[:, :1].expand(2, 0)", "b.expand(1, 2, 3)[0]"])
def test_edit_of_an_expanded_view_without_overlap(view):
    # torch refuses writes only where an expanded view has several elements in one memory location
    assert_agrees(f"""
        b = t.tensor(D[0], requires_grad=True)
        h = b * 1.0
        v = {view.replace("b", "h", 1)}
        with t.no_grad(): v.fill_(0.5)
        w = h * 1.0
    """, randn(2, 3))


def test_chunk_of_a_zero_length_dim_gives_one_piece():
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        p, = a.chunk(1, 0)
        q, = a.chunk(3, 0)
    """, randn(0, 2))


# --- retain_grad with autograd.grad ------------------------------------------------------------------------------------
def test_autograd_grad_fills_retained_grads():
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        h = a * 2
        h.retain_grad()
        gs = t.autograd.grad((h * h).sum(), [a])
    """, randn(3))


# --- found by the long random-program run ---------------------------------------------------------------------------
def test_pow_with_a_constant_exponent_keeps_its_output():
    # PyTorch's pow of two tensors saves its result whichever gradient is wanted: editing it is an error
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        y = (a * a + 0.5) ** t.tensor(D[1]).sum().tanh()
        y.add_(1.0)
        loss = (y * t.tensor(D[2])).sum()
        loss.backward()
    """, randn(3, 2), randn(2, seed=1), randn(3, 2, seed=2))


@pytest.mark.parametrize("index", ["a[-1, ..., t.tensor([2, 2, 0])]", "a[:, 0, None, t.tensor([0, 0, 1])]"])
def test_index_that_reorders_dims_gives_a_fresh_tensor(index):
    # an int and an index array apart in NumPy's eyes: the result's dims are reordered, yet it is no view
    assert_agrees(f"""
        a = t.tensor(D[0], requires_grad=True)
        v1 = {index}
        v2 = v1.view_as(v1)
        v2[[-1], ...] = -0.781
        v1.retain_grad()
        loss = (v2 * v2.detach()).sum()
        loss.backward()
    """, randn(4, 3, 3))


@pytest.mark.parametrize("shapes", [((4, 0, 3, 1),) * 3, ((2, 2, 3), (2, 2, 3), (2, 2, 0))])
def test_attention_with_an_empty_output_saves_nothing(shapes):
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        b = t.tensor(D[1], requires_grad=True)
        c = t.tensor(D[2], requires_grad=True)
        y = F.scaled_dot_product_attention(a * 1.0, b * 1.0, c * 1.0)
        with t.no_grad(): y.fill_(0.5)
        with t.no_grad(): c.mul_(2.0)
        loss = (y * 2.0).sum()
        loss.backward()
    """, *(randn(*shape, seed=i) for i, shape in enumerate(shapes)))


def test_index_of_a_transposed_tensor_keeps_its_layout():
    # PyTorch's index result keeps the source's layout when the index arrays come first: .contiguous() then
    # makes a new tensor, whose retained gradient stays empty
    assert_agrees("""
        c = t.tensor(D[0], requires_grad=True)
        v4 = (c.mT @ c).T
        v5 = v4[t.tensor([0])]
        v6 = v5.contiguous()
        v6.retain_grad()
        loss = (v5 * t.tensor(D[1])).sum()
        loss.backward()
    """, randn(3, 2), randn(1, 2, seed=1))


def test_tril_of_a_transposed_tensor_is_c_ordered():
    # PyTorch's tril writes a C-ordered result: .contiguous() then returns the same tensor, retained grad and all
    assert_agrees("""
        b = t.tensor(D[0], requires_grad=True)
        v6 = b.mean(-2, keepdim=True).square().T
        v8 = v6.tril(-1)
        v9 = v8.contiguous()
        v9.retain_grad()
        loss = (v8 * t.tensor(D[1])).sum()
        loss.backward()
    """, randn(2, 3, 4), randn(4, 1, 2, seed=1))


def test_batched_matmul_of_strided_operands_is_c_ordered():
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        v2 = (-a).T
        v3 = v2.mT @ v2
        v4 = v3.view((12, 2, 2))
        loss = (v4 * 2.0).sum()
        loss.backward()
    """, randn(2, 2, 4, 3))


# --- which operands PyTorch's matmul saves as copies it made ----------------------------------------------------------
# PyTorch folds batch dims with reshape; where the layout cannot be viewed so, the reshape copies and the product
# saves the copy, so the operand may then be edited. Each case edits one operand after the product.
@pytest.mark.parametrize("expression, shapes, edited", [
    ("b @ a", ((2, 2, 2, 2), (2,)), "a"),          # 1-D @ 4-D: the 4-D transposed and folded into a copy
    ("a @ b", ((2, 1, 3, 5), (2, 5, 1)), "a"),     # batch dims broadcast: the expanded 4-D folded into a copy
    ("a.mT @ b", ((2, 4, 3), (4, 5)), "a"),        # a transposed batch folded into rows: a copy
    ("a @ b", ((3, 4), (2, 4, 5)), "b"),           # 2-D @ 3-D: the 3-D transposed and folded into a copy
    ("a @ b", ((2, 3, 4), (4, 5)), "a"),           # folded as a view: saved, the edit is an error in both
    ("a @ b", ((2, 3, 4), (2, 4, 5)), "b"),        # same batch: views, an error in both
    ("a[:1] @ b", ((2, 3, 4), (2, 4, 5)), "a"),    # a batch of one that broadcasts, dropped before folding
])
def test_matmul_saves_the_copies_pytorch_makes(expression, shapes, edited):
    shape_a, shape_b = shapes
    out_shape = torch.matmul(torch.zeros(shape_a) if "mT" not in expression else torch.zeros(shape_a).mT,
                             torch.zeros(shape_b)).shape if not expression.startswith("b") else \
        torch.matmul(torch.zeros(shape_b), torch.zeros(shape_a)).shape
    if "[:1]" in expression:
        out_shape = torch.matmul(torch.zeros(shape_a)[:1], torch.zeros(shape_b)).shape
    assert_agrees(f"""
        a = t.tensor(D[0], requires_grad=True)
        b = t.tensor(D[1], requires_grad=True)
        y = {expression}
        with t.no_grad(): {edited}.mul_(1.5)
        loss = (y * t.tensor(D[2])).sum()
        loss.backward()
    """, randn(*shape_a), randn(*shape_b, seed=1), randn(*out_shape, seed=2))


# --- what PyTorch's CPU attention keeps when it does not take its fused kernel ----------------------------------
# Its other path is composed: weights = softmax(q k^T * scale + mask), then weights @ v, which saves v only for the
# weights' gradient, and as matmul's own copy where matmul makes one. It never keeps the user's mask.
@pytest.mark.parametrize("setup, b_shape, edited", [
    ("q = k = b.detach() * 1.0; v = a", (3, 4), "a"),                # 2-D, the weights need no grad: v not kept
    ("q = k = b * 1.0; v = a", (3, 4), "a"),                         # 2-D, the weights need grad: v kept
    ("q = k = b * 1.0; v = c.transpose(1, 2)", (2, 2, 3, 4), "c"),   # v 5 wide (not fused), copied by matmul
    ("q = k = b * 1.0; v = c[:1].expand(2, 3, 2, 5).transpose(1, 2)", (2, 2, 3, 4), "c"),  # the same, expanded
    ("q = k = b * 1.0; v = a.expand(2, 2, 3, 4)", (2, 2, 3, 4), "a"),  # the fused kernel: v kept
    ("q = b * 1.0; k = b[0] * 1.0; v = a", (2, 2, 3, 4), "a"),        # batch dims that broadcast: v kept
])
def test_attention_keeps_what_pytorch_keeps(setup, b_shape, edited):
    assert_agrees(f"""
        a = t.tensor(D[0], requires_grad=True)
        b = t.tensor(D[1], requires_grad=True)
        c = t.tensor(D[2], requires_grad=True)
        {setup}
        y = F.scaled_dot_product_attention(q, k, v)
        with t.no_grad(): {edited}.mul_(1.5)
        loss = (y * y.detach()).sum()
        loss.backward()
    """, randn(3, 4), randn(*b_shape, seed=1), randn(2, 3, 2, 5, seed=2))


@pytest.mark.parametrize("mask, shape, second_order", [
    ("t.tensor(D[1]) * 1.0", (2, 2, 3, 4), False),          # fused: a float mask is kept, the edit an error
    ("t.tensor(D[1]) * 1.0", (3, 4), False),                # composed path: the mask is never kept
    ("t.tensor(D[1]) * 1.0", (3, 4), True),                 # ... nor for a second-order gradient
    ("t.tensor(D[1]) > 0", (3, 4), True),
    ("t.tensor(D[1]) > 0", (2, 2, 3, 4), False),
])
def test_attention_mask_edited_after_the_forward(mask, shape, second_order):
    backward = ("gs = t.autograd.grad(loss, [a], create_graph=True)\n        "
                "gs2 = t.autograd.grad((gs[0] * gs[0]).sum(), [a])") if second_order else "loss.backward()"
    assert_agrees(f"""
        a = t.tensor(D[0], requires_grad=True)
        m = {mask}
        y = F.scaled_dot_product_attention(a * 1.0, a * 2.0, a * 3.0, attn_mask=m)
        with t.no_grad(): m.{"mul_(1.5)" if "*" in mask else "copy_(~m)"}
        loss = (y * y.detach()).sum()
        {backward}
    """, randn(*shape), randn(shape[-2], shape[-2], seed=1))


def test_second_order_attention_over_one_key_is_exactly_zero():
    # one key: the output is v whatever q and k are; PyTorch's softmax backward cancels exactly, and so must ours
    # (exp / sum differentiated twice left float32 rounding where the answer is 0)
    assert_agrees("""
        a = t.tensor(D[0], requires_grad=True)
        x = (a.reshape(1) * 2).unsqueeze(1)
        y = F.scaled_dot_product_attention(x, x, x)
        gs = t.autograd.grad((y * t.tensor(D[1])).sum(), [a], create_graph=True)
        gs2 = t.autograd.grad((gs[0] * gs[0]).sum(), [a])
    """, np.array(-1.9786139, dtype=np.float32), np.array([[1.3323648]], dtype=np.float32))


# --- writes into an expanded tensor ---------------------------------------------------------------------------------
# PyTorch refuses a write only into a tensor with two elements at one memory location (a stretched dim of an
# expand); fill_, zero_, masked_fill_ and index writes it does even then. With autograd recording the write, the
# base's gradient passes back through the overlapping view, which it refuses in backward.
@pytest.mark.parametrize("write", [
    "h.expand(3, 5)[-1, ::2].copy_(h.expand(3, 5)[-1, ::2].tanh())",  # one row of the expand: no element twice
    "h.expand(3, 5)[0] = 1.5", "h.expand(3, 5)[1:2] = 1.5", "h.expand(3, 5)[0, 0] = 1.5",
    "h.expand(3, 5)[:, 0] = 1.5", "h.expand(3, 5)[...] = 1.5", "h.expand(3, 5).copy_(t.ones(3, 5))",
    "h.expand(3, 5).add_(1.0)", "h.expand(3, 5).fill_(1.5)", "h.expand(3, 5).zero_()",
    "h.expand(3, 5)[:, 0].fill_(1.5)", "h.expand(3, 5)[[0]] = 1.5",
    "h.expand(3, 5).masked_fill_(t.tensor([True, False, True, False, True]), 1.5)",
    "h.expand(0, 5).add_(1.0)",
])
@pytest.mark.parametrize("recorded", [False, True])
def test_write_into_an_expanded_tensor(write, recorded):
    assert_agrees(f"""
        a = t.tensor(D[0], requires_grad=True)
        h = a * 1.0
        {write if recorded else "with t.no_grad(): " + write}
        loss = (h * t.tensor(D[1])).sum() + (a * h).sum()
        loss.backward()
    """, randn(5), randn(5, seed=1))


# --- a view taken before its base required grad -----------------------------------------------------------------------
# PyTorch makes a view's grad_fn when the view is used in an op that records the graph (or its grad_fn or is_leaf
# is read). Until then a view taken while its base needed no grad is a leaf to PyTorch's in-place check, which
# refuses to edit a leaf that requires grad.
@pytest.mark.parametrize("between, edit", [
    ("", "v2.clamp_(-0.5, 2.3)"), ("", "v2.add_(1.0)"), ("", "v2.zero_()"), ("", "v2[...] = 1.0"),
    ("", "v2[:] = 1.0"), ("", "v2[[0]] = 1.0"), ("", "v2.copy_(b)"),
    ("", "v2[0] = 1.0"), ("", "v2[None] = 1.0"), ("", "v2[-2:] = 1.0"), ("", "v2[:, 1:] = 1.0"),
    ("w = v2 * 1.0", "v2.add_(1.0)"), ("w = v2[0]", "v2.add_(1.0)"), ("r = v2.is_leaf", "v2.add_(1.0)"),
    ("r = v2.requires_grad", "v2.add_(1.0)"), ("with t.no_grad(): w = v2 * 1.0", "v2.add_(1.0)"),
    ("w = v2.detach()", "v2.add_(1.0)"),
])
def test_edit_of_a_view_taken_before_its_base_required_grad(between, edit):
    assert_agrees(f"""
        b = t.tensor(D[0], requires_grad=True)
        v1 = b.detach().clone()
        v2 = v1.permute(1, 0)
        v1.div_(b)
        {between or "pass"}
        {edit}
        loss = (v1 * t.tensor(D[1])).sum()
        loss.backward()
    """, positive(2, 2), randn(2, 2, seed=1))


# --- float32 layer_norm of a constant row ---------------------------------------------------------------------------
def test_layer_norm_of_a_constant_row_is_exactly_zero_in_float32():
    # PyTorch's CPU kernel gives a constant row exactly its value as mean; a float32 sum of the row rounds, and
    # 1/std (1/sqrt(eps) here) magnifies what is left
    values = np.array([0.1, -2.7182817, 3.1415927, 1e-3, 123.456], dtype=np.float32)
    for library in (tg, torch):
        x = library.tensor(np.repeat(values[:, None], 15, axis=1)).reshape(5, 3, 5)
        out = library.nn.functional.layer_norm(x, (3, 5))
        assert not out.detach().numpy().any(), library.__name__
