"""Byte-level BPE, GPT-2's tokenizer: text -> UTF-8 bytes, cut into words -> each word's bytes merged
pair by pair, in the order the merges were learned -> one id per merged piece.

A vocabulary is two files, as OpenAI and HuggingFace write them:
  vocab.json   {token: id}. A token is a byte string written with one printable character per byte
               (bytes_to_unicode), so "Ġthe" is b" the".
  merges.txt   "#version: 0.2", then one merge per line, "Ġ t", "Ġt he", ...: line n is merge number n, and a
               lower number merges first.
Special tokens (GPT-2 has one, <|endoftext|>) are whole strings that map straight to their id.
"""
import codecs
import heapq
import json
import os
import re

from .pretokenize import split_words

END_OF_TEXT = "<|endoftext|>"


def bytes_to_unicode():
    """{byte: character}: GPT-2's printable stand-in for each of the 256 byte values. Printable Latin-1
    characters stand for themselves; the others (controls, space, soft hyphen) take the characters from
    U+0100 on, in byte order. Vocabulary files then hold no whitespace or control characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    characters = {byte: chr(byte) for byte in printable}
    for byte in range(256):
        if byte not in characters:
            characters[byte] = chr(256 + len(characters) - len(printable))
    return characters


BYTE_TO_CHARACTER = bytes_to_unicode()
CHARACTER_TO_BYTE = {character: byte for byte, character in BYTE_TO_CHARACTER.items()}


def _surrogates_or_replacement(error):
    """Decoding: the bytes encode() wrote for a lone surrogate give it back; any other invalid UTF-8 (ids cut
    inside a character) decodes to U+FFFD, as HuggingFace's decode does."""
    try:
        return codecs.lookup_error("surrogatepass")(error)
    except UnicodeDecodeError:
        return codecs.replace_errors(error)


codecs.register_error("tinygrad_tx.bpe_decode", _surrogates_or_replacement)


