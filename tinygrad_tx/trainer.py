"""The training loop behind `python -m tinygrad_tx.train`: batches, AdamW with warmup and cosine
decay, gradient clipping, periodic evaluation, metrics, checkpoints, exact resume, a final sample.

Started as several processes (python -m tinygrad_tx.distributed.run --nproc-per-node N -m tinygrad_tx.train),
it trains data-parallel: each rank draws its own batches of batch_size (so an iteration covers N times as
many tokens), the gradients are averaged over the ranks, and rank 0 alone evaluates, logs and saves. A
checkpoint resumes on any number of ranks (rank 0 continues the saved batch stream; the others draw new ones).

Resume is exact because a checkpoint is taken right after an evaluation, before the training
step of that iteration, and stores every random state the following steps draw from (the
batch generator and the device generator used by dropout).
"""
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields

from . import random as tg_random
from .amp.precision import Precision
from .autograd import no_grad
from .checkpoint import load_checkpoint, save_checkpoint
from .data import open_dataset, tokenizer_from_dict
from .distributed.training import DataParallelRun
from .nn import clip_grad_norm_
from .optim.lr_scheduler import cosine_with_warmup
from .pretrained import PretrainedError, load_pretrained, save_pretrained


@dataclass
class TrainConfig:
    # model
    model: str = "gpt2-mini"
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = True
    # data
    data: str = ""  # a text file or a directory of token files (data/prepare.py); empty: the bundled Shakespeare
    tokenizer: str = "char"
    init_from: str = ""  # a HuggingFace GPT-2 directory to fine-tune (its shape, its tokenizer); block_size 0: its own
    batch_size: int = 12
    # optimization
    max_iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    # evaluation and output
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 10
    out_dir: str = "out"
    seed: int = 1337
    device: str = "cpu"
    dtype: str = "float32"  # float32, tf32, float16 (autocast + loss scaling), bfloat16 (autocast); amp/precision.py
    sample_tokens: int = 300


PRESETS = {
    # nanoGPT's shakespeare_char recipe scaled for a laptop CPU (its README's CPU command; like nanoGPT's
    # train.py, no biases in Linear and LayerNorm layers)
    "shakespeare-char-cpu": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, max_iters=2000,
                                 learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, lr_decay_iters=2000,
                                 beta1=0.9, beta2=0.99, weight_decay=0.1, dropout=0.0, grad_clip=1.0,
                                 eval_interval=250, eval_iters=20, bias=False),
    # nanoGPT's shakespeare_char recipe as it runs on a GPU
    "shakespeare-char": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, max_iters=5000,
                             learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, lr_decay_iters=5000,
                             beta1=0.9, beta2=0.99, weight_decay=0.1, dropout=0.2, grad_clip=1.0,
                             eval_interval=250, eval_iters=200, bias=False),
    # nanoGPT's finetune_shakespeare: a pretrained GPT-2 (--init-from DIR) at a small constant learning rate. nanoGPT
    # takes 32 sequences per step as 1 x 32 gradient accumulation steps; here as one batch of 32.
    "finetune-shakespeare": dict(block_size=0, batch_size=32, max_iters=20, learning_rate=3e-5, min_lr=3e-5,
                                 warmup_iters=0, lr_decay_iters=20, beta1=0.9, beta2=0.95, weight_decay=0.1,
                                 dropout=0.0, grad_clip=1.0, eval_interval=5, eval_iters=40),
}


class ConfigError(ValueError):
    """A run that cannot start as configured: no checkpoint to resume, an out_dir that cannot be made, a dtype
    the device lacks, a model shape GPT2 refuses. (A data file that cannot be trained on raises data.DataError.)
    The training program prints both as usage errors; any other exception from Trainer is a bug and keeps its
    traceback."""


def config_from_preset(name, **overrides):
    if name not in PRESETS:
        raise ValueError(f"unknown training preset {name!r}; choose one of {', '.join(PRESETS)}")
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in {**PRESETS[name], **overrides}.items() if k in known})


