"""Train the same GPT-2 with tinygrad_tx and with PyTorch on the CPU, alternating, and compare.

Both start from the same weights (copied from tinygrad_tx's init into the PyTorch model) and see
the same batches; each runs the full recipe (AdamW, warmup + cosine decay, grad clipping).
Timing alternates blocks of iterations between the two, so machine noise hits both alike.
Peak memory is measured in a separate child process per framework (growth of the resident set
while training, over its size just before), since one process holding both would blur the two.

    python benchmarks/train_cpu.py                 # the shakespeare-char-cpu recipe, 2000 iterations
    python benchmarks/train_cpu.py --iters 200     # a quicker look
    python benchmarks/train_cpu.py --shape shakespeare-char --iters 50 --block 10
                                                   # nanoGPT's GPU recipe's model (6 layers, 384 dims, block 256)
                                                   # at batch 12, on the CPU
"""
import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import tinygrad_tx as tg  # noqa: E402  (first: it configures NumPy's OpenBLAS, see tinygrad_tx/openblas.py)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as tnn  # noqa: E402
import torch.nn.functional as TF  # noqa: E402

from tinygrad_tx.data import TextDataset  # noqa: E402
from tinygrad_tx.nn import clip_grad_norm_  # noqa: E402
from tinygrad_tx.optim.lr_scheduler import cosine_with_warmup  # noqa: E402
from tinygrad_tx.trainer import config_from_preset  # noqa: E402
from models.gpt2 import GPT2, GPT2Config  # noqa: E402


