"""Generation speed on the CPU: ms per generated token for a GPT-2 124M-shaped model (random weights), ours
with and without the KV cache, and HuggingFace transformers' generate on the same weights, in one run.

A random transformers.GPT2LMHeadModel is saved to a temporary directory and loaded by GPT2.from_pretrained,
so both hold the same weights. Each generates --new-tokens tokens greedily after a --prompt-tokens prompt
(min_new_tokens keeps HF from stopping early), best of --repeats runs taken in turn. Without the cache
every step recomputes the whole context, so that row generates only --uncached-tokens tokens (its cost
per token grows with the context; the number is for the first tokens after the prompt, the most
favourable to it).

    python benchmarks/generate_cpu.py
    python benchmarks/generate_cpu.py --new-tokens 64 --repeats 1      # quicker
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import tinygrad_tx as tg  # noqa: E402
from models.gpt2 import GPT2  # noqa: E402


def interleaved_best_times(runs, repeats):
    """{name: (best seconds, result of the last run)}, running the generators in turn, repeats times: a change in
    the machine's load then falls on all of them alike."""
    times, results = {name: float("inf") for name in runs}, {}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            results[name] = run()
            times[name] = min(times[name], time.perf_counter() - start)
    return {name: (times[name], results[name]) for name in runs}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--uncached-tokens", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    import torch
    import transformers
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()  # 124M: 12 layers, 12 heads, 768 dims
    prompt = np.random.default_rng(0).integers(0, 50257, (1, args.prompt_tokens))
    with tempfile.TemporaryDirectory() as directory:
        hf.save_pretrained(directory)
        ours = GPT2.from_pretrained(directory).eval()
    n = args.new_tokens

    def huggingface():
        with torch.no_grad():
            return hf.generate(torch.tensor(prompt), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                               use_cache=True, pad_token_id=0)[0, args.prompt_tokens:].tolist()

    idx = tg.tensor(prompt)
    measured = interleaved_best_times({
        "hf": huggingface,
        "cached": lambda: ours.generate(idx, n, temperature=0)[0, args.prompt_tokens:].tolist(),
        "uncached": lambda: ours.generate(idx, args.uncached_tokens, temperature=0,
                                          use_cache=False)[0, args.prompt_tokens:].tolist()}, args.repeats)
    (hf_time, hf_tokens), (cached_time, cached_tokens), (uncached_time, uncached_tokens) = measured.values()
    agree = next((i for i, (a, b) in enumerate(zip(cached_tokens, hf_tokens)) if a != b), n)
    rows = [("ours, KV cache", cached_time / n, n), ("ours, no cache", uncached_time / args.uncached_tokens,
                                                      args.uncached_tokens),
            ("transformers generate (KV cache)", hf_time / n, n)]
    print(f"GPT-2 124M shape, random weights, prompt {args.prompt_tokens} tokens, greedy, {args.threads} threads "
          f"(torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__})\n")
    print("| generator | new tokens | ms/token | speed vs transformers |\n|---|---|---|---|")
    for name, seconds, count in rows:
        print(f"| {name} | {count} | {1000 * seconds:.1f} | {hf_time / n / seconds:.2f}x |")
    print(f"\ncached and uncached agree on the first {args.uncached_tokens} tokens: "
          f"{cached_tokens[:args.uncached_tokens] == uncached_tokens}; "
          f"ours and transformers agree on the first {agree} of {n} greedy tokens")


if __name__ == "__main__":
    main()
