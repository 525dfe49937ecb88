"""nn.Module bookkeeping, the standard layers and nn.init, against torch.nn: the same module tree built with
both libraries must register the same names, and layers with copied weights must agree forward and backward."""
from collections import OrderedDict

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from conftest import assert_close, randn, rng, to_numpy
from tinygrad_tx import nn


# --- one module tree, written once for both libraries ----------------------------------------------------------
def build_net(lib_nn, tensor):
    """A small transformer-shaped tree: nested blocks in a ModuleList, a ModuleDict, a Sequential, tied weights,
    a persistent and a non-persistent buffer."""

    class Block(lib_nn.Module):
        def __init__(self):
            super().__init__()
            self.ln = lib_nn.LayerNorm(4)
            self.mlp = lib_nn.Sequential(lib_nn.Linear(4, 8), lib_nn.GELU(), lib_nn.Linear(8, 4, bias=False))
            self.drop = lib_nn.Dropout(0.1)

        def forward(self, x):
            return x + self.drop(self.mlp(self.ln(x)))

    class Net(lib_nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = lib_nn.Embedding(10, 4)
            self.blocks = lib_nn.ModuleList([Block(), Block()])
            self.heads = lib_nn.ModuleDict({"lm": lib_nn.Linear(4, 10, bias=False), "value": lib_nn.Linear(4, 1)})
            self.heads["lm"].weight = self.embed.weight  # tied
            self.scale = lib_nn.Parameter(tensor(np.ones(4, dtype=np.float32)))
            self.register_buffer("positions", tensor(np.arange(6)))
            self.register_buffer("cache", tensor(np.zeros(3, dtype=np.float32)), persistent=False)

        def forward(self, idx):
            x = self.embed(idx) * self.scale
            for block in self.blocks:
                x = block(x)
            return self.heads["lm"](x), self.heads["value"](x)

    return Net()


def both_nets():
    ours, theirs = build_net(nn, tg.tensor), build_net(torch.nn, torch.tensor)
    copy_weights(ours, theirs)
    return ours, theirs


def copy_weights(ours, theirs):
    """Give the torch tree our values (float64), parameter by parameter."""
    theirs.double()
    with torch.no_grad():
        for (name, p), (their_name, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert name == their_name
            q.copy_(torch.tensor(to_numpy(p).astype(np.float64)))
    ours.double()


def names(pairs):
    return [name for name, _ in pairs]


def test_registration_names_match_torch():
    ours, theirs = both_nets()
    assert names(ours.named_parameters()) == names(theirs.named_parameters())
    assert names(ours.named_modules()) == names(theirs.named_modules())
    assert names(ours.named_children()) == names(theirs.named_children())
    assert names(ours.named_buffers()) == names(theirs.named_buffers())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [type(m).__name__ for m in ours.modules()] == [type(m).__name__ for m in theirs.modules()]
    assert [type(m).__name__ for m in ours.children()] == ["Embedding", "ModuleList", "ModuleDict"]
    assert "blocks.1.mlp.0.weight" in dict(ours.named_parameters())
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))


def test_tied_parameters_appear_once():
    ours, _ = both_nets()
    params = list(ours.parameters())
    assert len({id(p) for p in params}) == len(params)
    assert ours.heads["lm"].weight is ours.embed.weight
    assert "heads.lm.weight" not in dict(ours.named_parameters())
    state = ours.state_dict()  # the state dict names a tied tensor under each of its names, as PyTorch's
    assert "heads.lm.weight" in state and "embed.weight" in state


def test_named_parameters_options():
    ours, _ = both_nets()
    assert names(ours.blocks[0].named_parameters(prefix="blocks.0")) == \
        [n for n in names(ours.named_parameters()) if n.startswith("blocks.0.")]
    assert names(ours.named_parameters(recurse=False)) == ["scale"]
    assert names(ours.named_modules(prefix="net"))[:3] == ["net", "net.embed", "net.blocks"]


