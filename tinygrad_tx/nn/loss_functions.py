"""The losses of torch.nn.functional besides the fused cross-entropy: mse_loss, l1_loss, nll_loss,
binary_cross_entropy_with_logits, and cross-entropy with class weights. Each is composed from differentiable
ops, so its gradient (and the gradient of its gradient) comes from theirs.

reduction: 'none' keeps one loss per element (or sample), 'sum' adds them, 'mean' averages them (a weighted
average where class weights apply). The old size_average and reduce flags still map onto it, as in PyTorch.
"""
import warnings

from .. import creation
from ..ops.dims import broadcast_shape
from ..tensor import stack, where

REDUCTIONS = ("none", "mean", "sum")


def reduction_from_legacy(op, size_average, reduce, reduction):
    """`reduction`, or what the deprecated size_average / reduce flags mean when either is given."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "mean" if size_average and reduce else "sum" if reduce else "none"
        warnings.warn(f"{op}: size_average and reduce args will be deprecated, please use reduction='{reduction}' "
                      "instead.", UserWarning, stacklevel=3)
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction (expected 'none', 'mean' or 'sum')")
    return reduction


def _reduced(losses, reduction):
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def _check_floating(op, **tensors):
    for name, t in tensors.items():
        if t is not None and not t.dtype.is_floating:
            raise RuntimeError(f"{op}: {name} must be floating point, got {t.dtype} of shape {tuple(t.shape)}")


def _elementwise_loss(op, error, input, target, size_average, reduce, reduction, weight):
    """error(input - target) per element, optionally weighted (a weighted mean divides by the weights' sum)."""
    reduction = reduction_from_legacy(op, size_average, reduce, reduction)
    _check_floating(op, input=input)
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"{op}: using a target size ({tuple(target.shape)}) that is different to the input size "
                      f"({tuple(input.shape)}). This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", UserWarning, stacklevel=3)
        broadcast_shape(op, input.shape, target.shape)
    losses = error(input - target)
    if weight is None:
        return _reduced(losses, reduction)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{op}: weights and input must have the same size, got weight {tuple(weight.shape)} and "
                         f"input {tuple(input.shape)}")
    losses = losses * weight
    return losses.sum() / weight.sum() if reduction == "mean" else _reduced(losses, reduction)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """(input - target)^2, broadcast (with a warning when the shapes differ, as PyTorch)."""
    return _elementwise_loss("mse_loss", lambda difference: difference * difference, input, target, size_average,
                             reduce, reduction, weight)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """|input - target|; its gradient at input == target is 0, as PyTorch's."""
    return _elementwise_loss("l1_loss", lambda difference: difference.abs(), input, target, size_average, reduce,
                             reduction, weight)


def check_class_weight(op, weight, input, n_classes):
    if weight is None:
        return
    if weight.ndim != 1 or weight.shape[0] != n_classes:
        raise RuntimeError(f"{op}: weight tensor should be defined either for all {n_classes} classes or no classes "
                           f"but got weight tensor of shape: {list(weight.shape)}")
    if weight.dtype is not input.dtype or weight.device != input.device:
        raise RuntimeError(f"{op}: weight is {weight.dtype} on {weight.device} but the input is {input.dtype} on "
                           f"{input.device}")


def _class_targets(op, input, target, ignore_index):
    """Check class-index targets against (N, C, d1, ...) scores: (valid mask, target with ignored entries at 0)."""
    if target.dtype.is_floating or target.dtype.name == "bool":
        raise RuntimeError(f"{op}: expected an integer tensor of class indices as target, got {target.dtype}")
    if target.shape[:1] != input.shape[:1]:
        raise ValueError(f"{op}: expected input batch_size ({input.shape[0]}) to match target batch_size "
                         f"({target.shape[0] if target.ndim else 'none: a 0-d target'}), input {tuple(input.shape)}, "
                         f"target {tuple(target.shape)}")
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise RuntimeError(f"{op}: target of shape {tuple(target.shape)} does not match input of shape "
                           f"{tuple(input.shape)} (expected target shape {expected})")
    valid = target != ignore_index
    checked = target.array[valid.array]
    n_classes = input.shape[1]
    if checked.size and (int(checked.min()) < 0 or int(checked.max()) >= n_classes):
        bad = int(checked.min()) if int(checked.min()) < 0 else int(checked.max())
        raise IndexError(f"{op}: Target {bad} is out of bounds: targets must be in [0, {n_classes}) or ignore_index "
                         f"({ignore_index})")
    return valid, target.masked_fill(~valid, 0)


