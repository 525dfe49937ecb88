"""Every guardrail raises the right exception type with a message that names the op and the
offending shapes, dtypes or devices, and no raw NumPy error escapes on its own."""
import re
import sys

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
import tinygrad_tx.nn.functional as F


def raises(exception, *fragments):
    """pytest.raises that also checks each fragment appears (literally) in the message."""
    return pytest.raises(exception, match="(?s)" + "".join(f"(?=.*{re.escape(f)})" for f in fragments))


# --- shapes ----------------------------------------------------------------------------------------------------
def test_add_shape_mismatch():
    with raises(RuntimeError, "add", "(2, 3)", "(4,)"):
        tg.ones(2, 3) + tg.ones(4)


def test_inplace_add_broadcast_to_a_bigger_shape():
    with raises(RuntimeError, "add_", "(3,)", "(2, 3)"):
        tg.ones(3).add_(tg.ones(2, 3))


def test_matmul_inner_dimension_mismatch():
    with raises(RuntimeError, "matmul", "(2, 3)", "(4, 2)"):
        tg.ones(2, 3) @ tg.ones(4, 2)


def test_matmul_batch_dimension_mismatch():
    with raises(RuntimeError, "matmul", "(2, 2, 3)", "(3, 3, 2)"):
        tg.ones(2, 2, 3) @ tg.ones(3, 3, 2)


def test_matmul_of_0d():
    with raises(RuntimeError, "matmul", "()"):
        tg.tensor(2.0) @ tg.ones(2)


def test_matmul_dtype_mismatch():
    with raises(RuntimeError, "matmul", "float32", "float64", "(2, 3)", "(3, 2)"):
        tg.ones(2, 3) @ tg.ones(3, 2, dtype=tg.float64)


def test_cat_shape_mismatch():
    with raises(RuntimeError, "cat", "(2, 3)", "(2, 4)"):
        tg.cat([tg.ones(2, 3), tg.ones(2, 4)])
    with raises(RuntimeError, "cat", "(2, 3)", "(3,)"):
        tg.cat([tg.ones(2, 3), tg.ones(3)])
    with raises(RuntimeError, "cat", "non-empty"):
        tg.cat([])


def test_stack_shape_mismatch():
    with raises(RuntimeError, "stack", "(2,)", "(3,)"):
        tg.stack([tg.ones(2), tg.ones(3)])


def test_reshape_to_wrong_number_of_elements():
    with raises(RuntimeError, "reshape", "(4, 2)", "(2, 3)"):
        tg.ones(2, 3).reshape(4, 2)
    with raises(RuntimeError, "reshape", "(-1, 4)", "(2, 3)"):
        tg.ones(2, 3).reshape(-1, 4)
    with raises(RuntimeError, "reshape", "-1"):
        tg.ones(2, 3).reshape(-1, -1)


def test_expand_to_incompatible_shape():
    with raises(RuntimeError, "expand", "(2, 3)", "(4, 3)"):
        tg.ones(2, 3).expand(4, 3)
    with raises(RuntimeError, "expand", "(2, 3)", "(3,)"):
        tg.ones(2, 3).expand(3)
    with raises(RuntimeError, "expand", "(-1, 3)", "(3,)", "leading"):
        tg.ones(3).expand(-1, 3)


def test_permute_with_a_repeated_dim():
    with raises(RuntimeError, "permute", "(0, 0)", "(2, 3)"):
        tg.ones(2, 3).permute(0, 0)


def test_split_sizes_that_do_not_add_up():
    with raises(RuntimeError, "split", "[1, 2]", "(4,)"):
        tg.ones(4).split([1, 2])


def test_layer_norm_shape_mismatch():
    with raises(RuntimeError, "layer_norm", "(2, 3)", "(4,)"):
        F.layer_norm(tg.ones(2, 3), (4,))
    with raises(RuntimeError, "layer_norm", "weight", "(4,)", "(3,)"):
        F.layer_norm(tg.ones(2, 3), (3,), weight=tg.ones(4))


