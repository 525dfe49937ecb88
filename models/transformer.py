"""The Transformer of "Attention Is All You Need" (Vaswani et al., 2017), on tinygrad_tx.

An encoder-decoder model for sequence-to-sequence tasks (Section 3 of the paper):

    src ids -> Embeddings -> N x EncoderLayer -> memory
    tgt ids -> Embeddings -> N x DecoderLayer(memory) -> Linear -> logits over the target vocabulary

    Embeddings:    token embedding * sqrt(d_model) + positional encoding (sinusoidal, or learned), dropout
    EncoderLayer:  multi-head self-attention, then the position-wise feed-forward network
    DecoderLayer:  causal multi-head self-attention, attention over the encoder's output, feed-forward

Each sub-layer sits inside a residual connection with LayerNorm. The paper puts the norm after the
addition (post-LN): LayerNorm(x + Sublayer(x)). GPT-2 and most models since put it before (pre-LN):
x + Sublayer(LayerNorm(x)), and then need one more LayerNorm at the end of each stack. norm_first
chooses, with the meaning it has in torch.nn.Transformer. Two more switches, residual and layer_norm,
take the residual connection or the LayerNorm out altogether; they exist for the study in
examples/residual_layernorm_study.py and are on in every real model.

The same layers build DecoderOnlyTransformer, a GPT-style language model: an encoder layer whose
self-attention is causal is exactly GPT's block.

Parameter names follow torch.nn.Transformer where it has the same parameter (self_attn, linear1, norm1,
...), except that attention keeps W^Q, W^K and W^V as three Linear layers (q_proj, k_proj, v_proj),
where torch packs them into one in_proj_weight of shape (3 d_model, d_model).
"""
import math
from dataclasses import dataclass

import numpy as np

import tinygrad_tx as tg
import tinygrad_tx.nn as nn
import tinygrad_tx.nn.functional as F


@dataclass
class TransformerConfig:
    src_vocab_size: int = 37000
    tgt_vocab_size: int = 37000
    d_model: int = 512              # width of every sub-layer's input and output
    n_head: int = 8                 # h: parallel attention heads, each of width d_model / n_head
    num_encoder_layers: int = 6     # N in the paper
    num_decoder_layers: int = 6
    dim_feedforward: int = 2048     # d_ff: inner width of the feed-forward network
    dropout: float = 0.1            # P_drop
    activation: str = "relu"        # the paper's ReLU, "gelu" (exact, erf) or "gelu_tanh" (GPT-2's approximation)
    norm_first: bool = False        # False: post-LN, as the paper; True: pre-LN, as GPT-2
    layer_norm_eps: float = 1e-5
    max_len: int = 512              # longest sequence the positional encoding covers
    positional: str = "sinusoidal"  # or "learned" (the paper found both work about as well, Table 3 (E))
    tie_embeddings: bool = False    # the target embedding and the output projection share one matrix
    share_embeddings: bool = False  # source and target share one embedding (needs one vocabulary)
    label_smoothing: float = 0.1    # epsilon_ls
    pad_id: int = 0                 # padding token: masked out of attention, ignored by the loss
    residual: bool = True           # study switch: residual connections around the sub-layers
    layer_norm: bool = True         # study switch: LayerNorm in the sub-layers


@dataclass
class DecoderOnlyConfig:
    """A GPT-style language model built from the same layers (see DecoderOnlyTransformer)."""
    vocab_size: int = 65
    block_size: int = 64            # longest context
    n_layer: int = 6
    d_model: int = 64
    n_head: int = 4
    dim_feedforward: int = 256
    dropout: float = 0.0
    activation: str = "gelu_tanh"
    norm_first: bool = True         # GPT-2 is pre-LN
    layer_norm_eps: float = 1e-5
    positional: str = "learned"     # GPT-2 learns its position embeddings
    tie_embeddings: bool = True
    residual: bool = True
    layer_norm: bool = True

    @property
    def max_len(self):
        return self.block_size


