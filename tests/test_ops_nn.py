"""The fused neural-network ops and nn.functional against PyTorch, their fast paths against their
`composed` definitions, and numerical gradient checks."""
import importlib
import inspect
import pkgutil

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
import tinygrad_tx.nn.functional as F
import tinygrad_tx.ops
from tinygrad_tx.ops.activation import Gelu
from tinygrad_tx.ops.attention import ScaledDotProductAttention
from tinygrad_tx.ops.cross_entropy import CrossEntropy
from tinygrad_tx.ops.fused import FusedFunction
from tinygrad_tx.ops.layer_norm import LayerNorm
from tinygrad_tx.ops.linear import Linear
from tinygrad_tx.ops.softmax import LogSoftmax, Softmax
from conftest import assert_close, compare, gradcheck, randn, rng


# --- softmax, log_softmax -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_log_softmax(name, dim, dtype, device):
    a = randn(3, 4, 5, dtype=dtype) * 2
    compare(lambda lib, x: getattr(lib.F, name)(x, dim=dim), a, device=device)
    compare(lambda lib, x: getattr(x, name)(dim), a, device=device)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_is_stable_for_large_logits(name, dtype):
    a = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4 - 1], [-1e4, -1e4, -1e4]], dtype=dtype)
    ours, _ = compare(lambda lib, x: getattr(lib.F, name)(x, dim=1), a)
    assert np.isfinite(ours[0].detach().numpy()).all()


# --- cross_entropy --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy(reduction, label_smoothing, dtype, device):
    logits, target = randn(6, 5, dtype=dtype) * 2, rng(1).integers(0, 5, size=6)
    compare(lambda lib, x, t: lib.F.cross_entropy(x, t, reduction=reduction, label_smoothing=label_smoothing),
            logits, target, device=device)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_ignore_index(reduction, label_smoothing):
    logits, target = randn(6, 4), np.array([0, -100, 3, 3, -100, 1])
    compare(lambda lib, x, t: lib.F.cross_entropy(x, t, reduction=reduction, label_smoothing=label_smoothing),
            logits, target)
    target = np.array([0, 2, 3, 3, 2, 1])
    compare(lambda lib, x, t: lib.F.cross_entropy(x, t, ignore_index=2, reduction=reduction,
                                                  label_smoothing=label_smoothing), logits, target)


def test_cross_entropy_every_target_ignored():
    # mean over no valid rows is 0/0 = NaN in PyTorch; sum is 0 and the gradient is 0
    logits, target = randn(3, 4), np.array([-100, -100, -100])
    compare(lambda lib, x, t: lib.F.cross_entropy(x, t), logits, target, grad=False)
    compare(lambda lib, x, t: lib.F.cross_entropy(x, t, reduction="sum"), logits, target)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(2, 4, 3), (2, 4, 3, 2)], ids=str)
def test_cross_entropy_spatial(reduction, shape):
    logits = randn(*shape)
    target = rng(1).integers(0, shape[1], size=(shape[0],) + shape[2:])
    target.reshape(-1)[1] = -100
    compare(lambda lib, x, t: lib.F.cross_entropy(x, t, reduction=reduction, label_smoothing=0.1), logits, target)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_cross_entropy_probability_targets(reduction, label_smoothing):
    logits = randn(4, 5)
    probs = rng(2).random((4, 5))
    probs /= probs.sum(1, keepdims=True)
    compare(lambda lib, x, p: lib.F.cross_entropy(x, p, reduction=reduction, label_smoothing=label_smoothing),
            logits, probs)
    spatial_logits, spatial_probs = randn(2, 3, 4), rng(3).random((2, 3, 4))
    compare(lambda lib, x, p: lib.F.cross_entropy(x, p, reduction=reduction, label_smoothing=label_smoothing),
            spatial_logits, spatial_probs)


def test_cross_entropy_unbatched():
    compare(lambda lib, x, t: lib.F.cross_entropy(x, t), randn(5), np.array(3))
    compare(lambda lib, x, t: lib.F.cross_entropy(x, t, reduction="none"), randn(5), np.array(3))
    probs = rng(1).random(5)
    compare(lambda lib, x, p: lib.F.cross_entropy(x, p, reduction="none"), randn(5), probs / probs.sum())


def test_cross_entropy_large_logits_are_stable():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]], dtype=np.float32)
    compare(lambda lib, x, t: lib.F.cross_entropy(x, t), logits, np.array([0, 2]))


