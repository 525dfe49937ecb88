"""GPT-2 (Radford et al., 2019), as OpenAI released it, on tinygrad_tx.

A decoder-only Transformer: token and learned position embeddings, a stack of
pre-LayerNorm blocks (causal self-attention, then a 4x MLP with tanh-GELU, each
added back to the residual stream), a final LayerNorm, and a language-model head
that shares its weight with the token embedding.

Parameter names follow HuggingFace's GPT2LMHeadModel, so checkpoints map one to one
(HF stores the four projection weights as Conv1D, i.e. transposed: see from_pretrained).
"""
import json
import math
import os
from dataclasses import asdict, dataclass, fields

import tinygrad_tx as tg
import tinygrad_tx.nn as nn
import tinygrad_tx.nn.functional as F
from tinygrad_tx.serialization import load_safetensors, save_safetensors


@dataclass
class GPT2Config:
    block_size: int = 1024   # longest context (HF: n_positions)
    vocab_size: int = 50257
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True        # bias in Linear and LayerNorm layers (GPT-2 has them)
    layer_norm_epsilon: float = 1e-5

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


PRESETS = {
    # OpenAI's four sizes, with HuggingFace's names
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768),            # 124M parameters
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024),    # 350M
    "gpt2-large": dict(n_layer=36, n_head=20, n_embd=1280),     # 774M
    "gpt2-xl": dict(n_layer=48, n_head=25, n_embd=1600),        # 1558M
    # small ones for CPUs and tests
    "gpt2-mini": dict(n_layer=4, n_head=4, n_embd=128, block_size=256),
    "gpt2-tiny": dict(n_layer=2, n_head=2, n_embd=32, block_size=64),
}


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd ({config.n_embd}) must be divisible by n_head ({config.n_head})")
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one product
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, cache=None, attn_mask=None):
        """x (B, T, C) -> (B, T, C). cache: this layer's LayerKVCache, which keeps the keys and values of
        earlier calls and takes this call's; attn_mask (B, 1, T, S) bool, True where a query may see a key
        (default: causal)."""
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)               # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)                # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)                # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)                # (B, nh, T, hs)
        if cache is not None:
            k, v = cache.update(k, v)                                    # (B, nh, S, hs): S = cached + T
        dropout_p = self.dropout if self.training else 0.0
        if attn_mask is not None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
        elif k.shape[2] == T:                                            # no earlier keys: plain causal
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p)  # (B, nh, T, hs)
        else:                                                            # one new token sees every key
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)                   # (B, nh, 1, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)                 # (B, T, C): heads side by side
        return self.resid_dropout(self.c_proj(y))


class LayerKVCache:
    """One layer's keys and values of the positions already seen, (B, nh, S, hs) each: generation then feeds
    only the newest token, whose query attends to them all."""

    def __init__(self):
        self.keys = self.values = None

    def update(self, k, v):
        if self.keys is not None:
            k = tg.cat([self.keys, k], dim=2)                            # (B, nh, S + T, hs)
            v = tg.cat([self.values, v], dim=2)
        self.keys, self.values = k, v
        return k, v


class KVCache:
    """A LayerKVCache per block; length is the number of positions cached."""

    def __init__(self, n_layer):
        self.layers = [LayerKVCache() for _ in range(n_layer)]

    @property
    def length(self):
        keys = self.layers[0].keys
        return 0 if keys is None else keys.shape[2]


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2 used the tanh approximation
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))       # (B, T, C) -> (B, T, 4C) -> (B, T, C)