class Trainer:
    def __init__(self, config, resume=False):
        from models.gpt2 import GPT2, GPT2Config  # models sit above the engine; only this program joins them
        self.ranks = DataParallelRun(config.device)
        config.device = self.ranks.device  # a GPU run's rank trains on the GPU of its local rank
        self.config = config
        try:
            os.makedirs(config.out_dir, exist_ok=True)
        except OSError as error:  # a file by that name, no permission
            raise ConfigError(f"cannot create the output directory {config.out_dir}: {error.strerror}") from None
        tg_random.manual_seed(config.seed)
        state = pretrained = None
        if resume:
            try:
                weights, state = load_checkpoint(config.out_dir, device=config.device)
            except FileNotFoundError:  # no ckpt/ folder, or one missing a file
                raise ConfigError(f"--resume: no complete checkpoint in {os.path.join(config.out_dir, 'ckpt')} "
                                  "to continue from") from None
            tokenizer = tokenizer_from_dict(state["tokenizer"])
            self.dataset = open_dataset(state["train_config"]["data"] or None, tokenizer,
                                       seed=self._data_seed(state["iteration"]))
            self.model_config = GPT2Config.from_dict(state["model_config"])
        else:
            pretrained, tokenizer = self._load_pretrained() if config.init_from else (None, config.tokenizer)
            self.dataset = open_dataset(config.data or None, tokenizer, seed=self._data_seed(0))
            self.model_config = pretrained.config if pretrained is not None else GPT2Config(
                n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd, block_size=config.block_size,
                vocab_size=self.dataset.tokenizer.vocab_size, dropout=config.dropout, bias=config.bias)
        self.dataset.check_block_size(self.model_config.block_size)
        try:
            self.precision = Precision(config.dtype, config.device)
        except ValueError as error:  # tf32 off the GPU, bfloat16 without ml_dtypes: the message says what to do
            raise ConfigError(str(error)) from None
        try:
            model = pretrained if pretrained is not None else GPT2(self.model_config)
        except ValueError as error:  # a shape the model refuses: n_embd not divisible by n_head
            raise ConfigError(str(error)) from None
        self.model = model.to(config.device)
        self.optimizer = self.model.configure_optimizers(config.weight_decay, config.learning_rate,
                                                         (config.beta1, config.beta2))
        self.iteration, self.best_val_loss = 0, float("inf")
        if state is not None:
            self.model.load_state_dict(weights)
            self.optimizer.load_state_dict(state["optimizer"])
            self.iteration, self.best_val_loss = state["iteration"], state["best_val_loss"]
            if self.ranks.is_main:  # the saved random streams are rank 0's
                self.dataset.set_rng_state(state["data_rng"])
                tg_random.set_rng_state(state["device_rng"], config.device)
            if state.get("grad_scaler"):
                self.precision.scaler.load_state_dict(state["grad_scaler"])
        if not self.ranks.is_main:  # dropout differs between ranks, as their batches do
            tg_random.manual_seed(config.seed + self.ranks.rank)
        self.training_model = self.ranks.wrap(self.model)  # DistributedDataParallel on several ranks
        self.metrics_path = os.path.join(config.out_dir, "metrics.jsonl")
        if self.ranks.is_main:
            self._keep_metrics_up_to(self.iteration if resume else -1)
        self._stop_requested = False

    def _data_seed(self, iteration):
        """Rank 0's batches are a one-process run's; each other rank draws a stream of its own."""
        return self.config.seed if self.ranks.is_main else [self.config.seed, self.ranks.rank, iteration]

    def _load_pretrained(self):
        """-> (model, tokenizer) of the HuggingFace GPT-2 in init_from, its position table cropped to block_size."""
        c = self.config
        try:
            model, tokenizer = load_pretrained(c.init_from, dropout=c.dropout)
        except PretrainedError as error:
            raise ConfigError(f"--init-from {c.init_from}: {error}") from None
        if c.block_size > model.config.block_size:
            raise ConfigError(f"--block-size {c.block_size}: the pretrained model in {c.init_from} has "
                              f"{model.config.block_size} positions")
        if c.block_size:
            model.crop_block_size(c.block_size)
        return model, tokenizer

    def save_pretrained(self):
        """Write the model and its tokenizer to OUT_DIR/hf as a HuggingFace GPT-2 directory; -> the path."""
        path = os.path.join(self.config.out_dir, "hf")
        save_pretrained(self.model, self.dataset.tokenizer, path)
        return path

    # --- pieces of one iteration --------------------------------------------------------------------------
    def learning_rate(self, iteration):
        c = self.config
        return cosine_with_warmup(iteration, c.learning_rate, c.warmup_iters, c.lr_decay_iters, c.min_lr)

    def train_step(self, iteration):
        c = self.config
        lr = self.learning_rate(iteration)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = self.dataset.get_batch("train", c.batch_size, self.model_config.block_size, c.device)
        with self.precision.autocast():
            _, loss = self.training_model(x, y)
        self.optimizer.zero_grad(set_to_none=True)
        scaler = self.precision.scaler  # disabled (every call a plain pass-through) unless --dtype float16
        scaler.scale(loss).backward()
        scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        if c.grad_clip:
            clip_grad_norm_(self.model.parameters(), c.grad_clip)
        scaler.step(self.optimizer)  # skipped when a float16 gradient overflowed
        scaler.update()
        return loss.item(), lr

    @no_grad()
    def estimate_loss(self):
        """Mean loss over eval_iters random batches of each split, with dropout off."""
        self.model.eval()
        losses = {}
        for split in ("train", "val"):
            total = 0.0
            for _ in range(self.config.eval_iters):
                x, y = self.dataset.get_batch(split, self.config.batch_size, self.model_config.block_size,
                                              self.config.device)
                with self.precision.autocast():
                    total += self.model(x, y)[1].item()
            losses[split] = total / self.config.eval_iters
        self.model.train()
        return losses

    def save(self):
        if not self.ranks.is_main:
            return
        save_checkpoint(self.config.out_dir, self.model, self.optimizer, {
            "iteration": self.iteration, "best_val_loss": self.best_val_loss,
            "model_config": asdict(self.model_config), "train_config": asdict(self.config),
            "tokenizer": self.dataset.tokenizer.to_dict(),
            "data_rng": self.dataset.get_rng_state(), "device_rng": tg_random.get_rng_state(self.config.device),
            "grad_scaler": self.precision.scaler.state_dict()})

    def _keep_metrics_up_to(self, iteration):
        """A fresh run starts an empty log; a resumed one drops lines written after its checkpoint."""
        kept = [r for r in read_metrics(self.config.out_dir) if r["iter"] <= iteration] \
            if os.path.exists(self.metrics_path) and iteration >= 0 else []
        with open(self.metrics_path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)

    def log(self, record):
        if not self.ranks.is_main:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    # --- the loop ---------------------------------------------------------------------------------------------------
    def train(self, resumed=False):
        c = self.config
        tokens_per_iter = c.batch_size * self.model_config.block_size * self.ranks.world_size
        progress = Progress(c.max_iters, self.iteration, quiet=not self.ranks.is_main)
        previous_handler = signal.signal(signal.SIGINT, self._request_stop)
        try:
            window_start, window_iters = time.perf_counter(), 0
            for iteration in range(self.iteration, c.max_iters + 1):
                self.iteration = iteration
                is_eval_point = iteration % c.eval_interval == 0 or iteration == c.max_iters
                if is_eval_point and not (resumed and iteration == progress.first) and self.ranks.is_main:
                    losses = self.estimate_loss()  # the other ranks go on, and wait in the next all-reduce
                    self.best_val_loss = min(self.best_val_loss, losses["val"])
                    self.log({"iter": iteration, "train_loss": losses["train"], "val_loss": losses["val"],
                              "lr": self.learning_rate(iteration), "ms_per_iter": None, "tokens_per_s": None})
                    progress.message(f"iter {iteration}: train loss {losses['train']:.4f}, "
                                     f"val loss {losses['val']:.4f}")
                    self.save()
                    window_start = time.perf_counter()  # evaluation time is not training time
                if iteration == c.max_iters or self.ranks.any_rank(self._stop_requested):
                    self._stop_requested = iteration < c.max_iters
                    break
                loss, lr = self.train_step(iteration)
                window_iters += 1
                if (iteration + 1) % c.log_interval == 0:
                    # the loss of this step (as nanoGPT logs it): an average would depend on where a resume began
                    elapsed = time.perf_counter() - window_start
                    ms_per_iter = 1000 * elapsed / window_iters
                    self.log({"iter": iteration + 1, "train_loss": loss, "val_loss": None,
                              "lr": lr, "ms_per_iter": ms_per_iter, "tokens_per_s": tokens_per_iter / elapsed
                              * window_iters})
                    progress.update(iteration + 1, loss, tokens_per_iter * window_iters / elapsed, ms_per_iter)
                    window_start, window_iters = time.perf_counter(), 0
            if self._stop_requested and iteration < c.max_iters:
                self.iteration = iteration
                self.save()
                progress.message(f"interrupted: checkpoint saved at iteration {iteration} in {c.out_dir}/ckpt; "
                                 f"continue with --resume")
        finally:
            signal.signal(signal.SIGINT, previous_handler)
            progress.close()
        return self.best_val_loss

    def _request_stop(self, signum, frame):
        # finish the current step (an optimizer update half applied would corrupt the weights), then save
        self._stop_requested = True

    def sample(self, prompt="\n", max_new_tokens=None, temperature=0.8, top_k=200):
        from .tensor import Tensor
        ids = self.dataset.tokenizer.encode(prompt)
        idx = Tensor([ids], device=self.config.device)
        self.model.eval()
        out = self.model.generate(idx, max_new_tokens or self.config.sample_tokens, temperature, top_k)
        return self.dataset.tokenizer.decode(out[0].tolist())