class BPETokenizer:
    """vocab {token: id} (ids 0..n-1), merges [(left token, right token), ...] in learned order, special tokens
    by name (each also in vocab). Encoding caches each distinct word's ids: text repeats its words."""
    kind = "bpe"
    CACHE_SIZE = 1 << 17  # distinct words remembered; the first ones seen are the frequent ones, so keep those
    LONG_WORD = 64        # bytes; longer words (runs of spaces or symbols) merge through a heap: n log n, not n^2

    def __init__(self, vocab, merges, special_tokens=(END_OF_TEXT,)):
        ids = sorted(vocab.values())
        if ids != list(range(len(ids))):
            raise ValueError(f"BPETokenizer: the vocabulary's ids must be 0..{len(ids) - 1}, each once")
        self.vocab = dict(vocab)
        self.merges = [tuple(pair) for pair in merges]
        self.special_tokens = {name: vocab[name] for name in special_tokens if name in vocab}
        special_ids = set(self.special_tokens.values())
        self.id_to_bytes = [None] * len(ids)
        for token, index in vocab.items():
            self.id_to_bytes[index] = token.encode("utf-8") if index in special_ids else _token_bytes(token)
        self.byte_ids = [vocab.get(BYTE_TO_CHARACTER[byte]) for byte in range(256)]
        self.merge_table = {}  # (left id, right id) -> (rank, merged id)
        for rank, (left, right) in enumerate(self.merges):
            missing = [t for t in (left, right, left + right) if t not in vocab]
            if missing:
                raise ValueError(f"BPETokenizer: merge {rank} ({left} {right}) makes or uses {missing[0]!r}, "
                                 "which the vocabulary lacks")
            self.merge_table.setdefault((vocab[left], vocab[right]), (rank, vocab[left + right]))
        self.special_pattern = re.compile("|".join(map(re.escape, sorted(self.special_tokens, key=len,
                                                                              reverse=True)))) \
            if self.special_tokens else None
        self.cache = {}

    @property
    def vocab_size(self):
        return len(self.id_to_bytes)

    @property
    def eot_token_id(self):
        return self.special_tokens.get(END_OF_TEXT)

    # --- text -> ids ------------------------------------------------------------------------------------------
    def encode(self, text, allow_special=True):
        """Ids of text. Special tokens written in the text (<|endoftext|>) become their ids, as HuggingFace's
        tokenizers do; allow_special=False encodes them as the ordinary characters they are."""
        if not allow_special or self.special_pattern is None:
            return self.encode_ordinary(text)
        ids, start = [], 0
        for match in self.special_pattern.finditer(text):
            ids += self.encode_ordinary(text[start:match.start()])
            ids.append(self.special_tokens[match.group()])
            start = match.end()
        return ids + self.encode_ordinary(text[start:])

    def encode_ordinary(self, text):
        return self._encode_words(split_words(text))

    def stream_encoder(self):
        return BPEStreamEncoder(self)

    def _encode_words(self, words):
        ids, cache = [], self.cache
        for word in words:
            word_ids = cache.get(word)
            if word_ids is None:
                word_ids = self.merge_word(word)
                if len(cache) < self.CACHE_SIZE:
                    cache[word] = word_ids
            ids += word_ids
        return ids

    def encode_batch(self, texts, allow_special=True):
        return [self.encode(text, allow_special) for text in texts]

    def merge_word(self, word):
        """One word's ids: start from its bytes, and apply the earliest-learned merge among its adjacent pairs,
        at every place it occurs (left to right), until no pair has a merge. E.g. with merges 0 (Ġ t), 1 (h e),
        2 (Ġt he): Ġ t h e -> Ġt h e -> Ġt he -> Ġthe."""
        data = word.encode("utf-8", "surrogatepass")  # a lone surrogate is kept, as 3 bytes decode() gives back
        symbols = [self.byte_ids[byte] for byte in data]
        if None in symbols:
            byte = data[symbols.index(None)]
            raise ValueError(f"BPETokenizer.encode: the byte 0x{byte:02x} of {word!r} has no token in this "
                             "vocabulary")
        if len(symbols) > self.LONG_WORD:
            return self._merge_long_word(symbols)
        merge_table = self.merge_table
        while len(symbols) > 1:
            ranked = [(merge_table[pair][0], pair) for pair in zip(symbols, symbols[1:]) if pair in merge_table]
            if not ranked:
                break
            _, (left, right) = min(ranked)
            merged = merge_table[left, right][1]
            out, i = [], 0
            while i < len(symbols):
                if symbols[i] == left and i + 1 < len(symbols) and symbols[i + 1] == right:
                    out.append(merged)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            symbols = out
        return tuple(symbols)

    def _merge_long_word(self, symbols):
        """merge_word's merges in the same order (the earliest-learned pair first, leftmost first), found with a
        heap of (rank, position, pair) over a linked list of the symbols instead of a scan per merge."""
        merge_table, n = self.merge_table, len(symbols)
        following, preceding = list(range(1, n + 1)), list(range(-1, n - 1))  # neighbours; n and -1 mean none
        heap = [(merge_table[pair][0], i, pair) for i, pair in enumerate(zip(symbols, symbols[1:]))
                if pair in merge_table]
        heapq.heapify(heap)
        while heap:
            _, i, pair = heapq.heappop(heap)
            j = following[i]
            if symbols[i] is None or j == n or (symbols[i], symbols[j]) != pair:
                continue  # stale: a merge since then changed one of the two
            symbols[i], symbols[j] = merge_table[pair][1], None
            following[i] = following[j]
            if following[i] < n:
                preceding[following[i]] = i
            for left, right in ((preceding[i], i), (i, following[i])):  # the pairs the new token is part of
                if left >= 0 and right < n and (symbols[left], symbols[right]) in merge_table:
                    new_pair = (symbols[left], symbols[right])
                    heapq.heappush(heap, (merge_table[new_pair][0], left, new_pair))
        return tuple(symbol for symbol in symbols if symbol is not None)

    # --- ids -> text ------------------------------------------------------------------------------------------
    def decode_bytes(self, ids):
        try:
            return b"".join(self.id_to_bytes[_index(i, self.vocab_size)] for i in ids)
        except IndexError as error:
            raise ValueError(f"BPETokenizer.decode: {error}") from None

    def decode(self, ids):
        return self.decode_bytes(ids).decode("utf-8", errors="tinygrad_tx.bpe_decode")

    # --- training and files -----------------------------------------------------------------------------------
    @classmethod
    def train(cls, text, vocab_size, special_tokens=(END_OF_TEXT,)):
        """Learn vocab_size - 256 - len(special_tokens) merges from text (fewer if its words run out of pairs)."""
        from .bpe_training import train_bpe
        return train_bpe(cls, text, vocab_size, special_tokens)

    def save(self, directory):
        """Write vocab.json and merges.txt (the format HuggingFace's GPT2Tokenizer reads)."""
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(self.vocab, f, ensure_ascii=False)
        with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n" + "".join(f"{left} {right}\n" for left, right in self.merges))

    @classmethod
    def from_pretrained(cls, directory):
        """Read a HuggingFace tokenizer directory: vocab.json + merges.txt, or else tokenizer.json."""
        vocab_path, merges_path = os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt")
        if os.path.isfile(vocab_path) and os.path.isfile(merges_path):
            with open(vocab_path, encoding="utf-8") as f:
                vocab = json.load(f)
            with open(merges_path, encoding="utf-8") as f:
                lines = [line.rstrip("\r\n") for line in f]
            merges = [_split_merge(line, merges_path) for line in lines if line and not line.startswith("#version")]
            config = _read_json_if_present(os.path.join(directory, "tokenizer_config.json"))
            if config.get("add_prefix_space"):
                raise ValueError(f"BPETokenizer.from_pretrained: {directory}/tokenizer_config.json asks for "
                                 "add_prefix_space, which GPT-2's pipeline does not have")
            added = _read_json_if_present(os.path.join(directory, "added_tokens.json"))  # matched whole, as by HF
            return cls({**vocab, **added}, merges, special_tokens=(END_OF_TEXT, *added))
        tokenizer_path = os.path.join(directory, "tokenizer.json")
        if not os.path.isfile(tokenizer_path):
            raise FileNotFoundError(f"BPETokenizer.from_pretrained: {directory} holds neither vocab.json and "
                                    "merges.txt nor tokenizer.json")
        with open(tokenizer_path, encoding="utf-8") as f:
            saved = json.load(f)
        _check_gpt2_pipeline(saved, tokenizer_path)
        model = saved["model"]
        merges = [_split_merge(m, tokenizer_path) if isinstance(m, str) else m for m in model["merges"]]
        vocab = dict(model["vocab"])
        special = [t["content"] for t in saved.get("added_tokens", [])]  # HF matches every added token whole
        vocab.update({t["content"]: t["id"] for t in saved.get("added_tokens", [])})
        return cls(vocab, merges, special_tokens=special or (END_OF_TEXT,))

    def to_dict(self):
        return {"kind": self.kind, "vocab": self.vocab, "merges": [" ".join(pair) for pair in self.merges],
                "special_tokens": list(self.special_tokens)}

    @classmethod
    def from_dict(cls, values):
        return cls(values["vocab"], [_split_merge(m, "the checkpoint") for m in values["merges"]],
                   values["special_tokens"])


