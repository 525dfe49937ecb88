"""Learning a byte-level BPE: start from the 256 bytes, and repeatedly merge the adjacent pair that occurs
most often in the text into a new token, until the vocabulary has the size asked for.

Words are counted once (GPT-2's pre-tokenizer cuts the text; a pair never spans two words), so each step
works on distinct words weighted by their counts. Pair counts are updated only where a merge changed a
word, and the most frequent pair comes from a heap whose stale entries are re-pushed with their current
count when they surface. Ties go to the pair of smaller ids, which is HuggingFace's BpeTrainer's rule:
on the same text both learn the same merges.
"""
import heapq
from collections import Counter, defaultdict

from .bpe import BYTE_TO_CHARACTER
from .pretokenize import split_words


def train_bpe(tokenizer_class, text, vocab_size, special_tokens):
    special_tokens = list(special_tokens)
    smallest = 256 + len(special_tokens)
    if not isinstance(vocab_size, int) or vocab_size < smallest:
        raise ValueError(f"BPETokenizer.train: vocab_size must be an integer of at least {smallest} "
                         f"(the 256 bytes and {len(special_tokens)} special tokens), got {vocab_size!r}")
    # ids 0..255: the bytes, ordered by their stand-in characters (GPT-2's and HuggingFace's order)
    byte_order = sorted(range(256), key=BYTE_TO_CHARACTER.get)
    tokens = [BYTE_TO_CHARACTER[byte] for byte in byte_order]
    byte_id = {byte: index for index, byte in enumerate(byte_order)}
    word_counts = Counter(split_words(text))
    words = [[byte_id[b] for b in word.encode("utf-8", "surrogatepass")] for word in word_counts]
    counts = list(word_counts.values())
    merges = []
    for left, right in learn_merges(words, counts, vocab_size - smallest, first_new_id=256):
        merges.append((tokens[left], tokens[right]))
        tokens.append(tokens[left] + tokens[right])
    vocab = {token: index for index, token in enumerate(tokens + special_tokens)}
    return tokenizer_class(vocab, merges, special_tokens)


def learn_merges(words, counts, num_merges, first_new_id):
    """Yield up to num_merges pairs (left id, right id); merge k makes the token first_new_id + k.
    words: lists of ids, rewritten in place; counts: how often each word occurs."""
    pair_counts, where = defaultdict(int), defaultdict(set)
    for index, (word, count) in enumerate(zip(words, counts)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += count
            where[pair].add(index)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    new_id = first_new_id
    while new_id - first_new_id < num_merges and heap:
        negative_count, pair = heapq.heappop(heap)
        count = pair_counts[pair]
        if -negative_count != count:  # merges since this entry was pushed took some of its occurrences
            if count > 0:
                heapq.heappush(heap, (-count, pair))
            continue
        yield pair
        created = set()
        for index in where.pop(pair):
            for changed_pair, change in _merge_in_word(words, index, pair, new_id):
                pair_counts[changed_pair] += change * counts[index]
                if change > 0:
                    where[changed_pair].add(index)
                    created.add(changed_pair)
        pair_counts[pair] = 0
        for new_pair in created:  # only pairs holding the new token can be new; the others only lose counts
            if pair_counts[new_pair] > 0:
                heapq.heappush(heap, (-pair_counts[new_pair], new_pair))
        new_id += 1


def _merge_in_word(words, index, pair, new_id):
    """Replace each occurrence of pair in words[index] (left to right) by new_id; return the pair-count changes
    [(pair, +1 or -1), ...] with the neighbours on each side."""
    word, (left, right) = words[index], pair
    out, changes, i = [], [], 0
    while i < len(word):
        if word[i] == left and i + 1 < len(word) and word[i + 1] == right:
            if out:
                changes += [((out[-1], left), -1), ((out[-1], new_id), 1)]
            if i + 2 < len(word):
                changes += [((right, word[i + 2]), -1), ((new_id, word[i + 2]), 1)]
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    words[index] = out
    return changes
