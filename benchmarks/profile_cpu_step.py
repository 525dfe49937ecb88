"""Where one CPU training step spends its time, op by op, for tinygrad_tx and for PyTorch side by side.

Both train the same GPT-2 (benchmarks/train_cpu.py's twins: same weights, same batches, AdamW, clipping).
Ours: every op's forward and backward timed on its own (time spent in ops it calls is not counted twice);
PyTorch: its profiler's self CPU time of each aten op, under record_function ranges for the phases. Ops are
grouped by what they compute, so the rows line up; "graph and Python" is the rest of a phase (building the
graph, the backward walk, Python around the ops). Both profilers add a little time per op.

    python benchmarks/profile_cpu_step.py                      # the shakespeare-char-cpu recipe
    python benchmarks/profile_cpu_step.py --shape shakespeare-char --steps 5
    python benchmarks/profile_cpu_step.py --threads 1          # one thread each: the work, apart from threading
"""
import argparse
import os
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import tinygrad_tx as tg  # noqa: E402  (first: it configures NumPy's OpenBLAS, see tinygrad_tx/openblas.py)
import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402

from tinygrad_tx.autograd.function import Function  # noqa: E402
from train_cpu import SHAPES, Run, setup  # noqa: E402

PHASES = ("batch", "forward", "backward", "clip_grad_norm_", "optimizer", "loss.item")
# our op classes and torch's aten ops, by what they compute
CATEGORIES = {
    "matmul": ({"Linear", "Matmul"}, ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")),
    "attention": ({"ScaledDotProductAttention"}, ("aten::_scaled_dot_product_flash_attention_for_cpu",
                                                  "aten::_scaled_dot_product_flash_attention_for_cpu_backward")),
    "layer_norm": ({"LayerNorm"}, ("aten::native_layer_norm", "aten::native_layer_norm_backward")),
    "gelu": ({"Gelu"}, ("aten::gelu", "aten::gelu_backward")),
    "cross_entropy": ({"CrossEntropy"}, ("aten::_log_softmax", "aten::_log_softmax_backward_data",
                                         "aten::nll_loss_forward", "aten::nll_loss_backward")),
    # our lookup table[ids] is an advanced Getitem; its backward, IndexAdd, also undoes the attention's q, k, v split
    # (a basic index), so it counts among the other ops
    "embedding": ({"Getitem"}, ("aten::embedding", "aten::embedding_dense_backward", "aten::index_select",
                                "aten::embedding_backward")),
}
ELEMENTWISE = "other ops (adds, copies, views)"
GRAPH = "graph and Python"


def category_of_ours(name):
    for category, (ours, _) in CATEGORIES.items():
        if name in ours:
            return category
    return ELEMENTWISE


def category_of_torch(name):
    for category, (_, theirs) in CATEGORIES.items():
        if name in theirs:
            return category
    if name.startswith("aten::"):
        return ELEMENTWISE
    return GRAPH  # autograd nodes (MmBackward0, ...), the engine, record_function ranges


class OpTimer:
    """Wraps every Function's forward and backward with an exclusive timer: a call's own time, less the time of
    the ops it calls."""

    def __init__(self):
        self.totals = defaultdict(float)  # (phase, op class) -> seconds
        self.children = []
        self.phase = None

    def install(self):
        classes, stack = [], [Function]
        while stack:
            cls = stack.pop()
            classes.append(cls)
            stack.extend(cls.__subclasses__())
        # read every original first: a subclass inherits a method bound to itself, not to a wrapped parent
        originals = [(cls, name, getattr(cls, name)) for cls in classes for name in ("forward", "backward")]
        for cls, name, method in originals:
            setattr(cls, name, staticmethod(self._timed(cls.__name__, name, method)))

    def _timed(self, op, which, method):
        def timed(*args, **kwargs):
            self.children.append(0.0)
            began = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - began
                inner = self.children.pop()
                self.totals[(self.phase, op)] += elapsed - inner
                if self.children:
                    self.children[-1] += elapsed
        return timed


def phased_step(run, mark):
    """One step of train_cpu.Run's recipe, each phase inside mark(phase) (a context manager)."""
    c = run.config
    ours = run.framework == "tinygrad_tx"
    for group in run.optimizer.param_groups:
        group["lr"] = c.learning_rate
    with mark("batch"):
        x, y = run.batch("train")
    with mark("forward"):
        loss = run.model(x, y)[1] if ours else run.model(x, y)
    run.optimizer.zero_grad(set_to_none=True)
    with mark("backward"):
        loss.backward()
    with mark("clip_grad_norm_"):
        (tg.nn.utils.clip_grad_norm_ if ours else torch.nn.utils.clip_grad_norm_)(run.model.parameters(), c.grad_clip)
    with mark("optimizer"):
        run.optimizer.step()
    with mark("loss.item"):
        loss.item()


class PhaseClock:
    def __init__(self, timer=None):
        self.seconds, self.timer = defaultdict(float), timer

    def __call__(self, phase):
        clock = self

        class Mark:
            def __enter__(self):
                if clock.timer is not None:
                    clock.timer.phase = phase
                self.began = time.perf_counter()

            def __exit__(self, *exc):
                clock.seconds[phase] += time.perf_counter() - self.began
        return Mark()


def profile_ours(run, steps):
    timer = OpTimer()
    timer.install()
    clock = PhaseClock(timer)
    for _ in range(steps):
        phased_step(run, clock)
    table = defaultdict(float)
    for (phase, op), seconds in timer.totals.items():
        table[(phase, category_of_ours(op))] += seconds
    for phase in PHASES:  # the rest of each phase: graph bookkeeping and Python
        in_ops = sum(s for (p, _), s in table.items() if p == phase)
        table[(phase, GRAPH)] += clock.seconds[phase] - in_ops
    return {key: 1000 * s / steps for key, s in table.items()}, {p: 1000 * s / steps for p, s in clock.seconds.items()}


def profile_torch(run, steps):
    clock = PhaseClock()

    def mark(phase):
        timed, ranged = clock(phase), record_function(f"phase::{phase}")

        class Both:
            def __enter__(self):
                ranged.__enter__()
                timed.__enter__()

            def __exit__(self, *exc):
                timed.__exit__(*exc)
                ranged.__exit__(*exc)
        return Both()

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            phased_step(run, mark)
    table = defaultdict(float)
    for event in prof.events():
        phase, parent = None, event
        while parent is not None:
            if parent.name.startswith("phase::"):
                phase = parent.name[len("phase::"):]
            parent = parent.cpu_parent
        if phase is None or event.name.startswith("phase::"):
            continue
        table[(phase, category_of_torch(event.name))] += event.self_cpu_time_total / 1e6
    for phase in PHASES:
        in_ops = sum(s for (p, c), s in table.items() if p == phase and c != GRAPH)
        table[(phase, GRAPH)] = clock.seconds[phase] - in_ops
    return {key: 1000 * s / steps for key, s in table.items()}, {p: 1000 * s / steps for p, s in clock.seconds.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="shakespeare-char-cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch's threads (set OPENBLAS_NUM_THREADS and NUMBA_NUM_THREADS for ours)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config, model_config, weights = setup(args.steps + 3, args.shape)
    runs = {name: Run(name, config, model_config, weights) for name in ("tinygrad_tx", "torch")}
    for run in runs.values():  # warm up: allocations, caches, the kernels' first calls
        for _ in range(3):
            run.step()
    ours, our_phases = profile_ours(runs["tinygrad_tx"], args.steps)
    theirs, their_phases = profile_torch(runs["torch"], args.steps)

    print(f"{args.shape}: {config.n_layer} layers, {config.n_head} heads, {config.n_embd} dims, block "
          f"{config.block_size}, batch {config.batch_size}; {args.steps} steps; torch {torch.__version__} on "
          f"{torch.get_num_threads()} threads; CPU kernels {'on' if tg.cpu.kernels_available() else 'off'}")
    print("| phase | what | tinygrad_tx ms/step | torch ms/step | ratio |")
    print("|---|---|---|---|---|")
    categories = list(CATEGORIES) + [ELEMENTWISE, GRAPH]
    for phase in PHASES:
        for category in categories if phase in ("forward", "backward") else ():
            a, b = ours.get((phase, category), 0.0), theirs.get((phase, category), 0.0)
            if max(a, b) >= 0.05:
                print(f"| {phase} | {category} | {a:.2f} | {b:.2f} | {a / b if b > 0.005 else float('inf'):.2f} |")
        a, b = our_phases[phase], their_phases[phase]
        print(f"| **{phase}** | **all** | **{a:.2f}** | **{b:.2f}** | **{a / b:.2f}** |")
    a, b = sum(our_phases.values()), sum(their_phases.values())
    print(f"| **step** | | **{a:.2f}** | **{b:.2f}** | **{a / b:.2f}** |")


if __name__ == "__main__":
    main()
