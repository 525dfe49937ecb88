"""GPT-2's pre-tokenizer: the regular expression that cuts text into words before BPE merges them.

OpenAI wrote it for the third-party `regex` module:

    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+

A word is a contraction suffix, a run of letters, of numbers, or of other symbols (each with at most
one leading space), or a run of whitespace. `\\s+(?!\\S)` leaves a run's last space to the word after
it, so " hello" stays one word.

Python's `re` has no \\p{...} classes, and its \\s and \\w follow str.isspace/isalnum, which differ
from Unicode's Letter, Number and White_Space sets (\\w takes '²' as a letter, \\s takes the
separator controls \\x1c-\\x1f as spaces). So the three classes are written out here as explicit
code point ranges read from unicodedata: the same pattern, nothing but the standard library.
"""
import functools
import itertools
import re
import sys
import unicodedata

_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def split_words(text):
    """GPT-2's words of text, in order; joined back they are the text."""
    within_bmp, any_text = _patterns()
    pattern = within_bmp if text.isascii() or not _ASTRAL.search(text) else any_text
    return pattern.findall(text)


@functools.cache
def _patterns():
    """GPT-2's pattern twice: with classes cut at U+FFFF, and whole. Built on first use (reading the Unicode
    tables takes about half a second). Python's re tests a class's code points above U+FFFF one range at a
    time after its bitmap of the rest, and the letter class has hundreds of such ranges: every character
    the class does not hold walks them all. Text without such characters, nearly all text, is split three
    times faster by the cut pattern, and gets the same words."""
    # White_Space is exactly the separators Zs, Zl, Zp plus the controls \t \n \v \f \r and NEL (U+0085)
    runs = {"letter": [], "number": [], "space": [(0x09, 0x0D), (0x85, 0x85)]}
    class_of = {"Zs": "space", "Zl": "space", "Zp": "space"}                  # and below: \p{L}, \p{N}
    class_of.update({f"L{c}": "letter" for c in "ultmo"}, **{f"N{c}": "number" for c in "dlo"})
    code = 0
    for name, group in itertools.groupby(class_of.get(unicodedata.category(chr(c))) for c in range(sys.maxunicode + 1)):
        length = sum(1 for _ in group)
        if name is not None:
            runs[name].append((code, code + length - 1))
        code += length
    return _pattern(**runs, last=0xFFFF), _pattern(**runs, last=sys.maxunicode)


def _pattern(letter, number, space, last):
    letter, number, space = (_class_body(ranges, last) for ranges in (letter, number, space))
    # the seven contractions share their apostrophe: one test of it, not seven
    return re.compile(rf"""'(?:[stmd]|re|ve|ll)| ?[{letter}]+| ?[{number}]+| ?[^{space}{letter}{number}]+"""
                      rf"""|[{space}]+(?![^{space}])|[{space}]+""")


def _class_body(runs, last):
    """The runs up to code point `last` written as the inside of a regex [...] class."""
    return "".join(f"\\U{first:08x}-\\U{min(end, last):08x}" for first, end in runs if first <= last)
