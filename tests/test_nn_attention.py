"""nn.MultiheadAttention (nn/attention.py) against torch.nn.MultiheadAttention: with the torch module's state
dict loaded, the outputs, the attention weights and the gradients of the inputs and of every parameter must
agree, for every layout, mask kind and option; and the parameter names, initialization, errors are PyTorch's."""
import math

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from conftest import assert_close, randn, rng, to_numpy
from tinygrad_tx import nn

E, H, L, S, N = 8, 2, 5, 6, 3


@pytest.fixture(autouse=True)
def no_torch_fast_path():
    """PyTorch's inference fast path returns zeros at padded query positions; compare with its reference path."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    yield
    torch.backends.mha.set_fastpath_enabled(enabled)


def module_pair(dtype=np.float64, **options):
    theirs = torch.nn.MultiheadAttention(E, H, **options).to(getattr(torch, np.dtype(dtype).name))
    with torch.no_grad():  # non-zero biases, so every parameter's part is tested
        for name, p in theirs.named_parameters():
            p.copy_(torch.tensor(randn(*p.shape, seed=len(name)) * 0.3))
    ours = nn.MultiheadAttention(E, H, **options).to(np.dtype(dtype).name)
    ours.load_state_dict({name: tg.tensor(value.numpy()) for name, value in theirs.state_dict().items()})
    return ours, theirs


def run(module, lib, arrays, masks, call_options, same_tensor):
    inputs = [lib.tensor(a, requires_grad=True) for a in arrays]
    query, key, value = (inputs[0],) * 3 if same_tensor else inputs
    masks = {name: None if mask is None else lib.tensor(mask) for name, mask in masks.items()}
    output, weights = module(query, key, value, **masks, **call_options)
    loss = (output * lib.tensor(rng(7).standard_normal(tuple(output.shape)).astype(arrays[0].dtype))).sum()
    if weights is not None:
        loss = loss + (weights * lib.tensor(rng(8).standard_normal(tuple(weights.shape)).astype(arrays[0].dtype))).sum()
    loss.backward()
    return output, weights, [x.grad for x in inputs], dict(module.named_parameters())


def check(options=None, call_options=None, masks=None, batched=True, same_tensor=False, dtype=np.float64,
          key_dims=(E, E)):
    options, call_options, masks = options or {}, call_options or {}, masks or {}
    ours, theirs = module_pair(dtype, **options)
    batch_first = options.get("batch_first", False)
    def shape(length, dim):
        return ((N, length, dim) if batch_first else (length, N, dim)) if batched else (length, dim)
    arrays = [randn(*shape(L, E), dtype=dtype)] if same_tensor else \
        [randn(*shape(L, E), dtype=dtype), randn(*shape(S, key_dims[0]), seed=1, dtype=dtype),
         randn(*shape(S, key_dims[1]), seed=2, dtype=dtype)]
    our_out, our_weights, our_grads, our_params = run(ours, tg, arrays, masks, call_options, same_tensor)
    their_out, their_weights, their_grads, their_params = run(theirs, torch, arrays, masks, call_options, same_tensor)
    assert_close(our_out, their_out, what="output")
    assert (our_weights is None) == (their_weights is None)
    if our_weights is not None:
        assert_close(our_weights, their_weights, what="attention weights")
    for i, (ours_grad, theirs_grad) in enumerate(zip(our_grads, their_grads)):
        assert_close(ours_grad, theirs_grad, what=f"grad of input {i}")
    assert list(our_params) == list(their_params)
    for name, p in our_params.items():
        assert_close(p.grad, their_params[name].grad, what=f"grad of {name}")


def bool_causal(length=L, source=S):
    return np.triu(np.ones((length, source), bool), 1)  # True above the diagonal: may not attend


def key_padding(batched=True):
    mask = np.zeros((N, S), bool)
    mask[0, -2:] = mask[2, 3] = True  # no query loses every key (that row would be NaN, in PyTorch too)
    return mask if batched else mask[0]


def float_mask(shape):
    return rng(3).standard_normal(shape)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("same_tensor", [False, True], ids=["cross", "self"])
def test_no_mask(batch_first, need_weights, same_tensor):
    check(dict(batch_first=batch_first), dict(need_weights=need_weights), same_tensor=same_tensor)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("average_attn_weights", [True, False])
@pytest.mark.parametrize("mask_kind", ["bool 2d", "float 2d", "bool 3d", "float 3d"])
def test_attn_mask(need_weights, average_attn_weights, mask_kind):
    kind, dims = mask_kind.split()
    shape = (L, S) if dims == "2d" else (N * H, L, S)
    mask = np.broadcast_to(bool_causal(), shape).copy() if kind == "bool" else float_mask(shape)
    check(call_options=dict(need_weights=need_weights, average_attn_weights=average_attn_weights),
          masks=dict(attn_mask=mask))


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("with_attn_mask", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_key_padding_mask(need_weights, with_attn_mask, batch_first):
    masks = dict(key_padding_mask=key_padding(), attn_mask=bool_causal() if with_attn_mask else None)
    check(dict(batch_first=batch_first), dict(need_weights=need_weights), masks)


def test_float_key_padding_mask():
    check(masks=dict(key_padding_mask=float_mask((N, S)), attn_mask=float_mask((L, S))))


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("with_padding", [False, True])
def test_is_causal_hint(need_weights, with_padding):
    """Without weights and padding, torch's causal kernel replaces the mask; otherwise the mask is used."""
    masks = dict(attn_mask=bool_causal(L, L), key_padding_mask=None)
    if with_padding:
        masks["key_padding_mask"] = np.zeros((N, L), bool)
        masks["key_padding_mask"][1, -1] = True
    ours, theirs = module_pair()
    x = randn(L, N, E)
    outputs = []
    for module, lib in ((ours, tg), (theirs, torch)):
        t = lib.tensor(x)
        m = {k: None if v is None else lib.tensor(v) for k, v in masks.items()}
        outputs.append(module(t, t, t, need_weights=need_weights, is_causal=True, **m)[0])
    assert_close(outputs[0], outputs[1])
    with pytest.raises(RuntimeError, match="need attn_mask if specifying the is_causal hint"):
        ours(tg.tensor(x), tg.tensor(x), tg.tensor(x), is_causal=True)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("with_masks", [False, True])