def test_containers():
    ours, _ = both_nets()
    assert len(ours.blocks) == 2 and isinstance(ours.blocks[-1], nn.Module)
    assert isinstance(ours.blocks[0:1], nn.ModuleList) and len(ours.blocks[0:1]) == 1
    assert list(ours.heads) == ["lm", "value"] and "lm" in ours.heads and len(ours.heads) == 2
    sequential = ours.blocks[0].mlp
    assert isinstance(sequential[1], nn.GELU) and len(sequential) == 3
    head = sequential[:2]
    assert isinstance(head, nn.Sequential) and names(head.named_children()) == ["0", "1"]
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 3)), ("act", nn.ReLU())]))
    assert names(named.named_parameters()) == ["fc.weight", "fc.bias"]
    assert named(tg.ones(5, 2)).shape == (5, 3)
    grown = nn.ModuleList().append(nn.Linear(1, 1)).extend([nn.Linear(1, 2)])
    assert names(grown.named_parameters()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_assigning_attributes():
    ours, _ = both_nets()
    ours.positions = tg.tensor(np.arange(6) * 2)  # a registered buffer stays registered
    assert "positions" in dict(ours.named_buffers())
    np.testing.assert_array_equal(to_numpy(ours.state_dict()["positions"]), np.arange(6) * 2)
    with pytest.raises(TypeError, match="parameter 'scale'"):
        ours.scale = tg.ones(4)
    ours.extra = nn.Linear(4, 4)
    assert "extra.weight" in dict(ours.named_parameters())
    del ours.extra
    assert "extra.weight" not in dict(ours.named_parameters())
    ours.plain = 3
    assert ours.plain == 3 and "plain" not in dict(ours.named_parameters())
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        ours.missing


def test_train_eval_propagate():
    ours, theirs = both_nets()
    for model in (ours, theirs):
        assert all(m.training for m in model.modules())
        assert model.eval() is model
        assert not any(m.training for m in model.modules())
        model.blocks.train()
        assert model.blocks[1].drop.training and not model.training and not model.embed.training
        model.train()
        assert all(m.training for m in model.modules())


def test_forward_backward_of_the_tree_matches_torch():
    ours, theirs = both_nets()
    ours.eval(), theirs.eval()  # dropout off: both deterministic
    idx = rng(3).integers(0, 10, size=(2, 6))
    outputs = []
    for model, module in ((ours, tg), (theirs, torch)):
        logits, value = model(module.tensor(idx))
        (logits.tanh().sum() + (value * value).sum()).backward()
        outputs.append((logits, value, [p.grad for p in model.parameters()]))
    (our_logits, our_value, our_grads), (their_logits, their_value, their_grads) = outputs
    assert_close(our_logits, their_logits)
    assert_close(our_value, their_value)
    for (name, _), ours_grad, theirs_grad in zip(ours.named_parameters(), our_grads, their_grads):
        assert_close(ours_grad, theirs_grad, what=f"grad of {name}")


def test_zero_grad():
    ours, _ = both_nets()
    logits, value = ours(tg.tensor(np.arange(6).reshape(1, 6)))
    (logits.sum() + value.sum()).backward()
    ours.zero_grad(set_to_none=False)
    for p in ours.parameters():
        assert p.grad is not None
        np.testing.assert_array_equal(to_numpy(p.grad), np.zeros(p.shape))
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())


def test_apply_visits_children_first_as_torch():
    ours, theirs = both_nets()
    visited = []
    assert ours.apply(lambda m: visited.append(type(m).__name__)) is ours
    expected = []
    theirs.apply(lambda m: expected.append(type(m).__name__))
    assert visited == expected
    ours.apply(lambda m: nn.init.zeros_(m.bias) if isinstance(m, nn.Linear) and m.bias is not None else None)
    assert all(not to_numpy(m.bias).any() for m in ours.modules() if isinstance(m, nn.Linear) and m.bias is not None)


def test_to_dtype_and_device():
    model = build_net(nn, tg.tensor)
    weight = model.embed.weight
    model(tg.tensor(np.arange(3).reshape(1, 3)))[0].sum().backward()
    assert model.to(tg.float64) is model
    assert model.embed.weight is weight and weight.requires_grad  # the same Parameter, converted in place
    assert all(p.dtype is tg.float64 for p in model.parameters())
    assert all(p.grad.dtype is tg.float64 for p in model.parameters() if p.grad is not None)
    assert model.positions.dtype is tg.int64  # integer buffers keep their dtype
    assert model.cache.dtype is tg.float64
    model.float()
    assert all(p.dtype is tg.float32 for p in model.parameters())
    model.to("cpu")
    assert all(p.device == "cpu" for p in model.parameters())
    model.to(dtype=tg.float64, device="cpu")
    assert all(p.dtype is tg.float64 for p in model.parameters())


# --- state dicts ------------------------------------------------------------------------------------------------------
def test_state_dict_roundtrip():
    source, target = build_net(nn, tg.tensor), build_net(nn, tg.tensor)
    state = source.state_dict()
    assert "cache" not in state and "positions" in state  # non-persistent buffers are not saved
    weight = target.blocks[0].ln.weight
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert target.blocks[0].ln.weight is weight  # loaded in place
    for (name, ours), (_, theirs) in zip(target.state_dict().items(), state.items()):
        np.testing.assert_array_equal(to_numpy(ours), to_numpy(theirs), err_msg=name)
    # loads plain arrays too, and tolerates a different float dtype
    target.load_state_dict({name: to_numpy(value).astype(np.float64) if value.dtype.is_floating else to_numpy(value)
                            for name, value in state.items()})
    assert target.embed.weight.dtype is tg.float32