# --- embeddings -----------------------------------------------------------------------------------------------

def sinusoidal_encoding(max_len, d_model):
    """PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d_model)).

    Returns (max_len, d_model): row pos is the encoding added to the token at position pos."""
    position = np.arange(max_len)[:, None]                                    # (max_len, 1)
    frequency = np.exp(-math.log(10000.0) * np.arange(0, d_model, 2) / d_model)  # (d_model/2,)
    encoding = np.zeros((max_len, d_model))
    encoding[:, 0::2] = np.sin(position * frequency)
    encoding[:, 1::2] = np.cos(position * frequency[:d_model // 2])
    return encoding.astype(np.float32)


class Embeddings(nn.Module):
    """Token embedding times sqrt(d_model), plus the encoding of each token's position (Section 3.4, 3.5).

    The position added to token t is t itself, 0, 1, ..., T-1, whatever the token is: a learned position
    table is indexed by position, never by token id.
    """

    def __init__(self, vocab_size, config):
        super().__init__()
        self.d_model = config.d_model
        self.token = nn.Embedding(vocab_size, config.d_model)
        if config.positional == "sinusoidal":
            self.register_buffer("position_encoding", tg.tensor(sinusoidal_encoding(config.max_len, config.d_model)),
                                 persistent=False)
            self.position = None
        elif config.positional == "learned":
            self.position = nn.Embedding(config.max_len, config.d_model)
        else:
            raise ValueError(f"positional must be 'sinusoidal' or 'learned', got {config.positional!r}")
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, ids):
        B, T = ids.shape
        max_len = self.position_encoding.shape[0] if self.position is None else self.position.num_embeddings
        if T > max_len:
            raise ValueError(f"Embeddings: sequence length {T} exceeds max_len {max_len}")
        if self.position is None:
            position = self.position_encoding[:T]                            # (T, C): fixed sinusoids
        else:
            position = self.position(tg.arange(T, device=ids.device))        # (T, C): rows 0..T-1 of a table
        x = self.token(ids) * math.sqrt(self.d_model) + position              # (B, T, C)
        return self.dropout(x)


# --- the two kinds of sub-layer ---------------------------------------------------------------------------------

class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O, head_i = Attention(Q W^Q_i, K W^K_i, V W^V_i),
    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V (Section 3.2).

    The h heads' W^Q_i sit side by side in q_proj (likewise k_proj, v_proj), so one product computes all
    heads, and a reshape splits them. query (B, L, C) attends over key and value (B, S, C):
    self-attention passes the same x three times, the decoder's cross-attention passes the encoder's
    output as key and value.

    key_padding_mask: (B, S) bool, True where the key is padding (as torch.nn.MultiheadAttention).
    causal: position i attends to positions <= i only.
    """

    def __init__(self, config):
        super().__init__()
        if config.d_model % config.n_head:
            raise ValueError(f"d_model ({config.d_model}) must be divisible by n_head ({config.n_head})")
        self.n_head, self.d_model, self.dropout = config.n_head, config.d_model, config.dropout
        self.q_proj = nn.Linear(config.d_model, config.d_model)
        self.k_proj = nn.Linear(config.d_model, config.d_model)
        self.v_proj = nn.Linear(config.d_model, config.d_model)
        self.out_proj = nn.Linear(config.d_model, config.d_model)   # W^O

    def forward(self, query, key, value, key_padding_mask=None, causal=False):
        B, L, C = query.shape
        S = key.shape[1]
        nh, hs = self.n_head, C // self.n_head                               # hs = d_k = d_v
        q = self.q_proj(query).view(B, L, nh, hs).transpose(1, 2)            # (B, nh, L, hs)
        k = self.k_proj(key).view(B, S, nh, hs).transpose(1, 2)              # (B, nh, S, hs)
        v = self.v_proj(value).view(B, S, nh, hs).transpose(1, 2)            # (B, nh, S, hs)
        mask = None                                                          # True = may attend
        if key_padding_mask is not None:
            mask = ~key_padding_mask.view(B, 1, 1, S)                        # (B, 1, 1, S)
            if causal:
                mask = mask & causal_mask(L, S, query.device)                # (B, 1, L, S)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, nh, L, hs)
        y = y.transpose(1, 2).contiguous().view(B, L, C)                     # (B, L, C): heads concatenated
        return self.out_proj(y)


def causal_mask(L, S, device="cpu"):
    """(L, S) bool, True on and below the diagonal: query i may attend to keys 0..i."""
    return tg.ones(L, S, dtype=tg.bool_, device=device).tril()


class FeedForward(nn.Module):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2, applied to each position alone (Section 3.3)."""

    def __init__(self, config):
        super().__init__()
        activations = {"relu": nn.ReLU, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh")}
        if config.activation not in activations:
            raise ValueError(f"activation must be one of {', '.join(activations)}, got {config.activation!r}")
        self.linear1 = nn.Linear(config.d_model, config.dim_feedforward)
        self.activation = activations[config.activation]()
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.dim_feedforward, config.d_model)

    def forward(self, x):
        return self.linear2(self.dropout(self.activation(self.linear1(x))))  # (B, T, C) -> (B, T, d_ff) -> (B, T, C)


# --- layers: sub-layers inside residual connections and LayerNorm ------------------------------------------------

class ResidualLayer(nn.Module):
    """What EncoderLayer and DecoderLayer share: how a sub-layer joins the residual stream."""

    def __init__(self, config):
        super().__init__()
        self.norm_first, self.residual, self.layer_norm = config.norm_first, config.residual, config.layer_norm

    @staticmethod
    def make_norm(config):
        return nn.LayerNorm(config.d_model, eps=config.layer_norm_eps) if config.layer_norm else nn.Identity()

    def sublayer(self, x, sublayer, norm, dropout):
        """Post-LN (the paper, Sections 3.1 and 5.4): LayerNorm(x + Dropout(Sublayer(x))).
        Pre-LN (GPT-2): x + Dropout(Sublayer(LayerNorm(x))): the residual stream itself is never normalized.
        Without the residual connection the x + drops out; without LayerNorm, norm is the identity."""
        if self.norm_first:
            y = dropout(sublayer(norm(x)))
            return x + y if self.residual else y
        y = dropout(sublayer(x))
        return norm(x + y if self.residual else y)


class EncoderLayer(ResidualLayer):
    """Self-attention, then the feed-forward network. With causal=True, GPT's block."""

    def __init__(self, config, causal=False):
        super().__init__(config)
        self.causal = causal
        self.self_attn = MultiHeadAttention(config)
        self.feed_forward = FeedForward(config)
        self.norm1, self.norm2 = self.make_norm(config), self.make_norm(config)
        self.dropout1, self.dropout2 = nn.Dropout(config.dropout), nn.Dropout(config.dropout)

    def forward(self, x, key_padding_mask=None):
        x = self.sublayer(x, lambda h: self.self_attn(h, h, h, key_padding_mask, causal=self.causal),
                          self.norm1, self.dropout1)                         # (B, T, C)
        x = self.sublayer(x, self.feed_forward, self.norm2, self.dropout2)   # (B, T, C)
        return x


class DecoderLayer(ResidualLayer):
    """Causal self-attention, attention over the encoder's output ("memory"), then the feed-forward network."""

    def __init__(self, config):
        super().__init__(config)
        self.self_attn = MultiHeadAttention(config)
        self.cross_attn = MultiHeadAttention(config)
        self.feed_forward = FeedForward(config)
        self.norm1, self.norm2, self.norm3 = self.make_norm(config), self.make_norm(config), self.make_norm(config)
        self.dropout1, self.dropout2, self.dropout3 = (nn.Dropout(config.dropout) for _ in range(3))

    def forward(self, y, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None):
        # queries come from the decoder (normalized first when pre-LN); keys and values are the encoder's output
        y = self.sublayer(y, lambda h: self.self_attn(h, h, h, tgt_key_padding_mask, causal=True),
                          self.norm1, self.dropout1)                         # (B, T, C)
        y = self.sublayer(y, lambda h: self.cross_attn(h, memory, memory, memory_key_padding_mask),
                          self.norm2, self.dropout2)                         # (B, T, C)
        y = self.sublayer(y, self.feed_forward, self.norm3, self.dropout3)   # (B, T, C)
        return y


def final_norm(config):
    """Pre-LN leaves the residual stream unnormalized, so a stack ends with one more LayerNorm."""
    return nn.LayerNorm(config.d_model, eps=config.layer_norm_eps) if config.norm_first and config.layer_norm \
        else None


class Encoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(config) for _ in range(config.num_encoder_layers)])
        self.norm = final_norm(config)

    def forward(self, x, key_padding_mask=None):
        for layer in self.layers:
            x = layer(x, key_padding_mask)                                   # (B, S, C)
        return x if self.norm is None else self.norm(x)


class Decoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layers = nn.ModuleList([DecoderLayer(config) for _ in range(config.num_decoder_layers)])
        self.norm = final_norm(config)

    def forward(self, y, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None):
        for layer in self.layers:
            y = layer(y, memory, tgt_key_padding_mask, memory_key_padding_mask)  # (B, T, C)
        return y if self.norm is None else self.norm(y)


def init_weights(model, d_model):
    """Xavier-uniform for every matrix (as torch.nn.Transformer) and zero biases. Token embeddings are
    N(0, 1/d_model), so that after the sqrt(d_model) scale their entries have variance 1; a learned position
    table is N(0, 1/2), the variance of the sinusoids it replaces."""
    for name, parameter in model.named_parameters():
        if name.endswith("token.weight"):
            nn.init.normal_(parameter, mean=0.0, std=d_model ** -0.5)
        elif name.endswith("position.weight"):
            nn.init.normal_(parameter, mean=0.0, std=0.5 ** 0.5)
        elif parameter.ndim > 1:
            nn.init.xavier_uniform_(parameter)
        elif name.endswith("bias"):
            nn.init.zeros_(parameter)


# --- the models -------------------------------------------------------------------------------------------------

class Transformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.share_embeddings and config.src_vocab_size != config.tgt_vocab_size:
            raise ValueError("share_embeddings needs src_vocab_size == tgt_vocab_size")
        self.config = config
        self.src_embed = Embeddings(config.src_vocab_size, config)
        self.tgt_embed = Embeddings(config.tgt_vocab_size, config)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.generator = nn.Linear(config.d_model, config.tgt_vocab_size, bias=False)  # the pre-softmax linear
        init_weights(self, config.d_model)
        # Section 3.4: "we share the same weight matrix between the two embedding layers and the pre-softmax
        # linear transformation" (with a shared source/target vocabulary)
        if config.share_embeddings:
            self.tgt_embed.token.weight = self.src_embed.token.weight
        if config.tie_embeddings:
            self.generator.weight = self.tgt_embed.token.weight

    def encode(self, src, src_key_padding_mask=None):
        """src (B, S) ids -> memory (B, S, C)."""
        return self.encoder(self.src_embed(src), src_key_padding_mask)

    def decode(self, tgt, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None):
        """tgt (B, T) ids so far, memory (B, S, C) -> logits (B, T, tgt_vocab_size) for each next token."""
        y = self.decoder(self.tgt_embed(tgt), memory, tgt_key_padding_mask, memory_key_padding_mask)  # (B, T, C)
        return self.generator(y)                                             # (B, T, V)

    def forward(self, src, tgt, targets=None):
        """src (B, S), tgt (B, T) ids -> logits (B, T, V), and the label-smoothed loss if targets (B, T) are given.

        tgt is the decoder's input (the target shifted right, starting with a start token); targets are the
        tokens it should predict. Padding (pad_id) is masked out of attention and ignored by the loss.
        """
        src_pad, tgt_pad = src == self.config.pad_id, tgt == self.config.pad_id     # (B, S), (B, T)
        memory = self.encode(src, src_pad)                                   # (B, S, C)
        logits = self.decode(tgt, memory, tgt_pad, src_pad)                  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1),
                                   ignore_index=self.config.pad_id, label_smoothing=self.config.label_smoothing)
        return logits, loss

    @tg.no_grad()
    def greedy_decode(self, src, max_len, bos_id, eos_id):
        """Translate src (B, S) one token at a time, always taking the most likely next token.

        Returns (B, <= max_len) ids without the start token; a sequence is padded after its end token,
        and decoding stops early once every sequence has ended. Call model.eval() first.
        """
        pad = self.config.pad_id
        src_pad = src == pad                                                 # (B, S)
        memory = self.encode(src, src_pad)                                   # (B, S, C)
        B = src.shape[0]
        ys = tg.full((B, 1), bos_id, dtype=tg.int64, device=src.device)     # (B, 1)
        finished = tg.zeros(B, dtype=tg.bool_, device=src.device)            # (B,)
        for _ in range(max_len):
            logits = self.decode(ys, memory, ys == pad, src_pad)[:, -1, :]   # (B, V): the last position's
            next_token = logits.argmax(-1).masked_fill(finished, pad)        # (B,)
            ys = tg.cat([ys, next_token.unsqueeze(1)], dim=1)                # (B, t + 1)
            finished = finished | (next_token == eos_id)
            if finished.all().item():
                break
        return ys[:, 1:]