class Progress:
    """A one-line progress bar: iteration, loss, tokens/s and time left."""

    def __init__(self, total, first, quiet=False):
        self.total, self.first, self.start = total, first, time.perf_counter()
        self.interactive = sys.stdout.isatty()
        self.quiet = quiet  # a data-parallel run's ranks other than 0

    def update(self, iteration, loss, tokens_per_s, ms_per_iter):
        if self.quiet:
            return
        done = (iteration - self.first) / max(self.total - self.first, 1)
        eta = (time.perf_counter() - self.start) / max(done, 1e-9) * (1 - done)
        bar = "#" * int(30 * iteration / self.total)
        line = (f"[{bar:<30}] {iteration}/{self.total} loss {loss:.4f} | {tokens_per_s:,.0f} tok/s | "
                f"{ms_per_iter:.1f} ms/iter | ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        print("\r" + line if self.interactive else line, end="" if self.interactive else "\n", flush=True)

    def message(self, text):
        if self.quiet:
            return
        print(("\n" if self.interactive else "") + text, flush=True)

    def close(self):
        if self.interactive and not self.quiet:
            print()


def read_metrics(out_dir):
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_losses(out_dir, path=None):
    """Write the loss curve (training batches, and evaluated train/val loss) to OUT_DIR/loss.png."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping loss.png (pip install 'tinygrad_tx[train]')")
        return None
    records = read_metrics(out_dir)
    steps = [r for r in records if r["val_loss"] is None]
    evals = [r for r in records if r["val_loss"] is not None]
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot([r["iter"] for r in steps], [r["train_loss"] for r in steps], alpha=0.4, label="train (batches)")
    axes.plot([r["iter"] for r in evals], [r["train_loss"] for r in evals], "o-", label="train (eval)")
    axes.plot([r["iter"] for r in evals], [r["val_loss"] for r in evals], "o-", label="val (eval)")
    axes.set_xlabel("iteration")
    axes.set_ylabel("cross-entropy loss")
    axes.set_title(f"training loss ({os.path.basename(os.path.abspath(out_dir))})")
    axes.grid(alpha=0.3)
    axes.legend()
    path = path or os.path.join(out_dir, "loss.png")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
