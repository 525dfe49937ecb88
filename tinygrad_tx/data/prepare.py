"""Encode a corpus into token files for training:

    python -m tinygrad_tx.data.prepare --tokenizer gpt2:path/to/gpt2 --input corpus/ --out-dir data/corpus
    python -m tinygrad_tx.train --data data/corpus ...

--input is a text file or a directory (every file under it, in sorted path order). The first 90% of the
text (by bytes; --val-fraction) goes to train.bin, the rest to val.bin, with meta.json beside them
(token_files.py). The text is read, encoded and written in pieces, so memory stays small whatever the
size of the corpus.

Tokenizers: char (one id per distinct character; a first pass over the corpus finds them), byte (the
256 byte values, any file), bpe (a byte-level BPE of --vocab-size tokens learned from the first
--bpe-train-mb MB of the corpus; its vocab.json and merges.txt are written too) and gpt2:DIR (the
tokenizer of a HuggingFace GPT-2 directory). With a BPE each file ends with <|endoftext|>, as nanoGPT
separates the documents of OpenWebText.
"""
import argparse
import json
import os
import sys

import numpy as np

from ..command_line import positive_float, positive_int
from .bpe import BPETokenizer, GPT2Tokenizer
from .dataset import DataError
from .token_files import META, SPLITS, token_dtype
from .tokenizers import ByteTokenizer, CharTokenizer

CHUNK_CHARACTERS = 1 << 20


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tinygrad_tx.data.prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True, help="char, byte, bpe or gpt2:DIR")
    parser.add_argument("--input", required=True, help="a text file, or a directory of them")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--val-fraction", type=positive_float, default=0.1, help="in (0, 1)")
    parser.add_argument("--vocab-size", type=positive_int, default=4096, help="for --tokenizer bpe")
    parser.add_argument("--bpe-train-mb", type=positive_float, default=10.0,
                        help="for --tokenizer bpe: learn the merges from this many MB at the start of the corpus")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 < args.val_fraction < 1:
        parser.error(f"argument --val-fraction: {args.val_fraction} must be in (0, 1)")
    try:
        files = input_files(args.input)
        tokenizer = make_tokenizer(args.tokenizer, files, args)
        counts = write_token_files(tokenizer, files, args.out_dir, args.val_fraction)
    except DataError as error:  # bad input; any other exception is a bug and keeps its traceback
        parser.error(str(error))
    print(f"{args.out_dir}: {counts['train']:,} train and {counts['val']:,} val tokens, vocabulary "
          f"{tokenizer.vocab_size} ({tokenizer.kind})")


def input_files(path):
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise DataError(f"--input {path}: no such file or directory")
    files = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
    if not files:
        raise DataError(f"--input {path}: the directory holds no files")
    return files


def make_tokenizer(spec, files, args):
    if spec == "byte":
        return ByteTokenizer()
    if spec == "char":
        characters = set()
        for _, text in read_pieces(files, "strict"):
            characters.update(text)
        return CharTokenizer(characters)
    if spec == "bpe":
        sample, budget = [], int(args.bpe_train_mb * 1e6)
        for _, text in read_pieces(files, "strict"):
            sample.append(text)
            budget -= len(text)
            if budget <= 0:
                break
        try:
            return BPETokenizer.train("".join(sample), args.vocab_size)
        except ValueError as error:  # a vocabulary smaller than the bytes and <|endoftext|>
            raise DataError(f"--vocab-size {args.vocab_size}: {error}") from None
    if spec.startswith("gpt2:"):
        try:
            return GPT2Tokenizer.from_pretrained(spec[len("gpt2:"):])
        except (OSError, ValueError) as error:  # missing files, a vocabulary that is not byte-level BPE
            raise DataError(f"--tokenizer {spec}: {error}") from None
    raise DataError(f"--tokenizer {spec}: choose char, byte, bpe or gpt2:DIR")


def read_pieces(files, errors):
    """(file index, text) pieces of about a million characters, file after file."""
    for index, path in enumerate(files):
        try:
            with open(path, encoding="utf-8", errors=errors, newline="") as f:  # "\r\n" stays as written
                while text := f.read(CHUNK_CHARACTERS):
                    yield index, text
        except OSError as error:
            raise DataError(f"cannot read {path}: {error.strerror}") from None
        except UnicodeDecodeError as error:
            raise DataError(f"{path} is not UTF-8 text (it holds the byte 0x{error.object[error.start]:02x}); "
                            "encode its bytes with --tokenizer byte") from None


