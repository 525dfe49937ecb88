"""Each fused op on the CPU at the shakespeare-char-cpu recipe's shapes: our Numba kernels, our NumPy array code
(the same op with tinygrad_tx.cpu.use_kernels(False)) and PyTorch, forward alone and forward plus backward.

The three run alternately, round after round, and each keeps its best round: on a shared machine the best is
the measurement least disturbed by others. Also printed: each kernel family's first-call time in this process
(loading the module built ahead of time, building it where there is none yet, or Numba's JIT where the build
failed).

    python benchmarks/cpu_kernels.py                 # every op
    python benchmarks/cpu_kernels.py --ops gelu adamw
"""
import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import tinygrad_tx as tg  # noqa: E402  (first: it configures NumPy's OpenBLAS, see tinygrad_tx/openblas.py)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as TF  # noqa: E402

import tinygrad_tx.nn.functional as F  # noqa: E402

B, T, C, HEADS, VOCAB = 12, 64, 128, 4, 65  # the recipe: batch 12, block 64, 128 dims, 4 heads, 65 characters


def values(*shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def gpt2_parameter_shapes():
    """The recipe's GPT-2 parameters (no biases, tied embedding): what AdamW and clipping walk each step."""
    shapes = [(VOCAB, C), (T, C)]
    for _ in range(4):
        shapes += [(C,), (3 * C, C), (C, C), (C,), (4 * C, C), (C, 4 * C)]
    return shapes + [(C,)]


class Case:
    """One op: inputs as NumPy arrays, and the same op written for tinygrad_tx and for torch."""

    def __init__(self, name, arrays, ours, theirs, differentiable=(0,)):
        self.name, self.arrays, self.ours, self.theirs = name, arrays, ours, theirs
        self.differentiable = differentiable

    def runner(self, library, backward):
        make = tg.tensor if library == "ours" else torch.tensor
        tensors = [make(a, requires_grad=i in self.differentiable) if a.dtype == np.float32 else make(a)
                   for i, a in enumerate(self.arrays)]
        op = self.ours if library == "ours" else self.theirs
        out = op(*tensors)
        grad = (tg.ones_like if library == "ours" else torch.ones_like)(out)

        def run():
            for t in tensors:
                t.grad = None
            result = op(*tensors)
            if backward:
                result.backward(grad)
        return run


def op_cases():
    x = values(B, T, C)
    attention = [values(B, HEADS, T, C // HEADS, seed=s) for s in range(3)]
    targets = np.random.default_rng(1).integers(0, VOCAB, B * T)
    return [
        Case("gelu (tanh)", [values(B, T, 4 * C)], lambda t: F.gelu(t, approximate="tanh"),
             lambda t: TF.gelu(t, approximate="tanh")),
        Case("gelu (exact, erf)", [values(B, T, 4 * C)], F.gelu, TF.gelu),
        Case("layer_norm", [x, values(C, seed=1), values(C, seed=2)], lambda t, w, b: F.layer_norm(t, (C,), w, b),
             lambda t, w, b: TF.layer_norm(t, (C,), w, b), differentiable=(0, 1, 2)),
        Case("cross_entropy", [values(B * T, VOCAB, scale=2), targets], F.cross_entropy, TF.cross_entropy),
        Case("softmax", [values(B, HEADS, T, T)], lambda t: F.softmax(t, -1), lambda t: TF.softmax(t, -1)),
        # matrix products have no kernel: both columns of ours are NumPy's OpenBLAS, beside PyTorch's
        Case("linear 128 -> 384 (q, k, v)", [x, values(3 * C, C, seed=3)], F.linear, TF.linear, differentiable=(0, 1)),
        Case("linear 128 -> 512 (MLP)", [x, values(4 * C, C, seed=4)], F.linear, TF.linear, differentiable=(0, 1)),
        Case("attention (causal)", attention,
             lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
             lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True), differentiable=(0, 1, 2)),
    ]


def optimizer_runners(name):
    """AdamW's step, or clip_grad_norm_ (with clipping: the norm is above max_norm), over the recipe's
    parameters, for each library."""
    arrays = [values(*shape, seed=i, scale=0.02) for i, shape in enumerate(gpt2_parameter_shapes())]
    grads = [values(*a.shape, seed=100 + i) for i, a in enumerate(arrays)]
    runners = {}
    for library, make in (("ours", tg.tensor), ("torch", torch.tensor)):
        params = [make(a.copy(), requires_grad=True) for a in arrays]
        for p, g in zip(params, grads):
            p.grad = make(g.copy())
        if name == "adamw":
            optimizer = (tg.optim.AdamW if library == "ours" else torch.optim.AdamW)(params, lr=1e-3)
            runners[library] = optimizer.step
        else:
            clip = tg.nn.utils.clip_grad_norm_ if library == "ours" else torch.nn.utils.clip_grad_norm_
            runners[library] = lambda clip=clip, params=params: clip(params, 1.0)
    return runners


def best_times(runners, rounds, repeats):
    """{name: best ms per call}, the runners taking turns each round."""
    best = {name: math.inf for name in runners}
    for _ in range(rounds):
        for name, (run, before) in runners.items():
            before()
            time.sleep(0.2)  # the last runner's threads (PyTorch's spin a while after its ops) go idle first
            began = time.perf_counter()
            for _ in range(repeats):
                run()
            best[name] = min(best[name], 1000 * (time.perf_counter() - began) / repeats)
    return best


def with_kernels(enabled):
    return lambda: tg.cpu.use_kernels(enabled)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--ops", nargs="*", help="a subset: gelu layer_norm cross_entropy softmax linear attention "
                                                 "adamw clip_grad_norm")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    if not tg.cpu.kernels_available():
        sys.exit("the Numba kernels are not available: pip install numba (and leave TINYGRAD_TX_CPU_KERNELS unset)")

    rows = []
    first_calls = []
    for case in op_cases():
        if args.ops and not any(case.name.startswith(o) for o in args.ops):
            continue
        for backward in (False, True):
            began = time.perf_counter()
            kernel_run = case.runner("ours", backward)
            kernel_run()
            first_calls.append((f"{case.name} {'backward' if backward else 'forward'}", time.perf_counter() - began))
            tg.cpu.use_kernels(False)
            array_run = case.runner("ours", backward)
            tg.cpu.use_kernels(True)
            runners = {"kernels": (kernel_run, with_kernels(True)), "array code": (array_run, with_kernels(False)),
                       "torch": (case.runner("torch", backward), with_kernels(True))}
            rows.append((case.name + (" forward + backward" if backward else " forward"),
                         best_times(runners, args.rounds, args.repeats)))
    for name in ("adamw", "clip_grad_norm"):
        if args.ops and name not in args.ops:
            continue
        began = time.perf_counter()
        ours = optimizer_runners(name)
        ours["ours"]()
        first_calls.append((name, time.perf_counter() - began))
        tg.cpu.use_kernels(False)
        array = optimizer_runners(name)
        tg.cpu.use_kernels(True)
        runners = {"kernels": (ours["ours"], with_kernels(True)), "array code": (array["ours"], with_kernels(False)),
                   "torch": (ours["torch"], with_kernels(True))}
        rows.append((name, best_times(runners, args.rounds, args.repeats)))
    tg.cpu.use_kernels(True)

    print(f"shapes of shakespeare-char-cpu (batch {B}, block {T}, {C} dims, {HEADS} heads, {VOCAB} classes); "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; best of {args.rounds} rounds")
    print("| op | kernels ms | array code ms | torch ms | kernels / torch | kernels / array code |")
    print("|---|---|---|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {t['kernels']:.3f} | {t['array code']:.3f} | {t['torch']:.3f} | "
              f"{t['kernels'] / t['torch']:.2f} | {t['kernels'] / t['array code']:.2f} |")
    print()
    print("first call of each kernel in this process (cache load, or compile where nothing is cached), seconds:")
    for name, seconds in first_calls:
        print(f"  {name}: {seconds:.2f}")


if __name__ == "__main__":
    main()