# --- the PyTorch twin: nanoGPT's model, written out here ------------------------------------------------
class TorchAttention(tnn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head = c.n_head
        self.c_attn = tnn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = tnn.Linear(c.n_embd, c.n_embd, bias=c.bias)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = TF.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class TorchBlock(tnn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1, self.attn = tnn.LayerNorm(c.n_embd, bias=c.bias), TorchAttention(c)
        self.ln_2 = tnn.LayerNorm(c.n_embd, bias=c.bias)
        self.mlp = tnn.ModuleDict(dict(c_fc=tnn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias),
                                       c_proj=tnn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp.c_proj(TF.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


class TorchGPT(tnn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = tnn.ModuleDict(dict(
            wte=tnn.Embedding(c.vocab_size, c.n_embd), wpe=tnn.Embedding(c.block_size, c.n_embd),
            h=tnn.ModuleList([TorchBlock(c) for _ in range(c.n_layer)]), ln_f=tnn.LayerNorm(c.n_embd, bias=c.bias)))
        self.lm_head = tnn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight

    def forward(self, idx, targets):
        pos = torch.arange(idx.shape[1])
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return TF.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


# --- one training setup per framework, same interface ------------------------------------------------------
class Run:
    def __init__(self, framework, config, model_config, weights):
        self.framework, self.config = framework, config
        self.dataset = TextDataset(seed=config.seed)  # same seed: the same batches for both frameworks
        if framework == "tinygrad_tx":
            self.model = GPT2(model_config)
            self.model.load_state_dict({k: tg.tensor(v) for k, v in weights.items()})
            self.optimizer = self.model.configure_optimizers(config.weight_decay, config.learning_rate,
                                                             (config.beta1, config.beta2))
        else:
            self.model = TorchGPT(model_config)
            self.model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
            params = list(self.model.parameters())
            groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
                      {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
            self.optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, betas=(config.beta1, config.beta2))
        self.iteration = 0

    def batch(self, split):
        x, y = self.dataset.get_batch(split, self.config.batch_size, self.config.block_size)
        if self.framework == "tinygrad_tx":
            return x, y
        return torch.from_numpy(x.numpy()), torch.from_numpy(y.numpy())

    def step(self):
        c = self.config
        lr = cosine_with_warmup(self.iteration, c.learning_rate, c.warmup_iters, c.lr_decay_iters, c.min_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = self.batch("train")
        if self.framework == "tinygrad_tx":
            _, loss = self.model(x, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_grad_norm_(self.model.parameters(), c.grad_clip)
        else:
            loss = self.model(x, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.optimizer.step()
        self.iteration += 1
        return loss.item()

    def val_loss(self, batches):
        total = 0.0
        for x, y in batches:
            if self.framework == "tinygrad_tx":
                with tg.no_grad():
                    total += self.model(tg.tensor(x), tg.tensor(y))[1].item()
            else:
                with torch.no_grad():
                    total += self.model(torch.from_numpy(x), torch.from_numpy(y)).item()
        return total / len(batches)


# the model shapes raced: the CPU recipe, and the GPU recipe's model at batch 12 (without its dropout, which the two
# frameworks would draw differently)
SHAPES = {"shakespeare-char-cpu": {}, "shakespeare-char": dict(batch_size=12)}


def setup(iters, shape="shakespeare-char-cpu"):
    config = config_from_preset(shape, max_iters=iters, lr_decay_iters=iters, **SHAPES[shape])
    tg.manual_seed(config.seed)
    vocab = TextDataset().tokenizer.vocab_size
    model_config = GPT2Config(n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd,
                              block_size=config.block_size, vocab_size=vocab, dropout=0.0, bias=config.bias)
    weights = {k: v.numpy() for k, v in GPT2(model_config).state_dict().items()}
    return config, model_config, weights


def resident_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def measure_memory(framework, iters, shape):
    """Child process: train `iters` steps; report the peak growth of the resident set over its size
    just before training (sampled every millisecond, so it sees peaks inside forward and backward)."""
    config, model_config, weights = setup(iters, shape)
    run = Run(framework, config, model_config, weights)
    baseline, peak, done = resident_mib(), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], resident_mib())
            time.sleep(0.001)
    sampler = threading.Thread(target=sample)
    sampler.start()
    for _ in range(iters):
        run.step()
    done.set()
    sampler.join()
    print(json.dumps({"peak_mib": peak[0] - baseline}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="shakespeare-char-cpu")
    parser.add_argument("--block", type=int, default=50, help="iterations per timing block")
    parser.add_argument("--eval-batches", type=int, default=200)
    parser.add_argument("--memory-child", choices=["tinygrad_tx", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    if args.memory_child:
        measure_memory(args.memory_child, 30, args.shape)
        return

    config, model_config, weights = setup(args.iters, args.shape)
    runs = {name: Run(name, config, model_config, weights) for name in ("tinygrad_tx", "torch")}
    seconds = {name: 0.0 for name in runs}
    last_loss = {}
    for start in range(0, args.iters, args.block):
        for name, run in runs.items():
            began = time.perf_counter()
            for _ in range(min(args.block, args.iters - start)):
                last_loss[name] = run.step()
            seconds[name] += time.perf_counter() - began
        done = min(start + args.block, args.iters)
        print(f"iter {done}: " + ", ".join(f"{n} loss {last_loss[n]:.4f} {1000 * seconds[n] / done:.1f} ms/iter"
                                           for n in runs), flush=True)

    eval_data = TextDataset(seed=0)
    batches = [tuple(t.numpy() for t in eval_data.get_batch("val", config.batch_size, config.block_size))
               for _ in range(args.eval_batches)]
    val = {name: run.val_loss(batches) for name, run in runs.items()}
    memory = {}
    for name in runs:
        out = subprocess.run([sys.executable, __file__, "--memory-child", name, "--shape", args.shape],
                             capture_output=True, text=True, check=True)
        memory[name] = json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]

    ms = {name: 1000 * seconds[name] / args.iters for name in runs}
    print()
    print(f"recipe: {args.shape} ({config.n_layer} layers, {config.n_head} heads, {config.n_embd} dims, "
          f"block {config.block_size}, batch {config.batch_size}), {args.iters} iterations, "
          f"torch {torch.__version__}, numpy {np.__version__}, {os.cpu_count()} CPU threads")
    print("| framework | ms/iter | ratio to PyTorch | val loss | peak memory growth (MiB) |")
    print("|---|---|---|---|---|")
    for name in runs:
        print(f"| {name} | {ms[name]:.1f} | {ms[name] / ms['torch']:.2f} | {val[name]:.4f} | {memory[name]:.0f} |")
    if any(not math.isfinite(v) for v in val.values()):
        sys.exit("a run diverged")


if __name__ == "__main__":
    main()
