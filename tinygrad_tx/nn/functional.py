"""Functional forms of the layers, with PyTorch's names and arguments."""
import math

from ..amp.autocast_mode import cast_to_float32, cast_to_half
from ..dtype import bfloat16, bool_, float16, float32
from ..ops.attention import ScaledDotProductAttention
from ..ops.cross_entropy import CrossEntropy
from ..ops.dims import broadcast_shape
from ..ops.layer_norm import LayerNorm
from ..ops.regenerated_dropout import RegeneratedDropout
from ..ops.linear import Linear
from ..tensor import Tensor


def relu(x):
    return x.relu()


def gelu(x, approximate="none"):
    return x.gelu(approximate)


def sigmoid(x):
    return x.sigmoid()


def tanh(x):
    return x.tanh()


def softmax(x, dim):
    return x.softmax(dim)


def log_softmax(x, dim):
    return x.log_softmax(dim)


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


def embedding(input, weight):
    """Rows of weight picked by integer indices: (..., ) -> (..., embedding_dim)."""
    if input.dtype.is_floating:
        raise RuntimeError(f"embedding: indices must be an integer tensor, got {input.dtype}")
    if input.numel() and (int(input.array.min()) < 0 or int(input.array.max()) >= weight.shape[0]):
        raise IndexError(f"embedding: index out of range: indices span [{int(input.array.min())}, "
                         f"{int(input.array.max())}] for a table of {weight.shape[0]} rows")
    return weight[input]


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


def cross_entropy(input, target, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross-entropy between logits (N, C) or (N, C, d1, ...) and class indices (N,) or (N, d1, ...),
    or class probabilities of the same shape as the logits."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if not input.dtype.is_floating:
        raise RuntimeError(f"cross_entropy: logits must be floating point, got {input.dtype}")
    (input,) = cast_to_float32("cross_entropy", input)  # autocast: the logsumexp over the classes in float32
    if input.ndim == 1:  # one unbatched sample: a batch of one, and the batch dim dropped again for 'none'
        losses = cross_entropy(input.unsqueeze(0), target.unsqueeze(0), ignore_index, reduction, label_smoothing)
        return losses.squeeze(0)._not_a_view() if reduction == "none" else losses
    n_classes = input.shape[1]
    if target.dtype.is_floating:
        return _cross_entropy_with_probabilities(input, target, reduction, label_smoothing)
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


def _cross_entropy_with_probabilities(input, target, reduction, label_smoothing):
    if target.shape != input.shape:
        raise RuntimeError(f"cross_entropy: probability targets must have the logits' shape {tuple(input.shape)}, "
                           f"got {tuple(target.shape)}")
    n_classes = input.shape[1]
    target = target * (1 - label_smoothing) + label_smoothing / n_classes
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
    if query.ndim < 2 or query.shape[-1] != key.shape[-1] or key.shape[:-1] != value.shape[:-1] \
            or query.shape[:-2] != key.shape[:-2]:
        raise RuntimeError(f"scaled_dot_product_attention: incompatible shapes query {tuple(query.shape)}, key "
                           f"{tuple(key.shape)}, value {tuple(value.shape)} (expected (..., L, E), (..., S, E), "
                           "(..., S, Ev))")
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
        broadcast_shape("scaled_dot_product_attention", attn_mask.shape, query.shape[:-1] + (source_length,))
    keep = None
    if dropout_p > 0:  # on a GPU the kernel regenerates the mask instead of reading a (..., L, S) array
        shape = query.shape[:-1] + (source_length,)
        keep = RegeneratedDropout.reserve(query.backend, shape, dropout_p, query.dtype) or \
            _keep_mask(shape, dropout_p, query)
    if scale is None:  # with no features every score is 0, whatever the scale
        scale = 1 / math.sqrt(query.shape[-1]) if query.shape[-1] else 1.0
    return ScaledDotProductAttention.apply(query, key, value, attn_mask, keep, scale)