def test_layer_norm_weight_dtype_mismatch():
    with raises(RuntimeError, "layer_norm", "weight", "float64", "float32"):
        F.layer_norm(tg.ones(2, 3), (3,), weight=tg.ones(3, dtype=tg.float64))


def test_cross_entropy_target_shape_mismatch():
    with raises(RuntimeError, "cross_entropy", "(3,)", "(2, 4)", "(2,)"):
        F.cross_entropy(tg.ones(2, 4), tg.tensor([0, 1, 2]))
    with raises(RuntimeError, "cross_entropy", "(2, 3)", "(2, 4)"):
        F.cross_entropy(tg.ones(2, 4), tg.ones(2, 3))


def test_cross_entropy_target_out_of_range():
    with raises(IndexError, "cross_entropy", "[0, 4)", "4"):
        F.cross_entropy(tg.ones(2, 4), tg.tensor([0, 4]))
    with raises(IndexError, "cross_entropy", "-1"):
        F.cross_entropy(tg.ones(2, 4), tg.tensor([-1, 0]))


def test_cross_entropy_bad_arguments():
    with raises(ValueError, "cross_entropy", "reduction", "'avg'"):
        F.cross_entropy(tg.ones(2, 4), tg.tensor([0, 1]), reduction="avg")
    with raises(ValueError, "cross_entropy", "label_smoothing"):
        F.cross_entropy(tg.ones(2, 4), tg.tensor([0, 1]), label_smoothing=1.5)
    with raises(RuntimeError, "cross_entropy", "floating", "int64"):
        F.cross_entropy(tg.tensor([[1, 2]]), tg.tensor([0]))


def test_linear_shape_mismatch():
    with raises(RuntimeError, "linear", "(2, 3)", "(4, 2)"):
        F.linear(tg.ones(2, 3), tg.ones(4, 2))


def test_sdpa_shape_mismatch():
    with raises(RuntimeError, "scaled_dot_product_attention", "(2, 3, 4)", "(2, 5, 3)"):
        F.scaled_dot_product_attention(tg.ones(2, 3, 4), tg.ones(2, 5, 3), tg.ones(2, 5, 4))
    with raises(RuntimeError, "scaled_dot_product_attention", "(4, 5)"):
        F.scaled_dot_product_attention(tg.ones(2, 3, 4), tg.ones(2, 5, 4), tg.ones(2, 5, 4),
                                       attn_mask=tg.ones(4, 5, dtype=tg.bool))


def test_where_shape_mismatch():
    with raises(RuntimeError, "where", "(2,)", "(3,)"):
        tg.where(tg.ones(2) > 0, tg.ones(3), tg.ones(3))
    with raises(TypeError, "where", "bool"):
        tg.where(tg.ones(3), tg.ones(3), tg.ones(3))


def test_dim_out_of_range():
    for fn, name in ((lambda x: x.sum(2), "sum"), (lambda x: x.softmax(-3), "softmax"),
                     (lambda x: x.transpose(0, 5), "transpose"), (lambda x: x.argmax(2), "argmax"),
                     (lambda x: tg.cat([x, x], 2), "cat"), (lambda x: x.max(2), "max"),
                     (lambda x: x.min(-3), "min")):
        with raises(IndexError, name, "dim", "2 dimensions", "[-2, 1]"):
            fn(tg.ones(2, 3))
    with raises(IndexError, "unsqueeze", "dim 4", "[-3, 2]"):
        tg.ones(2, 3).unsqueeze(4)


def test_dim_of_a_wrong_type():
    with raises(TypeError, "sum", "0.5"):
        tg.ones(2).sum(0.5)


def test_reduction_over_a_repeated_dim():
    with raises(RuntimeError, "sum", "twice"):
        tg.ones(2, 3).sum((1, -1))


def test_reductions_of_empty_tensors():
    with raises(RuntimeError, "amax", "empty", "(0, 3)"):
        tg.ones(0, 3).amax()
    with raises(RuntimeError, "argmax", "empty"):
        tg.ones(0).argmax()


