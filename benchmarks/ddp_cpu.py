"""Data-parallel scaling on the CPU: tokens/s of the shakespeare-char-cpu recipe on 1 rank and on 2 ranks (one
thread each), the scaling efficiency, and the time spent communicating.

    python benchmarks/ddp_cpu.py [--steps 30] [--warmup 5] [--ranks 1 2]

Each rank trains GPT-2 (4 layers, 128 wide, 64 tokens of context, 12 sequences a step: the recipe's) with
AdamW under DistributedDataParallel (on 1 rank, the plain model), started by tinygrad_tx.distributed.run with
OMP_NUM_THREADS=1. Weak scaling, as data parallelism is used: each rank keeps its batch, so 2 ranks process
twice the tokens per step; efficiency = tokens/s on N ranks / (N x tokens/s on 1 rank).

Communication is measured two ways: `exposed` is the time a step waited for gradient buckets after backward
had finished (what overlap did not hide); `all-reduce` is one all-reduce of every gradient (3.2 MB) on its own.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker(steps, warmup):
    sys.path.insert(0, ROOT)
    import numpy as np

    import tinygrad_tx as tg
    import tinygrad_tx.distributed as dist
    from models.gpt2 import GPT2, GPT2Config
    from tinygrad_tx.data import TextDataset
    from tinygrad_tx.distributed.training import DataParallelRun
    from tinygrad_tx.distributed.reduce_op import ReduceOp

    ranks = DataParallelRun("cpu")
    tg.manual_seed(1337)
    dataset = TextDataset(tokenizer="char", seed=1337 + ranks.rank)
    model = GPT2(GPT2Config(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65, bias=False))
    training_model = ranks.wrap(model)
    optimizer = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    waited = [0.0]  # seconds from the end of backward until the averaged gradients were in place
    from tinygrad_tx.nn.parallel.reducer import Reducer
    original_finish = Reducer._finish_backward

    def timed_finish(self):
        start = time.perf_counter()
        try:
            return original_finish(self)
        finally:
            waited[0] += time.perf_counter() - start
    Reducer._finish_backward = timed_finish
    times = []
    for step in range(warmup + steps):
        if ranks.world_size > 1:
            dist.barrier()  # every rank starts the step together: the time is the step's, not a straggler's
        start = time.perf_counter()
        if step == warmup:
            waited[0] = 0.0
        x, y = dataset.get_batch("train", 12, 64)
        _, loss = training_model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        tg.nn.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss.item()
        times.append(time.perf_counter() - start)
    step_s = float(np.median(times[warmup:]))
    all_reduce_ms = None
    if ranks.world_size > 1:
        from tinygrad_tx.distributed.process_group import default_group
        group = default_group("benchmark")
        flat = np.ones(sum(p.numel() for p in model.parameters()), np.float32)
        samples = []
        for _ in range(10):
            dist.barrier()
            start = time.perf_counter()
            group.mpi.all_reduce(flat, None, ReduceOp.AVG).wait()
            samples.append(time.perf_counter() - start)
        all_reduce_ms = 1000 * float(np.median(samples))
    if ranks.is_main:
        print(json.dumps({"ranks": ranks.world_size, "step_ms": 1000 * step_s,
                          "tokens_per_s": 12 * 64 * ranks.world_size / step_s,
                          "exposed_comm_ms": 1000 * waited[0] / steps if ranks.world_size > 1 else 0.0,
                          "all_reduce_ms": all_reduce_ms,
                          "parameters_mb": 4 * sum(p.numel() for p in model.parameters()) / 1e6}), flush=True)
    ranks.close()


def launch(nproc, steps, warmup):
    command = [sys.executable, "-m", "tinygrad_tx.distributed.run", "--nproc-per-node", str(nproc),
               "--master-port", str(29500 + nproc), os.path.abspath(__file__), "--worker", "--steps", str(steps),
               "--warmup", str(warmup)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    output = subprocess.run(command, env=environment, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.steps, args.warmup)
    print(f"CPU cores: {os.cpu_count()}; one thread per rank; {args.steps} timed steps after {args.warmup}")
    results = [launch(n, args.steps, args.warmup) for n in args.ranks]
    base = results[0]["tokens_per_s"] / results[0]["ranks"]
    print("| ranks | ms/step (median) | tokens/s | scaling efficiency | exposed comm ms/step | all-reduce of "
          "all gradients, ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        efficiency = r["tokens_per_s"] / (r["ranks"] * base)
        all_reduce = f"{r['all_reduce_ms']:.1f}" if r["all_reduce_ms"] is not None else "-"
        print(f"| {r['ranks']} | {r['step_ms']:.1f} | {r['tokens_per_s']:,.0f} | {100 * efficiency:.0f}% | "
              f"{r['exposed_comm_ms']:.1f} | {all_reduce} |")


if __name__ == "__main__":
    main()
