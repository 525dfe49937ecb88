"""GPT-2's pre-tokenizer written for Python's re, against HuggingFace's (Oniguruma's \\p{L}, \\p{N}, \\s)."""
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_tx.data.bpe import BYTE_TO_CHARACTER
from tinygrad_tx.data.pretokenize import split_words

tokenizers = pytest.importorskip("tokenizers")


def huggingface_words(text):
    pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    return [word for word, _ in pre_tokenizer.pre_tokenize_str(text)]


def our_words(text):
    return ["".join(BYTE_TO_CHARACTER[b] for b in word.encode("utf-8")) for word in split_words(text)]


def test_every_assigned_code_point_is_classed_as_huggingface_does(request):
    # each character as a letter, a number, a space or a symbol shows in how it joins its neighbours; unassigned
    # code points are left out (Python's Unicode tables and Oniguruma's may be of different versions)
    step = 1 if request.config.getoption("--long") else 41
    characters = [chr(c) for c in range(0, sys.maxunicode + 1, step)
                  if unicodedata.category(chr(c)) not in ("Cn", "Cs")]
    characters += list("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u180e\u2000\u200a\u200b\u2028\u2029\u202f\u205f"
                       "\u3000\ufeff²½Ⅻ٣𝐀")
    text = "".join(f"a{c} {c}{c}1 {c}\n" for c in characters)
    assert our_words(text) == huggingface_words(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab1 \t\n'sltmdrve.!\u00a0\u3000\x85²東😀\u0301")), max_size=40))
def test_words_match_huggingface_and_join_back_to_the_text(text):
    words = split_words(text)
    assert "".join(words) == text
    assert our_words(text) == huggingface_words(text)


def test_gpt2_words():
    assert split_words("Hello world's  end!\n\n 2024 ok") == \
        ["Hello", " world", "'s", " ", " end", "!", "\n\n", " 2024", " ok"]
    assert split_words("I'll go") == ["I", "'ll", " go"]
    assert split_words("a  b") == ["a", " ", " b"]          # a run of spaces leaves its last to the next word
    assert split_words("x\n\n y") == ["x", "\n\n", " y"]
    assert split_words("ab12cd") == ["ab", "12", "cd"]
    assert split_words("e\u0301t") == ["e", "\u0301", "t"]  # a combining mark is not a letter (\p{L}) in GPT-2's regex
