"""Text data: tokenizers (characters, bytes, GPT-2's byte-level BPE), and datasets of random training windows
from a text file or from token files written by `python -m tinygrad_tx.data.prepare`."""
from .bpe import END_OF_TEXT, BPETokenizer, GPT2Tokenizer
from .dataset import DEFAULT_TEXT, DataError, TextDataset
from .stream_decoder import StreamDecoder
from .token_files import TokenFileDataset, open_dataset
from .tokenizers import ByteTokenizer, CharTokenizer, tokenizer_from_dict
