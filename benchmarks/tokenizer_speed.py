"""Encoding throughput of our byte-level BPE (pure Python) beside HuggingFace's `tokenizers` (Rust), in MB/s of
UTF-8 text, on the same vocabulary and the same text in one run.

A vocabulary of --vocab-size tokens is learned from the text (ours and HuggingFace's trainer learn the same
merges); HuggingFace's tokenizer reads our saved vocab.json + merges.txt, and both must give the same ids.
"cold" clears our per-word cache first, so every distinct word is merged once; "warm" encodes again with
the cache full. HuggingFace is timed on the text as one string, and as 4 KiB pieces through encode_batch
(which uses every core).

    python benchmarks/tokenizer_speed.py
    python benchmarks/tokenizer_speed.py --input big.txt --vocab-size 50257
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tinygrad_tx.data import DEFAULT_TEXT, END_OF_TEXT, BPETokenizer  # noqa: E402


def huggingface(directory):
    import tokenizers
    hf = tokenizers.Tokenizer(tokenizers.models.BPE.from_file(os.path.join(directory, "vocab.json"),
                                                              os.path.join(directory, "merges.txt")))
    hf.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = tokenizers.decoders.ByteLevel()
    hf.add_special_tokens([END_OF_TEXT])
    return hf


def megabytes_per_second(megabytes, run, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return megabytes / best


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=DEFAULT_TEXT)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with open(args.input, encoding="utf-8") as f:
        text = f.read()
    megabytes = len(text.encode("utf-8")) / 1e6
    start = time.perf_counter()
    ours = BPETokenizer.train(text, args.vocab_size)
    print(f"trained {ours.vocab_size} tokens on {megabytes:.2f} MB in {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as directory:
        ours.save(directory)
        hf = huggingface(directory)
    pieces = [text[i:i + 4096] for i in range(0, len(text), 4096)]
    if ours.encode(text) != hf.encode(text).ids:
        sys.exit("the two tokenizers disagree on this text")

    def cold():
        ours.cache.clear()
        ours.encode(text)

    rows = [("ours, cold cache", megabytes_per_second(megabytes, cold, args.repeats)),
            ("ours, warm cache", megabytes_per_second(megabytes, lambda: ours.encode(text), args.repeats)),
            ("tokenizers, one string", megabytes_per_second(megabytes, lambda: hf.encode(text), args.repeats)),
            ("tokenizers, encode_batch of 4 KiB", megabytes_per_second(megabytes, lambda: hf.encode_batch(pieces),
                                                                       args.repeats))]
    fastest_hf = max(rows[2][1], rows[3][1])
    print(f"\n| encoder | MB/s | HuggingFace's best / this |\n|---|---|---|")
    for name, speed in rows:
        print(f"| {name} | {speed:.2f} | {fastest_hf / speed:.2f} |")


if __name__ == "__main__":
    main()
