"""What do residual connections and LayerNorm do for a deep Transformer? Train and measure.

GPT-style decoder-only stacks (models/transformer.py's DecoderOnlyTransformer) of two depths, the same
width, on character-level tiny Shakespeare, each under these variants:

    pre-LN               x + F(LN(x)), final LayerNorm (GPT-2)            with warmup
    pre-LN, no warmup
    post-LN              LN(x + F(x)) (the original Transformer)           with warmup
    post-LN, no warmup
    no residual          F(LN(x)): the x + removed, LayerNorm kept         with warmup
    no LayerNorm         x + F(x): residual kept, every LayerNorm removed  with warmup
    no LayerNorm, scaled init   the same, each layer's output projections scaled by 1/sqrt(2 depth) at init

Every run of a depth starts from the same weights (one seed) and sees the same batches. Recorded per run:
the training loss at every step, the validation loss at intervals, the gradient norm of each layer's
parameters at initialization (averaged over a few batches) and during training, the total gradient norm,
whether training diverged (a NaN/inf loss, or the smoothed loss rising more than 1 nat above its lowest
value), and the final validation loss. No gradient clipping: the point is to see the raw gradients.

Writes results.json, results.md (the table) and three PNG plots to --out-dir.

    python examples/residual_layernorm_study.py            # the full study (about 15-20 minutes)
    python examples/residual_layernorm_study.py --quick    # a small smoke run (well under 2 minutes)
"""
import os

# small matrices: one BLAS thread is faster than two fighting over shared cores (set before NumPy loads)
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

import tinygrad_tx as tg  # noqa: E402
from tinygrad_tx.data import TextDataset  # noqa: E402
from tinygrad_tx.optim.lr_scheduler import cosine_with_warmup  # noqa: E402
from models.transformer import DecoderOnlyConfig, DecoderOnlyTransformer  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# name: (model switches, whether the learning rate warms up, whether the residual branches' last projections
# start scaled down by 1/sqrt(2 depth), as GPT-2 does, so that the unnormalized stream does not grow with depth)
VARIANTS = {
    "pre-LN": (dict(norm_first=True), True, False),
    "pre-LN, no warmup": (dict(norm_first=True), False, False),
    "post-LN": (dict(norm_first=False), True, False),
    "post-LN, no warmup": (dict(norm_first=False), False, False),
    "no residual": (dict(norm_first=True, residual=False), True, False),
    "no LayerNorm": (dict(layer_norm=False), True, False),
    "no LayerNorm, scaled init": (dict(layer_norm=False), True, True),
}
STYLES = {  # one colour per placement, dashed without warmup
    "pre-LN": ("tab:blue", "-"), "pre-LN, no warmup": ("tab:blue", "--"),
    "post-LN": ("tab:red", "-"), "post-LN, no warmup": ("tab:red", "--"),
    "no residual": ("tab:gray", "-"), "no LayerNorm": ("tab:green", "-"),
    "no LayerNorm, scaled init": ("tab:olive", ":"),
}

FULL = dict(depths=[6, 24], d_model=64, n_head=4, dim_feedforward=256, block_size=64, batch_size=16, steps=400,
            warmup=100, lr=1e-3, min_lr=1e-4, eval_every=50, eval_batches=8, init_batches=4, record_every=10)
QUICK = dict(depths=[2, 4], d_model=32, n_head=2, dim_feedforward=128, block_size=32, batch_size=8, steps=60,
             warmup=10, lr=1e-3, min_lr=1e-4, eval_every=20, eval_batches=2, init_batches=2, record_every=5)
BLOW_UP_NATS = 1.0   # the smoothed training loss this far above its lowest value counts as diverged
SMOOTHING = 0.9      # exponential moving average of the training loss


def layer_grad_norms(model):
    """The gradient norm of each layer's parameters together: sqrt(sum of squares over the layer)."""
    norms = []
    for layer in model.layers:
        total = sum(float((p.grad.numpy().astype(np.float64) ** 2).sum()) for p in layer.parameters()
                    if p.grad is not None)
        norms.append(math.sqrt(total))
    return norms


def total_grad_norm(model):
    return math.sqrt(sum(float((p.grad.numpy().astype(np.float64) ** 2).sum()) for p in model.parameters()
                         if p.grad is not None))


@tg.no_grad()
def evaluate(model, batches):
    model.eval()
    losses = [model(x, y)[1].item() for x, y in batches]
    model.train()
    return float(np.mean(losses))


