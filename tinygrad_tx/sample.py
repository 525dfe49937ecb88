"""Sample text from a checkpoint:  python -m tinygrad_tx.sample --out-dir out --prompt "ROMEO:" """
import argparse

from . import random as tg_random
from .checkpoint import load_checkpoint
from .data import tokenizer_from_dict
from .tensor import Tensor


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinygrad_tx.sample", description=__doc__)
    parser.add_argument("--out-dir", default="out")
    parser.add_argument("--prompt", default="\n")
    parser.add_argument("--max-new-tokens", type=int, default=500)
    parser.add_argument("--num-samples", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    from models.gpt2 import GPT2, GPT2Config
    weights, state = load_checkpoint(args.out_dir, device=args.device)
    model = GPT2(GPT2Config.from_dict(state["model_config"])).to(args.device)
    model.load_state_dict(weights)
    model.eval()
    tokenizer = tokenizer_from_dict(state["tokenizer"])
    tg_random.manual_seed(args.seed)
    idx = Tensor([tokenizer.encode(args.prompt)], device=args.device)
    for _ in range(args.num_samples):
        out = model.generate(idx, args.max_new_tokens, args.temperature, args.top_k)
        print(tokenizer.decode(out[0].tolist()))
        print("---------------")


if __name__ == "__main__":
    main()
