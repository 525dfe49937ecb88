"""What the training program's loop costs beyond the training steps themselves.

Runs Trainer.train (the loop `python -m tinygrad_tx.train` runs) with each of its parts timed from inside: the
training steps (Trainer.train_step: batch, forward, backward, clipping, the optimizer, loss.item()), evaluation
and checkpoints. The loop's own cost is the rest: logging to metrics.jsonl, the progress line, timing, the
scheduler's bookkeeping. Also compares the ms/iter the program logs with the steps' own mean time.

    python benchmarks/cli_overhead.py                    # the shakespeare-char-cpu recipe, 300 iterations, log every one
    python benchmarks/cli_overhead.py --log-interval 10
"""
import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tinygrad_tx.trainer import Trainer, config_from_preset  # noqa: E402


def timed(seconds, key, function):
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[key] += time.perf_counter() - began
    return wrapper


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--log-interval", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out_dir:
        config = config_from_preset("shakespeare-char-cpu", max_iters=args.iters, lr_decay_iters=args.iters,
                                    log_interval=args.log_interval, out_dir=out_dir)
        trainer = Trainer(config)
        for i in range(5):  # warm up (kernel loading, first allocations) outside the measurement
            trainer.train_step(i)
        seconds = dict.fromkeys(("step", "evaluation", "checkpoint"), 0.0)
        trainer.train_step = timed(seconds, "step", trainer.train_step)
        trainer.estimate_loss = timed(seconds, "evaluation", trainer.estimate_loss)
        trainer.save = timed(seconds, "checkpoint", trainer.save)
        began = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the progress lines are written, as to a pipe
            trainer.train()
        total = time.perf_counter() - began
        with open(os.path.join(out_dir, "metrics.jsonl")) as f:
            logged = [r["ms_per_iter"] for r in map(json.loads, f) if r["ms_per_iter"] is not None]
    loop = total - sum(seconds.values())
    step_ms = 1000 * seconds["step"] / args.iters
    logged_ms = sum(logged) / len(logged)
    print(f"shakespeare-char-cpu, {args.iters} iterations, log interval {args.log_interval}")
    print("| part | ms per iteration | share of a step |")
    print("|---|---|---|")
    print(f"| training step | {step_ms:.2f} | 100% |")
    print(f"| the loop's own work | {1000 * loop / args.iters:.3f} | {100 * loop / seconds['step']:.2f}% |")
    print(f"| ms/iter the program logged (mean) | {logged_ms:.2f} | {100 * logged_ms / step_ms:.1f}% |")
    print(f"evaluation and checkpoints (not counted in the logged ms/iter): "
          f"{seconds['evaluation'] + seconds['checkpoint']:.1f} s")


if __name__ == "__main__":
    main()
