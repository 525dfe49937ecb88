"""How long drawing a GPT-2's training graph takes: building the picture (capture, grouping, DOT text)
and rendering it to SVG with Graphviz's dot, at full depth and folded.

The model is the 124M preset (12 layers), its graph is forward + cross-entropy loss on one sequence
of 8 tokens. Making the model (random init of 124M parameters) and running forward are timed apart,
since they are not the visualizer's work. Each drawing is timed `--repeat` times; the best is shown.

    python benchmarks/viz_timing.py
    python benchmarks/viz_timing.py --preset gpt2-medium --repeat 1
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from models.gpt2 import GPT2, PRESETS  # noqa: E402
from tinygrad_tx.viz import draw_graph  # noqa: E402
from tinygrad_tx.viz.model_graph import example_batch  # noqa: E402

CASES = [  # (name, draw_graph options)
    ("full depth", dict()),
    ("full depth, roll_repeats", dict(roll_repeats=True)),
    ("full depth, show_saved", dict(show_saved=True)),
    ("backward view, full depth", dict(backward=True)),
    ("depth 2", dict(depth=2)),
    ("depth 1", dict(depth=1)),
    ("depth 1, roll_repeats", dict(depth=1, roll_repeats=True)),
]


def best_of(repeat, fn):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="gpt2", choices=sorted(PRESETS))
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("dot") is None:
        sys.exit("viz_timing: Graphviz's dot is needed to time rendering (apt-get install graphviz)")
    version = subprocess.run(["dot", "-V"], capture_output=True, text=True).stderr.strip()
    print(f"{version}; {os.cpu_count()} CPU cores; preset {args.preset}, batch {args.batch_size}x{args.seq_len}")

    start = time.perf_counter()
    model = GPT2.from_preset(args.preset)
    made = time.perf_counter()
    outputs = model(*example_batch(model, args.batch_size, args.seq_len))
    ran = time.perf_counter()
    print(f"model made in {made - start:.1f} s, forward + loss in {ran - made:.2f} s (not counted below)\n")

    print(f"{'graph':28s} {'nodes':>6s} {'arrows':>7s} {'build s':>8s} {'dot->svg s':>11s} {'total s':>8s}")
    for name, options in CASES:
        build, drawing = best_of(args.repeat, lambda: draw_graph(outputs[1], model=model, **options))
        render, svg = best_of(args.repeat, lambda: drawing.pipe("svg"))
        print(f"{name:28s} {len(drawing.nodes):6d} {len(drawing.arrows):7d} {build:8.3f} {render:11.3f} "
              f"{build + render:8.3f}   ({len(svg) / 1e3:.0f} kB SVG)")


if __name__ == "__main__":
    main()
