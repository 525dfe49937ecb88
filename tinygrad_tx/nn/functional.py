"""Functional forms of the layers, with PyTorch's names and arguments."""
import math
import warnings

from ..amp.autocast_mode import cast_to_float32, cast_to_half
from ..creation import one_hot  # noqa: F401 (a functional name too, as torch.nn.functional.one_hot)
from ..dtype import bfloat16, bool_, finfo, float16, float32
from ..ops.attention import ScaledDotProductAttention
from ..ops.cross_entropy import CrossEntropy
from ..ops.dims import broadcast_shape
from ..ops.layer_norm import LayerNorm
from ..ops.regenerated_dropout import RegeneratedDropout
from ..ops.linear import Linear
from ..tensor import Tensor, where
from .loss_functions import (binary_cross_entropy_with_logits, check_class_weight,  # noqa: F401 (functional names)
                             cross_entropy_with_class_weights, l1_loss, mse_loss, nll_loss, reduction_from_legacy)
from .padding import pad  # noqa: F401 (a functional name)


def relu(x):
    return x.relu()


def gelu(x, approximate="none"):
    return x.gelu(approximate)


def sigmoid(x):
    return x.sigmoid()


def tanh(x):
    return x.tanh()


def silu(x, inplace=False):
    """x * sigmoid(x) (the swish)."""
    if not x.dtype.is_floating:
        raise RuntimeError(f"silu: input must be floating point, got {x.dtype}")
    if inplace:
        return x._inplace_op("silu_", lambda t: t * t.sigmoid())
    return x * x.sigmoid()


def _implicit_softmax_dim(op, ndim, stacklevel):
    warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call to include dim=X as an "
                  "argument.", UserWarning, stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1  # PyTorch's old guess: (C,), (C, H, W) -> 0; (N, C, ...) -> 1


def softmax(x, dim=None, _stacklevel=3, dtype=None):
    """exp(x) / sum(exp(x)) along dim; dtype: cast x to it first (e.g. float32 logits of a float16 model)."""
    if dim is None:
        dim = _implicit_softmax_dim("softmax", x.ndim, _stacklevel)
    return (x if dtype is None else x.to(dtype)).softmax(dim)


def log_softmax(x, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _implicit_softmax_dim("log_softmax", x.ndim, _stacklevel)
    return (x if dtype is None else x.to(dtype)).log_softmax(dim)


def linear(x, weight, bias=None):
    """x @ weight.T + bias, weight of shape (out_features, in_features)."""
    x, weight, bias = cast_to_half(x, weight, bias)  # autocast: half-precision product, float32 master weights
    if x.shape[-1] != weight.shape[-1]:
        raise RuntimeError(f"linear: input of shape {tuple(x.shape)} does not match weight of shape "
                           f"{tuple(weight.shape)} (expected last dim {weight.shape[-1]})")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.dtype is not x.dtype or t.device != x.device):
            raise RuntimeError(f"linear: {name} is {t.dtype} on {t.device} but the input is {x.dtype} on {x.device}")
    if x.ndim == 0 or weight.ndim != 2 or (bias is not None and bias.shape != (weight.shape[0],)):
        raise RuntimeError("linear: expected input (..., in), weight (out, in) and bias (out,), got input "
                           f"{tuple(x.shape)}, weight {tuple(weight.shape)}, bias "
                           f"{None if bias is None else tuple(bias.shape)}")
    return Linear.apply(x, weight, bias)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of weight picked by integer indices: (..., ) -> (..., embedding_dim).

    padding_idx: that row is read as any other, but no gradient flows into it. max_norm: each row looked up is
    first rescaled in place (without a gradient) to norm max_norm if its norm_type-norm exceeds it, as PyTorch.
    """
    if input.dtype.is_floating:
        raise RuntimeError(f"embedding: indices must be an integer tensor, got {input.dtype}")
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse gradients are not supported")
    if input.numel() and (int(input.array.min()) < 0 or int(input.array.max()) >= weight.shape[0]):
        raise IndexError(f"embedding: index out of range: indices span [{int(input.array.min())}, "
                         f"{int(input.array.max())}] for a table of {weight.shape[0]} rows")
    if padding_idx is not None:
        padding_idx = _embedding_padding_index(padding_idx, weight.shape[0])
    if max_norm is not None:
        _renormalize_rows(weight, input.reshape(-1), max_norm, norm_type)
    rows = weight[input]
    if padding_idx is None:
        return rows
    # the padding row's value, read from a detached copy: the same value, no gradient
    return where((input == padding_idx).unsqueeze(-1), rows.detach(), rows)


def _embedding_padding_index(padding_idx, num_embeddings):
    """padding_idx in [-num_embeddings, num_embeddings), counted from the end when negative."""
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"embedding: padding_idx must be within num_embeddings ({num_embeddings}), got "
                         f"{padding_idx}")
    return padding_idx + num_embeddings if padding_idx < 0 else padding_idx


def _renormalize_rows(weight, indices, max_norm, norm_type):
    """PyTorch's embedding_renorm_: rows whose norm exceeds max_norm are scaled to max_norm / (norm + 1e-7)."""
    from ..autograd import no_grad
    with no_grad():
        rows = weight[indices]
        norms = rows.norm(norm_type, dim=1, keepdim=True)
        scales = where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight[indices] = rows * scales  # a repeated index writes the same row twice


