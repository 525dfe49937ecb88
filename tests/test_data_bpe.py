"""The byte-level BPE tokenizer against HuggingFace's `tokenizers` (and transformers' GPT2Tokenizer): the same
merges learned from the same text, the same ids for Shakespeare and for random Unicode, and text back."""
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_tx.data import DEFAULT_TEXT, END_OF_TEXT, BPETokenizer, GPT2Tokenizer, tokenizer_from_dict
from tinygrad_tx.data.bpe import BYTE_TO_CHARACTER

tokenizers = pytest.importorskip("tokenizers")
VOCAB_SIZE = 600


def shakespeare():
    with open(DEFAULT_TEXT, encoding="utf-8") as f:
        return f.read()


def huggingface_tokenizer(directory):
    """tokenizers' GPT-2 pipeline over vocab.json + merges.txt: byte-level pre-tokenizer (GPT-2's regex, no
    prefix space), BPE, byte-level decoder, <|endoftext|> special."""
    hf = tokenizers.Tokenizer(tokenizers.models.BPE.from_file(str(directory / "vocab.json"),
                                                              str(directory / "merges.txt")))
    hf.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = tokenizers.decoders.ByteLevel()
    hf.add_special_tokens([END_OF_TEXT])
    return hf


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Our BPE trained on Shakespeare, saved, and HF's tokenizer reading the saved files."""
    ours = BPETokenizer.train(shakespeare(), VOCAB_SIZE)
    directory = tmp_path_factory.mktemp("bpe")
    ours.save(directory)
    return ours, huggingface_tokenizer(directory), directory


def test_bytes_have_gpt2s_printable_stand_ins():
    assert len(set(BYTE_TO_CHARACTER.values())) == 256
    assert BYTE_TO_CHARACTER[ord(" ")] == "Ġ" and BYTE_TO_CHARACTER[ord("\n")] == "Ċ"
    assert BYTE_TO_CHARACTER[ord("a")] == "a" and BYTE_TO_CHARACTER[0] == "Ā"
    assert all(c.isprintable() and not c.isspace() for c in BYTE_TO_CHARACTER.values())


def test_merges_apply_in_learned_order():
    # the worked example of docs/gpt2.md: " the" -> Ġ t h e -> Ġt h e -> Ġt he -> Ġthe
    vocab = {BYTE_TO_CHARACTER[b]: i for i, b in enumerate(sorted(range(256), key=BYTE_TO_CHARACTER.get))}
    for token in ("Ġt", "he", "Ġthe"):
        vocab[token] = len(vocab)
    tokenizer = BPETokenizer(vocab, [("Ġ", "t"), ("h", "e"), ("Ġt", "he")])
    assert tokenizer.encode(" the") == [vocab["Ġthe"]]
    assert tokenizer.encode(" then") == [vocab["Ġthe"], vocab["n"]]
    assert tokenizer.encode("the") == [vocab["t"], vocab["he"]]  # no merge makes "the" without the space
    assert tokenizer.decode(tokenizer.encode(" the then")) == " the then"


def test_training_learns_huggingfaces_merges_on_shakespeare(trained):
    ours, _, _ = trained
    hf = tokenizers.Tokenizer(tokenizers.models.BPE())
    hf.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.train_from_iterator([shakespeare()], tokenizers.trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=[END_OF_TEXT], show_progress=False,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet()))
    model = json.loads(hf.to_str())["model"]
    hf_merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    assert ours.merges == hf_merges
    assert ours.vocab_size == VOCAB_SIZE and set(ours.vocab) == set(model["vocab"])


def test_shakespeare_ids_match_huggingface(trained):
    ours, hf, _ = trained
    text = shakespeare()[:300_000]
    pieces = [text[i:i + 2000] for i in range(0, len(text), 2000)]
    assert ours.encode_batch(pieces) == [e.ids for e in hf.encode_batch(pieces)]
    assert ours.decode(ours.encode(text)) == text


def test_transformers_gpt2_tokenizer_reads_our_files(trained):
    transformers = pytest.importorskip("transformers")
    ours, _, directory = trained
    theirs = transformers.GPT2Tokenizer.from_pretrained(str(directory))
    text = "First Citizen:\nBefore we proceed any further, hear me speak.<|endoftext|> Été 2024 — 東京 😀"
    assert theirs(text)["input_ids"] == ours.encode(text)
    assert theirs.eos_token_id == ours.eot_token_id == VOCAB_SIZE - 1