# --- layer_norm, gelu, linear ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
@pytest.mark.parametrize("normalized_shape", [(5,), (4, 5)], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layer_norm(affine, normalized_shape, dtype, device):
    x = randn(3, 4, 5, dtype=dtype) * 3 + 1
    w = randn(*normalized_shape, dtype=dtype, seed=2)
    b = randn(*normalized_shape, dtype=dtype, seed=3)

    def fn(lib, x, w, b):
        return lib.F.layer_norm(x, normalized_shape, w if affine in ("both", "weight") else None,
                                b if affine in ("both", "bias") else None, eps=1e-5)
    compare(fn, x, w, b, device=device)


def test_layer_norm_eps_and_constant_rows():
    x = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]])
    compare(lambda lib, x: lib.F.layer_norm(x, (3,), eps=1e-2), x)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_functional_gelu(approximate):
    compare(lambda lib, x: lib.F.gelu(x, approximate=approximate), randn(3, 7) * 3)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("in_shape", [(3, 4), (2, 3, 4), (4,)], ids=str)
def test_linear(bias, in_shape):
    x, w, b = randn(*in_shape, seed=1), randn(5, 4, seed=2), randn(5, seed=3)
    compare(lambda lib, x, w, b: lib.F.linear(x, w, b if bias else None), x, w, b)


def test_activations_in_functional():
    a = randn(3, 4)
    compare(lambda lib, x: lib.F.relu(x) + lib.F.sigmoid(x) + lib.F.tanh(x), a)


# --- dropout ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p):
    tg.manual_seed(0)
    x = tg.ones(200, 200)
    out = F.dropout(x, p, training=True).numpy()
    kept = out != 0
    assert abs(kept.mean() - (1 - p)) < 0.01  # 40,000 draws: the standard error is under 0.0025
    np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(out.mean() - 1) < 0.05  # the scaling keeps the expectation


def test_dropout_eval_and_p0_are_identity():
    x = tg.tensor(randn(3, 4))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0, training=True) is x
    assert (F.dropout(x, 1.0).numpy() == 0).all()


def test_dropout_gradient_equals_the_mask():
    tg.manual_seed(3)
    x = tg.tensor(randn(50, 40) + 5, requires_grad=True)  # no zeros, so out / x recovers the mask
    out = F.dropout(x, 0.3)
    out.sum().backward()
    mask = out.detach().numpy() / x.detach().numpy()
    assert set(np.round(np.unique(mask), 6)) == {0.0, round(1 / 0.7, 6)}
    np.testing.assert_allclose(x.grad.numpy(), mask, rtol=1e-12)


def test_dropout_is_reproducible_with_manual_seed():
    x = tg.ones(10, 10)
    tg.manual_seed(5)
    first = F.dropout(x, 0.5).numpy()
    tg.manual_seed(5)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), first)
    assert not (F.dropout(x, 0.5).numpy() == first).all()


def test_dropout_rejects_bad_probability():
    with pytest.raises(ValueError, match="dropout"):
        F.dropout(tg.ones(3), 1.5)


# --- scaled_dot_product_attention ------------------------------------------------------------------------------------
def _qkv(batch=(2,), length=3, source=5, embed=4, value_embed=3, dtype=np.float64):
    return (randn(*batch, length, embed, dtype=dtype, seed=1), randn(*batch, source, embed, dtype=dtype, seed=2),
            randn(*batch, source, value_embed, dtype=dtype, seed=3))


@pytest.mark.parametrize("batch", [(), (2,), (2, 3)], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sdpa_no_mask(batch, dtype, device):
    compare(lambda lib, q, k, v: lib.F.scaled_dot_product_attention(q, k, v), *_qkv(batch, dtype=dtype),
            device=device)


def test_sdpa_scale():
    compare(lambda lib, q, k, v: lib.F.scaled_dot_product_attention(q, k, v, scale=0.3), *_qkv())


@pytest.mark.parametrize("mask_shape", [(3, 5), (2, 3, 5), (1, 5)], ids=str)
def test_sdpa_bool_mask(mask_shape):
    mask = rng(4).random(mask_shape) > 0.4
    mask[..., 0] = True  # every row can attend to something
    compare(lambda lib, q, k, v, m: lib.F.scaled_dot_product_attention(q, k, v, attn_mask=m), *_qkv(), mask)


def test_sdpa_float_mask():
    mask = randn(3, 5, seed=9)
    mask[1, 2] = -np.inf
    compare(lambda lib, q, k, v, m: lib.F.scaled_dot_product_attention(q, k, v, attn_mask=m), *_qkv(), mask,
            requires_grad=[True, True, True, False])


@pytest.mark.parametrize("mask_shape", [(3, 5), (2, 3, 5), (1, 5), (2, 1, 1)], ids=str)
def test_sdpa_float_mask_gradient(mask_shape):
    # an additive mask is an input like any other: its gradient is that of the scores
    mask = randn(*mask_shape, seed=9)
    compare(lambda lib, q, k, v, m: lib.F.scaled_dot_product_attention(q, k, v, attn_mask=m), *_qkv(), mask)


@pytest.mark.parametrize("length, source", [(4, 4), (3, 5), (5, 3)], ids=str)
def test_sdpa_is_causal(length, source):
    compare(lambda lib, q, k, v: lib.F.scaled_dot_product_attention(q, k, v, is_causal=True),
            *_qkv((2, 2), length, source))


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_sdpa_fully_masked_rows_give_zeros_not_nan(kind):
    bool_mask = rng(5).random((2, 3, 5)) > 0.3
    bool_mask[..., 0] = True
    bool_mask[0, 1] = False  # a row that may attend to nothing
    bool_mask[1, 2] = False
    mask = bool_mask if kind == "bool" else np.where(bool_mask, 0.0, -np.inf)
    ours, theirs = compare(lambda lib, q, k, v, m: lib.F.scaled_dot_product_attention(q, k, v, attn_mask=m),
                           *_qkv(), mask, requires_grad=[True, True, True, False])
    assert np.isfinite(ours[0].detach().numpy()).all()
    assert (ours[0].detach().numpy()[0, 1] == 0).all()


def test_sdpa_fully_masked_rows_composed_gradient_is_finite():
    # the composed definition (used for double backward) must not produce NaN either
    mask = np.ones((3, 5), dtype=bool)
    mask[1] = False
    q, k, v = (tg.tensor(a, requires_grad=True) for a in _qkv())
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=tg.tensor(mask))
    (gq,) = tg.autograd.grad((out * out).sum(), q, create_graph=True)
    assert np.isfinite(gq.detach().numpy()).all()
    gq.sum().backward()
    for t in (q, k, v):
        assert np.isfinite(t.grad.numpy()).all()


