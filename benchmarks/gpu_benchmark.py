"""GPU timings: each fused kernel against the plain CuPy array code it replaces, then whole GPT-2
training steps (nanoGPT's shakespeare-char model) with kernels on and off, in float32, tf32 and
float16, with peak memory. Needs an NVIDIA GPU and CuPy.

    python benchmarks/gpu_benchmark.py                # everything, a few minutes
    python benchmarks/gpu_benchmark.py --steps 20     # quicker
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import tinygrad_tx as tg  # noqa: E402
import tinygrad_tx.nn.functional as F  # noqa: E402
from tinygrad_tx.amp.precision import Precision  # noqa: E402


def timed(fn, repeats):
    """Median milliseconds of fn() (forward and backward), after one warm-up call that compiles the kernels."""
    fn()
    tg.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        tg.cuda.synchronize()
        times.append(1000 * (time.perf_counter() - start))
    return sorted(times)[len(times) // 2]


def op_cases():
    B, H, T, D, C, V = 64, 6, 256, 64, 384, 65
    x = tg.randn(B, T, C, device="cuda", requires_grad=True)
    w, b = tg.ones(C, device="cuda", requires_grad=True), tg.zeros(C, device="cuda", requires_grad=True)
    h = tg.randn(B, T, 4 * C, device="cuda", requires_grad=True)
    q = tg.randn(B, H, T, D, device="cuda", requires_grad=True)
    logits = tg.randn(B * T, V, device="cuda", requires_grad=True)
    big_logits = tg.randn(8 * 1024, 50257, device="cuda", requires_grad=True)
    targets, big_targets = tg.randint(0, V, (B * T,), device="cuda"), tg.randint(0, 50257, (8 * 1024,), device="cuda")
    return {
        "layer_norm (64x256x384)": lambda: F.layer_norm(x, (C,), w, b).sum().backward(),
        "softmax (64x256x384)": lambda: x.softmax(-1).sum().backward(),
        "gelu tanh (64x256x1536)": lambda: F.gelu(h, approximate="tanh").sum().backward(),
        "cross_entropy (16384x65)": lambda: F.cross_entropy(logits, targets).backward(),
        "cross_entropy (8192x50257)": lambda: F.cross_entropy(big_logits, big_targets).backward(),
        "causal attention (64x6x256x64)": lambda: F.scaled_dot_product_attention(q, q, q, is_causal=True)
        .sum().backward(),
    }


def benchmark_ops(repeats):
    print(f"{'op, forward + backward':<34} {'kernel ms':>10} {'cupy ms':>10} {'speedup':>8}")
    for name, fn in op_cases().items():
        results = {}
        for use in (True, False):
            tg.cuda.use_kernels(use)
            results[use] = timed(fn, repeats)
        tg.cuda.use_kernels(True)
        print(f"{name:<34} {results[True]:>10.2f} {results[False]:>10.2f} {results[False] / results[True]:>7.2f}x")


def benchmark_training(steps):
    from models.gpt2 import GPT2, GPT2Config
    from tinygrad_tx.nn import clip_grad_norm_
    B, T = 64, 256
    print(f"\n{'GPT-2 6x384, batch 64x256':<34} {'ms/step':>10} {'tokens/s':>10} {'peak MiB':>9}")
    for dtype in ("float32", "tf32", "float16"):
        for use in (True, False):
            tg.cuda.use_kernels(use)
            tg.manual_seed(0)
            model = GPT2(GPT2Config(n_layer=6, n_head=6, n_embd=384, block_size=T, vocab_size=65, bias=False)).cuda()
            optimizer = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
            precision = Precision(dtype, "cuda")
            idx, targets = tg.randint(0, 65, (B, T), device="cuda"), tg.randint(0, 65, (B, T), device="cuda")

            def step():
                with precision.autocast():
                    loss = model(idx, targets)[1]
                optimizer.zero_grad(set_to_none=True)
                precision.scaler.scale(loss).backward()
                precision.scaler.unscale_(optimizer)
                clip_grad_norm_(model.parameters(), 1.0)
                precision.scaler.step(optimizer)
                precision.scaler.update()
            step()
            tg.cuda.synchronize()
            tg.cuda.reset_peak_memory_stats()
            ms = timed(step, steps)
            peak = tg.cuda.max_memory_allocated() / 2 ** 20
            tg.cuda.set_tf32(False)
            label = f"{dtype}, {'kernels' if use else 'cupy array code'}"
            print(f"{label:<34} {ms:>10.1f} {B * T / ms * 1000:>10,.0f} {peak:>9.0f}")
    tg.cuda.use_kernels(True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per op")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per configuration")
    args = parser.parse_args()
    if not tg.cuda.is_available():
        sys.exit("no CUDA device visible to CuPy: this benchmark needs an NVIDIA GPU and pip install -e '.[cuda]'")
    benchmark_ops(args.repeats)
    benchmark_training(args.steps)


if __name__ == "__main__":
    main()