def test_unbatched(need_weights, with_masks):
    masks = dict(key_padding_mask=key_padding(batched=False), attn_mask=bool_causal()) if with_masks else {}
    check(call_options=dict(need_weights=need_weights, average_attn_weights=False), masks=masks, batched=False)
    check(dict(batch_first=True), dict(need_weights=need_weights), masks, batched=False)


@pytest.mark.parametrize("options", [dict(bias=False), dict(add_bias_kv=True), dict(add_zero_attn=True),
                                     dict(add_bias_kv=True, add_zero_attn=True, batch_first=True)], ids=str)
@pytest.mark.parametrize("need_weights", [True, False])
def test_options(options, need_weights):
    check(options, dict(need_weights=need_weights), dict(key_padding_mask=key_padding(), attn_mask=bool_causal()))


@pytest.mark.parametrize("need_weights", [True, False])
def test_separate_key_and_value_dims(need_weights):
    check(dict(kdim=5, vdim=3), dict(need_weights=need_weights), dict(key_padding_mask=key_padding()),
          key_dims=(5, 3))


def test_float32():
    check(dict(batch_first=True), masks=dict(attn_mask=bool_causal()), dtype=np.float32)


def test_double_backward_matches_torch():
    results = []
    for lib, module in zip((tg, torch), module_pair()):
        x = lib.tensor(randn(L, N, E), requires_grad=True)
        # with the weights: PyTorch's fused attention kernel has no second derivative on the CPU
        output, weights = module(x, x, x, attn_mask=lib.tensor(bool_causal(L, L)))
        grad_fn = tg.autograd.grad if lib is tg else torch.autograd.grad
        (gx,) = grad_fn((output ** 2).sum() + (weights ** 2).sum(), x, create_graph=True)
        (gx * gx).sum().backward()
        results.append(x.grad)
    assert_close(results[0], results[1])