# --- devices -----------------------------------------------------------------------------------------------------
def test_unknown_device():
    with raises(ValueError, "unknown device", "'tpu'", "cuda"):
        tg.zeros(2, device="tpu")
    with raises(ValueError, "unknown device", "'cuda:x'"):
        tg.tensor([1.0], device="cuda:x")


def test_cuda_without_cupy_names_the_install_command(monkeypatch):
    from tinygrad_tx import backend
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy now raises ImportError, installed or not
    monkeypatch.delitem(sys.modules, "tinygrad_tx.backend.cupy_backend", raising=False)
    monkeypatch.delitem(backend._backends, "cuda:0", raising=False)
    with raises(RuntimeError, "cuda", 'pip install "tinygrad_tx[cuda]"'):
        tg.zeros(2, device="cuda")
    with raises(RuntimeError, 'pip install "tinygrad_tx[cuda]"'):
        tg.ones(2).to("cuda")


def test_device_mismatch_in_binary_ops(second_device):
    a, b = tg.ones(2, 3), tg.ones(2, 3, device=second_device)
    assert b.device == "cuda:7"
    with raises(RuntimeError, "add", "cpu", "cuda:7", "(2, 3)"):
        a + b
    with raises(RuntimeError, "mul", "cpu", "cuda:7"):
        b * a


def test_device_mismatch_in_matmul_cat_where_and_ops(second_device):
    a, b = tg.ones(2, 2), tg.ones(2, 2, device=second_device)
    with raises(RuntimeError, "Matmul", "cpu", "cuda:7"):
        a @ b
    with raises(RuntimeError, "cat", "cpu", "cuda:7"):
        tg.cat([a, b])
    with raises(RuntimeError, "where", "cpu", "cuda:7"):
        tg.where(a > 0, b, b)
    with raises(RuntimeError, "layer_norm", "cpu", "cuda:7"):
        F.layer_norm(a, (2,), weight=tg.ones(2, device=second_device))
    with raises(RuntimeError, "getitem", "cpu", "cuda:7"):
        a[tg.tensor([0], device=second_device)]


def test_moving_between_devices_carries_the_gradient(second_device):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(second_device)
    assert y.device == second_device
    (y * y).sum().backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [2.0, 4.0]


# --- autograd misuse ----------------------------------------------------------------------------------------------
def test_backward_on_non_scalar_without_gradient():
    with raises(RuntimeError, "backward", "scalar", "(2,)"):
        (tg.ones(2, requires_grad=True) * 2).backward()


def test_backward_with_wrong_gradient_shape():
    with raises(RuntimeError, "backward", "(3,)", "(2,)"):
        (tg.ones(2, requires_grad=True) * 2).backward(tg.ones(3))


def test_backward_on_a_tensor_without_grad():
    with raises(RuntimeError, "backward", "does not require grad"):
        tg.ones(2).sum().backward()


def test_integer_tensors_cannot_require_grad():
    with raises(RuntimeError, "requires_grad", "floating", "int64"):
        tg.tensor([1, 2], requires_grad=True)
    with raises(RuntimeError, "requires_grad", "floating", "bool"):
        tg.tensor([True]).requires_grad_()
    with raises(RuntimeError, "requires_grad", "int32"):
        tg.zeros(2, dtype=tg.int32, requires_grad=True)


def test_retain_grad_and_hooks_need_a_tensor_that_requires_grad():
    with raises(RuntimeError, "retain_grad"):
        tg.ones(2).retain_grad()
    with raises(RuntimeError, "register_hook"):
        tg.ones(2).register_hook(lambda g: g)


def test_numpy_of_a_tensor_that_requires_grad():
    with raises(RuntimeError, "numpy()", "detach()"):
        tg.ones(2, requires_grad=True).numpy()


def _saved_then_edited(edit):
    x = tg.ones(3, requires_grad=True)
    a = x * 2
    y = (a * a).sum()  # Mul saves a
    edit(a)
    y.backward()


def _iadd(a):
    a += 1


def _setitem(a):
    a[0] = 5.0


def _setitem_masked(a):
    a[a > 100] = 0.0