def dropout(x, p=0.5, training=True):
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: probability must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    return x * _keep_mask(x.shape, p, x)


def _keep_mask(shape, p, like):
    """0 where dropped, 1/(1-p) where kept: scaling at train time keeps eval a no-op."""
    keep = like.backend.rand(shape, like.dtype) >= p
    return Tensor._make(keep.astype(like.array.dtype) * (1 / (1 - p)), like.device)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    x, weight, bias = cast_to_float32("layer_norm", x, weight, bias)  # autocast on a GPU: float32 statistics
    if tuple(x.shape[x.ndim - len(normalized_shape):]) != normalized_shape:
        raise RuntimeError(f"layer_norm: input of shape {tuple(x.shape)} does not end with normalized_shape "
                           f"{normalized_shape}")
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and tuple(param.shape) != normalized_shape:
            raise RuntimeError(f"layer_norm: {name} of shape {tuple(param.shape)} does not match normalized_shape "
                               f"{normalized_shape}")
        mixed = x.dtype in (float16, bfloat16) and param is not None and param.dtype is float32
        if param is not None and ((param.dtype is not x.dtype and not mixed) or param.device != x.device):
            raise RuntimeError(f"layer_norm: {name} is {param.dtype} on {param.device} but the input is "
                               f"{x.dtype} on {x.device}")
    if x.dtype in (float16, bfloat16) and float32 in (getattr(weight, "dtype", None), getattr(bias, "dtype", None)):
        # a 16-bit input with float32 parameters (PyTorch's CPU takes the mix): normalized in float32, returned
        # in the input's dtype
        return LayerNorm.apply(x.float(), weight, bias, len(normalized_shape), eps).to(x.dtype)
    return LayerNorm.apply(x, weight, bias, len(normalized_shape), eps)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2) + eps) * weight, the mean over the trailing normalized_shape dims (Zhang & Sennrich,
    2019). eps defaults to the machine epsilon of the computing dtype; 16-bit inputs are computed in float32, as
    PyTorch."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(normalized_shape):]) != normalized_shape or \
            len(normalized_shape) > input.ndim:
        raise RuntimeError(f"rms_norm: input of shape {tuple(input.shape)} does not end with normalized_shape "
                           f"{normalized_shape}")
    if weight is not None and tuple(weight.shape) != normalized_shape:
        raise RuntimeError(f"rms_norm: weight of shape {tuple(weight.shape)} does not match normalized_shape "
                           f"{normalized_shape}")
    if not input.dtype.is_floating:
        raise RuntimeError(f"rms_norm: input must be floating point, got {input.dtype}")
    computed = input.float() if input.dtype in (float16, bfloat16) else input
    if eps is None:
        eps = finfo(computed.dtype).eps
    dims = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    result = (computed * ((computed * computed).mean(dims, keepdim=True) + eps).rsqrt()).to(input.dtype)
    return result if weight is None else result * weight


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """Cross-entropy between logits (N, C) or (N, C, d1, ...) and class indices (N,) or (N, d1, ...),
    or class probabilities of the same shape as the logits. weight: one per class (C,)."""
    reduction = reduction_from_legacy("cross_entropy", size_average, reduce, reduction)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if not input.dtype.is_floating:
        raise RuntimeError(f"cross_entropy: logits must be floating point, got {input.dtype}")
    (input,) = cast_to_float32("cross_entropy", input)  # autocast: the logsumexp over the classes in float32
    if input.ndim == 1:  # one unbatched sample: a batch of one, and the batch dim dropped again for 'none'
        losses = cross_entropy(input.unsqueeze(0), target.unsqueeze(0), weight, ignore_index=ignore_index,
                               reduction=reduction, label_smoothing=label_smoothing)
        return losses.squeeze(0)._not_a_view() if reduction == "none" else losses
    n_classes = input.shape[1]
    if target.dtype.is_floating:
        return _cross_entropy_with_probabilities(input, target, weight, reduction, label_smoothing)
    if weight is not None:  # composed: the fused op has no class weights
        return cross_entropy_with_class_weights(input, target, weight, ignore_index, reduction, label_smoothing)
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise RuntimeError(f"cross_entropy: target of shape {tuple(target.shape)} does not match logits of shape "
                           f"{tuple(input.shape)} (expected target shape {expected})")
    if input.ndim > 2:  # (N, C, d1, ...) -> (N * d1 * ..., C)
        input = input.permute(0, *range(2, input.ndim), 1).reshape(-1, n_classes)
    flat_target = target.reshape(-1)
    valid = flat_target.array[flat_target.array != ignore_index]
    if valid.size and (int(valid.min()) < 0 or int(valid.max()) >= n_classes):
        raise IndexError(f"cross_entropy: target values must be in [0, {n_classes}) or ignore_index "
                         f"({ignore_index}), got values in [{int(valid.min())}, {int(valid.max())}]")
    losses = CrossEntropy.apply(input, flat_target, ignore_index, reduction, label_smoothing)
    return losses.reshape(target.shape)._not_a_view() if reduction == "none" else losses


