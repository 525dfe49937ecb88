"""Tokenizers that turn text into integer ids and back. Each saves to a JSON-able dict (kept in checkpoints).
The byte-level BPE (GPT-2's) is in bpe.py."""


class CharTokenizer:
    """One id per distinct character of the training text (nanoGPT's shakespeare_char)."""
    kind = "char"

    def __init__(self, characters):
        self.characters = "".join(sorted(set(characters)))
        self.index = {c: i for i, c in enumerate(self.characters)}

    @classmethod
    def from_text(cls, text):
        return cls(text)

    @property
    def vocab_size(self):
        return len(self.characters)

    def encode(self, text):
        try:
            return [self.index[c] for c in text]
        except KeyError as error:
            raise ValueError(f"CharTokenizer.encode: character {error.args[0]!r} is not in the vocabulary "
                             f"of {self.vocab_size} characters") from None

    def decode(self, ids):
        return "".join(self.characters[int(i)] for i in ids)

    def to_dict(self):
        return {"kind": self.kind, "characters": self.characters}


class ByteTokenizer:
    """The 256 byte values of the UTF-8 encoding: any text, no vocabulary to build."""
    kind = "byte"
    vocab_size = 256

    def encode(self, text):
        return list(text.encode("utf-8", errors="surrogateescape"))  # a non-UTF-8 file's bytes as read

    def decode_bytes(self, ids):
        try:
            return bytes(int(i) for i in ids)
        except ValueError:  # bytes() names no id; say which one
            bad = next(int(i) for i in ids if not 0 <= int(i) < 256)
            raise ValueError(f"ByteTokenizer.decode: id {bad} is outside the vocabulary of 256 bytes") from None

    def decode(self, ids):
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def to_dict(self):
        return {"kind": self.kind}


def tokenizer_from_dict(values):
    if values["kind"] == "char":
        return CharTokenizer(values["characters"])
    if values["kind"] == "byte":
        return ByteTokenizer()
    if values["kind"] == "bpe":
        from .bpe import BPETokenizer
        return BPETokenizer.from_dict(values)
    raise ValueError(f"unknown tokenizer kind {values['kind']!r}")