@pytest.mark.parametrize("edit", [_iadd, _setitem, _setitem_masked, lambda a: a.add_(1), lambda a: a.zero_(),
                                  lambda a: a.mul_(2), lambda a: a.fill_(3.0), lambda a: a.clamp_(0, 1)],
                         ids=["+=", "setitem", "setitem_mask", "add_", "zero_", "mul_", "fill_", "clamp_"])
def test_inplace_edit_of_a_saved_tensor_raises_at_backward(edit):
    with raises(RuntimeError, "Mul", "saved for backward", "(3,)", "modified in place"):
        _saved_then_edited(edit)


def test_inplace_edit_of_a_saved_tensor_under_no_grad_still_raises():
    w = tg.ones(3, requires_grad=True)
    y = (w * w).sum()
    with tg.no_grad():
        w -= 0.1
    with raises(RuntimeError, "Mul", "modified in place"):
        y.backward()


def test_inplace_edit_of_a_saved_output_raises_at_backward():
    x = tg.ones(3, requires_grad=True)
    y = (x * 1).exp()  # Exp saves its output
    with tg.no_grad():
        y += 1
    with raises(RuntimeError, "Exp", "output", "modified in place"):
        y.sum().backward()


def test_inplace_edit_of_an_unsaved_tensor_is_fine():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    a = x + 1  # Add saves nothing
    b = a + 1
    a += 10
    b.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    y = x * 3
    y += 1  # in place on a non-leaf joins the graph
    (y * y).sum().backward()
    assert x.grad.tolist() == [1.0 + 24.0, 1.0 + 42.0]


@pytest.mark.parametrize("edit", [_iadd, _setitem, lambda a: a.add_(1), lambda a: a.zero_()],
                         ids=["+=", "setitem", "add_", "zero_"])
def test_inplace_on_a_leaf_that_requires_grad(edit):
    with raises(RuntimeError, "leaf", "requires grad", "no_grad"):
        edit(tg.ones(3, requires_grad=True))


def test_inplace_on_a_leaf_inside_no_grad_is_allowed():
    x = tg.ones(3, requires_grad=True)
    with tg.no_grad():
        x += 1
        x[0] = 0.0
        x.zero_()
    assert x.tolist() == [0.0, 0.0, 0.0] and x.requires_grad and x.is_leaf


def _edit_view_then_base(lib):
    x = lib.ones(2, 3, dtype=lib.float64, requires_grad=True)
    a = x * 1
    view = a.reshape(3, 2)
    view.add_(lib.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=lib.float64, requires_grad=True) * x.sum())
    a[0] = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64) * x[1]
    return (view * view).sum() + a.sum(), x


def test_inplace_on_a_view_in_the_graph_rewires_its_base_as_pytorch():
    loss, x = _edit_view_then_base(tg)
    loss.backward()
    expected_loss, expected_x = _edit_view_then_base(torch)
    expected_loss.backward()
    assert loss.item() == pytest.approx(expected_loss.item())
    np.testing.assert_allclose(x.grad.numpy(), expected_x.grad.numpy())


def test_inplace_on_a_view_of_a_leaf_or_an_expanded_view_raises():
    with raises(RuntimeError, "view of a leaf", "no_grad"):
        tg.ones(3, requires_grad=True)[1:].mul_(2)
    with raises(RuntimeError, "add_", "single memory location"):
        tg.zeros(1, 3).expand(2, 3).add_(tg.ones(3, requires_grad=True))


def test_inplace_cannot_change_an_int_tensor_to_float():
    with raises(RuntimeError, "mul_", "float32", "int64"):
        tg.tensor([1, 2]).mul_(0.5)


def test_bool_subtraction_and_negation():
    with raises(RuntimeError, "sub", "bool", "~"):
        tg.tensor([True]) - tg.tensor([False])
    with raises(RuntimeError, "neg", "bool"):
        -tg.tensor([True])