def _cross_entropy_with_probabilities(input, target, weight, reduction, label_smoothing):
    if target.shape != input.shape:
        raise RuntimeError(f"cross_entropy: probability targets must have the logits' shape {tuple(input.shape)}, "
                           f"got {tuple(target.shape)}")
    n_classes = input.shape[1]
    target = target * (1 - label_smoothing) + label_smoothing / n_classes
    if weight is not None:  # each class's term scaled by its weight; 'mean' still averages over the samples
        check_class_weight("cross_entropy", weight, input, n_classes)
        target = target * weight.reshape((n_classes,) + (1,) * (input.ndim - 2))
    losses = -(input.log_softmax(1) * target).sum(1)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """softmax(Q K^T / sqrt(E) + mask) V over the last two dims: (..., L, E), (..., S, E), (..., S, Ev).

    attn_mask: bool (True = may attend) or float (added to the scores), broadcastable to (..., L, S).
    """
    query, key, value = cast_to_half(query, key, value)  # autocast: the two products in half precision
    for name, t in (("key", key), ("value", value)):
        if t.dtype is not query.dtype or t.device != query.device:
            raise RuntimeError(f"scaled_dot_product_attention: {name} is {t.dtype} on {t.device}, query is "
                               f"{query.dtype} on {query.device}")
    if min(query.ndim, key.ndim, value.ndim) < 2 or query.shape[-1] != key.shape[-1] \
            or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(f"scaled_dot_product_attention: incompatible shapes query {tuple(query.shape)}, key "
                           f"{tuple(key.shape)}, value {tuple(value.shape)} (expected (..., L, E), (..., S, E), "
                           "(..., S, Ev))")
    # the batch dims broadcast, as in PyTorch, whose attention is two matmuls
    scores_batch = broadcast_shape("scaled_dot_product_attention", query.shape[:-2], key.shape[:-2])
    broadcast_shape("scaled_dot_product_attention", scores_batch, value.shape[:-2])
    if is_causal and attn_mask is not None:
        raise RuntimeError("scaled_dot_product_attention: pass either attn_mask or is_causal, not both")
    length, source_length = query.shape[-2], key.shape[-2]
    if is_causal:
        attn_mask = Tensor._make(query.backend.tril(query.backend.full((length, source_length), True, bool_), 0),
                                 query.device)
        attn_mask.is_causal_mask = True  # lets a GPU kernel skip the masked keys without reading the (L, S) mask
    if attn_mask is not None:
        if attn_mask.dtype.is_floating and attn_mask.dtype is not query.dtype:
            attn_mask = attn_mask.to(query.dtype)
        broadcast_shape("scaled_dot_product_attention", attn_mask.shape, scores_batch + (length, source_length))
    keep = None
    if dropout_p > 0:  # on a GPU the kernel regenerates the mask instead of reading a (..., L, S) array
        shape = scores_batch + (length, source_length)
        keep = RegeneratedDropout.reserve(query.backend, shape, dropout_p, query.dtype) or \
            _keep_mask(shape, dropout_p, query)
    if scale is None:  # with no features every score is 0, whatever the scale
        scale = 1 / math.sqrt(query.shape[-1]) if query.shape[-1] else 1.0
    return ScaledDotProductAttention.apply(query, key, value, attn_mask, keep, scale)
