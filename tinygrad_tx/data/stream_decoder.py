"""Text of token ids that arrive one at a time, as generation streams them.

With byte-level tokenizers a character can be cut across tokens ('é' is two bytes, an emoji four): each
token's bytes go through an incremental UTF-8 decoder, which gives out a character once its last byte
has come. Tokenizers of whole characters decode each id as it is."""
import codecs


class StreamDecoder:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        errors = "tinygrad_tx.bpe_decode" if tokenizer.kind == "bpe" else "replace"  # as tokenizer.decode
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors) if hasattr(tokenizer, "decode_bytes") else None

    def push(self, ids):
        """The text that ids complete (possibly empty, while a character waits for its last bytes)."""
        if self.utf8 is None:
            return self.tokenizer.decode(ids)
        return self.utf8.decode(self.tokenizer.decode_bytes(ids))

    def flush(self):
        """What is left: bytes of a character that never finished decode as U+FFFD."""
        return self.utf8.decode(b"", final=True) if self.utf8 is not None else ""
