"""Race the training program against the real nanoGPT train.py on the CPU, as a user would run them.

Runs `python -m tinygrad_tx.train` and nanoGPT's `python train.py config/train_shakespeare_char.py --device=cpu
--compile=False ...` (its README's CPU command) with the same recipe, alternately, each in its own process, and
reads what each prints per iteration. ms/iter is the mean over the iterations that did not evaluate (nanoGPT's
timer counts evaluation into the iteration that ran it; ours does not), so both count training alone. Peak
memory is each process's peak resident set, from the kernel's accounting (which counts what a child holds before it
starts its program: so this script imports neither NumPy nor PyTorch). Val losses are each program's own
at the last evaluation: the two start from different random weights, so they agree only roughly
(benchmarks/train_cpu.py trains both engines from the same weights and compares losses exactly).

Needs a nanoGPT checkout (git clone https://github.com/karpathy/nanoGPT); its data is prepared from our
bundled text (the same as its prepare.py would download), so nothing is downloaded.

    python benchmarks/race_nanogpt_cpu.py --nanogpt ~/nanoGPT                      # 2000 iterations, 2 rounds
    python benchmarks/race_nanogpt_cpu.py --nanogpt ~/nanoGPT --iters 300 --rounds 1
    python benchmarks/race_nanogpt_cpu.py --nanogpt ~/nanoGPT --shape shakespeare-char --iters 50
"""
import argparse
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from array import array

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TEXT = os.path.join(REPO, "tinygrad_tx", "data", "tinyshakespeare.txt")

# the recipes, as both programs' flags: nanoGPT's CPU command, and its GPU recipe's model at batch 12 (no dropout:
# the two would draw it differently, and the CPU recipe has none)
SHAPES = {
    "shakespeare-char-cpu": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, eval_iters=20),
    "shakespeare-char": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=12, eval_iters=5),
}


def eval_interval(iters):
    return min(250, iters)  # evaluations at the start and at the end at least


def nanogpt_command(shape, iters):
    flags = {**SHAPES[shape], "device": "cpu", "compile": False, "log_interval": 1, "max_iters": iters,
             "lr_decay_iters": iters, "dropout": 0.0, "eval_interval": eval_interval(iters)}
    return [sys.executable, "train.py", "config/train_shakespeare_char.py"] + [f"--{k}={v}" for k, v in flags.items()]


def our_command(shape, iters, out_dir):
    flags = {**SHAPES[shape], "max_iters": iters, "dropout": 0.0, "log_interval": 1,
             "eval_interval": eval_interval(iters), "out_dir": out_dir, "sample_tokens": 1}
    return [sys.executable, "-m", "tinygrad_tx.train", "--preset", "shakespeare-char-cpu"] + \
        [f"--{k.replace('_', '-')}={v}" for k, v in flags.items()]


def run(command, cwd, env=None):
    """-> (stdout, peak resident MiB, wall seconds) of one child process."""
    began = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if child.returncode:
        sys.exit(f"{' '.join(command)} failed ({child.returncode}):\n{text[-3000:]}")
    return text, usage.ru_maxrss / 1024, time.perf_counter() - began


def training_ms(times, iters):
    """Mean ms over the iterations (iteration number -> ms) that did not evaluate, after the first (which pays
    for warming up in both programs)."""
    kept = [ms for iteration, ms in times.items() if iteration > 1 and (iteration - 1) % eval_interval(iters)]
    return sum(kept) / len(kept)


def parse_nanogpt(text, iters):
    times = {int(i) + 1: float(ms) for i, ms in re.findall(r"^iter (\d+): loss [\d.]+, time ([\d.]+)ms", text, re.M)}
    val = re.findall(r"^step \d+: train loss [\d.]+, val loss ([\d.]+)", text, re.M)
    return training_ms(times, iters), float(val[-1])


def parse_ours(text, iters):
    # the progress line after iteration N: "[###  ] N/M loss L | T tok/s | X ms/iter | ETA ..."; with log interval
    # 1 its X is that one iteration's time
    times = {int(i): float(ms) for i, ms in re.findall(r"\] (\d+)/\d+ loss [\d.]+ \|.*?\| ([\d.]+) ms/iter", text)}
    val = re.findall(r"val loss ([\d.]+)", text)
    return training_ms(times, iters), float(val[-1])


def prepare_nanogpt(nanogpt):
    """nanoGPT's data/shakespeare_char/prepare.py, from our bundled text (it would download it, with requests)."""
    data = os.path.join(nanogpt, "data", "shakespeare_char")
    if os.path.exists(os.path.join(data, "train.bin")):
        return
    with open(TEXT) as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    ids = array("H", (stoi[ch] for ch in text))  # uint16, as nanoGPT's np.uint16 .bin files
    split = int(0.9 * len(ids))
    with open(os.path.join(data, "train.bin"), "wb") as f:
        ids[:split].tofile(f)
    with open(os.path.join(data, "val.bin"), "wb") as f:
        ids[split:].tofile(f)
    with open(os.path.join(data, "meta.pkl"), "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nanogpt", required=True, help="a checkout of karpathy/nanoGPT")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="shakespeare-char-cpu")
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2, help="alternations: ours, nanoGPT's, ours, ...")
    args = parser.parse_args()
    nanogpt = os.path.abspath(os.path.expanduser(args.nanogpt))
    prepare_nanogpt(nanogpt)
    env = {**os.environ, "PYTHONPATH": os.path.abspath(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    versions = subprocess.run([sys.executable, "-c", "import numpy, torch; print(torch.__version__, numpy.__version__)"],
                              capture_output=True, text=True, check=True).stdout.split()
    print(f"recipe {args.shape}: {SHAPES[args.shape]}, {args.iters} iterations, {args.rounds} rounds; "
          f"torch {versions[0]}, numpy {versions[1]}, {os.cpu_count()} CPUs", flush=True)
    results = {"tinygrad_tx": [], "nanoGPT": []}
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory() as out_dir:
            text, rss, wall = run(our_command(args.shape, args.iters, out_dir), REPO, env)
        results["tinygrad_tx"].append((*parse_ours(text, args.iters), rss, wall))
        text, rss, wall = run(nanogpt_command(args.shape, args.iters) + [f"--out_dir={tempfile.mkdtemp()}"], nanogpt)
        results["nanoGPT"].append((*parse_nanogpt(text, args.iters), rss, wall))
        for name, rows in results.items():
            ms, val, rss, wall = rows[-1]
            print(f"round {round_ + 1}: {name:11s} {ms:6.1f} ms/iter, val loss {val:.4f}, peak RSS {rss:.0f} MiB, "
                  f"wall {wall:.0f} s", flush=True)

    def mean(name, column):
        return sum(row[column] for row in results[name]) / len(results[name])
    print()
    print("| program | ms/iter | ratio to nanoGPT | val loss | peak RSS (MiB) | ratio | wall (s) |")
    print("|---|---|---|---|---|---|---|")
    for name in results:
        print(f"| {name} | {mean(name, 0):.1f} | {mean(name, 0) / mean('nanoGPT', 0):.2f} | {mean(name, 1):.4f} | "
              f"{mean(name, 2):.0f} | {mean(name, 2) / mean('nanoGPT', 2):.2f} | {mean(name, 3):.0f} |")


if __name__ == "__main__":
    main()