def test_state_dict_is_detached_but_shares_memory():
    model = nn.Linear(3, 2)
    state = model.state_dict()
    assert not state["weight"].requires_grad
    with tg.no_grad():
        model.weight.fill_(1.0)
    np.testing.assert_array_equal(to_numpy(state["weight"]), np.ones((2, 3)))


def test_load_state_dict_strict_names_problems():
    model = build_net(nn, tg.tensor)
    state = build_net(nn, tg.tensor).state_dict()
    del state["blocks.1.ln.bias"]
    state["blocks.7.ln.bias"] = tg.zeros(4)
    state["heads.value.weight"] = tg.zeros(4, 1)
    before = to_numpy(model.embed.weight).copy()
    with pytest.raises(RuntimeError) as error:
        model.load_state_dict(state)
    message = str(error.value)
    assert "missing keys: blocks.1.ln.bias" in message
    assert "unexpected keys: blocks.7.ln.bias" in message
    assert "heads.value.weight: checkpoint (4, 1) vs model (1, 4)" in message
    np.testing.assert_array_equal(to_numpy(model.embed.weight), before)  # a failed load changes nothing
    with pytest.raises(RuntimeError, match="size mismatch for heads.value.weight"):
        model.load_state_dict(state, strict=False)  # shapes must match even when not strict
    state["heads.value.weight"] = tg.ones(1, 4)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["blocks.1.ln.bias"] and result.unexpected_keys == ["blocks.7.ln.bias"]
    np.testing.assert_array_equal(to_numpy(model.heads["value"].weight), np.ones((1, 4)))


# --- layers against torch.nn ------------------------------------------------------------------------------------------
def layer_pair(ours, theirs):
    """Copy our layer's parameters into the torch layer (same names, same dtype)."""
    with torch.no_grad():
        for name, p in ours.named_parameters():
            dict(theirs.named_parameters())[name].copy_(torch.tensor(to_numpy(p)))
    return ours, theirs


def check_layer(ours, theirs, x, dtype=np.float64):
    """Forward values, input gradient and parameter gradients under a random linear loss."""
    ours.to(str(np.dtype(dtype))), theirs.to(getattr(torch, str(np.dtype(dtype))))
    layer_pair(ours, theirs)
    floating = x.dtype.kind == "f"
    our_x = tg.tensor(x.astype(dtype) if floating else x, requires_grad=floating)
    their_x = torch.tensor(x.astype(dtype) if floating else x, requires_grad=floating)
    our_out, their_out = ours(our_x), theirs(their_x)
    assert_close(our_out, their_out, what="forward")
    weights = rng(7).standard_normal(tuple(their_out.shape)).astype(dtype)
    (our_out * tg.tensor(weights)).sum().backward()
    (their_out * torch.tensor(weights)).sum().backward()
    if floating:
        assert_close(our_x.grad, their_x.grad, what="input grad")
    their_params = dict(theirs.named_parameters())
    assert list(dict(ours.named_parameters())) == list(their_params)
    for name, p in ours.named_parameters():
        assert_close(p.grad, their_params[name].grad, what=f"grad of {name}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias, dtype):
    check_layer(nn.Linear(5, 3, bias=bias), torch.nn.Linear(5, 3, bias=bias), randn(2, 4, 5), dtype)


def test_linear_default_init_bound():
    layer = nn.Linear(400, 50)
    bound = 1 / 400 ** 0.5
    for p in (layer.weight, layer.bias):
        values = to_numpy(p)
        assert np.abs(values).max() <= bound and np.abs(values).max() > 0.9 * bound
    assert repr(layer) == "Linear(in_features=400, out_features=50, bias=True)"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_embedding_matches_torch(dtype):
    indices = np.array([[0, 3, 3, 9], [9, 9, 1, 0]])  # repeated indices: their gradients add up
    check_layer(nn.Embedding(10, 6), torch.nn.Embedding(10, 6), indices, dtype)


def test_embedding_out_of_range():
    with pytest.raises(IndexError, match="out of range"):
        nn.Embedding(5, 2)(tg.tensor(np.array([5])))


@pytest.mark.parametrize("options", [{}, {"bias": False}, {"elementwise_affine": False}, {"eps": 1e-3}], ids=str)
def test_layer_norm_matches_torch(options):
    ours, theirs = nn.LayerNorm(6, **options), torch.nn.LayerNorm(6, **options)
    for p in ours.parameters():  # not the default ones and zeros, so the affine part is tested
        with tg.no_grad():
            p.copy_(tg.tensor(randn(*p.shape, seed=5)))
    check_layer(ours, theirs, randn(3, 4, 6) * 3 + 1)
    check_layer(nn.LayerNorm(6, **options), torch.nn.LayerNorm(6, **options), randn(3, 4, 6), np.float32)


def test_layer_norm_over_two_dims_matches_torch():
    check_layer(nn.LayerNorm((4, 6)), torch.nn.LayerNorm((4, 6)), randn(2, 4, 6))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gelu_matches_torch(approximate, dtype):
    check_layer(nn.GELU(approximate), torch.nn.GELU(approximate), randn(3, 7) * 3, dtype)


def test_dropout_train_and_eval():
    p = 0.3
    layer = nn.Dropout(p)
    x = tg.tensor(np.ones((200, 100)), requires_grad=True)
    out = layer(x)
    values = to_numpy(out)
    kept = values != 0
    assert abs(kept.mean() - (1 - p)) < 0.01  # 20000 draws: the standard error is 0.003
    np.testing.assert_allclose(values[kept], 1 / (1 - p))
    out.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), values)  # gradient = mask / (1 - p)
    layer.eval()
    assert layer(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert not to_numpy(nn.Dropout(1.0)(x)).any()
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.5)(x)


