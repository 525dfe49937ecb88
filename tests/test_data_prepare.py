"""`python -m tinygrad_tx.data.prepare` and the token files it writes: the ids are those of encoding the
text whole (however it was cut into pieces), the split is at 90% of the bytes, documents end with
<|endoftext|>, training reads the files through memmap, and bad input is refused in one line."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_tx.data import DEFAULT_TEXT, BPETokenizer, DataError, TokenFileDataset, open_dataset
from tinygrad_tx.data import prepare
from tinygrad_tx.data.token_files import token_dtype
from tinygrad_tx.trainer import Trainer, config_from_preset


def shakespeare(characters=None):
    with open(DEFAULT_TEXT, encoding="utf-8") as f:
        return f.read(characters)


@pytest.fixture(scope="module")
def tokenizer():
    return BPETokenizer.train(shakespeare(100_000), 320)


def read_tokens(directory):
    meta = json.loads((directory / "meta.json").read_text())
    return {split: np.fromfile(directory / f"{split}.bin", dtype=meta["dtype"]).tolist() for split in ("train", "val")}


def refusal(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(argv)
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in stderr, stderr
    return stderr.strip().splitlines()[-1]


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab1 \n'lsdtrevm!\u00e9\u3000\U0001f600")), max_size=60),
       cuts=st.lists(st.integers(0, 60), max_size=6))
def test_stream_encoder_gives_the_ids_of_the_whole_text(tokenizer, text, cuts):
    pieces, start = [], 0
    for cut in sorted(set(cuts)):
        pieces.append(text[start:cut])
        start = max(start, cut)
    pieces.append(text[start:])
    encoder = tokenizer.stream_encoder()
    ids = [i for piece in pieces for i in encoder.push(piece)] + encoder.finish()
    assert ids == tokenizer.encode_ordinary(text)


def test_bpe_files_hold_the_ids_of_the_whole_text_split_at_90_percent(tokenizer, tmp_path, monkeypatch):
    text = shakespeare(50_000)
    (tmp_path / "in.txt").write_text(text, encoding="utf-8")
    tokenizer.save(tmp_path / "tok")
    monkeypatch.setattr(prepare, "CHUNK_CHARACTERS", 997)  # many pieces, cut anywhere
    prepare.main(["--tokenizer", f"gpt2:{tmp_path / 'tok'}", "--input", str(tmp_path / "in.txt"),
                  "--out-dir", str(tmp_path / "out")])
    tokens = read_tokens(tmp_path / "out")
    split = len(text.encode()) * 9 // 10  # Shakespeare is ASCII: bytes are characters
    assert tokens["train"] == tokenizer.encode_ordinary(text[:split])
    assert tokens["val"] == tokenizer.encode_ordinary(text[split:]) + [tokenizer.eot_token_id]
    dataset = open_dataset(str(tmp_path / "out"), seed=0)
    assert isinstance(dataset, TokenFileDataset) and dataset.tokenizer.to_dict() == tokenizer.to_dict()
    x, y = dataset.get_batch("train", 4, 16)
    assert x.shape == (4, 16) and np.array_equal(x.numpy()[:, 1:], y.numpy()[:, :-1])
    assert (tmp_path / "out" / "vocab.json").exists()  # the vocabulary in HuggingFace's files too


def test_directory_input_ends_each_document_with_endoftext(tokenizer, tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    documents = {"a.txt": "First document. " * 40, "sub/b.txt": "Second one. " * 40, "c.txt": "Third. " * 40}
    for name, text in documents.items():
        (corpus / name).write_text(text, encoding="utf-8")
    tokenizer.save(tmp_path / "tok")
    prepare.main(["--tokenizer", f"gpt2:{tmp_path / 'tok'}", "--input", str(corpus), "--out-dir",
                  str(tmp_path / "out"), "--val-fraction", "0.3"])
    tokens = read_tokens(tmp_path / "out")
    everything = tokens["train"] + tokens["val"]
    assert everything.count(tokenizer.eot_token_id) == 3
    ordered = [documents[name] for name in ("a.txt", "c.txt", "sub/b.txt")]  # sorted paths
    assert tokenizer.decode(everything) == "<|endoftext|>".join(ordered) + "<|endoftext|>"


def test_char_byte_and_trained_bpe_tokenizers(tmp_path, capsys):
    text = "héllo wörld\r\n" * 50
    (tmp_path / "in.txt").write_text(text, encoding="utf-8", newline="")
    raw = b"\xff\xfe not utf-8 \x80" * 20
    (tmp_path / "raw.bin").write_bytes(raw)
    for spec, source in (("char", "in.txt"), ("bpe", "in.txt"), ("byte", "raw.bin")):
        out = tmp_path / spec
        prepare.main(["--tokenizer", spec, "--input", str(tmp_path / source), "--out-dir", str(out),
                      "--vocab-size", "260"])
        dataset = TokenFileDataset(str(out))
        tokens = read_tokens(out)
        ids = tokens["train"] + tokens["val"]
        if spec == "byte":
            assert bytes(ids) == raw
        else:
            assert dataset.tokenizer.decode(ids).replace("<|endoftext|>", "") == text  # "\r\n" kept as written
    assert json.loads((tmp_path / "char" / "meta.json").read_text())["dtype"] == "uint16"
    assert token_dtype(50257) == np.uint16 and token_dtype(70_000) == np.uint32
    assert "train and" in capsys.readouterr().out


def test_training_reads_a_prepared_directory(tmp_path):
    (tmp_path / "in.txt").write_text(shakespeare(30_000), encoding="utf-8")
    prepare.main(["--tokenizer", "char", "--input", str(tmp_path / "in.txt"), "--out-dir", str(tmp_path / "data")])
    config = config_from_preset("shakespeare-char-cpu", n_layer=1, n_head=2, n_embd=32, block_size=16, batch_size=4,
                                max_iters=1, eval_interval=1, eval_iters=1, out_dir=str(tmp_path / "out"),
                                data=str(tmp_path / "data"))
    trainer = Trainer(config)
    assert isinstance(trainer.dataset, TokenFileDataset) and trainer.model_config.vocab_size == 58
    assert trainer.train() < 5
    resumed = Trainer(config, resume=True)  # the checkpoint names the directory, and its tokenizer matches
    assert resumed.dataset.tokenizer.vocab_size == 58


def test_bad_input_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9 " * 10)
    (tmp_path / "tiny.txt").write_text("ab")
    out = str(tmp_path / "out")
    assert "no such file" in refusal(capsys, ["--tokenizer", "char", "--input", str(tmp_path / "no"), "--out-dir", out])
    assert "choose char, byte" in refusal(capsys, ["--tokenizer", "words", "--input", DEFAULT_TEXT, "--out-dir", out])
    line = refusal(capsys, ["--tokenizer", "char", "--input", str(tmp_path / "latin1.txt"), "--out-dir", out])
    assert "not UTF-8" in line and "--tokenizer byte" in line
    assert "too small" in refusal(capsys, ["--tokenizer", "byte", "--input", str(tmp_path / "tiny.txt"), "--out-dir",
                                           out])
    assert "at least 257" in refusal(capsys, ["--tokenizer", "bpe", "--vocab-size", "100", "--input", DEFAULT_TEXT,
                                              "--out-dir", out])
    assert "neither vocab.json" in refusal(capsys, ["--tokenizer", f"gpt2:{tmp_path}", "--input", DEFAULT_TEXT,
                                                    "--out-dir", out])
    assert "in (0, 1)" in refusal(capsys, ["--tokenizer", "byte", "--input", DEFAULT_TEXT, "--out-dir", out,
                                           "--val-fraction", "1.5"])


def test_token_directories_that_do_not_fit_are_refused(tmp_path, tokenizer):
    with pytest.raises(DataError, match="has no meta.json"):
        open_dataset(str(tmp_path))
    prepare.main(["--tokenizer", "char", "--input", DEFAULT_TEXT, "--out-dir", str(tmp_path / "data")])
    with pytest.raises(DataError, match="another tokenizer"):
        TokenFileDataset(str(tmp_path / "data"), tokenizer)
    with open(tmp_path / "data" / "val.bin", "r+b") as f:
        f.truncate(100)
    with pytest.raises(DataError, match="val.bin should hold"):
        TokenFileDataset(str(tmp_path / "data"))