class DecoderOnlyTransformer(nn.Module):
    """A GPT-style language model: embeddings, n_layer causal EncoderLayers, a final LayerNorm when pre-LN,
    and the output projection (tied to the token embedding by default)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embed = Embeddings(config.vocab_size, config)
        self.layers = nn.ModuleList([EncoderLayer(config, causal=True) for _ in range(config.n_layer)])
        self.norm = final_norm(config)
        self.generator = nn.Linear(config.d_model, config.vocab_size, bias=False)
        init_weights(self, config.d_model)
        if config.tie_embeddings:
            self.generator.weight = self.embed.token.weight

    def forward(self, idx, targets=None):
        """idx (B, T) ids -> logits (B, T, vocab_size), and the mean cross-entropy if targets are given."""
        x = self.embed(idx)                                                  # (B, T, C)
        for layer in self.layers:
            x = layer(x)                                                     # (B, T, C)
        if self.norm is not None:
            x = self.norm(x)
        logits = self.generator(x)                                           # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-1)
        return logits, loss


# --- training -----------------------------------------------------------------------------------------------------

def noam_lr(step, d_model, warmup_steps, factor=1.0):
    """Section 5.3: lrate = d_model^-0.5 * min(step^-0.5, step * warmup_steps^-1.5), step counted from 1.

    It rises linearly for warmup_steps steps, peaks at d_model^-0.5 * warmup_steps^-0.5, then decays as
    1/sqrt(step)."""
    step = max(step, 1)
    return factor * d_model ** -0.5 * min(step ** -0.5, step * warmup_steps ** -1.5)


def noam_scheduler(optimizer, d_model, warmup_steps, factor=1.0):
    """A LambdaLR that sets lr = noam_lr(iteration + 1) (give the optimizer lr=1.0: the schedule is the lr)."""
    return tg.optim.lr_scheduler.LambdaLR(optimizer, lambda it: noam_lr(it + 1, d_model, warmup_steps, factor))


def paper_optimizer(model, d_model, warmup_steps=4000, factor=1.0):
    """Adam with beta1 = 0.9, beta2 = 0.98, eps = 1e-9 and the paper's schedule (Section 5.3)."""
    optimizer = tg.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    return optimizer, noam_scheduler(optimizer, d_model, warmup_steps, factor)
