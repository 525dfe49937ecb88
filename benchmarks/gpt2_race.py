"""GPT-2 training steps, tinygrad_tx against PyTorch eager, alternating in one process on one device.

Both engines run the same model code: models/gpt2.py, loaded a second time with its imports pointed at torch
(the point of following PyTorch's API), from the same initial weights. Each configuration (precision, batch)
alternates the engines round by round, so load on a shared machine hits both alike. Per engine: median
ms/step, tokens/s, peak device memory, and model FLOPs utilization by nanoGPT's estimate_mfu formula against
the device's dense peak for the precision.

    python benchmarks/gpt2_race.py                                  # on a GPU: GPT-2 124M, block 1024, batch 8, 16
    python benchmarks/gpt2_race.py --device cpu --model tiny        # a dry run of the script on the CPU

Step: forward and loss under the precision's autocast, backward (through GradScaler for float16), gradient
clipping at 1.0, AdamW (fused where the engine has it). Writes the table as JSON too, with --out.
"""
import argparse
import contextlib
import importlib.util
import json
import os
import statistics
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

# dense peaks of an H200 (SXM), FLOP/s, per precision of the matrix products
H200_PEAK = {"float32": 67e12, "tf32": 495e12, "float16": 990e12, "bfloat16": 990e12}
MODELS = {"gpt2": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50257),
          "tiny": dict(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=512)}


def load_model_code(engine_name):
    """models/gpt2.py as a module of `engine_name` ('tinygrad_tx' or 'torch')."""
    with open(os.path.join(ROOT, "models", "gpt2.py")) as f:
        source = f.read()
    if engine_name == "torch":
        lines = [line for line in source.splitlines() if not line.startswith("from tinygrad_tx.serialization")]
        source = "\n".join(lines).replace("import tinygrad_tx", "import torch")
    spec = importlib.util.spec_from_loader(f"gpt2_on_{engine_name}", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"models/gpt2.py ({engine_name})", "exec"), module.__dict__)
    return module


