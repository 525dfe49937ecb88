"""Train the encoder-decoder Transformer to reverse digit strings, then translate held-out strings greedily.

    source: 3 1 4 1 5 9     (1 to --max-len digits, padded)
    target: 9 5 1 4 1 3     (the decoder reads <s> 9 5 1 4 1 3 and predicts 9 5 1 4 1 3 </s>)

The data is generated: every training batch is fresh, drawn so that it never contains a validation or
test string (strings of 1 to 3 digits are too few to hold out: all of them are seen in training).
The model is the paper's post-LN Transformer, smaller (d_model 64, 4 heads, 2 + 2 layers), trained with
Adam (beta2 0.98, eps 1e-9), the paper's warmup schedule and label smoothing 0.1. Training stops when
greedy decoding gets --target of the validation strings exactly right; the test strings are then
decoded once and the exact-match printed.

    python examples/seq2seq_transformer.py            # a few minutes on two CPU cores
    python examples/seq2seq_transformer.py --quick    # a short smoke run
"""
import os

# small matrices: one BLAS thread is faster than two fighting over shared cores (set before NumPy loads)
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

import tinygrad_tx as tg  # noqa: E402
from models.transformer import Transformer, TransformerConfig, paper_optimizer  # noqa: E402

PAD, BOS, EOS = 0, 1, 2
DIGIT0 = 3                      # the digit d is token DIGIT0 + d
VOCAB_SIZE = DIGIT0 + 10


def random_strings(generator, count, max_len):
    lengths = generator.integers(1, max_len + 1, count)
    return [tuple(generator.integers(0, 10, length)) for length in lengths]


def held_out_strings(generator, count, max_len, exclude=()):
    """Distinct strings of 4 or more digits (shorter ones are too few to keep out of training)."""
    strings, seen = [], set(exclude)
    while len(strings) < count:
        s = random_strings(generator, 1, max_len)[0]
        if len(s) >= 4 and s not in seen:
            seen.add(s)
            strings.append(s)
    return strings


def encode(strings, max_len):
    """Strings -> src (B, max_len) and tgt (B, max_len + 2) token ids: tgt = <s> reversed </s>, padded."""
    src = np.full((len(strings), max_len), PAD, dtype=np.int64)
    tgt = np.full((len(strings), max_len + 2), PAD, dtype=np.int64)
    for row, s in enumerate(strings):
        digits = [DIGIT0 + d for d in s]
        src[row, :len(s)] = digits
        tgt[row, :len(s) + 2] = [BOS, *digits[::-1], EOS]
    return src, tgt


def text(ids):
    return " ".join(str(int(i) - DIGIT0) for i in ids if i >= DIGIT0)


def translate(model, strings, max_len, batch_size=250):
    """Greedy translations, as lists of token ids up to and including </s> (or the whole output)."""
    model.eval()
    outputs = []
    for start in range(0, len(strings), batch_size):
        src, _ = encode(strings[start:start + batch_size], max_len)
        ys = model.greedy_decode(tg.tensor(src), max_len=max_len + 1, bos_id=BOS, eos_id=EOS).numpy()
        for row in ys:
            row = list(row)
            outputs.append(row[:row.index(EOS) + 1] if EOS in row else row)
    model.train()
    return outputs


def exact_match(model, strings, max_len):
    outputs = translate(model, strings, max_len)
    correct = sum(out == [DIGIT0 + d for d in s[::-1]] + [EOS] for s, out in zip(strings, outputs))
    return correct / len(strings), outputs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (a few hundred steps)")
    parser.add_argument("--max-len", type=int, default=10, help="longest string (digits)")
    parser.add_argument("--steps", type=int, default=None, help="most training steps (default 4000; quick 150)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--target", type=float, default=0.995, help="stop at this validation exact-match")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    steps = args.steps or (150 if args.quick else 4000)
    n_valid, n_test = (100, 200) if args.quick else (500, 1000)

    tg.manual_seed(args.seed)
    generator = np.random.default_rng(args.seed)
    test = held_out_strings(generator, n_test, args.max_len)
    valid = held_out_strings(generator, n_valid, args.max_len, exclude=test)
    held_out = set(test) | set(valid)

    config = TransformerConfig(src_vocab_size=VOCAB_SIZE, tgt_vocab_size=VOCAB_SIZE, d_model=64, n_head=4,
                               num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=256, dropout=0.0,
                               max_len=args.max_len + 2, label_smoothing=0.1, pad_id=PAD, norm_first=False)
    model = Transformer(config)
    optimizer, scheduler = paper_optimizer(model, config.d_model, warmup_steps=400, factor=0.5)
    print(f"reversing strings of 1-{args.max_len} digits; {sum(p.numel() for p in model.parameters()):,} "
          f"parameters; {n_valid} validation and {n_test} test strings held out")

    start = time.time()
    for step in range(1, steps + 1):
        strings = [s for s in random_strings(generator, args.batch_size, args.max_len) if s not in held_out]
        src, tgt = encode(strings, args.max_len)
        _, loss = model(tg.tensor(src), tg.tensor(tgt[:, :-1]), tg.tensor(tgt[:, 1:]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % args.eval_every == 0 or step == steps:
            accuracy, _ = exact_match(model, valid, args.max_len)
            print(f"step {step:5d}  loss {loss.item():.4f}  lr {scheduler.get_last_lr()[0]:.2e}  "
                  f"validation exact-match {accuracy:6.1%}  ({time.time() - start:.0f}s)", flush=True)
            if accuracy >= args.target:
                break
    train_time = time.time() - start

    accuracy, outputs = exact_match(model, test, args.max_len)
    print("\nsample translations (held-out test strings):")
    for s, out in list(zip(test, outputs))[:8]:
        mark = "ok" if out == [DIGIT0 + d for d in s[::-1]] + [EOS] else "WRONG"
        print(f"  {text([DIGIT0 + d for d in s]):<20} -> {text(out):<20} {mark}")
    print(f"\ntest exact-match: {accuracy:.1%} of {len(test)} held-out strings, after {step} steps "
          f"({train_time:.0f}s of training)")
    return accuracy


if __name__ == "__main__":
    main()
