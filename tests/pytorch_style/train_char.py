"""A character-level GPT trained on Shakespeare, written the way small PyTorch training scripts are:
plain `import torch`, nothing from tinygrad_tx. The tests run it twice, once on PyTorch and once with
tinygrad_tx answering `import torch` (run_as_torch.py), from the same initial weights, and compare.

    python tests/pytorch_style/train_char.py --out_dir=/tmp/char --max_iters=8 --dump_weights=/tmp/w.npz
    python tests/pytorch_style/run_as_torch.py tests/pytorch_style/train_char.py --out_dir=/tmp/char_tg \
        --max_iters=8 --init_weights=/tmp/w.npz

Options are the fields of Config, given as --name=value. Every iteration's loss, every evaluation and the
sample go to OUT_DIR/log.jsonl. The batches come from NumPy's generator, seeded by the iteration, so both
libraries see the same batches and a resumed run sees what an uninterrupted one would.
"""
import inspect
import json
import math
import os
import sys
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Config:
    text: str = os.path.join(HERE, "..", "..", "tinygrad_tx", "data", "tinyshakespeare.txt")
    out_dir: str = "out-char"
    init_from: str = "scratch"  # or "resume": continue from OUT_DIR/ckpt.pt
    init_weights: str = ""      # an .npz of the model's state_dict to start from
    dump_weights: str = ""      # write the initial state_dict here as .npz
    device: str = "cpu"
    dtype: str = "float32"      # float16: autocast on a GPU, and loss scaling (GradScaler) on any device
    seed: int = 1337
    # the model
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    block_size: int = 32
    dropout: float = 0.0
    bias: bool = True
    flash: bool = True          # F.scaled_dot_product_attention; False: softmax against a registered causal mask
    # the optimizer and its schedule
    batch_size: int = 4
    max_iters: int = 8
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 2
    lr_decay_iters: int = 8
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    # evaluation and sampling
    eval_interval: int = 4
    eval_iters: int = 2
    sample_tokens: int = 0      # after training, this many characters from the prompt "\n"
    top_k: int = 1              # 1: greedy, the same text from either library


def parse_config(argv):
    config, kinds = Config(), {f.name: f.type for f in fields(Config)}
    for argument in argv:
        name, _, value = argument.removeprefix("--").partition("=")
        if name not in kinds:
            sys.exit(f"unknown option --{name}; options: {', '.join(kinds)}")
        kind = kinds[name]
        setattr(config, name, value.lower() in ("1", "true") if kind is bool else kind(value))
    return config