# --- parameters, loading, initialization --------------------------------------------------------------------------
@pytest.mark.parametrize("options", [{}, dict(bias=False), dict(kdim=5, vdim=3), dict(add_bias_kv=True)], ids=str)
def test_names_shapes_and_repr_are_torchs(options):
    ours, theirs = nn.MultiheadAttention(E, H, **options), torch.nn.MultiheadAttention(E, H, **options)
    assert [(name, tuple(p.shape)) for name, p in ours.named_parameters()] == \
        [(name, tuple(p.shape)) for name, p in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    for name in ("in_proj_weight", "q_proj_weight", "in_proj_bias", "bias_k"):
        assert (getattr(ours, name) is None) == (getattr(theirs, name) is None)


def test_a_torch_state_dict_loads_and_a_wrong_one_is_refused():
    ours, theirs = module_pair()
    np.testing.assert_array_equal(to_numpy(ours.out_proj.weight), theirs.out_proj.weight.detach().numpy())
    with pytest.raises(RuntimeError, match="missing keys: q_proj_weight"):
        nn.MultiheadAttention(E, H, kdim=5).load_state_dict(ours.state_dict())


def test_initialization_is_torchs():
    module = nn.MultiheadAttention(64, 4, add_bias_kv=True)
    bound = math.sqrt(6.0 / (64 + 3 * 64))  # xavier_uniform_ on the stacked (3E, E) matrix
    weights = to_numpy(module.in_proj_weight)
    assert np.abs(weights).max() <= bound and np.abs(weights).max() > 0.99 * bound
    assert not to_numpy(module.in_proj_bias).any() and not to_numpy(module.out_proj.bias).any()
    assert np.abs(to_numpy(module.out_proj.weight)).max() <= 1 / math.sqrt(64)
    assert 0 < np.abs(to_numpy(module.bias_k)).max() < 6 * math.sqrt(2.0 / (2 * 64))
    separate = nn.MultiheadAttention(64, 4, kdim=32)
    k_bound = math.sqrt(6.0 / (64 + 32))
    assert np.abs(to_numpy(separate.k_proj_weight)).max() <= k_bound


# --- dropout ------------------------------------------------------------------------------------------------------
def test_dropout_applies_only_in_training():
    module = nn.MultiheadAttention(E, H, dropout=0.5)
    x = tg.tensor(randn(L, N, E, dtype=np.float32))
    module.eval()
    first, weights = module(x, x, x)
    np.testing.assert_allclose(to_numpy(weights).sum(-1), 1.0, rtol=1e-6)  # no dropout: distributions (to rounding)
    np.testing.assert_array_equal(to_numpy(module(x, x, x)[0]), to_numpy(first))
    module.train()
    _, dropped = module(x, x, x, average_attn_weights=False)
    dropped = to_numpy(dropped)
    assert (dropped == 0).mean() > 0.3  # dropped weights are returned as PyTorch returns them
    kept = dropped[dropped > 0]
    assert kept.max() > 1 / L  # kept ones are scaled by 1 / (1 - p)
    assert not np.allclose(to_numpy(module(x, x, x, need_weights=False)[0]), to_numpy(first))


# --- errors -------------------------------------------------------------------------------------------------------
def test_construction_errors():
    with pytest.raises(AssertionError, match="divisible by num_heads"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="greater than 0"):
        nn.MultiheadAttention(0, 2)


@pytest.mark.parametrize("case", ["4d query", "2d key", "embed dim", "key value", "mask dtype", "mask shape",
                                  "3d mask shape", "padding shape", "padding dims"])
def test_input_errors_raise_where_torch_raises(case):
    def call(lib, module):
        x, kv = lib.tensor(randn(L, N, E)), lib.tensor(randn(S, N, E))
        if case == "4d query":
            return module(x.unsqueeze(0), kv, kv)
        if case == "2d key":
            return module(x, kv[0], kv)
        if case == "embed dim":
            y = lib.tensor(randn(L, N, E + 2))
            return module(y, lib.tensor(randn(S, N, E + 2)), lib.tensor(randn(S, N, E + 2)))
        if case == "key value":
            return module(x, kv, kv[:-1])
        if case == "mask dtype":
            return module(x, kv, kv, attn_mask=lib.tensor(np.zeros((L, S), dtype=np.int64)))
        if case == "mask shape":
            return module(x, kv, kv, attn_mask=lib.tensor(np.zeros((L, S + 1), dtype=bool)))
        if case == "3d mask shape":
            return module(x, kv, kv, attn_mask=lib.tensor(np.zeros((N, L, S), dtype=bool)))
        if case == "padding shape":
            return module(x, kv, kv, key_padding_mask=lib.tensor(np.zeros((N, S + 1), dtype=bool)))
        return module(x, kv, kv, key_padding_mask=lib.tensor(np.zeros((N, 1, S), dtype=bool)))
    ours, theirs = module_pair()
    with pytest.raises((AssertionError, RuntimeError)) as theirs_error:
        call(torch, theirs)
    with pytest.raises(theirs_error.type) as ours_error:
        call(tg, ours)
    assert "MultiheadAttention" in str(ours_error.value)
