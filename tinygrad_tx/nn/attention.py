"""MultiheadAttention, as torch.nn.MultiheadAttention: the same parameters under the same names (in_proj_weight,
in_proj_bias, out_proj.weight, out_proj.bias, ...), so a PyTorch state dict loads, and the same forward.

Shapes: L target length, S source length, N batch, E embed_dim, H heads, D = E // H per head. Inputs are
(L, N, E) (or (N, L, E) with batch_first, or unbatched (L, E)).

Masks: attn_mask (L, S) or (N * H, L, S), key_padding_mask (N, S). A bool mask marks with True the positions
NOT to attend (the opposite of scaled_dot_product_attention's bool mask); a float mask is added to the scores.
"""
import math
import warnings

from .. import creation
from ..tensor import cat
from . import functional as F
from . import init
from .layers import Linear
from .module import Module
from .parameter import Parameter


class NonDynamicallyQuantizableLinear(Linear):
    """PyTorch's name for MultiheadAttention's output projection: a Linear (the name shows in its repr)."""


class MultiheadAttention(Module):
    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be greater than 0, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads}")
        super().__init__()
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError(f"embed_dim must be divisible by num_heads, got embed_dim={embed_dim} and "
                                 f"num_heads={num_heads}")

        def empty(*shape):
            return Parameter(creation.empty(*shape, device=device, dtype=dtype))

        if self._qkv_same_embed_dim:  # one (3E, E) matrix: the query, key and value projections stacked
            self.in_proj_weight = empty(3 * embed_dim, embed_dim)
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.q_proj_weight = empty(embed_dim, embed_dim)
            self.k_proj_weight = empty(embed_dim, self.kdim)
            self.v_proj_weight = empty(embed_dim, self.vdim)
            self.in_proj_weight = None
        self.in_proj_bias = empty(3 * embed_dim) if bias else None
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        if add_bias_kv:  # one extra learned key and value, appended to every sequence
            self.bias_k, self.bias_v = empty(1, 1, embed_dim), empty(1, 1, embed_dim)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self):
        """PyTorch's: Glorot-uniform projections, zero biases, Glorot-normal bias_k and bias_v."""
        for weight in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if weight is not None:
                init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        for extra in (self.bias_k, self.bias_v):
            if extra is not None:
                init.xavier_normal_(extra)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        """(attention output, attention weights or None). The weights are (N, L, S), averaged over the heads, or
        (N, H, L, S) with average_attn_weights=False. is_causal is a hint that attn_mask is the causal mask: it
        still needs the mask, and uses the causal kernel instead only when neither the weights nor a
        key_padding_mask are asked for."""
        batched = self._check_shapes(query, key, value, key_padding_mask, attn_mask)
        key_padding_mask = _additive_mask(key_padding_mask, "key_padding_mask", query.dtype, attn_mask)
        attn_mask = _additive_mask(attn_mask, "attn_mask", query.dtype)
        if self.batch_first and batched:  # (N, L, E) -> (L, N, E)
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        if not batched:  # (L, E) -> (L, 1, E)
            query, key, value = (x.unsqueeze(1) for x in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        if is_causal and attn_mask is None:
            raise RuntimeError("MultiheadAttention: need attn_mask if specifying the is_causal hint; the causal "
                               "mask can be made with Transformer.generate_square_subsequent_mask")
        if is_causal and key_padding_mask is None and not need_weights:
            attn_mask = None  # the kernel's causal mask stands in for the given one
        else:
            is_causal = False
        output, weights = self._attend(query, key, value, key_padding_mask, need_weights, attn_mask,
                                       average_attn_weights, is_causal)
        if not batched:
            return output.squeeze(1), None if weights is None else weights.squeeze(0)
        return (output.transpose(0, 1) if self.batch_first else output), weights

    def _attend(self, query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights, is_causal):
        length, batch, embed_dim = query.shape
        heads, head_dim = self.num_heads, self.head_dim
        if embed_dim != self.embed_dim:
            raise AssertionError(f"MultiheadAttention: was expecting embedding dimension of {self.embed_dim}, but got "
                                 f"{embed_dim} (query of shape {tuple(query.shape)})")
        if (tuple(key.shape) != tuple(value.shape)) if self._qkv_same_embed_dim else key.shape[:2] != value.shape[:2]:
            raise AssertionError(f"MultiheadAttention: key shape {tuple(key.shape)} does not match value shape "
                                 f"{tuple(value.shape)}")
        q, k, v = self._in_projection(query, key, value)  # (L, N, E), (S, N, E), (S, N, E)
        source_length = k.shape[0]
        if attn_mask is not None:
            expected = (length, source_length) if attn_mask.ndim == 2 else (batch * heads, length, source_length)
            if tuple(attn_mask.shape) != expected:
                raise RuntimeError(f"MultiheadAttention: the shape of the {attn_mask.ndim}D attn_mask is "
                                   f"{tuple(attn_mask.shape)}, but should be {expected}")
            if attn_mask.ndim == 2:
                attn_mask = attn_mask.unsqueeze(0)  # (1, L, S)
        if self.bias_k is not None:  # one more key and value, which every query may attend to
            k = cat([k, self.bias_k.repeat(1, batch, 1)])
            v = cat([v, self.bias_v.repeat(1, batch, 1)])
            attn_mask, key_padding_mask = _one_more_key(attn_mask), _one_more_key(key_padding_mask)
        q = q.reshape(length, batch * heads, head_dim).transpose(0, 1)  # (N * H, L, D)
        k = k.reshape(k.shape[0], batch * heads, head_dim).transpose(0, 1)  # (N * H, S, D)
        v = v.reshape(v.shape[0], batch * heads, head_dim).transpose(0, 1)
        if self.add_zero_attn:  # a zero key and value: a query may attend to "nothing"
            zeros = creation.zeros(batch * heads, 1, head_dim, dtype=q.dtype, device=q.device)
            k, v = cat([k, zeros], 1), cat([v, zeros], 1)
            attn_mask, key_padding_mask = _one_more_key(attn_mask), _one_more_key(key_padding_mask)
        source_length = k.shape[1]
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (batch, source_length):
                raise AssertionError(f"MultiheadAttention: expecting key_padding_mask shape of "
                                     f"{(batch, source_length)}, but got {tuple(key_padding_mask.shape)}")
            padding = key_padding_mask.reshape(batch, 1, 1, source_length).expand(batch, heads, 1, source_length)
            padding = padding.reshape(batch * heads, 1, source_length)
            attn_mask = padding if attn_mask is None else attn_mask + padding
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            scores = (q * math.sqrt(1.0 / head_dim)) @ k.transpose(-2, -1)  # (N * H, L, S)
            if attn_mask is not None:
                scores = attn_mask + scores
            weights = scores.softmax(-1)
            if dropout_p > 0:
                weights = F.dropout(weights, dropout_p)
            output = (weights @ v).transpose(0, 1).reshape(length * batch, embed_dim)  # (L * N, E)
            output = F.linear(output, self.out_proj.weight, self.out_proj.bias).reshape(length, batch, embed_dim)
            weights = weights.reshape(batch, heads, length, source_length)
            return output, weights.mean(1) if average_attn_weights else weights
        if attn_mask is not None:  # (1, L, S), (N * H, L, S) or (N * H, 1, S) -> broadcastable to (N, H, L, S)
            attn_mask = attn_mask.unsqueeze(0) if attn_mask.shape[0] == 1 else \
                attn_mask.reshape(batch, heads, -1, source_length)
        q = q.reshape(batch, heads, length, head_dim)
        k = k.reshape(batch, heads, source_length, head_dim)
        v = v.reshape(batch, heads, source_length, head_dim)
        output = F.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)  # (N, H, L, D)
        output = output.permute(2, 0, 1, 3).reshape(length * batch, embed_dim)
        output = F.linear(output, self.out_proj.weight, self.out_proj.bias).reshape(length, batch, embed_dim)
        return output, None

    def _in_projection(self, query, key, value):
        """query, key and value through their projections; self-attention's three in one product."""
        if self._qkv_same_embed_dim and query is key and key is value:
            return F.linear(query, self.in_proj_weight, self.in_proj_bias).chunk(3, -1)
        weights = self.in_proj_weight.chunk(3) if self._qkv_same_embed_dim else \
            (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        biases = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None, None, None)
        return tuple(F.linear(x, weight, bias) for x, weight, bias in zip((query, key, value), weights, biases))

    def _check_shapes(self, query, key, value, key_padding_mask, attn_mask):
        """Whether the input is batched (3-D) or one unbatched sequence (2-D); PyTorch's AssertionErrors."""
        if query.ndim not in (2, 3):
            raise AssertionError(f"MultiheadAttention: query should be unbatched 2D or batched 3D tensor but "
                                 f"received {query.ndim}-D query tensor of shape {tuple(query.shape)}")
        batched = query.ndim == 3
        kind = "batched (3-D)" if batched else "unbatched (2-D)"
        if key.ndim != query.ndim or value.ndim != query.ndim:
            raise AssertionError(f"MultiheadAttention: for {kind} `query`, expected `key` and `value` to be "
                                 f"{query.ndim}-D but found {key.ndim}-D and {value.ndim}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != query.ndim - 1:
            raise AssertionError(f"MultiheadAttention: for {kind} `query`, expected `key_padding_mask` to be `None` "
                                 f"or {query.ndim - 1}-D but found {key_padding_mask.ndim}-D tensor instead")
        if attn_mask is not None:
            if attn_mask.ndim not in (2, 3):
                raise AssertionError(f"MultiheadAttention: for {kind} `query`, expected `attn_mask` to be `None`, "
                                     f"2-D or 3-D but found {attn_mask.ndim}-D tensor instead")
            if not batched and attn_mask.ndim == 3 and \
                    tuple(attn_mask.shape) != (self.num_heads, query.shape[0], key.shape[0]):
                raise AssertionError(f"MultiheadAttention: expected `attn_mask` shape to be "
                                     f"{(self.num_heads, query.shape[0], key.shape[0])} but got "
                                     f"{tuple(attn_mask.shape)}")
        return batched


def _additive_mask(mask, name, dtype, other=None):
    """A bool mask (True = do not attend) as 0 / -inf scores to add; a float mask as it is."""
    if mask is None:
        return None
    if mask.dtype.name != "bool" and not mask.dtype.is_floating:
        raise AssertionError(f"MultiheadAttention: only bool and floating types of {name} are supported, got "
                             f"{mask.dtype}")
    if other is not None and other.dtype is not mask.dtype:
        warnings.warn(f"Support for mismatched {name} and attn_mask is deprecated. Use same type for both instead.",
                      UserWarning, stacklevel=4)
    if mask.dtype.is_floating:
        return mask
    return creation.zeros(*mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))


def _one_more_key(mask):
    """A mask widened by one key (a zero column: the new key may be attended to)."""
    return None if mask is None else F.pad(mask, (0, 1))