def unigram_loss(dataset):
    """The validation loss of predicting each character by its training frequency alone: a model at this loss
    has learned nothing about context."""
    counts = np.bincount(dataset.splits["train"], minlength=dataset.tokenizer.vocab_size) + 1
    log_p = np.log(counts / counts.sum())
    return float(-log_p[dataset.splits["val"]].mean())


def run(name, depth, settings, dataset, eval_batches, seed):
    switches, warmup, scaled_init = VARIANTS[name]
    config = DecoderOnlyConfig(vocab_size=dataset.tokenizer.vocab_size, block_size=settings["block_size"],
                               n_layer=depth, d_model=settings["d_model"], n_head=settings["n_head"],
                               dim_feedforward=settings["dim_feedforward"], **switches)
    tg.manual_seed(seed)                      # the same initial weights for every variant of a depth
    model = DecoderOnlyTransformer(config)
    if scaled_init:
        with tg.no_grad():
            for parameter_name, parameter in model.named_parameters():
                if parameter_name.endswith(("out_proj.weight", "linear2.weight")):
                    parameter.mul_(1 / math.sqrt(2 * depth))
    dataset.set_rng_state(np.random.default_rng(seed).bit_generator.state)   # and the same batches
    B, T = settings["batch_size"], settings["block_size"]
    started = time.time()

    # gradients at initialization, before any update
    init_norms, init_losses = [], []
    for _ in range(settings["init_batches"]):
        x, y = dataset.get_batch("train", B, T)
        model.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        init_norms.append(layer_grad_norms(model))
        init_losses.append(loss.item())
    init_loss = float(np.mean(init_losses))
    init_norms = np.mean(init_norms, axis=0).tolist()

    optimizer = tg.optim.Adam(model.parameters(), lr=settings["lr"], betas=(0.9, 0.98), eps=1e-9)
    warmup_iters = settings["warmup"] if warmup else 0
    train_losses, val_losses, layer_norms, total_norms = [], [], [], []
    smoothed, lowest, diverged, reason = None, math.inf, False, ""
    for step in range(settings["steps"]):
        lr = cosine_with_warmup(step, settings["lr"], warmup_iters, settings["steps"], settings["min_lr"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = dataset.get_batch("train", B, T)
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        value = loss.item()
        train_losses.append(value)
        total_norms.append(total_grad_norm(model))
        if step % settings["record_every"] == 0:
            layer_norms.append((step, layer_grad_norms(model)))
        if not math.isfinite(value) or not math.isfinite(total_norms[-1]):
            diverged, reason = True, f"non-finite loss or gradient at step {step}"
            break
        smoothed = value if smoothed is None else SMOOTHING * smoothed + (1 - SMOOTHING) * value
        lowest = min(lowest, smoothed)
        if not diverged and smoothed > lowest + BLOW_UP_NATS:
            diverged, reason = True, f"loss blew up at step {step}"   # recorded; training goes on
        optimizer.step()
        if (step + 1) % settings["eval_every"] == 0 or step + 1 == settings["steps"]:
            val_losses.append((step + 1, evaluate(model, eval_batches)))
    final_val = val_losses[-1][1] if val_losses and not reason.startswith("non-finite") else float("nan")

    late = [norms for step, norms in layer_norms if step >= 0.8 * settings["steps"]] or [layer_norms[-1][1]]
    result = dict(variant=name, depth=depth, warmup_iters=warmup_iters, switches=switches, init_loss=init_loss,
                  init_layer_grad_norms=init_norms, late_layer_grad_norms=np.mean(late, axis=0).tolist(),
                  layer_grad_norms=layer_norms, train_losses=train_losses, val_losses=val_losses,
                  total_grad_norms=total_norms, max_total_grad_norm=float(np.max(total_norms)),
                  diverged=diverged, divergence=reason, final_train_loss=float(np.mean(train_losses[-20:])),
                  final_val_loss=final_val, seconds=time.time() - started)
    print(f"  depth {depth:2d}  {name:<26} init loss {init_loss:.4g}, init grad norm layer 1 {init_norms[0]:.3g}, layer {depth} "
          f"{init_norms[-1]:.3g}; max total {result['max_total_grad_norm']:.3g}; final val {final_val:.4f}"
          f"{'; DIVERGED: ' + reason if diverged else ''}  ({result['seconds']:.0f}s)", flush=True)
    return result


# --- outputs ----------------------------------------------------------------------------------------------------

def smooth(values, factor=SMOOTHING):
    out, running = [], None
    for v in values:
        running = v if running is None else factor * running + (1 - factor) * v
        out.append(running)
    return out


def plot(results, depths, unigram, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {}
    fig, axes = plt.subplots(2, len(depths), figsize=(6 * len(depths), 8), sharex=True, squeeze=False)
    for column, depth in enumerate(depths):
        top, bottom = axes[0][column], axes[1][column]
        for r in (r for r in results if r["depth"] == depth):
            color, style = STYLES[r["variant"]]
            top.plot(smooth(r["train_losses"]), color=color, linestyle=style, label=r["variant"], linewidth=1.2)
            if r["val_losses"]:
                steps, values = zip(*r["val_losses"])
                top.plot(steps, values, color=color, linestyle="none", marker="o", markersize=3)
            bottom.plot(r["total_grad_norms"], color=color, linestyle=style, linewidth=0.8)
        top.axhline(unigram, color="black", linewidth=0.6, linestyle=":", label="unigram baseline")
        top.set_ylim(1.0, 5.0)
        top.set_title(f"depth {depth}: training loss (smoothed; dots: validation)")
        top.set_ylabel("cross-entropy (nats)")
        bottom.set_yscale("log")
        bottom.set_title(f"depth {depth}: total gradient norm")
        bottom.set_xlabel("step")
        top.legend(fontsize=8)
    fig.tight_layout()
    paths["loss"] = os.path.join(out_dir, "loss.png")
    fig.savefig(paths["loss"], dpi=110)
    plt.close(fig)

    for key, title, filename in (("init_layer_grad_norms", "at initialization", "grad_init.png"),
                                 ("late_layer_grad_norms", "over the last 20% of training", "grad_train.png")):
        fig, axes = plt.subplots(1, len(depths), figsize=(6 * len(depths), 4), squeeze=False)
        for column, depth in enumerate(depths):
            ax = axes[0][column]
            for r in (r for r in results if r["depth"] == depth):
                color, style = STYLES[r["variant"]]
                norms = r[key]
                ax.plot(range(1, len(norms) + 1), norms, color=color, linestyle=style, marker="o", markersize=3,
                        label=r["variant"])
            ax.set_yscale("log")
            ax.set_xlabel("layer (1 = next to the input)")
            ax.set_ylabel("gradient norm of the layer's parameters")
            ax.set_title(f"depth {depth}: per-layer gradient norm {title}")
            ax.legend(fontsize=8)
        fig.tight_layout()
        paths[key] = os.path.join(out_dir, filename)
        fig.savefig(paths[key], dpi=110)
        plt.close(fig)
    return paths


def table(results):
    lines = ["| depth | variant | warmup steps | init loss | init grad norm, layer 1 | init grad norm, last layer | "
             "last / first | max total grad norm | diverged | final train loss | final val loss | time |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in results:
        first, last = r["init_layer_grad_norms"][0], r["init_layer_grad_norms"][-1]
        diverged = f"yes ({r['divergence']})" if r["diverged"] else "no"
        lines.append(f"| {r['depth']} | {r['variant']} | {r['warmup_iters']} | {r['init_loss']:.4g} | {first:.3g} | "
                     f"{last:.3g} | {last / first:.3g} | {r['max_total_grad_norm']:.3g} | {diverged} | "
                     f"{r['final_train_loss']:.3f} | {r['final_val_loss']:.3f} | {r['seconds']:.0f}s |")
    return "\n".join(lines)


def write_report(results, settings, unigram, paths, out_dir, elapsed):
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(dict(settings=settings, unigram_val_loss=unigram, elapsed_seconds=elapsed,
                       runs=[{k: v for k, v in r.items() if k != "total_grad_norms"} |
                             {"total_grad_norms": r["total_grad_norms"][::settings["record_every"]]}
                             for r in results]), f, indent=1)
    s = settings
    text = f"""# Residual connections and LayerNorm: study results

Written by `examples/residual_layernorm_study.py`{' --quick' if s.get('quick') else ''}; every number below
is its output ({elapsed / 60:.1f} minutes on this machine).

Decoder-only stacks of depth {', '.join(map(str, s['depths']))}: d_model {s['d_model']}, {s['n_head']} heads,
feed-forward width {s['dim_feedforward']} (tanh-GELU), learned positions, tied input/output embedding, no dropout;
character-level tiny Shakespeare, context {s['block_size']}, batch {s['batch_size']}, {s['steps']} steps of Adam
(beta1 0.9, beta2 0.98, eps 1e-9) at peak learning rate {s['lr']:g}, linear warmup of {s['warmup']} steps
(none for the "no warmup" variants), cosine decay to {s['min_lr']:g}, no gradient clipping.
Initialization: Xavier-uniform matrices, zero biases, token embeddings N(0, 1/d_model), positions N(0, 1/2)
(the same weights for every variant of a depth, the same batches for every run); "scaled init" multiplies each
layer's attention output projection and second feed-forward matrix by 1/sqrt(2 x depth), as GPT-2 does.
Init loss and gradient norms at initialization are averaged over {s['init_batches']} batches;
"last / first" is the last layer's over the first layer's. Final train loss: the mean of the last 20 steps;
final val loss: {s['eval_batches']} fixed validation batches. Unigram baseline (predicting each character by
its frequency, ignoring context): {unigram:.3f}.

{table(results)}

![loss curves]({os.path.basename(paths['loss'])})

![per-layer gradient norms at initialization]({os.path.basename(paths['init_layer_grad_norms'])})

![per-layer gradient norms late in training]({os.path.basename(paths['late_layer_grad_norms'])})
"""
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)


def draw_layer_graphs(out_dir):
    """Pictures of one post-LN and one pre-LN layer's graph, arrows colored by gradient norm, when
    tinygrad_tx.viz and Graphviz are there. Returns the files written."""
    try:
        from tinygrad_tx.viz import draw_graph, dot_program, record_gradients
    except ImportError:
        return []
    if dot_program() is None:
        return []
    from models.transformer import EncoderLayer
    paths = []
    for norm_first, label in ((False, "post-LN"), (True, "pre-LN")):
        tg.manual_seed(0)
        config = DecoderOnlyConfig(vocab_size=10, block_size=4, n_layer=1, d_model=8, n_head=2, dim_feedforward=32,
                                   norm_first=norm_first)
        layer = EncoderLayer(config, causal=True)
        x = tg.randn(1, 4, 8, requires_grad=True)
        y = layer(x)
        with record_gradients():
            (y * tg.randn(1, 4, 8)).sum().backward(retain_graph=True)
        drawing = draw_graph(y, model=layer, names={"x": x, "y": y}, show_grads=True,
                             title=f"{label} layer (d_model 8, 2 heads), gradient norms of a random projection of y")
        paths.append(os.path.join(out_dir, f"graph_{label.replace('-', '_').lower()}.svg"))
        drawing.save(paths[-1])
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small models, a few steps: a smoke run")
    parser.add_argument("--out-dir", default=None, help="default docs/study (quick: out/study-quick)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--depths", type=int, nargs="+", default=None)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--graphs-only", action="store_true",
                        help="only draw the post-LN and pre-LN layer graphs (needs tinygrad_tx.viz and Graphviz)")
    args = parser.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL, quick=args.quick)
    if args.steps:
        settings["steps"] = args.steps
    if args.depths:
        settings["depths"] = args.depths
    out_dir = args.out_dir or os.path.join(REPO, "out/study-quick" if args.quick else "docs/study")
    os.makedirs(out_dir, exist_ok=True)
    if args.graphs_only:
        print("wrote", ", ".join(draw_layer_graphs(out_dir)) or "nothing: tinygrad_tx.viz or Graphviz is missing")
        return []

    dataset = TextDataset()
    eval_dataset = TextDataset(tokenizer=dataset.tokenizer, seed=args.seed + 1)
    eval_batches = [eval_dataset.get_batch("val", settings["batch_size"], settings["block_size"])
                    for _ in range(settings["eval_batches"])]
    unigram = unigram_loss(dataset)
    print(f"unigram baseline val loss {unigram:.3f}; {len(settings['depths'])} depths x {len(args.variants)} "
          f"variants, {settings['steps']} steps each", flush=True)

    started = time.time()
    results = [run(name, depth, settings, dataset, eval_batches, args.seed)
               for depth in settings["depths"] for name in args.variants]
    elapsed = time.time() - started
    paths = plot(results, settings["depths"], unigram, out_dir)
    write_report(results, settings, unigram, paths, out_dir, elapsed)
    if not args.quick:
        draw_layer_graphs(out_dir)
    print("\n" + table(results))
    print(f"\nwrote {out_dir}/results.md, results.json, loss.png, grad_init.png, grad_train.png "
          f"({elapsed:.0f}s)")
    return results


if __name__ == "__main__":
    main()
