"""A text file as token ids, split 90/10 into train and val, served as random (x, y) batches."""
import os

import numpy as np

from ..tensor import Tensor
from .tokenizers import ByteTokenizer, CharTokenizer

DEFAULT_TEXT = os.path.join(os.path.dirname(__file__), "tinyshakespeare.txt")


class DataError(ValueError):
    """A text file that cannot be trained on (missing, not UTF-8, empty, shorter than the context).
    The message names the file and what to do; the training program prints it as a usage error."""


class TextDataset:
    def __init__(self, path=None, tokenizer="char", train_fraction=0.9, seed=1337):
        self.path = path or DEFAULT_TEXT
        reads_bytes = tokenizer == "byte" or isinstance(tokenizer, ByteTokenizer)
        try:
            # surrogateescape keeps bytes that are not UTF-8, and ByteTokenizer gives them back as they were
            with open(self.path, encoding="utf-8", errors="surrogateescape" if reads_bytes else "strict") as f:
                text = f.read()
        except OSError as error:  # missing, a directory, no permission
            raise DataError(f"cannot read the data file {self.path}: {error.strerror}") from None
        except UnicodeDecodeError as error:
            raise DataError(f"the data file {self.path} is not UTF-8 text (it holds the byte "
                            f"0x{error.object[error.start]:02x}); train on its bytes with --tokenizer byte") from None
        if not text:
            raise DataError(f"the data file {self.path} is empty")
        if isinstance(tokenizer, str):
            tokenizer = {"char": CharTokenizer.from_text, "byte": lambda _: ByteTokenizer()}[tokenizer](text)
        try:
            ids = tokenizer.encode(text)
        except ValueError as error:  # a resumed run's vocabulary lacks a character the file now has
            raise DataError(f"the data file {self.path} does not fit the tokenizer: {error}") from None
        self.tokenizer = tokenizer
        ids = np.asarray(ids, dtype=np.int64)
        split = int(len(ids) * train_fraction)
        self.splits = {"train": ids[:split], "val": ids[split:]}
        # batches come from their own generator, so they don't depend on how many random numbers the model drew
        self.generator = np.random.default_rng(seed)

    def check_block_size(self, block_size):
        """Every split must hold at least one window of block_size inputs and its next token."""
        for split, data in self.splits.items():
            if len(data) <= block_size:
                raise DataError(f"block_size {block_size} is too long for the data file {self.path}: its {split} "
                                f"split has {len(data)} tokens, and a window needs block_size + 1")

    def get_batch(self, split, batch_size, block_size, device="cpu"):
        """x: (B, T) ids from random offsets; y: the same windows shifted by one (the next tokens)."""
        data = self.splits[split]
        if len(data) <= block_size:
            self.check_block_size(block_size)  # raises, naming the split that is too short
        starts = self.generator.integers(0, len(data) - block_size, size=batch_size)
        windows = np.stack([data[s:s + block_size + 1] for s in starts])
        return Tensor(windows[:, :-1], device=device), Tensor(windows[:, 1:], device=device)

    def get_rng_state(self):
        return self.generator.bit_generator.state

    def set_rng_state(self, state):
        self.generator.bit_generator.state = state
