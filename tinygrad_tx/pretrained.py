"""A local HuggingFace GPT-2 directory as the sampling and training programs use it: the model
(config.json + model.safetensors) and its tokenizer (vocab.json + merges.txt, or tokenizer.json).
The same files are written back by save_pretrained, so a fine-tuned model leaves as it came."""
import os

from .data import GPT2Tokenizer


class PretrainedError(ValueError):
    """A directory that holds no usable GPT-2; the message names the file and what to do."""


def load_pretrained(directory, device="cpu", dropout=0.0):
    """-> (GPT2 model, GPT2Tokenizer) from a HuggingFace directory."""
    from models.gpt2 import GPT2  # models sit above the engine; only the programs join them
    if not os.path.isdir(directory):
        raise PretrainedError(f"{directory} is not a directory (expected a HuggingFace GPT-2 directory)")
    missing = [name for name in ("config.json", "model.safetensors")
               if not os.path.isfile(os.path.join(directory, name))]
    if missing:
        hint = " (pytorch_model.bin is a pickle, which is never loaded: in transformers, save_pretrained writes " \
               "safetensors)" if os.path.isfile(os.path.join(directory, "pytorch_model.bin")) else ""
        raise PretrainedError(f"{directory} has no {' or '.join(missing)}{hint}")
    try:
        tokenizer = GPT2Tokenizer.from_pretrained(directory)
    except FileNotFoundError as error:
        raise PretrainedError(str(error)) from None
    model = GPT2.from_pretrained(directory, device=device, dropout=dropout)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise PretrainedError(f"{directory}: the tokenizer has {tokenizer.vocab_size} tokens, the model's embedding "
                              f"only {model.config.vocab_size}")
    return model, tokenizer


def save_pretrained(model, tokenizer, directory):
    """Write the model and its tokenizer as a HuggingFace directory (transformers loads it)."""
    model.save_pretrained(directory, eos_token_id=getattr(tokenizer, "eot_token_id", None))
    if hasattr(tokenizer, "save"):
        tokenizer.save(directory)