UNICODE_PIECES = [
    "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷",                              # emoji: modifiers, ZWJ sequences, flags
    "東京", "漢字", "한국어", "ひらがな",                                  # CJK
    "e\u0301", "a\u0308\u0323", "\u0915\u093f", "\u05e9\u05c1",          # combining marks
    " ", "  ", "\t", "\n", "\r\n", "\n\n\n", " \n ", "\u00a0", "\u3000", "\u2028", "\x85", "\x1c", "\x0b",
    "²", "½", "Ⅻ", "٣٤", "１２", "2024",                                   # numbers of every kind
    "'s", "'ll", "'re", "'", "don't", "I'M",                              # contractions (case-sensitive)
    "𝐀𝐁", "𐐀", "\U00020000",                                              # letters above U+FFFF
    "<|endoftext|>", "<|endof", "é", "ß", "Ω", "—", "…", "\x00", "\x7f", "\ufeff",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(UNICODE_PIECES), st.text(max_size=4),
                          st.characters(blacklist_categories=("Cs", "Cn"))), max_size=20).map("".join))
def test_random_unicode_ids_match_huggingface_and_round_trip(trained, text):
    ours, hf, _ = trained
    ids = ours.encode(text)
    assert ids == hf.encode(text).ids
    assert ours.decode(ids) == text == hf.decode(ids, skip_special_tokens=False)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=()), max_size=30))
def test_any_string_round_trips_even_with_lone_surrogates(trained, text):
    # HuggingFace refuses lone surrogates (they are not UTF-8); we keep each as the 3 bytes Python's
    # surrogatepass writes, and decode gives it back
    ours, _, _ = trained
    assert ours.decode(ours.encode(text)) == text


def test_lone_surrogates_and_cut_characters_decode():
    ours = BPETokenizer.train("abc", 300)
    for text in ("a\ud800b", "\udfff", "\ud83d\ude00", "é\udc80"):
        assert ours.decode(ours.encode(text)) == text
    assert ours.decode(ours.encode("é")[:1]) == "\ufffd"  # half a character: the replacement, as HF


def test_tokenizer_json_from_huggingface_loads_with_its_ids(tmp_path):
    text = shakespeare()[:200_000]
    hf = tokenizers.Tokenizer(tokenizers.models.BPE())
    hf.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = tokenizers.decoders.ByteLevel()
    hf.train_from_iterator([text], tokenizers.trainers.BpeTrainer(
        vocab_size=400, special_tokens=[END_OF_TEXT], show_progress=False,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet()))
    hf.save(str(tmp_path / "tokenizer.json"))
    ours = GPT2Tokenizer.from_pretrained(tmp_path)
    assert ours.eot_token_id == 0  # HF's trainer puts special tokens first
    sample = text[:5000] + END_OF_TEXT + " 東京 😀"
    assert ours.encode(sample) == hf.encode(sample).ids


def test_special_tokens(trained):
    ours, _, _ = trained
    ids = ours.encode("a<|endoftext|>b")
    assert ids == ours.encode("a") + [ours.eot_token_id] + ours.encode("b")
    plain = ours.encode("a<|endoftext|>b", allow_special=False)
    assert ours.eot_token_id not in plain and ours.decode(plain) == "a<|endoftext|>b"


def test_save_load_and_checkpoint_dict_keep_the_tokenizer(trained, tmp_path):
    ours, _, directory = trained
    text = shakespeare()[:3000] + " 😀"
    assert GPT2Tokenizer.from_pretrained(directory).encode(text) == ours.encode(text)
    restored = tokenizer_from_dict(json.loads(json.dumps(ours.to_dict())))
    assert restored.encode(text) == ours.encode(text) and restored.vocab_size == ours.vocab_size


def test_cache_is_bounded_and_changes_nothing(trained, monkeypatch):
    ours, _, _ = trained
    text = shakespeare()[:20_000]
    expected = ours.encode(text)
    fresh = BPETokenizer(ours.vocab, ours.merges)
    monkeypatch.setattr(fresh, "CACHE_SIZE", 10)
    assert fresh.encode(text) == expected and len(fresh.cache) == 10


