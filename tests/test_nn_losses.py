"""The losses (nn/loss_functions.py, nn/loss.py) against torch.nn.functional and torch.nn: values and gradients
for every reduction, class weights, ignore_index, label smoothing, spatial and unbatched shapes, second-order
gradients, and PyTorch's errors."""
import numpy as np
import pytest
import torch

import tinygrad_tx as tg
import tinygrad_tx.nn.functional as F
from conftest import TG, assert_close, compare, gradcheck, randn, rng, to_numpy
from tinygrad_tx import nn

REDUCTIONS = ["mean", "sum", "none"]


def grad_of(lib):
    return tg.autograd.grad if lib is TG else torch.autograd.grad


# --- mse_loss, l1_loss -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pointwise_losses(name, reduction, dtype):
    target = randn(3, 4, seed=1, dtype=dtype)
    target[0, 0] = randn(3, 4, dtype=dtype)[0, 0]  # equal entries: l1's gradient there is 0, as PyTorch's
    compare(lambda lib, x, t: getattr(lib.F, name)(x, t, reduction=reduction), randn(3, 4, dtype=dtype), target)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_pointwise_losses_with_weight(name, reduction):
    weight = rng(2).random((3, 4))
    compare(lambda lib, x, t, w: getattr(lib.F, name)(x, t, reduction=reduction, weight=w), randn(3, 4),
            randn(3, 4, seed=1), weight, requires_grad=[True, True, False])
    with pytest.raises(ValueError, match="same size"):
        getattr(F, name)(tg.ones(3, 4), tg.ones(3, 4), weight=tg.ones(4))


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_pointwise_losses_broadcast_with_torchs_warning(name):
    with pytest.warns(UserWarning, match="different to the input size"):
        compare(lambda lib, x, t: getattr(lib.F, name)(x, t), randn(3, 4), randn(3, 1, seed=1))


@pytest.mark.parametrize("size_average, reduce", [(None, False), (False, None), (True, True), (False, True)])
def test_legacy_size_average_and_reduce(size_average, reduce):
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        compare(lambda lib, x, t: lib.F.mse_loss(x, t, size_average=size_average, reduce=reduce), randn(3, 4),
                randn(3, 4, seed=1))
    with pytest.warns(UserWarning):
        assert nn.L1Loss(size_average=size_average, reduce=reduce).reduction == \
            torch.nn.L1Loss(size_average=size_average, reduce=reduce).reduction


def test_bad_reduction_and_dtype():
    for call in (lambda: F.mse_loss(tg.ones(2), tg.ones(2), reduction="avg"),
                 lambda: F.nll_loss(tg.ones(2, 3), tg.tensor([0, 1]), reduction="avg"),
                 lambda: nn.CrossEntropyLoss(reduction="elementwise")):
        with pytest.raises(ValueError, match="'avg'|'elementwise'"):
            call()
    with pytest.raises(RuntimeError, match="mse_loss: input must be floating point"):
        F.mse_loss(tg.tensor([1, 2]), tg.tensor([1, 2]))


# --- nll_loss -----------------------------------------------------------------------------------------------------
NLL_CASES = [  # (input shape, target shape)
    ((5, 4), (5,)), ((3, 4, 2), (3, 2)), ((2, 4, 3, 2), (2, 3, 2)), ((4,), ())]


def class_targets(shape, n_classes, seed=1, ignore=-100):
    target = rng(seed).integers(0, n_classes, size=shape)
    if target.ndim and target.size > 2:
        target.reshape(-1)[1] = ignore
    return target


