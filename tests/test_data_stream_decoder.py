"""Streaming decode: tokens pushed one at a time give the text decode gives, and no character is printed
before its last byte has come."""
from tinygrad_tx.data import BPETokenizer, ByteTokenizer, CharTokenizer, StreamDecoder


def streamed(tokenizer, ids):
    decoder = StreamDecoder(tokenizer)
    pieces = [decoder.push([i]) for i in ids]
    return pieces, decoder.flush()


def test_byte_level_tokens_wait_for_the_rest_of_a_character():
    text = "é😀 東京 ok"
    for tokenizer in (BPETokenizer.train("é😀 東京 ok " * 3, 262), ByteTokenizer()):
        ids = tokenizer.encode(text)
        pieces, rest = streamed(tokenizer, ids)
        assert "".join(pieces) + rest == text == tokenizer.decode(ids)
        assert "\ufffd" not in "".join(pieces)


def test_unfinished_character_and_whole_character_tokenizers():
    assert streamed(ByteTokenizer(), list("é".encode())[:1]) == ([""], "\ufffd")
    char = CharTokenizer("abc")
    assert streamed(char, char.encode("cab")) == (["c", "a", "b"], "")