GPT2Tokenizer = BPETokenizer  # GPT-2's tokenizer is this one with OpenAI's 50,000 merges


class BPEStreamEncoder:
    """Ids of a text that arrives in pieces, the same as encode_ordinary of the whole text, without holding it.
    Each piece's last two words wait for the next piece: the last may go on, and the one before may be the
    start of a contraction or a space run that the next characters decide (' then ll is 'll)."""

    def __init__(self, tokenizer):
        self.tokenizer, self.pending = tokenizer, ""

    def push(self, text):
        words = split_words(self.pending + text)
        self.pending = "".join(words[-2:])
        return self.tokenizer._encode_words(words[:-2])

    def finish(self):
        words, self.pending = split_words(self.pending), ""
        return self.tokenizer._encode_words(words)


def _check_gpt2_pipeline(saved, path):
    """Refuse a tokenizer.json that would tokenize differently from GPT-2's pipeline (this class implements only
    that one): a normalizer, another pre-tokenizer, a prefix space, BPE dropout or other BPE variants."""
    model, pre_tokenizer = saved.get("model") or {}, saved.get("pre_tokenizer") or {}
    problems = {
        f"a {model.get('type')!r} model, not BPE": model.get("type") != "BPE",
        "a normalizer": saved.get("normalizer") is not None,
        f"the pre-tokenizer {pre_tokenizer.get('type')!r}, not GPT-2's ByteLevel with its regex":
            pre_tokenizer.get("type") != "ByteLevel" or not pre_tokenizer.get("use_regex", True),
        "add_prefix_space": bool(pre_tokenizer.get("add_prefix_space")),
        "BPE dropout": model.get("dropout") not in (None, 0, 0.0),
        "ignore_merges": bool(model.get("ignore_merges")),
        "a subword prefix or suffix": bool(model.get("continuing_subword_prefix") or model.get("end_of_word_suffix")),
    }
    found = [name for name, present in problems.items() if present]
    if found:
        raise ValueError(f"BPETokenizer.from_pretrained: {path} has {found[0]}; only GPT-2's byte-level BPE "
                         "pipeline is implemented")


def _read_json_if_present(path):
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _token_bytes(token):
    try:
        return bytes(CHARACTER_TO_BYTE[character] for character in token)
    except KeyError as error:
        raise ValueError(f"BPETokenizer: the token {token!r} has the character {error.args[0]!r}, which stands "
                         "for no byte (not a byte-level vocabulary?)") from None


def _split_merge(line, source):
    parts = line.split(" ")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"BPETokenizer: {source} has the merge {line!r}; a merge is two tokens and one space")
    return tuple(parts)


def _index(i, size):
    i = int(i)
    if not 0 <= i < size:
        raise IndexError(f"id {i} is outside the vocabulary of {size} tokens")
    return i