def test_random_words_merge_as_huggingface(trained):
    # words the cache has never seen, with many merges to apply: each merge order decision is checked
    ours, hf, _ = trained
    generator = random.Random(0)
    letters = "etaoinshrdlu"
    words = [" " + "".join(generator.choice(letters) for _ in range(generator.randint(1, 30))) for _ in range(300)]
    assert [ours.encode(w) for w in words] == [e.ids for e in hf.encode_batch(words)]


def test_long_words_merge_as_short_ones_and_as_huggingface(trained):
    # runs of spaces or symbols longer than LONG_WORD bytes take the heap path; it must merge in the same order
    ours, hf, _ = trained
    generator = random.Random(1)
    words = [generator.choice(" -=*etao") * generator.randint(65, 400) for _ in range(20)]
    words += ["".join(generator.choice(" e\n") for _ in range(generator.randint(65, 300))) for _ in range(40)]
    short_path = BPETokenizer(ours.vocab, ours.merges)
    short_path.LONG_WORD = 10 ** 9
    for word in words:
        assert ours.encode(word) == short_path.encode(word) == hf.encode(word).ids
    assert ours.decode(ours.encode(" " * 20_000)) == " " * 20_000  # n log n: this is quick


def test_tokenizer_json_of_another_pipeline_is_refused(trained, tmp_path):
    ours, hf, directory = trained
    saved = json.loads(hf.to_str())
    for change, message in ((dict(normalizer={"type": "NFC"}), "a normalizer"),
                            (dict(pre_tokenizer={"type": "Whitespace"}), "not GPT-2's ByteLevel"),
                            (dict(pre_tokenizer={**saved["pre_tokenizer"], "add_prefix_space": True}),
                             "add_prefix_space"),
                            (dict(model={**saved["model"], "dropout": 0.1}), "BPE dropout")):
        (tmp_path / "tokenizer.json").write_text(json.dumps({**saved, **change}))
        with pytest.raises(ValueError, match=message):
            BPETokenizer.from_pretrained(tmp_path)


def test_added_tokens_are_matched_whole_and_a_prefix_space_is_refused(trained, tmp_path):
    transformers = pytest.importorskip("transformers")
    _, _, directory = trained
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).write_bytes((directory / name).read_bytes())
    (tmp_path / "added_tokens.json").write_text(json.dumps({"<|im_start|>": VOCAB_SIZE}))
    text = "hi<|im_start|>there<|endoftext|>"
    ids = GPT2Tokenizer.from_pretrained(tmp_path).encode(text)
    assert ids == transformers.GPT2Tokenizer.from_pretrained(str(tmp_path))(text)["input_ids"]
    assert VOCAB_SIZE in ids
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"add_prefix_space": True}))
    with pytest.raises(ValueError, match="add_prefix_space"):
        GPT2Tokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize("make, message", [
    (lambda: BPETokenizer.train("abc", 256), "at least 257"),
    (lambda: BPETokenizer({"a": 0, "b": 2}, []), "ids must be 0..1"),
    (lambda: BPETokenizer({"a": 0, "b": 1}, [("a", "b")]), "'ab', which the vocabulary lacks"),
    (lambda: BPETokenizer({"a": 0, "\n": 1}, []), "stands for no byte"),
])
def test_bad_vocabularies_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_ids_and_files_are_refused(trained, tmp_path):
    ours, _, _ = trained
    for bad in (VOCAB_SIZE, -1):
        with pytest.raises(ValueError, match=f"id {bad} is outside the vocabulary of {VOCAB_SIZE}"):
            ours.decode([1, bad])
    (tmp_path / "vocab.json").write_text(json.dumps(ours.vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\nĠ t h\n")
    with pytest.raises(ValueError, match="two tokens and one space"):
        BPETokenizer.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="neither vocab.json"):
        BPETokenizer.from_pretrained(tmp_path / "missing")
    small = BPETokenizer({BYTE_TO_CHARACTER[b]: i for i, b in enumerate(b"ab")}, [])
    with pytest.raises(ValueError, match="byte 0x63"):
        small.encode("abc")