def _target_weights(weight, safe_target, valid, like):
    """Each target's class weight (1 without weights), 0 where the target is ignored."""
    if weight is None:
        return valid.to(like.dtype)
    return where(valid, weight[safe_target], 0.0)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """-weight[t] * input[t] per sample, input being log-probabilities (N, C), (N, C, d1, ...) or (C,) and target
    class indices (N,), (N, d1, ...) or (). 'mean' divides by the sum of the weights of the targets not ignored
    (0 / 0 = NaN when every target is ignored, as PyTorch)."""
    reduction = reduction_from_legacy("nll_loss", size_average, reduce, reduction)
    _check_floating("nll_loss", input=input)
    if input.ndim == 0:
        raise ValueError("nll_loss: expected input of shape (C,), (N, C) or (N, C, d1, ...), got a 0-d tensor")
    if input.ndim == 1:  # one unbatched sample: a batch of one, and the batch dim dropped again for 'none'
        if target.ndim != 0:
            raise ValueError(f"nll_loss: an unbatched input of shape {tuple(input.shape)} takes a 0-d target, got "
                             f"shape {tuple(target.shape)}")
        losses = nll_loss(input.unsqueeze(0), target.unsqueeze(0), weight, None, ignore_index, None, reduction)
        return losses.squeeze(0) if reduction == "none" else losses
    check_class_weight("nll_loss", weight, input, input.shape[1])
    valid, safe_target = _class_targets("nll_loss", input, target, ignore_index)
    target_weights = _target_weights(weight, safe_target, valid, input)
    picked = input.gather(1, safe_target.unsqueeze(1)).squeeze(1)  # input[n, target[n, ...], ...]
    losses = -where(valid, picked, 0.0) * target_weights  # zeroed before the product: an ignored -inf gives no NaN
    if reduction == "mean":
        return _weighted_mean(losses, target_weights)
    return _reduced(losses, reduction)


def _weighted_mean(losses, weights):
    """sum(losses) / sum(weights); NaN when the weights sum to 0 (every target ignored), as PyTorch, without
    dividing 0 by 0."""
    total_weight = weights.sum()
    if float(total_weight.item()) == 0:
        return losses.sum() * float("nan")
    return losses.sum() / total_weight


def cross_entropy_with_class_weights(input, target, weight, ignore_index, reduction, label_smoothing):
    """PyTorch's weighted cross-entropy on (N, C, ...) logits and class indices: the NLL of log_softmax, and with
    label smoothing eps, (1 - eps) * that + eps / C * sum_c -weight[c] log p[c] (reduced by the same weights)."""
    check_class_weight("cross_entropy", weight, input, input.shape[1])
    log_probs = input.log_softmax(1)
    nll = nll_loss(log_probs, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0:
        return nll
    n_classes = input.shape[1]
    valid, safe_target = _class_targets("cross_entropy", input, target, ignore_index)
    class_weights = weight.reshape((n_classes,) + (1,) * (input.ndim - 2))  # broadcast over (C, d1, ...)
    smooth = where(valid, -(log_probs * class_weights).sum(1), 0.0)
    if reduction == "mean":
        smooth = _weighted_mean(smooth, _target_weights(weight, safe_target, valid, input))
    else:
        smooth = _reduced(smooth, reduction)
    return (1 - label_smoothing) * nll + smooth * (label_smoothing / n_classes)


def _log_sigmoid(x):
    """log(sigmoid(x)) = -log(1 + exp(-x)), as a logsumexp: stable for large |x|, and its gradient (sigmoid(-x))
    is right everywhere, x = 0 included."""
    return -stack([creation.zeros_like(x), -x]).logsumexp(0)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """-[pos_weight * y * log sigmoid(x) + (1 - y) * log(1 - sigmoid(x))] * weight, computed from the logits x
    without forming sigmoid(x). pos_weight scales the positive term per class (broadcast over the last dim)."""
    reduction = reduction_from_legacy("binary_cross_entropy_with_logits", size_average, reduce, reduction)
    _check_floating("binary_cross_entropy_with_logits", input=input, target=target)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"binary_cross_entropy_with_logits: Target size ({tuple(target.shape)}) must be the same as "
                         f"input size ({tuple(input.shape)})")
    log_sigmoid = _log_sigmoid(input)
    if pos_weight is not None:
        log_sigmoid = log_sigmoid * ((pos_weight - 1) * target + 1)
    losses = (1 - target) * input - log_sigmoid  # -log(1 - sigmoid(x)) = x - log sigmoid(x)
    if weight is not None:
        losses = losses * weight
    return _reduced(losses, reduction)