def test_sdpa_dropout_scales_kept_probabilities():
    q, k, v = (tg.tensor(a) for a in _qkv(batch=(64,), length=8, source=8))
    tg.manual_seed(0)
    dropped = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy()
    plain = F.scaled_dot_product_attention(q, k, v).numpy()
    assert not np.allclose(dropped, plain)
    np.testing.assert_allclose(dropped.mean(), plain.mean(), atol=0.05)  # inverted dropout keeps the expectation


# --- fast paths against their composed definitions ----------------------------------------------------------------
def _attention_case(mask_kind):
    q, k, v = (tg.tensor(a, requires_grad=True) for a in _qkv())
    mask = None
    if mask_kind == "bool":
        m = rng(6).random((3, 5)) > 0.4
        m[1] = False
        mask = tg.tensor(m)
    elif mask_kind == "float":
        mask = tg.tensor(randn(3, 5, seed=7))
    keep = None
    if mask_kind == "dropout":
        keep = tg.tensor((rng(8).random((2, 3, 5)) > 0.3) / 0.7)
    return ScaledDotProductAttention, (q, k, v, mask, keep, 0.5)


def _cross_entropy_case(reduction, smoothing):
    logits = tg.tensor(randn(5, 4) * 2, requires_grad=True)
    return CrossEntropy, (logits, tg.tensor([0, 3, -100, 1, 1]), -100, reduction, smoothing)


FUSED_CASES = {
    "softmax": lambda: (Softmax, (tg.tensor(randn(3, 4), requires_grad=True), 1)),
    "softmax_dim0": lambda: (Softmax, (tg.tensor(randn(3, 4), requires_grad=True), 0)),
    "log_softmax": lambda: (LogSoftmax, (tg.tensor(randn(3, 4), requires_grad=True), 1)),
    "gelu": lambda: (Gelu, (tg.tensor(randn(3, 4) * 2, requires_grad=True), "none")),
    "gelu_tanh": lambda: (Gelu, (tg.tensor(randn(3, 4) * 2, requires_grad=True), "tanh")),
    "layer_norm": lambda: (LayerNorm, (tg.tensor(randn(3, 4), requires_grad=True),
                                       tg.tensor(randn(4, seed=1), requires_grad=True),
                                       tg.tensor(randn(4, seed=2), requires_grad=True), 1, 1e-5)),
    "layer_norm_2d_no_affine": lambda: (LayerNorm, (tg.tensor(randn(2, 3, 4), requires_grad=True), None, None,
                                                    2, 1e-5)),
    "cross_entropy_mean": lambda: _cross_entropy_case("mean", 0.0),
    "cross_entropy_sum_smooth": lambda: _cross_entropy_case("sum", 0.1),
    "cross_entropy_none": lambda: _cross_entropy_case("none", 0.3),
    "linear": lambda: (Linear, (tg.tensor(randn(2, 3, 4), requires_grad=True),
                                tg.tensor(randn(5, 4, seed=1), requires_grad=True),
                                tg.tensor(randn(5, seed=2), requires_grad=True))),
    "linear_no_bias": lambda: (Linear, (tg.tensor(randn(3, 4), requires_grad=True),
                                        tg.tensor(randn(5, 4, seed=1), requires_grad=True), None)),
    "attention": lambda: _attention_case(None),
    "attention_bool_mask": lambda: _attention_case("bool"),
    "attention_float_mask": lambda: _attention_case("float"),
    "attention_dropout": lambda: _attention_case("dropout"),
}


