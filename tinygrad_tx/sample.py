"""Sample text from a checkpoint:  python -m tinygrad_tx.sample --out-dir out --prompt "ROMEO:"
or from a local HuggingFace GPT-2 directory:  python -m tinygrad_tx.sample --init-from path/to/gpt2 --prompt "Hello"
Tokens are printed as they are generated."""
import argparse
import os

from . import random as tg_random
from .checkpoint import load_checkpoint
from .command_line import non_negative_float, non_negative_int, positive_int, require_device
from .data import StreamDecoder, tokenizer_from_dict
from .pretrained import PretrainedError, load_pretrained
from .tensor import Tensor


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tinygrad_tx.sample", description=__doc__)
    parser.add_argument("--out-dir", default="out")
    parser.add_argument("--init-from", help="a HuggingFace GPT-2 directory (config.json, model.safetensors, vocab.json "
                                            "+ merges.txt or tokenizer.json) to sample from instead of a checkpoint")
    parser.add_argument("--prompt", default="\n")
    parser.add_argument("--max-new-tokens", type=positive_int, default=500)
    parser.add_argument("--num-samples", type=positive_int, default=1)
    parser.add_argument("--temperature", type=non_negative_float, default=0.8,
                        help="0 always picks the most likely token")
    parser.add_argument("--top-k", type=non_negative_int, default=200,
                        help="sample among the k most likely tokens; 0 for all of them")
    parser.add_argument("--seed", type=non_negative_int, default=1337)
    parser.add_argument("--device", default="cpu")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    require_device(parser, args.device)
    model, tokenizer = load_model(parser, args)
    try:
        prompt = tokenizer.encode(args.prompt)
    except ValueError as error:  # a character the training text never had
        parser.error(f"--prompt {args.prompt!r}: {error}")
    if not prompt:
        parser.error("--prompt '': the model needs at least one token to continue")

    model.eval()
    tg_random.manual_seed(args.seed)
    idx = Tensor([prompt], device=args.device)
    for _ in range(args.num_samples):
        decoder = StreamDecoder(tokenizer)
        print(decoder.push(prompt), end="", flush=True)
        model.generate(idx, args.max_new_tokens, args.temperature, args.top_k or None,
                       stream=lambda column: print(decoder.push(column), end="", flush=True))
        print(decoder.flush())
        print("---------------")


def load_model(parser, args):
    """-> (model, tokenizer) from --init-from or from the checkpoint in --out-dir."""
    if args.init_from:
        try:
            return load_pretrained(args.init_from, device=args.device)
        except PretrainedError as error:
            parser.error(f"--init-from {args.init_from}: {error}")
    try:
        weights, state = load_checkpoint(args.out_dir, device=args.device)
    except FileNotFoundError:  # no ckpt/ folder, or one missing a file
        parser.error(f"--out-dir {args.out_dir}: no complete checkpoint in {os.path.join(args.out_dir, 'ckpt')} "
                     "to sample from")
    from models.gpt2 import GPT2, GPT2Config
    model = GPT2(GPT2Config.from_dict(state["model_config"])).to(args.device)
    model.load_state_dict(weights)
    return model, tokenizer_from_dict(state["tokenizer"])

if __name__ == "__main__":
    main()