# --- indexing -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [5, -4, (0, 0), (slice(None), 3), [0, 7], "tensor"], ids=str)
def test_getitem_out_of_range_is_an_index_error_with_our_message(index):
    x = tg.ones(3)
    if index == "tensor":
        index = tg.tensor([0, 3])
    with raises(IndexError, "getitem", "(3,)"):
        x[index]


def test_getitem_with_a_float_or_unsupported_index():
    with raises(IndexError, "getitem", "float32"):
        tg.ones(3)[tg.tensor([0.0])]
    with raises(IndexError, "getitem", "float64"):
        tg.ones(3)[np.array([0.5])]
    with raises(IndexError, "getitem", "'a'"):
        tg.ones(3)["a"]


def test_getitem_with_a_mask_of_the_wrong_shape():
    with raises(IndexError, "getitem", "(3, 2)"):
        tg.ones(3, 2)[tg.tensor([True, False])]


def test_setitem_out_of_range_or_wrong_shape():
    with raises(IndexError, "setitem", "(3,)"):
        tg.ones(3)[5] = 1.0
    with raises(IndexError, "setitem", "(2,)", "(3,)"):
        tg.ones(3)[:] = tg.ones(2)


def test_gather_errors():
    with raises(IndexError, "gather", "dim 1", "2"):
        tg.ones(3, 2).gather(1, tg.tensor([[0], [2], [1]]))
    with raises(RuntimeError, "gather", "index"):
        tg.ones(3, 2).gather(1, tg.tensor([0, 1]))


def test_embedding_index_out_of_range():
    with raises(IndexError, "embedding", "3 rows", "5"):
        F.embedding(tg.tensor([5]), tg.ones(3, 2))
    with raises(RuntimeError, "embedding", "integer"):
        F.embedding(tg.tensor([0.0]), tg.ones(3, 2))


def test_one_hot_errors():
    with raises(RuntimeError, "one_hot", "[0, 3)", "5"):
        tg.one_hot(tg.tensor([0, 5]), 3)
    with raises(RuntimeError, "one_hot", "integer"):
        tg.one_hot(tg.tensor([0.0]), 3)


def test_topk_and_multinomial_errors():
    with raises(RuntimeError, "topk", "k=4", "3"):
        tg.ones(3).topk(4)
    with raises(RuntimeError, "multinomial", "non-negative"):
        tg.tensor([0.5, -0.1]).multinomial(1)
    with raises(RuntimeError, "multinomial", "without replacement", "3"):
        tg.tensor([0.5, 0.2, 0.3]).multinomial(4)


def test_conversions_of_many_elements():
    with raises(ValueError, "item()", "(2,)"):
        tg.ones(2).item()
    with raises(RuntimeError, "ambiguous"):
        bool(tg.ones(2))


def test_tensor_from_bad_data():
    with raises(ValueError, "tensor", "rectangular"):
        tg.tensor([[1, 2], [3]])
    with raises(TypeError, "tensor", "<U1"):
        tg.tensor(["a"])
    with raises(TypeError, "tensor", "object"):
        tg.tensor([None])


def test_unsupported_operand_and_dtype():
    with raises(TypeError, "add", "str"):
        tg.ones(2) + "a"
    with raises(TypeError, "unsupported dtype", "complex64"):
        tg.ones(2, dtype="complex64")


def test_inplace_edit_through_a_detached_alias_raises_at_backward():
    x = tg.ones(3, requires_grad=True)
    a = x * 2
    y = (a * a).sum()
    a.detach().add_(1)  # detach() shares memory and the version counter, as in PyTorch
    with raises(RuntimeError, "Mul", "modified in place"):
        y.backward()


def test_inplace_edit_of_a_view_bumps_its_base_version():
    x = tg.ones(2, 3, requires_grad=True)
    a = x * 2
    y = (a * a).sum()
    with tg.no_grad():
        a.reshape(6)[0] = 5.0  # a view shares its base's version counter
    with raises(RuntimeError, "Mul", "modified in place"):
        y.backward()


def test_integer_tensor_to_negative_power_names_the_op():
    with pytest.raises(RuntimeError, match="pow"):
        tg.tensor([1, 2]) ** -1
