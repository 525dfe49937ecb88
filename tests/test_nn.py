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


# --- activations, Flatten, Identity -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_silu_matches_torch(dtype):
    check_layer(nn.SiLU(), torch.nn.SiLU(), randn(3, 7) * 4, dtype)
    assert repr(nn.SiLU()) == "SiLU()" and repr(nn.SiLU(inplace=True)) == "SiLU(inplace=True)"


def test_silu_refuses_integers():
    with pytest.raises(RuntimeError, match="silu: input must be floating point"):
        nn.functional.silu(tg.tensor([1, 2]))


def test_silu_inplace_writes_the_input_and_keeps_the_gradient():
    results = []
    for lib in (tg, torch):
        leaf = lib.tensor(randn(2, 5), requires_grad=True)
        hidden = leaf * 2
        out = (nn if lib is tg else torch.nn).functional.silu(hidden, inplace=True)
        assert out is hidden
        (out * out).sum().backward()
        results.append((to_numpy(out), to_numpy(leaf.grad)))
    assert_close(results[0][0], results[1][0])
    assert_close(results[0][1], results[1][1])


@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_modules_match_torch(name, dim):
    check_layer(getattr(nn, name)(dim), getattr(torch.nn, name)(dim), randn(3, 4, 5) * 3)
    assert repr(getattr(nn, name)(dim)) == repr(getattr(torch.nn, name)(dim))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5), (2, 3, 4, 5)], ids=str)
def test_softmax_without_dim_warns_and_picks_torchs_dim(name, shape):
    x = randn(*shape)
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        ours = getattr(nn.functional, name)(tg.tensor(x))
    with pytest.warns(UserWarning):
        theirs = getattr(torch.nn.functional, name)(torch.tensor(x))
    assert_close(ours, theirs)
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        assert_close(getattr(nn, "Softmax" if name == "softmax" else "LogSoftmax")()(tg.tensor(x)), theirs)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_dtype_casts_first(name):
    x = randn(3, 4, dtype=np.float32) * 3
    ours = getattr(nn.functional, name)(tg.tensor(x, requires_grad=True), dim=1, dtype=tg.float64)
    theirs = getattr(torch.nn.functional, name)(torch.tensor(x, requires_grad=True), dim=1, dtype=torch.float64)
    assert ours.dtype is tg.float64
    assert_close(ours, theirs)


@pytest.mark.parametrize("start_dim, end_dim", [(1, -1), (0, -1), (1, 2), (2, 3), (-2, -1), (3, 3)])
def test_flatten_matches_torch(start_dim, end_dim):
    check_layer(nn.Flatten(start_dim, end_dim), torch.nn.Flatten(start_dim, end_dim), randn(2, 3, 4, 5))
    assert repr(nn.Flatten()) == repr(torch.nn.Flatten())


def test_identity_takes_and_ignores_arguments():
    layer = nn.Identity(54, unused_argument=0.1)
    x = tg.ones(2, 3)
    assert layer(x) is x and repr(layer) == "Identity()"


def test_functional_silu_and_one_hot():
    from conftest import compare
    compare(lambda lib, x: lib.F.silu(x), randn(4, 5) * 3)
    compare(lambda lib, t: lib.F.one_hot(t, 5), np.array([[0, 4], [2, 2]]), grad=False)
    compare(lambda lib, t: lib.F.one_hot(t), np.array([3, 1, 0]), grad=False)


