"""Text data: tokenizers (characters, bytes, GPT-2's byte-level BPE) and a dataset of random training windows."""
from .bpe import END_OF_TEXT, BPETokenizer, GPT2Tokenizer
from .dataset import DEFAULT_TEXT, DataError, TextDataset
from .tokenizers import ByteTokenizer, CharTokenizer, tokenizer_from_dict
