"""A text file as token ids, split 90/10 into train and val, served as random (x, y) batches."""
import os

import numpy as np

from ..tensor import Tensor
from .tokenizers import ByteTokenizer, CharTokenizer

DEFAULT_TEXT = os.path.join(os.path.dirname(__file__), "tinyshakespeare.txt")


class TextDataset:
    def __init__(self, path=None, tokenizer="char", train_fraction=0.9, seed=1337):
        self.path = path or DEFAULT_TEXT
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        if isinstance(tokenizer, str):
            tokenizer = {"char": CharTokenizer.from_text, "byte": lambda _: ByteTokenizer()}[tokenizer](text)
        self.tokenizer = tokenizer
        ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
        split = int(len(ids) * train_fraction)
        self.splits = {"train": ids[:split], "val": ids[split:]}
        # batches come from their own generator, so they don't depend on how many random numbers the model drew
        self.generator = np.random.default_rng(seed)

    def get_batch(self, split, batch_size, block_size, device="cpu"):
        """x: (B, T) ids from random offsets; y: the same windows shifted by one (the next tokens)."""
        data = self.splits[split]
        if len(data) <= block_size:
            raise ValueError(f"get_batch: the {split} split has {len(data)} tokens, fewer than block_size "
                             f"{block_size} + 1")
        starts = self.generator.integers(0, len(data) - block_size, size=batch_size)
        windows = np.stack([data[s:s + block_size + 1] for s in starts])
        return Tensor(windows[:, :-1], device=device), Tensor(windows[:, 1:], device=device)

    def get_rng_state(self):
        return self.generator.bit_generator.state

    def set_rng_state(self, state):
        self.generator.bit_generator.state = state
