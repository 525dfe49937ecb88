"""Draw a GPT-2's training graph (forward and loss on a tiny batch) without writing code:

    python -m tinygrad_tx.viz --preset gpt2 --depth 1 --out graph.svg
    python -m tinygrad_tx.viz --checkpoint out --roll-repeats --out graph.svg
    python -m tinygrad_tx.viz --preset gpt2-tiny --backward --show-grads --out backward.svg
"""
import argparse
import os
import sys
import time

from ..command_line import non_negative_int, positive_int


def parse_args(argv=None):
    from models.gpt2 import PRESETS
    parser = argparse.ArgumentParser(prog="python -m tinygrad_tx.viz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(PRESETS), help="a GPT-2 size, randomly initialized "
                        "(default: gpt2-tiny)")
    source.add_argument("--checkpoint", metavar="DIR", help="a training run's OUT_DIR (or its ckpt/ folder)")
    parser.add_argument("--vocab-size", type=positive_int, help="with --preset (default: the preset's, 50257)")
    parser.add_argument("--out", default="graph.svg", help="output file: .svg, .png, .pdf or .dot (default graph.svg)")
    parser.add_argument("--depth", type=non_negative_int, help="fold modules deeper than this (default: draw every op)")
    parser.add_argument("--roll-repeats", action="store_true", help="draw identical repeated blocks as one node xN")
    parser.add_argument("--backward", action="store_true", help="draw the gradient flow, numbered in backward order")
    parser.add_argument("--show-grads", action="store_true", help="run backward and color arrows by gradient norm")
    parser.add_argument("--show-saved", action="store_true", help="list what each op saved for backward")
    parser.add_argument("--no-dtypes", action="store_true", help="leave dtypes off the labels")
    parser.add_argument("--max-nodes", type=positive_int, default=1000)
    parser.add_argument("--rankdir", choices=["TB", "LR", "BT", "RL"], default="TB")
    parser.add_argument("--batch-size", type=positive_int, default=1)
    parser.add_argument("--seq-len", type=positive_int, default=8)
    return parser.parse_args(argv)


def load_model(args):
    from models.gpt2 import GPT2, GPT2Config
    if args.checkpoint is None:
        overrides = {"vocab_size": args.vocab_size} if args.vocab_size else {}
        return GPT2.from_preset(args.preset or "gpt2-tiny", **overrides)
    from ..checkpoint import load_checkpoint
    directory = args.checkpoint.rstrip("/\\")
    if os.path.basename(directory) == "ckpt":  # accept the ckpt/ folder itself too
        directory = os.path.dirname(directory) or "."
    weights, state = load_checkpoint(directory)
    model = GPT2(GPT2Config.from_dict(state["model_config"]))
    model.load_state_dict(weights)
    return model


def main(argv=None):
    args = parse_args(argv)
    from .model_graph import save_model_graph
    from .render import GraphvizNotFound
    start = time.perf_counter()
    try:
        model = load_model(args)
    except (FileNotFoundError, KeyError, ValueError) as error:
        print(f"python -m tinygrad_tx.viz: cannot load the model: {error}", file=sys.stderr)
        return 1
    loaded = time.perf_counter()
    try:
        path = save_model_graph(model, args.out, depth=args.depth, batch_size=args.batch_size, seq_len=args.seq_len,
                                roll_repeats=args.roll_repeats, backward=args.backward, show_grads=args.show_grads,
                                show_saved=args.show_saved, show_dtypes=not args.no_dtypes, max_nodes=args.max_nodes,
                                rankdir=args.rankdir, fallback_to_dot=False)
    except (GraphvizNotFound, ValueError) as error:
        print(f"python -m tinygrad_tx.viz: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path} (model ready in {loaded - start:.1f} s, graph drawn in {time.perf_counter() - loaded:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