# --- RMSNorm ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("normalized_shape", [6, (6,), (4, 6)], ids=str)
@pytest.mark.parametrize("options", [{}, {"eps": 1e-3}, {"elementwise_affine": False}], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rms_norm_matches_torch(normalized_shape, options, dtype):
    ours, theirs = nn.RMSNorm(normalized_shape, **options), torch.nn.RMSNorm(normalized_shape, **options)
    for p in ours.parameters():  # not the default ones, so the scale is tested
        with tg.no_grad():
            p.copy_(tg.tensor(randn(*p.shape, seed=5)))
    check_layer(ours, theirs, randn(3, 4, 6) * 3 + 1, dtype)
    assert repr(ours) == repr(theirs)
    assert [name for name, _ in ours.named_parameters()] == [name for name, _ in theirs.named_parameters()]


def test_rms_norm_default_eps_on_a_tiny_row_and_16_bit_input():
    """eps=None is the computing dtype's epsilon: it decides the value of a row of near-zeros. A float16 input is
    computed in float32 (PyTorch's CPU), so its eps is float32's."""
    tiny = np.full((2, 4), 1e-5)
    for dtype in (np.float64, np.float32):
        assert_close(nn.functional.rms_norm(tg.tensor(tiny.astype(dtype)), (4,)),
                     torch.nn.functional.rms_norm(torch.tensor(tiny.astype(dtype)), (4,)))
    x = randn(3, 8).astype(np.float16)
    ours = nn.functional.rms_norm(tg.tensor(x), (8,), tg.tensor(randn(8, seed=1).astype(np.float16)))
    theirs = torch.nn.functional.rms_norm(torch.tensor(x), (8,), torch.tensor(randn(8, seed=1).astype(np.float16)))
    assert ours.dtype is tg.float16
    assert_close(ours, theirs, rtol=1e-3, atol=1e-3)


def test_rms_norm_double_backward_and_errors():
    from conftest import compare
    def fn(lib, x, w):
        out = lib.F.rms_norm(x, (5,), w, eps=1e-6)
        (gx,) = (tg.autograd.grad if lib.name != "torch" else torch.autograd.grad)((out ** 3).sum(), x,
                                                                                   create_graph=True)
        return (gx * gx).sum()
    compare(fn, randn(3, 5), randn(5, seed=1))
    with pytest.raises(RuntimeError, match=r"rms_norm: input of shape \(3, 5\) does not end with"):
        nn.RMSNorm(4)(tg.ones(3, 5))
    with pytest.raises(RuntimeError, match="rms_norm: weight of shape"):
        nn.functional.rms_norm(tg.ones(3, 5), (5,), tg.ones(4))


# --- Embedding: padding_idx, max_norm, from_pretrained ------------------------------------------------------------------
@pytest.mark.parametrize("padding_idx", [0, 3, -1])
def test_embedding_padding_idx_matches_torch(padding_idx):
    ours, theirs = nn.Embedding(6, 4, padding_idx=padding_idx), torch.nn.Embedding(6, 4, padding_idx=padding_idx)
    assert ours.padding_idx == theirs.padding_idx and repr(ours) == repr(theirs)
    np.testing.assert_array_equal(to_numpy(ours.weight)[ours.padding_idx], np.zeros(4))  # starts at zero
    with tg.no_grad():  # a non-zero padding row: it is read as is, but gets no gradient
        ours.weight.copy_(tg.tensor(randn(6, 4)))
    indices = np.array([[0, 3, 5, 5], [3, 3, 1, 0]])
    check_layer(ours, theirs, indices)
    np.testing.assert_array_equal(to_numpy(ours.weight.grad)[ours.padding_idx], np.zeros(4))


def test_embedding_max_norm_renormalizes_rows_as_torch():
    table = randn(6, 3) * 3
    for norm_type in (2.0, 1.0):
        ours = nn.Embedding.from_pretrained(tg.tensor(table.copy()), freeze=False, max_norm=1.5, norm_type=norm_type)
        theirs = torch.nn.Embedding.from_pretrained(torch.tensor(table.copy()), freeze=False, max_norm=1.5,
                                                    norm_type=norm_type)
        check_layer(ours, theirs, np.array([[0, 2, 2], [5, 0, 1]]))
        assert_close(ours.weight, theirs.weight, what="the table after renormalizing rows 0, 1, 2, 5")


def test_embedding_from_pretrained():
    table = tg.tensor(randn(4, 3))
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad and frozen.weight.shape == (4, 3)
    np.testing.assert_array_equal(to_numpy(frozen(tg.tensor([2]))), to_numpy(table)[[2]])
    trainable = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=1)
    assert trainable.weight.requires_grad and to_numpy(trainable.weight)[1].any()  # a given table is not zeroed
    with pytest.raises(ValueError, match="2-dimensional"):
        nn.Embedding.from_pretrained(tg.ones(3))


