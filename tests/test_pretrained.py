"""A HuggingFace GPT-2 directory end to end: sampled from with its tokenizer (the tokens transformers
generates), fine-tuned with nanoGPT's finetune_shakespeare recipe, saved back, loaded by transformers."""
import numpy as np
import pytest

import tinygrad_tx as tg
from models.gpt2 import GPT2
from tinygrad_tx.data import DEFAULT_TEXT, BPETokenizer, GPT2Tokenizer
from tinygrad_tx.sample import main as sample_main
from tinygrad_tx.train import main as train_main

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
VOCAB_SIZE = 400


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A random transformers GPT-2 and a BPE learned from Shakespeare, saved together (as a downloaded gpt2)."""
    directory = tmp_path_factory.mktemp("gpt2")
    with open(DEFAULT_TEXT, encoding="utf-8") as f:
        tokenizer = BPETokenizer.train(f.read()[:100_000], VOCAB_SIZE)
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=VOCAB_SIZE, initializer_range=0.2,
        bos_token_id=tokenizer.eot_token_id, eos_token_id=tokenizer.eot_token_id))
    hf.save_pretrained(directory)
    tokenizer.save(directory)
    return directory


def refusal(capsys, main, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in stderr, stderr
    return stderr.strip().splitlines()[-1]


def test_sample_streams_transformers_greedy_tokens(hf_dir, capsys):
    sample_main(["--init-from", str(hf_dir), "--prompt", "ROMEO: I", "--max-new-tokens", "12", "--temperature", "0"])
    printed = capsys.readouterr().out
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(hf_dir)).eval()
    hf_tokenizer = transformers.GPT2Tokenizer.from_pretrained(str(hf_dir))
    prompt = hf_tokenizer("ROMEO: I", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        ids = hf.generate(prompt, max_new_tokens=12, min_new_tokens=12, do_sample=False, pad_token_id=0)[0]
    assert printed == hf_tokenizer.decode(ids) + "\n---------------\n"


def test_fine_tuning_saves_a_directory_transformers_loads(hf_dir, tmp_path, capsys):
    out, data = tmp_path / "run", tmp_path / "shakespeare.txt"
    with open(DEFAULT_TEXT, encoding="utf-8") as f:
        data.write_text(f.read()[:20_000], encoding="utf-8")
    train_main(["--preset", "finetune-shakespeare", "--init-from", str(hf_dir), "--out-dir", str(out),
                "--data", str(data), "--max-iters", "2", "--eval-interval", "2", "--eval-iters", "1", "--batch-size", "4",
                "--block-size", "32", "--sample-tokens", "8", "--learning-rate", "1e-3"])
    assert "HuggingFace GPT-2 directory" in capsys.readouterr().out
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(out / "hf")).eval()
    assert hf.config.n_positions == 32  # the position table cropped to --block-size
    ours = GPT2.from_pretrained(str(out / "hf")).eval()
    before = GPT2.from_pretrained(str(hf_dir))
    ids = np.random.default_rng(0).integers(0, VOCAB_SIZE, (2, 32))
    with torch.no_grad():
        expected = hf(torch.from_numpy(ids)).logits.numpy()
    assert np.abs(ours(tg.tensor(ids))[0].detach().numpy() - expected).max() < 1e-4
    moved = ours.transformer.h[0].attn.c_attn.weight.detach().numpy() - \
        before.transformer.h[0].attn.c_attn.weight.detach().numpy()
    assert np.abs(moved).max() > 1e-4  # fine-tuning changed the weights
    text = "KING RICHARD III: Now is the winter"
    assert transformers.GPT2Tokenizer.from_pretrained(str(out / "hf"))(text)["input_ids"] == \
        GPT2Tokenizer.from_pretrained(str(hf_dir)).encode(text)
    # the checkpoint keeps the tokenizer: sampling from it needs no HuggingFace directory
    sample_main(["--out-dir", str(out), "--prompt", "ROMEO:", "--max-new-tokens", "5"])
    assert capsys.readouterr().out.startswith("ROMEO:")


def test_crop_block_size_keeps_the_first_positions(hf_dir):
    full = GPT2.from_pretrained(str(hf_dir)).eval()
    cropped = GPT2.from_pretrained(str(hf_dir)).eval()
    cropped.crop_block_size(16)
    ids = tg.tensor(np.random.default_rng(1).integers(0, VOCAB_SIZE, (2, 16)))
    assert np.array_equal(full(ids)[0].detach().numpy(), cropped(ids)[0].detach().numpy())
    assert cropped.transformer.wpe.weight.shape == (16, 32)
    with pytest.raises(ValueError, match="block_size"):
        cropped(tg.zeros(1, 17, dtype=tg.int64))


def test_bad_pretrained_directories_are_refused(hf_dir, tmp_path, capsys):
    assert "is not a directory" in refusal(capsys, sample_main, ["--init-from", str(tmp_path / "none")])
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    assert "pickle" in refusal(capsys, sample_main, ["--init-from", str(tmp_path)])
    model_only = tmp_path / "model_only"
    GPT2.from_pretrained(str(hf_dir)).save_pretrained(str(model_only))
    assert "neither vocab.json" in refusal(capsys, sample_main, ["--init-from", str(model_only)])
    out = str(tmp_path / "out")
    line = refusal(capsys, train_main, ["--init-from", str(hf_dir), "--n-layer", "3", "--out-dir", out])
    assert "has its own --n-layer" in line
    line = refusal(capsys, train_main, ["--preset", "finetune-shakespeare", "--out-dir", out])
    assert "give --init-from" in line
    line = refusal(capsys, train_main, ["--preset", "finetune-shakespeare", "--init-from", str(hf_dir),
                                        "--block-size", "128", "--out-dir", out])
    assert "has 64 positions" in line
