"""Does spreading the CPU kernels over the cores pay? A training step of the CPU recipe under each setting, in fresh
processes taking turns, beside PyTorch's step on the same model.

Settings: the kernels' row parts on Python threads on or off (numba_kernels.SPLIT_WORK), and OpenBLAS's threads
sleeping at once after a product or spinning for its default 0.1 s (OPENBLAS_THREAD_TIMEOUT 4 or 28, set before
NumPy loads). Each process warms up, then times blocks of steps and reports its best block.
With --kernels: each kernel at the recipe's shapes in parts on threads against one thread, in one process whose
OpenBLAS threads sleep, and after a matrix product in both OpenBLAS settings.

    python benchmarks/cpu_threads.py                  # 3 rounds of every setting
    python benchmarks/cpu_threads.py --rounds 5 --shape shakespeare-char
    python benchmarks/cpu_threads.py --kernels
    python benchmarks/cpu_threads.py --timeouts 4 14 18 22
"""
import argparse
import os
import subprocess
import sys
import time

SETTINGS = {  # name: (row parts on threads, OPENBLAS_THREAD_TIMEOUT)
    "parts on threads, OpenBLAS threads sleep": (True, "4"),
    "parts on threads, OpenBLAS threads spin": (True, "28"),
    "one thread, OpenBLAS threads sleep": (False, "4"),
    "one thread, OpenBLAS threads spin": (False, "28"),
}