def write_token_files(tokenizer, files, out_dir, val_fraction):
    """Encode the files into out_dir/train.bin and val.bin; -> {split: token count}."""
    os.makedirs(out_dir, exist_ok=True)
    errors = "surrogateescape" if tokenizer.kind == "byte" else "strict"  # bytes that are not UTF-8 stay bytes
    total = sum(os.path.getsize(path) for path in files)
    train_bytes = int(total * (1 - val_fraction))
    dtype = token_dtype(tokenizer.vocab_size)
    eot = getattr(tokenizer, "eot_token_id", None)
    writers = {split: TokenWriter(os.path.join(out_dir, f"{split}.bin"), tokenizer, dtype) for split in SPLITS}
    split, done, current_file = "train", 0, 0
    with progress_bar(total) as progress:
        for index, text in read_pieces(files, errors):
            if index != current_file:  # a document ends
                writers[split].end_document(eot)
                current_file = index
            size = len(text.encode("utf-8", errors))
            if split == "train" and done + size > train_bytes:  # the split falls in this piece
                cut = characters_within(text, train_bytes - done, errors)
                writers["train"].write(text[:cut])
                writers["train"].end_document(None)
                split, text = "val", text[cut:]
            writers[split].write(text)
            done += size
            progress(size)
    writers[split].end_document(eot)
    counts = {split: writer.close() for split, writer in writers.items()}
    for split, count in counts.items():
        if count < 2:
            raise DataError(f"the {split} split has {count} tokens: the input is too small to split at "
                            f"--val-fraction {val_fraction}")
    if hasattr(tokenizer, "save"):
        tokenizer.save(out_dir)  # vocab.json + merges.txt, for other tools
    with open(os.path.join(out_dir, META), "w") as f:  # last: it marks the directory complete
        json.dump({"tokenizer": tokenizer.to_dict(), "dtype": np.dtype(dtype).name,
                   **{f"{split}_tokens": count for split, count in counts.items()}}, f)
    return counts


def characters_within(text, n_bytes, errors):
    """The length of the longest start of text whose UTF-8 fits in n_bytes (a split never cuts a character)."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if len(text[:middle].encode("utf-8", errors)) <= n_bytes:
            low = middle
        else:
            high = middle - 1
    return low


class TokenWriter:
    """Appends the ids of text to one .bin file as it comes, one document after another."""

    def __init__(self, path, tokenizer, dtype):
        self.path, self.dtype, self.count = path, dtype, 0
        self.file = open(path, "wb")
        # a BPE decides a word at a piece's end only when the next piece comes; characters and bytes stand alone
        self.encoder = tokenizer.stream_encoder() if hasattr(tokenizer, "stream_encoder") else WholeUnits(tokenizer)

    def write(self, text):
        self._append(self.encoder.push(text))

    def end_document(self, eot):
        self._append(self.encoder.finish() + ([eot] if eot is not None else []))

    def _append(self, ids):
        np.asarray(ids, dtype=self.dtype).tofile(self.file)
        self.count += len(ids)

    def close(self):
        self.file.close()
        return self.count


class WholeUnits:
    """The stream encoder of a tokenizer whose tokens never span two pieces of text (characters, bytes)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def push(self, text):
        return self.tokenizer.encode(text)

    def finish(self):
        return []


def progress_bar(total_bytes):
    """A context giving progress(n_bytes): tqdm's bar where it is installed, else a line per tenth."""
    try:
        from tqdm import tqdm
    except ImportError:
        return _PlainProgress(total_bytes)
    return _TqdmProgress(tqdm(total=total_bytes, unit="B", unit_scale=True, desc="encoding"))


class _TqdmProgress:
    def __init__(self, bar):
        self.bar = bar

    def __enter__(self):
        return self.bar.update

    def __exit__(self, *exc):
        self.bar.close()


class _PlainProgress:
    def __init__(self, total):
        self.total, self.done, self.reported = max(total, 1), 0, 0

    def __enter__(self):
        return self.update

    def __exit__(self, *exc):
        pass

    def update(self, n):
        self.done += n
        tenth = 10 * self.done // self.total
        if tenth > self.reported:
            self.reported = tenth
            print(f"encoding: {10 * tenth}% of {self.total / 1e6:.1f} MB", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
