"""Train a GPT-2 on a text file:  python -m tinygrad_tx.train --preset shakespeare-char-cpu
or fine-tune a HuggingFace GPT-2:  python -m tinygrad_tx.train --preset finetune-shakespeare --init-from path/to/gpt2
(--data: a text file, or a directory written by python -m tinygrad_tx.data.prepare)

Writes OUT_DIR/metrics.jsonl, OUT_DIR/loss.png, OUT_DIR/graph.svg (the model's graph) and a checkpoint in
OUT_DIR/ckpt, then prints a sample.
Ctrl-C saves a checkpoint and exits; --resume continues from it with the same losses as an
uninterrupted run.

Data-parallel on N processes: python -m tinygrad_tx.distributed.run --nproc-per-node N -m tinygrad_tx.train ...
(each rank trains on its own batches of --batch-size; rank 0 alone evaluates, logs, saves and samples).
"""
import argparse
import os
import time

from .command_line import dropout_probability, non_negative_int, positive_float, positive_int, require_device
from .data import DataError
from .trainer import PRESETS, ConfigError, Trainer, TrainConfig, config_from_preset, plot_losses
from .viz import save_model_graph


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tinygrad_tx.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="shakespeare-char-cpu", choices=sorted(PRESETS))
    parser.add_argument("--max-iters", type=positive_int)
    parser.add_argument("--eval-interval", type=positive_int)
    parser.add_argument("--eval-iters", type=positive_int)
    parser.add_argument("--log-interval", type=positive_int)
    parser.add_argument("--batch-size", type=positive_int)
    parser.add_argument("--block-size", type=positive_int)
    parser.add_argument("--n-layer", type=positive_int)
    parser.add_argument("--n-head", type=positive_int)
    parser.add_argument("--n-embd", type=positive_int)
    parser.add_argument("--dropout", type=dropout_probability, help="in [0, 1); 0 turns dropout off")
    parser.add_argument("--learning-rate", type=positive_float)
    parser.add_argument("--device", help="cpu, cuda or cuda:N")
    parser.add_argument("--dtype", choices=["float32", "tf32", "float16", "bfloat16"],
                        help="float32 (default); tf32: TF32 matrix products (cuda); float16: autocast with loss "
                             "scaling; bfloat16: autocast, no loss scaling (needs ml_dtypes)")
    parser.add_argument("--seed", type=non_negative_int)
    parser.add_argument("--out-dir")
    parser.add_argument("--data", help="a UTF-8 text file, or any file with --tokenizer byte, or a directory of "
                                       "token files from python -m tinygrad_tx.data.prepare "
                                       "(default: the bundled tiny Shakespeare)")
    parser.add_argument("--tokenizer", choices=["char", "byte"])
    parser.add_argument("--init-from", help="a HuggingFace GPT-2 directory (config.json, model.safetensors, vocab.json "
                                            "+ merges.txt) to fine-tune; the result is also written to OUT_DIR/hf")
    parser.add_argument("--sample-tokens", type=positive_int)
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/ckpt")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {key: value for key, value in vars(args).items()
                 if value is not None and key in TrainConfig.__dataclass_fields__}
    config = config_from_preset(args.preset, **overrides)
    if args.max_iters is not None and "lr_decay_iters" not in overrides:
        config.lr_decay_iters = args.max_iters  # decay over the run that was asked for
    require_device(parser, config.device)
    fixed = [name for name in ("n_layer", "n_head", "n_embd", "tokenizer") if getattr(args, name) is not None]
    if args.init_from and fixed:
        parser.error(f"--init-from {args.init_from}: the pretrained model has its own "
                     + ", ".join("--" + name.replace("_", "-") for name in fixed))
    if config.block_size == 0 and not config.init_from and not args.resume:
        parser.error(f"--preset {args.preset} fine-tunes a pretrained model: give --init-from DIR")
    try:
        trainer = Trainer(config, resume=args.resume)
    except (ConfigError, DataError) as error:  # bad input; any other exception is a bug and keeps its traceback
        parser.error(str(error))
    ranks = trainer.ranks
    if ranks.is_main:
        on = f"{config.device}" + (f", {ranks.world_size} ranks" if ranks.world_size > 1 else "")
        each = " on each rank" if ranks.world_size > 1 else ""
        print(f"GPT-2 with {trainer.model.num_params():,} parameters, vocabulary {trainer.model_config.vocab_size}, "
              f"on {on}; {config.max_iters} iterations of {config.batch_size}x{trainer.model_config.block_size}"
              f" tokens{each}")
    start = time.perf_counter()
    best = trainer.train(resumed=args.resume)
    if not ranks.is_main:  # rank 0 alone reports, plots, draws and samples
        ranks.close()
        return
    print(f"best val loss {best:.4f} in {time.perf_counter() - start:.0f} s")
    plot = plot_losses(config.out_dir)
    if plot:
        print(f"loss curve: {plot}")
    graph = save_model_graph(trainer.model, os.path.join(config.out_dir, "graph.svg"), depth=1)  # .dot without Graphviz
    print(f"model graph: {graph}")
    if trainer.iteration >= config.max_iters:
        print("sample:\n" + trainer.sample())
        if trainer.dataset.tokenizer.kind == "bpe" and trainer.model_config.bias:  # a GPT-2 transformers can load
            print(f"HuggingFace GPT-2 directory: {trainer.save_pretrained()}")
    ranks.close()


if __name__ == "__main__":
    main()