@pytest.mark.parametrize("shapes", NLL_CASES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(shapes, reduction, weighted):
    input_shape, target_shape = shapes
    n_classes = input_shape[1] if len(input_shape) > 1 else input_shape[0]
    log_probs = np.log(rng(0).dirichlet(np.ones(n_classes), size=int(np.prod(input_shape)) // n_classes))
    log_probs = np.moveaxis(log_probs.reshape((input_shape[0],) + input_shape[2:] + (n_classes,)), -1, 1) \
        if len(input_shape) > 1 else log_probs.reshape(input_shape)
    weight = rng(3).random(n_classes) + 0.1
    compare(lambda lib, x, t, w: lib.F.nll_loss(x, t, weight=w if weighted else None, reduction=reduction),
            log_probs, class_targets(target_shape, n_classes), weight, requires_grad=[True, False, False])


def test_nll_loss_ignore_index_and_every_target_ignored():
    compare(lambda lib, x, t: lib.F.nll_loss(x, t, ignore_index=2), randn(5, 4), np.array([2, 0, 2, 3, 1]))
    # an ignored row may hold -inf (a log of zero): it must not turn the loss into NaN
    x = randn(3, 4)
    x[1, 0] = -np.inf
    compare(lambda lib, x, t: lib.F.nll_loss(x, t), x, np.array([1, -100, 3]))
    # every target ignored: 0 / 0 = NaN for 'mean', 0 for 'sum'
    compare(lambda lib, x, t: lib.F.nll_loss(x, t), randn(3, 4), np.array([-100] * 3), grad=False)
    compare(lambda lib, x, t: lib.F.nll_loss(x, t, reduction="sum"), randn(3, 4), np.array([-100] * 3))


def test_nll_loss_errors_are_torchs():
    cases = [  # (input, target, weight, our exception, message)
        (randn(3, 4), np.array([0, 1, 7]), None, IndexError, "Target 7 is out of bounds"),
        (randn(3, 4), np.array([0, -2, 1]), None, IndexError, "Target -2 is out of bounds"),
        (randn(3, 4), np.array([0, 1]), None, ValueError, r"batch_size \(3\) to match target batch_size \(2\)"),
        (randn(3, 4), np.array([0, 1, 2]), np.ones(3), RuntimeError, "for all 4 classes or no classes"),
        (randn(3, 4), np.array([0.0, 1.0, 2.0]), None, RuntimeError, "integer tensor of class indices"),
    ]
    for x, t, w, error, match in cases:
        with pytest.raises((error, RuntimeError)):
            torch.nn.functional.nll_loss(torch.tensor(x), torch.tensor(t),
                                         weight=None if w is None else torch.tensor(w))
        with pytest.raises(error, match=match):
            F.nll_loss(tg.tensor(x), tg.tensor(t), weight=None if w is None else tg.tensor(w))
    with pytest.raises(RuntimeError, match="weight is tinygrad_tx.float32"):
        F.nll_loss(tg.tensor(randn(3, 4)), tg.tensor([0, 1, 2]), weight=tg.ones(4))


# --- cross_entropy with class weights ------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes", NLL_CASES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
def test_cross_entropy_with_class_weights(shapes, reduction, label_smoothing):
    input_shape, target_shape = shapes
    n_classes = input_shape[1] if len(input_shape) > 1 else input_shape[0]
    compare(lambda lib, x, t, w: lib.F.cross_entropy(x, t, weight=w, reduction=reduction,
                                                     label_smoothing=label_smoothing),
            randn(*input_shape) * 2, class_targets(target_shape, n_classes), rng(3).random(n_classes) + 0.1,
            requires_grad=[True, False, False])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_probability_targets_with_class_weights(reduction, label_smoothing):
    compare(lambda lib, x, p, w: lib.F.cross_entropy(x, p.softmax(1), weight=w, reduction=reduction,
                                                     label_smoothing=label_smoothing),
            randn(3, 5, 2), randn(3, 5, 2, seed=1), rng(3).random(5), requires_grad=[True, True, False])


def test_cross_entropy_takes_torchs_positional_arguments():
    """weight is the third positional argument, as in torch (scripts pass F.cross_entropy(x, y, w))."""
    compare(lambda lib, x, t, w: lib.F.cross_entropy(x, t, w, None, 2), randn(4, 3), np.array([0, 2, 1, 2]),
            np.array([0.2, 1.0, 3.0]), requires_grad=[True, False, False])
    with pytest.raises(RuntimeError, match="for all 3 classes"):
        F.cross_entropy(tg.ones(2, 3), tg.tensor([0, 1]), tg.ones(2))


def test_cross_entropy_with_every_target_ignored_is_nan_as_torch():
    compare(lambda lib, x, t, w: lib.F.cross_entropy(x, t, w, label_smoothing=0.1), randn(3, 4),
            np.array([-100] * 3), rng(0).random(4), grad=False)


# --- binary_cross_entropy_with_logits -------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", ["plain", "weight", "pos_weight", "both"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_cross_entropy_with_logits(reduction, options, dtype):
    logits = (randn(4, 3, dtype=dtype) * 30).astype(dtype)  # large logits: must stay finite
    logits[0, 0] = 0  # the gradient at 0 is sigmoid(0) - y, with no kink
    targets = rng(1).random((4, 3)).astype(dtype)
    targets[1] = (targets[1] > 0.5)
    weight = (rng(2).random((4, 1)) if options in ("weight", "both") else np.ones((4, 1))).astype(dtype)
    pos_weight = (rng(3).random(3) * 3 if options in ("pos_weight", "both") else np.ones(3)).astype(dtype)

    def loss(lib, x, y, w, p):
        return lib.F.binary_cross_entropy_with_logits(x, y, weight=w if options in ("weight", "both") else None,
                                                      reduction=reduction,
                                                      pos_weight=p if options in ("pos_weight", "both") else None)
    compare(loss, logits, targets, weight, pos_weight, requires_grad=[True, True, False, False])


def test_binary_cross_entropy_with_logits_shape_error():
    with pytest.raises(ValueError, match=r"Target size \(\(3, 1\)\) must be the same as input size \(\(3, 4\)\)"):
        F.binary_cross_entropy_with_logits(tg.ones(3, 4), tg.ones(3, 1))


# --- second order ---------------------------------------------------------------------------------------------------
def test_losses_double_backward_matches_torch():
    def fn(lib, x, y, w):
        target = lib.t.tensor([0, 2, 1, 2])
        losses = (lib.F.cross_entropy(x, target, w, label_smoothing=0.1) + lib.F.mse_loss(x, y)
                  + lib.F.nll_loss(x.log_softmax(1), target, w) + lib.F.binary_cross_entropy_with_logits(x, y.sigmoid())
                  + lib.F.l1_loss(x, y))
        (gx,) = grad_of(lib)(losses, x, create_graph=True)
        return (gx * gx).sum()
    compare(fn, randn(4, 3), randn(4, 3, seed=1), rng(0).random(3) + 0.5, requires_grad=[True, True, False])


def test_losses_gradcheck():
    target, weight = tg.tensor([1, 0, 2]), tg.tensor(rng(0).random(4) + 0.1)
    gradcheck(lambda x: F.nll_loss(x, target, weight), randn(3, 4))
    gradcheck(lambda x: F.cross_entropy(x, target, weight, label_smoothing=0.3), randn(3, 4))
    gradcheck(lambda x, y: F.binary_cross_entropy_with_logits(x, y, pos_weight=weight), randn(3, 4),
              rng(1).random((3, 4)))
    gradcheck(lambda x, y: F.mse_loss(x, y), randn(3, 4), randn(3, 4, seed=1))


# --- the modules ------------------------------------------------------------------------------------------------------
MODULES = [
    ("CrossEntropyLoss", dict(), "classes"), ("CrossEntropyLoss", dict(label_smoothing=0.1, ignore_index=1), "classes"),
    ("CrossEntropyLoss", dict(weight="w", reduction="sum"), "classes"), ("NLLLoss", dict(weight="w"), "classes"),
    ("NLLLoss", dict(reduction="none", ignore_index=0), "classes"), ("MSELoss", dict(), "values"),
    ("L1Loss", dict(reduction="sum"), "values"), ("BCEWithLogitsLoss", dict(pos_weight="w"), "probabilities"),
    ("BCEWithLogitsLoss", dict(weight="w", reduction="none"), "probabilities"),
]


@pytest.mark.parametrize("name, options, target_kind", MODULES, ids=str)
def test_loss_modules_match_torch(name, options, target_kind):
    weight = rng(5).random(4) + 0.2
    targets = {"classes": np.array([0, 3, 1, 1, 2]), "values": randn(5, 4, seed=1),
               "probabilities": rng(1).random((5, 4))}[target_kind]

    def loss(lib, x, t, w):
        module = getattr(lib.t.nn, name)(**{k: (w if v == "w" else v) for k, v in options.items()})
        return module(x, t)
    compare(loss, randn(5, 4), targets, weight, requires_grad=[True, target_kind != "classes", False])


def test_loss_weights_are_buffers():
    loss = nn.CrossEntropyLoss(weight=tg.ones(3))
    assert list(loss.state_dict()) == list(torch.nn.CrossEntropyLoss(weight=torch.ones(3)).state_dict()) == ["weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    loss.double()
    assert loss.weight.dtype is tg.float64
    bce = nn.BCEWithLogitsLoss(pos_weight=tg.ones(3))
    assert list(bce.state_dict()) == ["pos_weight"] and not list(bce.parameters())
    assert repr(nn.MSELoss()) == "MSELoss()"
    value = nn.CrossEntropyLoss(reduction="sum")(tg.tensor(randn(2, 3)), tg.tensor([0, 2]))
    assert_close(value, torch.nn.CrossEntropyLoss(reduction="sum")(torch.tensor(randn(2, 3)), torch.tensor([0, 2])))
    assert to_numpy(value).shape == ()


def test_unbroadcastable_shapes_name_the_loss():
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match=r"mse_loss: shapes \(3, 4\) and \(3, 5\)"):
        F.mse_loss(tg.ones(3, 4), tg.ones(3, 5))
