"""Text data: tokenizers and a dataset of random training windows."""
from .dataset import DEFAULT_TEXT, DataError, TextDataset
from .tokenizers import ByteTokenizer, CharTokenizer, tokenizer_from_dict