def test_every_fused_op_has_a_fast_path_case():
    fused = set()
    for info in pkgutil.iter_modules(tinygrad_tx.ops.__path__):
        module = importlib.import_module(f"tinygrad_tx.ops.{info.name}")
        fused |= {cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, FusedFunction) and cls is not FusedFunction}
    covered = {FUSED_CASES[name]()[0] for name in FUSED_CASES}
    assert not fused - covered, f"fused ops without a fast-path case: {sorted(c.__name__ for c in fused - covered)}"


def _grads_of(output, inputs):
    weights = tg.tensor(rng(11).standard_normal(output.shape))
    return tg.autograd.grad((output * weights).sum(), inputs, allow_unused=True)


@pytest.mark.parametrize("case", FUSED_CASES)
def test_fused_fast_path_matches_composed(case):
    function, args = FUSED_CASES[case]()
    inputs = [a for a in args if isinstance(a, tg.Tensor) and a.requires_grad]
    fast = function.apply(*args)
    fast_grads = _grads_of(fast, inputs)  # no create_graph: the hand-written backward_arrays runs
    with tg.enable_grad():
        composed = function.composed(None, *args)
    composed_grads = _grads_of(composed, inputs)
    assert_close(fast, composed, what="forward")
    for i, (ours, reference) in enumerate(zip(fast_grads, composed_grads)):
        assert_close(ours, reference, what=f"grad of input {i}")


@pytest.mark.parametrize("case", FUSED_CASES)
def test_fused_gradcheck(case):
    function, args = FUSED_CASES[case]()
    positions = [i for i, a in enumerate(args) if isinstance(a, tg.Tensor) and a.requires_grad]

    def fn(*inputs):
        full = list(args)
        for i, t in zip(positions, inputs):
            full[i] = t
        return function.apply(*full)
    inputs = [args[i].detach().requires_grad_() for i in positions]
    assert tg.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("case", FUSED_CASES)
def test_fused_double_backward_gradcheck(case):
    # with create_graph=True the engine differentiates `composed`: the gradient itself must be right
    function, args = FUSED_CASES[case]()
    positions = [i for i, a in enumerate(args) if isinstance(a, tg.Tensor) and a.requires_grad]

    def first_grad(*inputs):
        full = list(args)
        for i, t in zip(positions, inputs):
            full[i] = t
        out = function.apply(*full)
        weights = tg.tensor(rng(12).standard_normal(out.shape))
        (g,) = tg.autograd.grad((out * weights).sum(), inputs[0], create_graph=True)
        return g
    inputs = [args[i].detach().requires_grad_() for i in positions]
    assert tg.autograd.gradcheck(first_grad, inputs, atol=1e-5, rtol=1e-3)


def test_functional_double_backward_matches_torch():
    def fn(lib, x, w, b, t):
        h = lib.F.layer_norm(x, (4,), w, b)
        h = lib.F.gelu(h) + lib.F.softmax(h, dim=-1) + lib.F.log_softmax(h, dim=0)
        loss = lib.F.cross_entropy(h, t, label_smoothing=0.1)
        (gx,) = (tg.autograd.grad if lib.name != "torch" else torch.autograd.grad)(loss, x, create_graph=True)
        return (gx * gx).sum()
    compare(fn, randn(3, 4), randn(4, seed=1), randn(4, seed=2), np.array([0, 3, 1]))


def test_sdpa_double_backward_matches_torch():
    def fn(lib, q, k, v):
        out = lib.F.scaled_dot_product_attention(q, k, v, is_causal=True)
        grads = (tg.autograd.grad if lib.name != "torch" else torch.autograd.grad)(
            (out ** 2).sum(), (q, k, v), create_graph=True)
        return sum((g * g).sum() for g in grads)
    compare(fn, *_qkv((2,), 4, 4))


def test_functional_gradcheck():
    t = tg.tensor([1, 0, 2])
    gradcheck(lambda x: F.cross_entropy(x, t, label_smoothing=0.2), randn(3, 4))
    gradcheck(lambda x, p: F.cross_entropy(x, p.softmax(1)), randn(3, 4), randn(3, 4, seed=1))
    gradcheck(lambda x, w, b: F.linear(x, w, b), randn(2, 3), randn(4, 3, seed=1), randn(4, seed=2))
    gradcheck(lambda x, w: F.layer_norm(x, (3,), w), randn(2, 3), randn(3, seed=1))
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), *_qkv((1,), 3, 3))