class Block(nn.Module):
    """Pre-LN: x + attn(ln(x)), then x + mlp(ln(x)). The residual stream itself is never normalized."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, cache=None, attn_mask=None):
        x = x + self.attn(self.ln_1(x), cache, attn_mask)
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT2(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),   # token embedding
            wpe=nn.Embedding(config.block_size, config.n_embd),   # learned position embedding
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying (Press & Wolf, 2017)
        self.apply(self._init_weights)
        # residual projections scaled by 1/sqrt(2 n_layer): each block adds two of them to the stream
        for name, parameter in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    @classmethod
    def from_preset(cls, name, **overrides):
        if name not in PRESETS:
            raise ValueError(f"unknown GPT-2 preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(GPT2Config(**{**PRESETS[name], **overrides}))

    def num_params(self, non_embedding=True):
        """Parameter count; by default without position embeddings (token embeddings are shared with lm_head)."""
        total = sum(p.numel() for p in self.parameters())
        return total - self.transformer.wpe.weight.numel() if non_embedding else total

    def hidden_states(self, idx, positions=None, cache=None, attn_mask=None):
        """idx (B, T) -> (B, T, C). positions (T,) or (B, T): default, the T positions after the cached ones;
        cache: a KVCache that holds the earlier positions and takes these; attn_mask (B, 1, T, S) bool."""
        B, T = idx.shape
        past = cache.length if cache is not None else 0
        if past + T > self.config.block_size:
            raise ValueError(f"GPT2: sequence length {past + T} exceeds block_size {self.config.block_size}")
        if positions is None:
            positions = tg.arange(past, past + T, device=idx.device)        # (T,)
        if attn_mask is None and past and T > 1:                            # new tokens after cached ones
            attn_mask = causal_mask(past, T, idx.device)                    # (T, S)
        x = self.transformer.wte(idx) + self.transformer.wpe(positions)     # (B, T, C)
        x = self.transformer.drop(x)
        for i, block in enumerate(self.transformer.h):
            x = block(x, cache.layers[i] if cache is not None else None, attn_mask)  # (B, T, C)
        return self.transformer.ln_f(x)                                     # (B, T, C)

    def forward(self, idx, targets=None):
        """idx (B, T) token ids -> logits (B, T, vocab_size), and the mean cross-entropy if targets are given."""
        logits = self.lm_head(self.hidden_states(idx))                      # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-1)
        return logits, loss

    def crop_block_size(self, block_size):
        """Keep the first block_size positions (e.g. a pretrained model fine-tuned on shorter windows)."""
        if not 0 < block_size <= self.config.block_size:
            raise ValueError(f"crop_block_size: {block_size} is not in 1..{self.config.block_size}")
        self.config.block_size = block_size
        wpe = self.transformer.wpe
        wpe.weight = nn.Parameter(wpe.weight.detach()[:block_size].contiguous())  # (block_size, C)
        wpe.num_embeddings = block_size

    def configure_optimizers(self, weight_decay, learning_rate, betas=(0.9, 0.95)):
        """AdamW that decays matrices (Linear weights, embeddings) but not biases or LayerNorm gains."""
        parameters = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
        ]
        return tg.optim.AdamW(groups, lr=learning_rate, betas=betas)

    @tg.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, use_cache=True,
                 eos_token_id=None, stream=None, attention_mask=None):
        """Extend idx (B, T) one sampled token at a time -> (B, T + n), n <= max_new_tokens.

        temperature 0 picks the likeliest token (greedy); top_k samples among the k likeliest, top_p among
        the fewest likeliest whose probabilities reach p. use_cache keeps each layer's keys and values, so
        a step feeds only the newest token: the same tokens as recomputing everything, much faster. Past
        block_size the context is the last block_size tokens, recomputed each step (positions shift).
        attention_mask (B, T): 1 for prompt tokens, 0 for the left padding that lines up shorter prompts.
        eos_token_id: a row that has produced it repeats it; generation stops when every row has.
        stream: called with each new column of B token ids as soon as it is sampled.
        """
        check_sampling(max_new_tokens, temperature, top_k, top_p)
        mask = None if attention_mask is None else tg.tensor(attention_mask, device=idx.device).bool()  # (B, T)
        if mask is not None and tuple(mask.shape) != tuple(idx.shape):
            raise ValueError(f"generate: attention_mask has shape {tuple(mask.shape)}, idx {tuple(idx.shape)}")
        cache, finished = None, None
        for _ in range(max_new_tokens):
            T = idx.shape[1]
            if cache is not None and cache.length == T - 1 and T <= self.config.block_size:
                logits = self._next_token_logits(idx[:, -1:], mask, cache)            # (B, V): one new token
            else:                                                                     # first step, or past block_size
                start = max(0, T - self.config.block_size)
                cache = KVCache(self.config.n_layer) if use_cache else None
                logits = self._next_token_logits(idx[:, start:], None if mask is None else mask[:, start:], cache)
            next_token = sample_next_token(logits, temperature, top_k, top_p)         # (B, 1)
            if eos_token_id is not None:
                if finished is not None:                                              # done rows repeat the eos
                    next_token = tg.where(finished, tg.full_like(next_token, eos_token_id), next_token)
                is_eos = next_token == eos_token_id                                   # (B, 1)
                finished = is_eos if finished is None else finished | is_eos
            idx = tg.cat([idx, next_token], dim=1)                                    # (B, T + 1)
            if mask is not None:
                mask = tg.cat([mask, tg.ones(mask.shape[0], 1, dtype=tg.bool, device=idx.device)], dim=1)
            if stream is not None:
                stream(next_token[:, 0].tolist())
            if finished is not None and finished.all().item():
                break
        return idx

    def _next_token_logits(self, idx, mask, cache):
        """Logits (B, V) for the token after idx (B, T). mask (B, S): which of the cached and new positions are
        tokens (1) and which left padding (0)."""
        positions = attn_mask = None
        if mask is not None:
            past, T = (cache.length if cache is not None else 0), idx.shape[1]
            # a padded row's first token is position 0, as if it were alone
            positions = (mask.long().cumsum(1) - 1).clamp(min=0)[:, past:]   # (B, T)
            queries = tg.arange(past, past + T, device=idx.device)[:, None]          # (T, 1)
            keys = tg.arange(past + T, device=idx.device)                             # (S,)
            # a padding query sees itself: a row with nothing to see would softmax to NaN, and NaN times a
            # zero attention weight is NaN in every later layer
            attn_mask = ((keys <= queries) & mask[:, None, None, :]) | (keys == queries)  # (B, 1, T, S)
        last = self.hidden_states(idx, positions, cache, attn_mask)[:, -1, :]          # (B, C)
        return self.lm_head(last)                                                     # (B, V)

    # --- HuggingFace checkpoints --------------------------------------------------------------------------
    # HF's GPT-2 stores these as Conv1D (in_features, out_features): transpose to Linear's (out, in)
    _CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")

    @classmethod
    def from_pretrained(cls, path, dtype=None, device=None, dropout=0.0):
        """Load a local HuggingFace GPT-2 directory (config.json + model.safetensors); dropout for fine-tuning."""
        with open(os.path.join(path, "config.json")) as f:
            hf = json.load(f)
        if hf.get("model_type", "gpt2") != "gpt2":
            raise ValueError(f"from_pretrained: {path} holds a {hf.get('model_type')!r} model, not gpt2")
        if hf.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"from_pretrained: activation {hf['activation_function']!r} is not GPT-2's tanh GELU")
        config = GPT2Config(block_size=hf["n_positions"], vocab_size=hf["vocab_size"], n_layer=hf["n_layer"],
                            n_head=hf["n_head"], n_embd=hf["n_embd"], bias=True, dropout=dropout,
                            layer_norm_epsilon=hf.get("layer_norm_epsilon", 1e-5))
        model = cls(config)
        weights = load_safetensors(os.path.join(path, "model.safetensors"))
        state = {}
        for name, tensor in weights.items():
            name = name if name.startswith(("transformer.", "lm_head.")) else "transformer." + name
            if name.endswith((".attn.bias", ".attn.masked_bias")):
                continue  # HF's causal-mask buffers: our attention builds the mask itself
            state[name] = tensor.transpose(0, 1) if name.endswith(cls._CONV1D) else tensor
        state.setdefault("lm_head.weight", state.get("transformer.wte.weight"))
        model.load_state_dict(state)
        if dtype is not None or device is not None:
            model.to(*(a for a in (device, dtype) if a is not None))
        return model

    def save_pretrained(self, path, eos_token_id=50256):
        """Write a directory that transformers.GPT2LMHeadModel.from_pretrained loads. eos_token_id: the
        tokenizer's <|endoftext|> (GPT-2's is 50256; None for a vocabulary without one)."""
        if not self.config.bias:
            raise ValueError("save_pretrained: HuggingFace's GPT-2 always has biases; this model has bias=False")
        os.makedirs(path, exist_ok=True)
        c = self.config
        hf = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": c.vocab_size,
              "n_positions": c.block_size, "n_ctx": c.block_size, "n_embd": c.n_embd, "n_layer": c.n_layer,
              "n_head": c.n_head, "n_inner": None, "activation_function": "gelu_new",
              "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
              "layer_norm_epsilon": c.layer_norm_epsilon, "initializer_range": 0.02,
              "tie_word_embeddings": True}
        if eos_token_id is not None and eos_token_id < c.vocab_size:
            hf.update(bos_token_id=eos_token_id, eos_token_id=eos_token_id)  # GPT-2 begins and ends with it
        else:
            hf.update(bos_token_id=None, eos_token_id=None)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(hf, f, indent=2)
        state = {}
        for name, tensor in self.state_dict().items():
            if name == "lm_head.weight":
                continue  # tied to transformer.wte.weight; HF re-ties it on load
            state[name] = tensor.transpose(0, 1).contiguous() if name.endswith(self._CONV1D) else tensor
        save_safetensors(state, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})

    def config_dict(self):
        return asdict(self.config)


def causal_mask(past, T, device):
    """(T, past + T) bool: the new query i, at position past + i, sees keys 0..past + i."""
    return tg.arange(past + T, device=device) <= tg.arange(past, past + T, device=device)[:, None]


def check_sampling(max_new_tokens, temperature, top_k, top_p):
    if max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be >= 0, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"generate: temperature must be >= 0 (0 is greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"generate: top_k must be >= 1 or None, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"generate: top_p must be in (0, 1] or None, got {top_p}")


def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None):
    """logits (B, V) -> (B, 1) token ids: the likeliest at temperature 0, else a draw from softmax(logits / T)
    cut to the top_k likeliest and to the fewest likeliest whose probabilities reach top_p."""
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)                                      # (B, 1)
    logits = logits / temperature
    if top_k is not None:
        kth_largest = logits.topk(min(top_k, logits.shape[-1])).values[:, -1:]         # (B, 1)
        logits = logits.masked_fill(logits < kth_largest, -float("inf"))
    if top_p is not None and top_p < 1:
        ordered = logits.sort(-1, descending=True).values                            # (B, V)
        probabilities = ordered.softmax(-1)
        # keep a token while the likelier ones before it fall short of top_p (so the likeliest always stays)
        keep = (probabilities.cumsum(-1) - probabilities) < top_p                     # (B, V)
        smallest_kept = ordered.gather(-1, keep.sum(-1, keepdim=True) - 1)             # (B, 1)
        logits = logits.masked_fill(logits < smallest_kept, -float("inf"))
    return logits.softmax(-1).multinomial(1)                                          # (B, 1)