def test_embedding_errors():
    with pytest.raises(ValueError, match="padding_idx must be within num_embeddings"):
        nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(ValueError, match="padding_idx must be within num_embeddings"):
        nn.Embedding(5, 2, padding_idx=-6)
    with pytest.raises(NotImplementedError, match="scale_grad_by_freq"):
        nn.Embedding(5, 2, scale_grad_by_freq=True)
    with pytest.raises(NotImplementedError, match="sparse"):
        nn.Embedding(5, 2, sparse=True)
    with pytest.raises(ValueError, match="does not match num_embeddings"):
        nn.Embedding(5, 2, _weight=tg.ones(5, 3))


# --- ParameterList, ParameterDict ---------------------------------------------------------------------------------------
def build_parameter_containers(lib_nn, lib):
    class Mixture(lib_nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = lib_nn.ParameterList([lib.ones(3), lib_nn.Parameter(lib.zeros(2))])
            self.scales.append(lib.full((4,), 2.0))
            self.gates = lib_nn.ParameterDict({"up": lib.ones(2, 2), "down": lib.zeros(2)})
            self.gates["mid"] = lib_nn.Parameter(lib.ones(1))

        def forward(self, x):
            return x * self.scales[-1].sum() + self.gates["up"].sum() + sum(p.sum() for p in self.scales)

    return Mixture()


def test_parameter_containers_register_as_torch():
    ours, theirs = build_parameter_containers(nn, tg), build_parameter_containers(torch.nn, torch)
    assert [name for name, _ in ours.named_parameters()] == [name for name, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in ours.scales)
    # (PyTorch's ParameterDict names the dtype by the old tensor type, FloatTensor)
    assert repr(ours) == repr(theirs).replace("torch.", "tinygrad_tx.").replace("FloatTensor", "float32")
    ours.load_state_dict({name: tg.tensor(value.numpy() + 1) for name, value in theirs.state_dict().items()})
    np.testing.assert_array_equal(to_numpy(ours.gates["down"]), np.ones(2))
    ours.double()
    assert all(p.dtype is tg.float64 for p in ours.parameters())
    out = ours(tg.ones(2, dtype=tg.float64))
    out.sum().backward()
    assert ours.scales[2].grad is not None and ours.gates["down"].grad is None


def test_parameter_list_behaves_as_a_list():
    plist = nn.ParameterList()
    plist += [tg.ones(1), tg.ones(2)]
    plist.extend([tg.ones(3)])
    assert len(plist) == 3 and [p.shape for p in plist] == [(1,), (2,), (3,)]
    assert plist[-1] is plist[2] and len(plist[1:]) == 2 and plist[1:][0] is plist[1]
    plist[0] = tg.zeros(5)
    assert isinstance(plist[0], nn.Parameter) and plist[0].shape == (5,)
    with pytest.raises(IndexError, match="out of range"):
        plist[3]
    with pytest.raises(TypeError, match="iterable"):
        plist.extend(tg.ones(2))
    with pytest.raises(RuntimeError, match="should not be called"):
        plist(tg.ones(1))


def test_parameter_dict_behaves_as_a_dict():
    pdict = nn.ParameterDict([("b", tg.ones(1)), ("a", tg.ones(2))])  # pairs keep their order
    assert list(pdict) == ["b", "a"] and "a" in pdict and len(pdict) == 2
    assert list(nn.ParameterDict({"b": tg.ones(1), "a": tg.ones(2)})) == ["a", "b"]  # a plain dict: sorted
    assert pdict.get("c") is None and pdict.setdefault("c", tg.ones(3)).shape == (3,)
    assert pdict.pop("b").shape == (1,) and list(pdict.keys()) == ["a", "c"]
    assert pdict.popitem()[0] == "c"
    merged = pdict | {"z": tg.ones(4)}
    assert list(merged) == ["a", "z"] and list(pdict) == ["a"]
    del pdict["a"]
    assert len(pdict) == 0 and list(pdict.parameters()) == []
    with pytest.raises(TypeError, match="keys must be strings"):
        pdict[1] = tg.ones(1)
    with pytest.raises(ValueError, match="element #0"):
        pdict.update([("x", tg.ones(1), 3)])


def test_parameter_containers_reach_the_optimizer():
    model = build_parameter_containers(nn, tg)
    optimizer = tg.optim.SGD(model.parameters(), lr=0.5)
    model(tg.ones(2)).sum().backward()
    optimizer.step()
    np.testing.assert_array_equal(to_numpy(model.scales[0]), np.full(3, 1 - 0.5 * 2))