# --- the model -------------------------------------------------------------------------------------------------------
class LayerNorm(nn.Module):
    """nn.LayerNorm, with the bias optional."""

    def __init__(self, n_embd, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_embd))
        self.bias = nn.Parameter(torch.zeros(n_embd)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_head, self.n_embd, self.flash = config.n_head, config.n_embd, config.flash
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        if not self.flash:
            mask = torch.tril(torch.ones(config.block_size, config.block_size))
            self.register_buffer("mask", mask.view(1, 1, config.block_size, config.block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.qkv(x).split(self.n_embd, dim=2)  # each (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None,
                                               dropout_p=self.dropout if self.training else 0, is_causal=True)
        else:
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))  # (B, nh, T, T)
            scores = scores.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
            y = self.attn_dropout(F.softmax(scores, dim=-1)) @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # the heads side by side again
        return self.resid_dropout(self.c_proj(y))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, config.bias)
        self.mlp = nn.Sequential(nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias), nn.GELU(),
                                 nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias),
                                 nn.Dropout(config.dropout))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class CharGPT(nn.Module):
    def __init__(self, config, vocab_size):
        super().__init__()
        self.block_size = config.block_size
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # one matrix embeds and unembeds
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: the projections into the residual stream start smaller
            if name.endswith("c_proj.weight") or name.endswith("mlp.2.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            torch.nn.init.zeros_(module.bias)

    def forward(self, idx, targets=None):
        B, T = idx.size()
        pos = torch.arange(0, T, dtype=torch.long, device=idx.device)  # (T,)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is None:  # generation reads only the last position's logits
            return self.lm_head(x[:, [-1], :]), None  # (B, 1, vocab)
        logits = self.lm_head(x)  # (B, T, vocab)
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)

    def configure_optimizer(self, config, device_type):
        """AdamW; matrices and embeddings decay, biases and LayerNorm gains do not."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        fused = "fused" in inspect.signature(torch.optim.AdamW).parameters and device_type == "cuda"
        return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(config.beta1, config.beta2),
                                 **(dict(fused=True) if fused else {}))

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.block_size:])
            logits = logits[:, -1, :] / temperature  # (B, vocab)
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("Inf")
            idx_next = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)  # (B, 1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx


# --- data ------------------------------------------------------------------------------------------------------------
def prepare_data(config):
    """The text as uint16 character ids in OUT_DIR/{train,val}.bin (90% / 10%); returns the characters."""
    with open(config.text, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index[c] for c in text], dtype=np.uint16)
    split = int(0.9 * len(ids))
    ids[:split].tofile(os.path.join(config.out_dir, "train.bin"))
    ids[split:].tofile(os.path.join(config.out_dir, "val.bin"))
    return chars


def get_batch(config, split, iteration, draw, device_type):
    data = np.memmap(os.path.join(config.out_dir, f"{split}.bin"), dtype=np.uint16, mode="r")
    rng = np.random.default_rng([config.seed, iteration, draw, split == "val"])
    ix = rng.integers(0, len(data) - config.block_size, config.batch_size)
    x = torch.stack([torch.from_numpy(data[i:i + config.block_size].astype(np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + config.block_size].astype(np.int64)) for i in ix])
    if device_type == "cuda":
        return x.pin_memory().to(config.device, non_blocking=True), y.pin_memory().to(config.device, non_blocking=True)
    return x.to(config.device), y.to(config.device)


# --- training --------------------------------------------------------------------------------------------------------
def learning_rate(config, it):
    """Linear warmup, then cosine decay to min_lr at lr_decay_iters."""
    if it < config.warmup_iters:
        return config.learning_rate * (it + 1) / (config.warmup_iters + 1)
    if it > config.lr_decay_iters:
        return config.min_lr
    progress = (it - config.warmup_iters) / (config.lr_decay_iters - config.warmup_iters)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.learning_rate - config.min_lr)


def main(argv):
    config = parse_config(argv)
    os.makedirs(config.out_dir, exist_ok=True)
    torch.manual_seed(config.seed)
    device_type = "cuda" if "cuda" in config.device else "cpu"
    half = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[config.dtype]
    ctx = nullcontext() if device_type == "cpu" else torch.amp.autocast(device_type=device_type, dtype=half)
    chars = prepare_data(config)
    log = open(os.path.join(config.out_dir, "log.jsonl"), "a")

    iter_num, checkpoint_path = 0, os.path.join(config.out_dir, "ckpt.pt")
    model = CharGPT(config, len(chars))
    if config.init_from == "resume":
        checkpoint = torch.load(checkpoint_path, map_location=config.device)
        model.load_state_dict(checkpoint["model"])
        iter_num = checkpoint["iter_num"]
    elif config.init_weights:
        model.load_state_dict({name: torch.from_numpy(array) for name, array in np.load(config.init_weights).items()})
    if config.dump_weights:
        np.savez(config.dump_weights, **{name: t.detach().cpu().numpy() for name, t in model.state_dict().items()})
    model.to(config.device)
    scaler = torch.amp.GradScaler(device_type, enabled=(config.dtype == "float16"))
    optimizer = model.configure_optimizer(config, device_type)
    if config.init_from == "resume":
        optimizer.load_state_dict(checkpoint["optimizer"])
        scaler.load_state_dict(checkpoint["scaler"])
        checkpoint = None

    @torch.no_grad()
    def estimate_loss():
        model.eval()
        losses = {}
        for split in ("train", "val"):
            values = torch.zeros(config.eval_iters)
            for k in range(config.eval_iters):
                x, y = get_batch(config, split, iter_num, 1 + k, device_type)
                with ctx:
                    _, loss = model(x, y)
                values[k] = loss.item()
            losses[split] = values.mean().item()
        model.train()
        return losses

    while True:
        if iter_num % config.eval_interval == 0 or iter_num == config.max_iters:
            losses = estimate_loss()
            print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
            log.write(json.dumps({"eval": iter_num, **losses}) + "\n")
            if iter_num > 0:
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "scaler": scaler.state_dict(), "iter_num": iter_num, "config": asdict(config)},
                           checkpoint_path)
        if iter_num == config.max_iters:
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, iter_num)
        x, y = get_batch(config, "train", iter_num, 0, device_type)
        with ctx:
            logits, loss = model(x, y)
        scaler.scale(loss).backward()
        if config.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        print(f"iter {iter_num}: loss {loss.item():.4f}")
        log.write(json.dumps({"iter": iter_num, "loss": loss.item()}) + "\n")
        iter_num += 1

    if config.sample_tokens:
        model.eval()
        prompt = torch.tensor([chars.index("\n")], dtype=torch.long, device=config.device)[None, ...]
        with ctx:
            ids = model.generate(prompt, config.sample_tokens, top_k=config.top_k)[0].tolist()
        text = "".join(chars[i] for i in ids)
        print(text)
        log.write(json.dumps({"sample": text}) + "\n")
    log.close()


if __name__ == "__main__":
    main(sys.argv[1:])