def child(framework, split, shape, steps):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import tinygrad_tx  # noqa: F401  (before NumPy, so that OpenBLAS reads the timeout set for this process)
    from tinygrad_tx.backend.cpu_kernels import numba_kernels
    from train_cpu import Run, setup
    from tinygrad_tx import openblas
    if split:
        openblas.threads_sleep = lambda: True  # split whatever OpenBLAS's threads do
    else:
        numba_kernels.SPLIT_WORK = 1 << 62
    config, model_config, weights = setup(10 * steps, shape)
    run = Run(framework, config, model_config, weights)
    for _ in range(max(5, steps // 2)):
        run.step()
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        for _ in range(steps):
            run.step()
        best = min(best, (time.perf_counter() - began) / steps)
    print(1000 * best)


def kernels_child(rounds):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import numpy as np
    from tinygrad_tx import openblas
    from tinygrad_tx.backend.cpu_kernels import kernels, numba_kernels
    openblas.threads_sleep = lambda: True  # parts whatever OpenBLAS's threads do: this measures what they cost
    k = kernels()
    rng = np.random.default_rng(0)

    def values(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    q, key, v = (values(12, 64, 3, 4, 32)[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # the heads, strided
    grad, hidden, x, w, scores = values(12, 4, 64, 32), values(768, 512), values(768, 128), values(128), values(3072, 64)
    weight, row_mean, row_rstd = values(512, 128), values(768), np.abs(values(768)) + 1
    out, lse = k.attention_forward(q, key, v, 32 ** -0.5, True)
    long_q, long_k, long_v = (values(12, 256, 3, 6, 64)[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    long_grad = values(12, 6, 256, 64)
    long_out, long_lse = k.attention_forward(long_q, long_k, long_v, 64 ** -0.5, True)
    cases = {
        "layer_norm forward, 98K values": lambda: k.layer_norm_forward(x, w, None, 1e-5),
        "layer_norm backward, 98K values": lambda: k.layer_norm_backward(x, x, w, row_mean, row_rstd, True, True),
        "softmax forward, 196K values": lambda: k.softmax_forward(scores, False),
        "gelu (tanh) forward, 393K values": lambda: k.gelu_forward(hidden, True),
        "gelu (tanh) backward, 393K values": lambda: k.gelu_backward(hidden, hidden, True),
        "attention forward (12 x 4 heads of 64 x 32)": lambda: k.attention_forward(q, key, v, 32 ** -0.5, True),
        "attention backward": lambda: k.attention_backward(grad, q, key, v, out, lse, 32 ** -0.5, True),
        "128 x 512 product, then gelu forward": lambda: k.gelu_forward(x @ weight.T, True),
        "attention forward (12 x 6 heads of 256 x 64)":
            lambda: k.attention_forward(long_q, long_k, long_v, 64 ** -0.5, True),
        "attention backward (12 x 6 heads of 256 x 64)":
            lambda: k.attention_backward(long_grad, long_q, long_k, long_v, long_out, long_lse, 64 ** -0.5, True),
    }

    def best_us(run, repeats=200):
        best = float("inf")
        for _ in range(rounds):
            began = time.perf_counter()
            for _ in range(repeats):
                run()
            best = min(best, (time.perf_counter() - began) / repeats)
        return 1e6 * best
    for name, run in cases.items():
        run()
        # parts: every kernel, and attention's batch groups, each group's products on its own thread
        numba_kernels.SPLIT_WORK, numba_kernels.BLAS_ONE_THREAD_PRODUCT = 0, 1 << 62
        parts = best_us(run, 200 if "256" not in name else 5)
        numba_kernels.SPLIT_WORK, numba_kernels.BLAS_ONE_THREAD_PRODUCT = 1 << 62, 0
        print(f"{name}\t{parts:.0f}\t{best_us(run, 200 if '256' not in name else 5):.0f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30, help="steps per timed block")
    parser.add_argument("--shape", default="shakespeare-char-cpu", choices=["shakespeare-char-cpu", "shakespeare-char"])
    parser.add_argument("--kernels", action="store_true", help="each kernel in parts against one thread")
    parser.add_argument("--timeouts", nargs="*", help="parts on threads under each of these OpenBLAS timeouts "
                                                      "(2^t cycles) instead of the four settings")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "kernels":
            kernels_child(args.rounds)
        else:
            child(args.child[0], args.child[1] == "split", args.shape, args.steps)
        return
    if args.kernels:
        print(f"microseconds per call, best of {args.rounds} rounds, {os.cpu_count()} CPUs")
        print("| kernel | OpenBLAS threads | parts on threads | one thread |")
        print("|---|---|---|---|")
        for timeout, state in (("4", "sleep"), ("28", "spin")):
            out = subprocess.run([sys.executable, __file__, "--child", "kernels", "-", "--rounds", str(args.rounds)],
                                 capture_output=True, text=True, env={**os.environ, "OPENBLAS_THREAD_TIMEOUT": timeout},
                                 check=True)
            for line in out.stdout.strip().splitlines():
                name, parts, one = line.split("\t")
                print(f"| {name} | {state} | {parts} | {one} |")
        return
    settings = SETTINGS if not args.timeouts else {f"parts on threads, OPENBLAS_THREAD_TIMEOUT={t}": (True, t)
                                                   for t in args.timeouts}
    runs = {**{name: ("tinygrad_tx",) + setting for name, setting in settings.items()},
            "PyTorch": ("torch", False, "28")}
    results = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, (framework, split, timeout) in runs.items():
            out = subprocess.run([sys.executable, __file__, "--child", framework, "split" if split else "one",
                                  "--shape", args.shape, "--steps", str(args.steps)], capture_output=True, text=True,
                                 env={**os.environ, "OPENBLAS_THREAD_TIMEOUT": timeout}, check=True)
            results[name].append(float(out.stdout.split()[-1]))
            print(f"{name}: {results[name][-1]:.1f} ms/step", flush=True)
    torch_ms = min(results["PyTorch"])
    print(f"\n{args.shape}, {os.cpu_count()} CPUs, best block of {args.steps} steps per process, {args.rounds} rounds")
    print("| setting | ms/step (each round) | best | ratio to PyTorch |")
    print("|---|---|---|---|")
    for name, values in results.items():
        print(f"| {name} | {' '.join(f'{v:.1f}' for v in values)} | {min(values):.1f} | {min(values) / torch_ms:.2f} |")


if __name__ == "__main__":
    main()
