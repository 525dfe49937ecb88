"""bfloat16 autocast against float32: the same small GPT trained twice, from the same seed on the same batches.

    python benchmarks/bf16_vs_float32.py                    # 300 iterations of the CPU preset, each way
    python benchmarks/bf16_vs_float32.py --iters 100 --smoothing 0.8

The CPU preset (4 layers, 128 wide, block 64, on the bundled tiny Shakespeare) trains --iters steps in float32,
then with --dtype bfloat16: autocast runs the matrix products on bfloat16 inputs, the weights and the optimizer
stay float32, and there is no loss scaling. The script prints each run's last losses and the largest
difference between the two smoothed training-loss curves (the raw per-batch losses too). bfloat16 keeps 8 bits
of precision, so the curves should agree to a few hundredths: the target is a difference within 0.05.
"""
import argparse
import contextlib
import io
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tinygrad_tx.trainer import Trainer, config_from_preset, read_metrics  # noqa: E402

TARGET = 0.05


def train(dtype, iters, seed, preset):
    """-> (the training loss of every step, the val loss at the end, seconds per iteration)."""
    out_dir = tempfile.mkdtemp()
    config = config_from_preset(preset, dtype=dtype, seed=seed, max_iters=iters, lr_decay_iters=iters,
                                eval_interval=iters, log_interval=1, out_dir=out_dir)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the progress bar
        Trainer(config).train()
    seconds = time.perf_counter() - start
    records = read_metrics(out_dir)
    steps = [r["train_loss"] for r in records if r["val_loss"] is None]
    return steps, [r for r in records if r["val_loss"] is not None][-1]["val_loss"], seconds / iters


def smoothed(losses, smoothing):
    """An exponential moving average, debiased as TensorBoard's: the early steps are not pulled towards 0."""
    average, result = 0.0, []
    for step, loss in enumerate(losses, start=1):
        average = smoothing * average + (1 - smoothing) * loss
        result.append(average / (1 - smoothing ** step))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--preset", default="shakespeare-char-cpu")
    parser.add_argument("--smoothing", type=float, default=0.9, help="the moving average's weight of the past")
    args = parser.parse_args()
    runs = {dtype: train(dtype, args.iters, args.seed, args.preset) for dtype in ("float32", "bfloat16")}
    curves = {dtype: smoothed(steps, args.smoothing) for dtype, (steps, _, _) in runs.items()}
    print(f"{args.preset}, {args.iters} iterations, seed {args.seed}\n")
    print("| dtype | last train loss | smoothed | val loss | ms/iter |\n|---|---|---|---|---|")
    for dtype, (steps, val_loss, seconds) in runs.items():
        print(f"| {dtype} | {steps[-1]:.4f} | {curves[dtype][-1]:.4f} | {val_loss:.4f} | {1000 * seconds:.0f} |")
    smooth_gap = max(abs(a - b) for a, b in zip(curves["float32"], curves["bfloat16"]))
    raw_gap = max(abs(a - b) for a, b in zip(runs["float32"][0], runs["bfloat16"][0]))
    verdict = "within" if smooth_gap <= TARGET else "OUTSIDE"
    print(f"\nmax |float32 - bfloat16|: smoothed {smooth_gap:.4f} ({verdict} the {TARGET} target), per batch "
          f"{raw_gap:.4f}")
    return 0 if smooth_gap <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
