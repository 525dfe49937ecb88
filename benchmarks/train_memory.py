"""Training memory against corpus size: does the resident set grow with the corpus?

Corpora of 1x, 10x, 30x and 100x the bundled tiny Shakespeare (1.1 MB) are written, encoded into token
files by `python -m tinygrad_tx.data.prepare --tokenizer char`, and trained on for --steps steps of a
small GPT-2, each run in a fresh process. The resident set (VmRSS) is read after the Trainer is built,
after 10% of the steps and at the end, with its peak (VmHWM). For contrast, the --text-scale corpus is
also trained on as a text file, which TextDataset reads and encodes into memory whole. Linux only.

    python benchmarks/train_memory.py
    python benchmarks/train_memory.py --scales 1 10 --steps 60 --text-scale 10     # quicker
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def resident_mib():
    """(VmRSS, VmHWM) of this process in MiB."""
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return tuple(int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))


def measure(data, steps):
    """In a fresh process: train on data and print the resident set at each stage as JSON."""
    from tinygrad_tx.trainer import Trainer, config_from_preset
    with tempfile.TemporaryDirectory() as out_dir:
        config = config_from_preset("shakespeare-char-cpu", n_layer=2, n_head=2, n_embd=64, block_size=64,
                                    batch_size=12, max_iters=steps, out_dir=out_dir, data=data)
        trainer = Trainer(config)
        report = {"built": resident_mib()[0]}
        for step in range(steps):
            trainer.train_step(step)
            if step + 1 == max(steps // 10, 1):
                report["early"] = resident_mib()[0]
        report["end"], report["peak"] = resident_mib()
    print(json.dumps(report))


def run_child(data, steps):
    result = subprocess.run([sys.executable, __file__, "--measure", data, "--steps", str(steps)], check=True,
                            capture_output=True, text=True, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 30, 100])
    parser.add_argument("--text-scale", type=int, default=10, help="one of --scales")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure, args.steps)
    from tinygrad_tx.data import DEFAULT_TEXT
    with open(DEFAULT_TEXT, encoding="utf-8") as f:
        text = f.read()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for scale in args.scales:
            corpus = os.path.join(work, f"shakespeare_x{scale}.txt")
            with open(corpus, "w", encoding="utf-8") as f:
                for _ in range(scale):
                    f.write(text)
            tokens = os.path.join(work, f"tokens_x{scale}")
            subprocess.run([sys.executable, "-m", "tinygrad_tx.data.prepare", "--tokenizer", "char", "--input", corpus,
                            "--out-dir", tokens], check=True, capture_output=True, cwd=ROOT)
            megabytes = os.path.getsize(corpus) / 1e6
            rows.append((f"token files, {scale}x ({megabytes:.0f} MB of text)", run_child(tokens, args.steps)))
        scale = args.text_scale
        rows.append((f"text file in memory, {scale}x", run_child(os.path.join(work, f"shakespeare_x{scale}.txt"),
                                                                args.steps)))
    print(f"{args.steps} training steps of a 2-layer, 64-dim GPT-2, batch 12 x 64 tokens; resident set in MiB\n")
    print("| data | after building the Trainer | after 10% of the steps | at the end | peak |\n|---|---|---|---|---|")
    for name, report in rows:
        print(f"| {name} | {report['built']:.0f} | {report['early']:.0f} | {report['end']:.0f} | {report['peak']:.0f} |")


if __name__ == "__main__":
    main()
