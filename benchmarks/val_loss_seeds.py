"""Val loss at the end of the shakespeare-char-cpu recipe for several seeds.

    python benchmarks/val_loss_seeds.py --seeds 1337 1 2 3 4

One seed's val loss moves by a few hundredths with the initialization and the batches drawn, so a
single run says little about a threshold like nanoGPT's 1.886; the mean over seeds does.
"""
import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tinygrad_tx.trainer import Trainer, config_from_preset, read_metrics  # noqa: E402


def final_val_loss(seed):
    out_dir = tempfile.mkdtemp()
    trainer = Trainer(config_from_preset("shakespeare-char-cpu", seed=seed, out_dir=out_dir))
    with contextlib.redirect_stdout(io.StringIO()):  # the progress bar
        trainer.train()
    return [r for r in read_metrics(out_dir) if r["val_loss"] is not None][-1]["val_loss"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1337, 1, 2, 3, 4])
    args = parser.parse_args()
    losses = []
    print("| seed | val loss at iter 2000 |\n|---|---|")
    for seed in args.seeds:
        losses.append(final_val_loss(seed))
        print(f"| {seed} | {losses[-1]:.4f} |", flush=True)
    spread = statistics.stdev(losses) if len(losses) > 1 else 0.0
    print(f"| mean ± std | {statistics.mean(losses):.4f} ± {spread:.4f} |")


if __name__ == "__main__":
    main()
