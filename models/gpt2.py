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

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)               # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)                # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)                # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)                # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)                 # (B, T, C): heads side by side
        return self.resid_dropout(self.c_proj(y))


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

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
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

    def hidden_states(self, idx):
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"GPT2: sequence length {T} exceeds block_size {self.config.block_size}")
        positions = tg.arange(T, device=idx.device)                         # (T,)
        x = self.transformer.wte(idx) + self.transformer.wpe(positions)     # (B, T, C)
        x = self.transformer.drop(x)
        for block in self.transformer.h:
            x = block(x)                                                    # (B, T, C)
        return self.transformer.ln_f(x)                                     # (B, T, C)

    def forward(self, idx, targets=None):
        """idx (B, T) token ids -> logits (B, T, vocab_size), and the mean cross-entropy if targets are given."""
        logits = self.lm_head(self.hidden_states(idx))                      # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-1)
        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, betas=(0.9, 0.95)):
        """AdamW that decays matrices (Linear weights, embeddings) but not biases or LayerNorm gains."""
        parameters = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
        ]
        return tg.optim.AdamW(groups, lr=learning_rate, betas=betas)

    @tg.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        """Extend idx (B, T) by sampling one token at a time from the model's next-token distribution."""
        for _ in range(max_new_tokens):
            context = idx if idx.shape[1] <= self.config.block_size else idx[:, -self.config.block_size:]
            last = self.hidden_states(context)[:, -1, :]                    # (B, C)
            logits = self.lm_head(last) / max(temperature, 1e-8)            # (B, V)
            if top_k is not None:
                kth_largest = logits.topk(min(top_k, logits.shape[-1])).values[:, -1:]   # (B, 1)
                logits = logits.masked_fill(logits < kth_largest, -float("inf"))
            next_token = logits.softmax(-1).multinomial(1)                  # (B, 1)
            idx = tg.cat([idx, next_token], dim=1)                          # (B, T + 1)
        return idx

    # --- HuggingFace checkpoints --------------------------------------------------------------------------
    # HF's GPT-2 stores these as Conv1D (in_features, out_features): transpose to Linear's (out, in)
    _CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")

    @classmethod
    def from_pretrained(cls, path, dtype=None, device=None):
        """Load a local HuggingFace GPT-2 directory (config.json + model.safetensors)."""
        with open(os.path.join(path, "config.json")) as f:
            hf = json.load(f)
        if hf.get("model_type", "gpt2") != "gpt2":
            raise ValueError(f"from_pretrained: {path} holds a {hf.get('model_type')!r} model, not gpt2")
        if hf.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"from_pretrained: activation {hf['activation_function']!r} is not GPT-2's tanh GELU")
        config = GPT2Config(block_size=hf["n_positions"], vocab_size=hf["vocab_size"], n_layer=hf["n_layer"],
                            n_head=hf["n_head"], n_embd=hf["n_embd"], bias=True,
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

    def save_pretrained(self, path):
        """Write a directory that transformers.GPT2LMHeadModel.from_pretrained loads."""
        if not self.config.bias:
            raise ValueError("save_pretrained: HuggingFace's GPT-2 always has biases; this model has bias=False")
        os.makedirs(path, exist_ok=True)
        c = self.config
        hf = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": c.vocab_size,
              "n_positions": c.block_size, "n_ctx": c.block_size, "n_embd": c.n_embd, "n_layer": c.n_layer,
              "n_head": c.n_head, "n_inner": None, "activation_function": "gelu_new",
              "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
              "layer_norm_epsilon": c.layer_norm_epsilon, "initializer_range": 0.02,
              "tie_word_embeddings": True, "bos_token_id": 50256, "eos_token_id": 50256}
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