def test_dropout_masks_differ_between_calls_and_follow_the_seed():
    layer = nn.Dropout(0.5)
    x = tg.ones(50, 50)
    tg.manual_seed(1)
    first, second = to_numpy(layer(x)), to_numpy(layer(x))
    assert (first != second).any()
    tg.manual_seed(1)
    np.testing.assert_array_equal(to_numpy(layer(x)), first)


# --- nn.init ----------------------------------------------------------------------------------------------------------
def test_init_normal_statistics():
    tensor = nn.Parameter(tg.empty(300, 200))
    version = tensor._version.value
    assert nn.init.normal_(tensor, mean=0.5, std=0.02) is tensor
    values = to_numpy(tensor)
    assert abs(values.mean() - 0.5) < 0.02 * 5 / np.sqrt(values.size)
    assert abs(values.std() - 0.02) < 0.02 * 0.02
    assert tensor.requires_grad and tensor.is_leaf and tensor.grad_fn is None
    assert tensor._version.value > version


def test_init_zeros_ones_constant():
    tensor = nn.Parameter(tg.randn(4, 5))
    nn.init.zeros_(tensor)
    np.testing.assert_array_equal(to_numpy(tensor), np.zeros((4, 5)))
    nn.init.ones_(tensor)
    np.testing.assert_array_equal(to_numpy(tensor), np.ones((4, 5)))
    nn.init.constant_(tensor, 0.25)
    np.testing.assert_array_equal(to_numpy(tensor), np.full((4, 5), 0.25))
    assert tensor.requires_grad and tensor.grad_fn is None


def test_init_uniform_and_xavier():
    tensor = tg.empty(300, 100)
    nn.init.uniform_(tensor, -2.0, 3.0)
    values = to_numpy(tensor)
    assert values.min() >= -2.0 and values.max() < 3.0 and abs(values.mean() - 0.5) < 0.05
    fan_in, fan_out = 100, 300
    bound = 1.5 * np.sqrt(6.0 / (fan_in + fan_out))
    nn.init.xavier_uniform_(tensor, gain=1.5)
    values = to_numpy(tensor)
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.99 * bound
    assert abs(values.std() - bound / np.sqrt(3)) < 0.02 * bound
    nn.init.xavier_normal_(tensor)
    assert abs(to_numpy(tensor).std() - np.sqrt(2.0 / (fan_in + fan_out))) < 0.01 * np.sqrt(2.0 / (fan_in + fan_out))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(tg.empty(5))
    receptive = tg.empty(8, 4, 3, 3)  # conv-shaped: fans include the receptive field
    nn.init.xavier_uniform_(receptive)
    assert np.abs(to_numpy(receptive)).max() <= np.sqrt(6.0 / (4 * 9 + 8 * 9))


def test_init_records_no_graph():
    weight = nn.Parameter(tg.empty(3, 3))
    nn.init.normal_(weight)
    loss = (weight * weight).sum()
    loss.backward()
    assert_close(weight.grad, 2 * to_numpy(weight))