class Engine:
    def __init__(self, name, device, config, initial_state):
        self.name, self.device = name, device
        self.lib = importlib.import_module(name)
        self.code = load_model_code(name)
        self.model = self.code.GPT2(self.code.GPT2Config(**config)).to(device)
        self.model.load_state_dict({k: self.lib.tensor(v) for k, v in initial_state.items()})
        self.model.train()

    def prepare(self, precision):
        lib, cuda = self.lib, self.device.startswith("cuda")
        lib.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        groups = [{"params": [p for p in self.model.parameters() if p.dim() >= 2], "weight_decay": 0.1},
                  {"params": [p for p in self.model.parameters() if p.dim() < 2], "weight_decay": 0.0}]
        self.optimizer = lib.optim.AdamW(groups, lr=6e-4, betas=(0.9, 0.95), fused=True if cuda else None)
        dtype = {"float16": lib.float16, "bfloat16": lib.bfloat16}.get(precision)
        self.autocast_dtype = dtype
        self.scaler = lib.amp.GradScaler(self.device.split(":")[0], enabled=precision == "float16")

    def step(self, idx, targets):
        lib = self.lib
        region = (lib.autocast(self.device.split(":")[0], dtype=self.autocast_dtype) if self.autocast_dtype
                  else contextlib.nullcontext())
        with region:
            _, loss = self.model(idx, targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        lib.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss

    def synchronize(self):
        if self.device.startswith("cuda"):
            self.lib.cuda.synchronize()

    def reset_peak(self):
        if self.device.startswith("cuda"):
            self.lib.cuda.reset_peak_memory_stats()

    def peak_mib(self):
        return self.lib.cuda.max_memory_allocated() / 2 ** 20 if self.device.startswith("cuda") else float("nan")


def flops_per_step(config, parameters, batch):
    """nanoGPT's estimate_mfu: 6N + 12 L H Q T per token, T tokens per sequence, batch sequences."""
    layers, heads, per_head, block = (config["n_layer"], config["n_head"], config["n_embd"] // config["n_head"],
                                      config["block_size"])
    return (6 * parameters + 12 * layers * heads * per_head * block) * block * batch


def race(engines, config, precision, batch, steps, rounds, rng):
    block, vocab = config["block_size"], config["vocab_size"]
    tokens = rng.integers(0, vocab, size=(batch, block + 1))
    times = {e.name: [] for e in engines}
    losses, peaks = {}, {}
    for engine in engines:
        engine.prepare(precision)
        engine.batch = (engine.lib.tensor(tokens[:, :-1], device=engine.device),
                        engine.lib.tensor(tokens[:, 1:], device=engine.device))
        engine.step(*engine.batch)  # warm-up: kernel compiles, allocator pools, autotuning
        engine.synchronize()
        engine.reset_peak()
    for _ in range(rounds):
        for engine in engines:  # alternate: the machine's load hits both engines alike
            engine.synchronize()
            start = time.perf_counter()
            for _ in range(steps):
                loss = engine.step(*engine.batch)
            engine.synchronize()
            times[engine.name].append(1000 * (time.perf_counter() - start) / steps)
            losses[engine.name] = float(loss.item())
    for engine in engines:
        peaks[engine.name] = engine.peak_mib()
    return {name: {"ms_per_step": statistics.median(values), "loss": losses[name], "peak_mib": peaks[name]}
            for name, values in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", choices=sorted(MODELS), default="gpt2")
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--precisions", nargs="+", default=["float32", "tf32", "float16", "bfloat16"])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per engine")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()

    import numpy as np
    import torch

    import tinygrad_tx as tg
    config = MODELS[args.model]
    tg.manual_seed(0)
    reference = load_model_code("tinygrad_tx").GPT2(load_model_code("tinygrad_tx").GPT2Config(**config))
    initial = {name: value.detach().numpy() for name, value in reference.state_dict().items()}
    parameters = sum(p.numel() for p in reference.parameters())
    del reference
    engines = [Engine("tinygrad_tx", args.device, config, initial), Engine("torch", args.device, config, initial)]
    rng = np.random.default_rng(0)
    print(f"{args.model}: {parameters / 1e6:.1f}M parameters, block {config['block_size']}, device {args.device}")
    print(f"{'precision':<10} {'batch':>5} {'engine':<12} {'ms/step':>9} {'tokens/s':>10} {'MFU':>6} "
          f"{'peak MiB':>9} {'loss':>8}   ours/torch speed")
    results = []
    for precision in args.precisions:
        if precision == "tf32" and not args.device.startswith("cuda"):
            continue  # TF32 is a GPU setting
        for batch in args.batches:
            try:
                table = race(engines, config, precision, batch, args.steps, args.rounds, rng)
            except Exception as error:  # a precision one engine lacks here: say so and go on
                print(f"{precision:<10} {batch:>5} failed: {type(error).__name__}: {error}")
                results.append({"precision": precision, "batch": batch, "error": f"{type(error).__name__}: {error}"})
                continue
            flops = flops_per_step(config, parameters, batch)
            for name, row in table.items():
                row["tokens_per_s"] = batch * config["block_size"] / row["ms_per_step"] * 1000
                row["mfu"] = flops / (row["ms_per_step"] / 1000) / H200_PEAK[precision]
            ratio = table["torch"]["ms_per_step"] / table["tinygrad_tx"]["ms_per_step"]
            for name, row in table.items():
                print(f"{precision:<10} {batch:>5} {name:<12} {row['ms_per_step']:>9.1f} {row['tokens_per_s']:>10,.0f} "
                      f"{100 * row['mfu']:>5.1f}% {row['peak_mib']:>9.0f} {row['loss']:>8.4f}"
                      + (f"   {ratio:.2f}x" if name == "torch" else ""))
            results.append({"precision": precision, "batch": batch, "ours_over_torch_speed": ratio, **table})
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"model": args.model, "parameters": parameters, "device": args.device, "results": results}, f,
                      indent=2)


if __name__ == "__main__":
    main()
