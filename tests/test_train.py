"""The training loop: metrics, checkpoints, exact resume, Ctrl-C, sampling, and the data it reads."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinygrad_tx.data import ByteTokenizer, CharTokenizer, TextDataset, tokenizer_from_dict
from tinygrad_tx.trainer import Trainer, config_from_preset, read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_config(out_dir, **overrides):
    values = dict(n_layer=1, n_head=2, n_embd=32, block_size=16, batch_size=4, max_iters=30, eval_interval=10,
                  eval_iters=2, log_interval=5, dropout=0.1, warmup_iters=5, lr_decay_iters=30, out_dir=str(out_dir),
                  sample_tokens=20)
    return config_from_preset("shakespeare-char-cpu", **{**values, **overrides})


def test_training_writes_metrics_checkpoint_and_loss_goes_down(tmp_path):
    trainer = Trainer(small_config(tmp_path, max_iters=40, eval_interval=20, dropout=0.0, learning_rate=1e-2))
    trainer.train()
    records = read_metrics(tmp_path)
    assert set(records[0]) == {"iter", "train_loss", "val_loss", "lr", "ms_per_iter", "tokens_per_s"}
    evals = [r for r in records if r["val_loss"] is not None]
    assert [r["iter"] for r in evals] == [0, 20, 40]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.5
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["model.safetensors", "optimizer.safetensors", "state.json"]
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert state["iteration"] == 40 and state["tokenizer"]["kind"] == "char"
    assert len(trainer.sample(max_new_tokens=10)) == 11  # the prompt "\n" and ten new characters


def test_resume_reproduces_uninterrupted_losses_exactly(tmp_path, monkeypatch):
    Trainer(small_config(tmp_path / "straight")).train()

    interrupted = Trainer(small_config(tmp_path / "resumed"))
    original_step = interrupted.train_step

    def step_then_ask_to_stop(iteration):
        result = original_step(iteration)
        if iteration == 16:  # as Ctrl-C would, mid-way between two evaluations
            interrupted._stop_requested = True
        return result
    monkeypatch.setattr(interrupted, "train_step", step_then_ask_to_stop)
    interrupted.train()
    assert json.loads((tmp_path / "resumed" / "ckpt" / "state.json").read_text())["iteration"] == 17

    Trainer(small_config(tmp_path / "resumed"), resume=True).train(resumed=True)
    straight, resumed = read_metrics(tmp_path / "straight"), read_metrics(tmp_path / "resumed")
    assert [(r["iter"], r["train_loss"], r["val_loss"]) for r in straight] == \
           [(r["iter"], r["train_loss"], r["val_loss"]) for r in resumed]


def test_command_line_train_interrupt_resume_and_sample(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": ROOT}
    command = [sys.executable, "-m", "tinygrad_tx.train", "--n-layer", "1", "--n-embd", "32", "--n-head", "2",
               "--block-size", "16", "--batch-size", "4", "--max-iters", "100000", "--eval-interval", "50",
               "--eval-iters", "1", "--log-interval", "5", "--out-dir", str(out)]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "metrics.jsonl").exists():
        time.sleep(0.2)
    while time.time() < deadline and len((out / "metrics.jsonl").read_text().splitlines()) < 3:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "checkpoint saved" in output
    iteration = json.loads((out / "ckpt" / "state.json").read_text())["iteration"]
    assert iteration >= 10

    resume = command + ["--max-iters", str(iteration + 5), "--resume", "--sample-tokens", "20"]  # the last flag wins
    resumed = subprocess.run(resume, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "sample:" in resumed.stdout and (out / "loss.png").exists()
    assert json.loads((out / "ckpt" / "state.json").read_text())["iteration"] == iteration + 5

    sample = subprocess.run([sys.executable, "-m", "tinygrad_tx.sample", "--out-dir", str(out), "--prompt", "ROMEO:",
                             "--max-new-tokens", "30"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert sample.returncode == 0, sample.stderr
    assert sample.stdout.startswith("ROMEO:") and len(sample.stdout.splitlines()[0]) >= 6


def test_data_parallel_on_two_ranks_saves_from_rank_0_and_resumes_on_one(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "tests", "distributed"))
    from launch import check, run_ranks
    flags = ["--n-layer", 1, "--n-head", 2, "--n-embd", 16, "--block-size", 16, "--batch-size", 2, "--eval-iters", 1,
             "--eval-interval", 3, "--log-interval", 3, "--sample-tokens", 5, "--out-dir", tmp_path]
    output = check(run_ranks("tinygrad_tx.train", "--max-iters", 6, *flags))
    assert "on cpu, 2 ranks; 6 iterations of 2x16 tokens on each rank" in output
    assert output.count("iter 6: train loss") == 1 and output.count("sample:") == 1  # rank 0 alone reports
    records = read_metrics(tmp_path)
    assert [r["iter"] for r in records] == [0, 3, 3, 6, 6]  # one writer: no line twice over
    assert records[1]["tokens_per_s"] is not None and json.loads((tmp_path / "ckpt" / "state.json").read_text())[
        "iteration"] == 6
    resumed = Trainer(small_config(tmp_path, n_embd=16, max_iters=8, eval_interval=4), resume=True)
    assert resumed.iteration == 6 and resumed.ranks.world_size == 1
    resumed.train(resumed=True)
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["iteration"] == 8


def test_tokenizers_round_trip_and_serialize():
    text = "First Citizen:\nBefore we proceed, hear me speak."
    char = CharTokenizer.from_text(text)
    assert char.decode(char.encode(text)) == text
    assert tokenizer_from_dict(char.to_dict()).encode("hear") == char.encode("hear")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        char.encode("Z")
    byte = ByteTokenizer()
    assert byte.decode(byte.encode("héllo ✓")) == "héllo ✓"
    assert isinstance(tokenizer_from_dict(byte.to_dict()), ByteTokenizer)


def test_dataset_split_and_seeded_batches():
    first, second = TextDataset(seed=7), TextDataset(seed=7)
    total = len(first.splits["train"]) + len(first.splits["val"])
    assert abs(len(first.splits["train"]) / total - 0.9) < 1e-3
    assert first.tokenizer.vocab_size == 65  # the bundled tiny Shakespeare
    x, y = first.get_batch("train", 3, 8)
    x2, _ = second.get_batch("train", 3, 8)
    assert x.shape == (3, 8) and np.array_equal(x.numpy(), x2.numpy())
    assert np.array_equal(x.numpy()[:, 1:], y.numpy()[:, :-1])  # targets are the inputs shifted by one
