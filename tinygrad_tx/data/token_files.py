"""A corpus encoded once into token files, read in constant memory while training.

DIR/
  train.bin, val.bin   token ids, one after another: uint16 while the vocabulary fits (nanoGPT's format), else uint32
  meta.json            the tokenizer (as a checkpoint keeps it), the dtype and the token counts

`python -m tinygrad_tx.data.prepare` writes such a directory. TokenFileDataset reads batches from it
through numpy.memmap, opened anew for each batch: the pages a batch touched are not kept mapped, so the
resident memory stays that of the batches however large the files are (nanoGPT reads its .bin files
the same way, for the same reason).
"""
import json
import os

import numpy as np

from ..tensor import Tensor
from .dataset import DataError
from .tokenizers import tokenizer_from_dict

META = "meta.json"
SPLITS = ("train", "val")


def token_dtype(vocab_size):
    return np.uint16 if vocab_size <= 1 << 16 else np.uint32


def is_token_directory(path):
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, META))


class TokenFileDataset:
    """Random (x, y) windows from DIR/train.bin and DIR/val.bin; the same interface as TextDataset."""

    def __init__(self, directory, tokenizer=None, seed=1337):
        self.path = directory
        try:
            with open(os.path.join(directory, META)) as f:
                meta = json.load(f)
        except (OSError, ValueError) as error:
            raise DataError(f"cannot read {os.path.join(directory, META)}: {error}; write the directory with "
                            "python -m tinygrad_tx.data.prepare") from None
        self.tokenizer = tokenizer_from_dict(meta["tokenizer"])
        if tokenizer is not None and not isinstance(tokenizer, str) and tokenizer.to_dict() != meta["tokenizer"]:
            raise DataError(f"the token files in {directory} were written with another tokenizer than this run's "
                            f"({meta['tokenizer']['kind']}, vocabulary {self.tokenizer.vocab_size}); prepare the "
                            "corpus again with the run's tokenizer")
        self.dtype = np.dtype(meta["dtype"])
        self.files = {split: os.path.join(directory, f"{split}.bin") for split in SPLITS}
        self.lengths = {}
        for split, path in self.files.items():
            size = os.path.getsize(path) if os.path.isfile(path) else -1
            if size != meta[f"{split}_tokens"] * self.dtype.itemsize:
                raise DataError(f"{path} should hold {meta[f'{split}_tokens']} {self.dtype} tokens but "
                                + ("is missing" if size < 0 else f"has {size} bytes") + "; prepare it again")
            self.lengths[split] = meta[f"{split}_tokens"]
        self.generator = np.random.default_rng(seed)

    def check_block_size(self, block_size):
        for split, length in self.lengths.items():
            if length <= block_size:
                raise DataError(f"block_size {block_size} is too long for {self.files[split]}: it has {length} "
                                "tokens, and a window needs block_size + 1")

    def get_batch(self, split, batch_size, block_size, device="cpu"):
        """x: (B, T) ids from random offsets; y: the same windows shifted by one (the next tokens)."""
        if self.lengths[split] <= block_size:
            self.check_block_size(block_size)  # raises, naming the file that is too short
        data = np.memmap(self.files[split], dtype=self.dtype, mode="r")
        starts = self.generator.integers(0, len(data) - block_size, size=batch_size)
        windows = np.stack([data[s:s + block_size + 1] for s in starts]).astype(np.int64)
        del data  # unmapped: the pages read stay in the page cache, not in this process
        return Tensor(windows[:, :-1], device=device), Tensor(windows[:, 1:], device=device)

    def get_rng_state(self):
        return self.generator.bit_generator.state

    def set_rng_state(self, state):
        self.generator.bit_generator.state = state


def open_dataset(path, tokenizer="char", seed=1337):
    """A directory of token files, or a text file (None: the bundled tiny Shakespeare) encoded in memory."""
    from .dataset import TextDataset
    if path and os.path.isdir(path):
        if not is_token_directory(path):
            raise DataError(f"the data directory {path} has no {META}: write train.bin, val.bin and {META} into it "
                            f"with python -m tinygrad_tx.data.prepare --input FILE_OR_DIR --out-dir {path}")
        return TokenFileDataset(path, tokenizer, seed=seed)
    return TextDataset(path, tokenizer, seed=seed)
