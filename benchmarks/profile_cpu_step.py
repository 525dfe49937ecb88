"""Where one CPU training step of the shakespeare-char-cpu recipe spends its time.

    python benchmarks/profile_cpu_step.py [--steps 20]

Prints cProfile's top functions by own time, and the share of matrix products.
"""
import argparse
import cProfile
import os
import pstats
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tinygrad_tx.autograd.function import Function  # noqa: E402
from tinygrad_tx.trainer import Trainer, config_from_preset  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    trainer = Trainer(config_from_preset("shakespeare-char-cpu", out_dir=tempfile.mkdtemp()))
    for i in range(3):  # warm up allocations and caches
        trainer.train_step(i)

    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(args.steps):
        trainer.train_step(i)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    matmul = sum(tt for (file, _, name), (_, _, tt, _, _) in stats.stats.items() if name == "matmul")
    applies = sum(calls for (file, _, name), (calls, *_) in stats.stats.items()
                  if name == "apply" and file.endswith(os.path.join("autograd", "function.py")))
    print(f"{1000 * total / args.steps:.1f} ms per step under the profiler; matrix products "
          f"{100 * matmul / total:.0f}% of it; {applies / args.steps:.0f} Function.apply calls per step")
    stats.sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
