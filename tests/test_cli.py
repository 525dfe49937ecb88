"""The command-line programs refuse bad input as argparse does: `prog: error: ...` naming the option and
the value, exit status 2, no traceback; and a genuine bug still shows its traceback."""
import os
import subprocess
import sys

import pytest

from test_train import ROOT, small_config
from tinygrad_tx import backend
from tinygrad_tx import dtype as dtypes
from tinygrad_tx.data import ByteTokenizer, TextDataset
from tinygrad_tx.sample import main as sample_main
from tinygrad_tx.train import main as train_main
from tinygrad_tx.trainer import Trainer
from tinygrad_tx.viz.__main__ import main as viz_main

PROGRAMS = {train_main: "python -m tinygrad_tx.train", sample_main: "python -m tinygrad_tx.sample",
            viz_main: "python -m tinygrad_tx.viz"}


def refusal(capsys, main, argv):
    """Run a program that must refuse argv; -> the one error line it printed."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 2, stderr
    assert "Traceback" not in stderr
    error_lines = [line for line in stderr.splitlines() if line.startswith(f"{PROGRAMS[main]}: error: ")]
    assert len(error_lines) == 1 and stderr.rstrip("\n").endswith(error_lines[0]), stderr
    return error_lines[0]


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    """A run's OUT_DIR with a checkpoint of an untrained tiny model: enough to sample from."""
    out_dir = tmp_path_factory.mktemp("run")
    Trainer(small_config(out_dir)).save()
    return str(out_dir)


@pytest.fixture
def without_cupy(monkeypatch):
    """As on a machine without CuPy, even where it is installed: importing it fails."""
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setitem(sys.modules, "tinygrad_tx.backend.cupy_backend", None)
    for device in ("cuda", "cuda:0"):
        monkeypatch.delitem(backend._backends, device, raising=False)


BAD_NUMBERS = [
    (train_main, "--max-iters", "-5"), (train_main, "--max-iters", "0"), (train_main, "--max-iters", "ten"),
    (train_main, "--eval-interval", "0"), (train_main, "--eval-iters", "0"), (train_main, "--log-interval", "0"),
    (train_main, "--batch-size", "0"), (train_main, "--block-size", "-1"), (train_main, "--n-layer", "0"),
    (train_main, "--n-head", "0"), (train_main, "--n-embd", "-8"), (train_main, "--dropout", "1"),
    (train_main, "--dropout", "-0.1"), (train_main, "--learning-rate", "0"), (train_main, "--learning-rate", "nan"),
    (train_main, "--learning-rate", "inf"), (train_main, "--seed", "-1"), (train_main, "--sample-tokens", "0"),
    (sample_main, "--max-new-tokens", "0"), (sample_main, "--num-samples", "-2"), (sample_main, "--temperature", "-1"),
    (sample_main, "--top-k", "-1"), (sample_main, "--seed", "-1"),
    (viz_main, "--vocab-size", "0"), (viz_main, "--depth", "-1"), (viz_main, "--max-nodes", "0"),
    (viz_main, "--batch-size", "0"), (viz_main, "--seq-len", "0"),
]


@pytest.mark.parametrize("main, option, value", BAD_NUMBERS, ids=[f"{PROGRAMS[m].split('.')[-1]}{o}={v}"
                                                                   for m, o, v in BAD_NUMBERS])
def test_bad_numbers_are_refused_naming_option_and_value(capsys, main, option, value):
    line = refusal(capsys, main, [option, value])
    assert f"argument {option}: " in line and value in line


def test_boundary_values_that_mean_something_are_accepted(capsys, checkpoint_dir):
    from tinygrad_tx.train import build_parser
    assert build_parser().parse_args(["--dropout", "0"]).dropout == 0.0  # dropout off
    # temperature 0 is greedy decoding (the seed no longer matters); top-k 0 keeps every token
    outputs = []
    for seed in ("1", "2"):
        sample_main(["--out-dir", checkpoint_dir, "--prompt", "ROMEO:", "--max-new-tokens", "5",
                     "--temperature", "0", "--top-k", "0", "--seed", seed])
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].startswith("ROMEO:")


def test_train_refuses_n_embd_not_divisible_by_n_head(capsys, tmp_path):
    line = refusal(capsys, train_main, ["--n-embd", "30", "--n-head", "4", "--out-dir", str(tmp_path)])
    assert "n_embd (30)" in line and "n_head (4)" in line


@pytest.mark.parametrize("main", [train_main, sample_main])
def test_cuda_without_cupy_is_refused(capsys, tmp_path, without_cupy, main):
    line = refusal(capsys, main, ["--device", "cuda", "--out-dir", str(tmp_path)])
    assert "--device cuda" in line and "CuPy" in line and "pip install" in line


@pytest.mark.parametrize("main", [train_main, sample_main])
def test_unknown_device_is_refused(capsys, tmp_path, main):
    line = refusal(capsys, main, ["--device", "tpu", "--out-dir", str(tmp_path)])
    assert "--device tpu" in line and "'cuda:N'" in line


def test_train_refuses_data_that_is_not_utf8_and_suggests_the_byte_tokenizer(capsys, tmp_path):
    data = tmp_path / "latin1.txt"
    data.write_bytes("Fran\u00e7ois et Ren\u00e9e\n".encode("latin-1") * 200)
    line = refusal(capsys, train_main, ["--data", str(data), "--out-dir", str(tmp_path / "out")])
    assert str(data) in line and "not UTF-8" in line and "--tokenizer byte" in line


def test_the_byte_tokenizer_trains_on_any_bytes(tmp_path):
    """What the refusal above suggests really works: the ids are the file's bytes as they were
    (but for a carriage return: line ends are read the same way as in a text file)."""
    data = tmp_path / "binary.dat"
    data.write_bytes(bytes(byte for byte in range(256) if byte != ord("\r")) * 4)
    dataset = TextDataset(str(data), "byte")
    ids = list(dataset.splits["train"]) + list(dataset.splits["val"])
    assert isinstance(dataset.tokenizer, ByteTokenizer) and ids == list(data.read_bytes())


@pytest.mark.parametrize("content, expected", [
    (None, "No such file or directory"),        # missing
    (b"", "is empty"),
    (b"too short\n", "block_size 64 is too long"),  # the preset's context is longer than the file
])
def test_train_refuses_data_it_cannot_train_on(capsys, tmp_path, content, expected):
    data = tmp_path / "text.txt"
    if content is not None:
        data.write_bytes(content)
    line = refusal(capsys, train_main, ["--data", str(data), "--out-dir", str(tmp_path / "out")])
    assert str(data) in line and expected in line


def test_train_refuses_a_directory_as_data(capsys, tmp_path):
    line = refusal(capsys, train_main, ["--data", str(tmp_path), "--out-dir", str(tmp_path / "out")])
    assert str(tmp_path) in line


def test_train_refuses_resume_without_a_checkpoint(capsys, tmp_path):
    line = refusal(capsys, train_main, ["--resume", "--out-dir", str(tmp_path)])
    assert "--resume" in line and f"no complete checkpoint in {tmp_path / 'ckpt'}" in line


def test_train_refuses_an_out_dir_that_is_a_file(capsys, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("")
    line = refusal(capsys, train_main, ["--out-dir", str(taken)])
    assert str(taken) in line and "File exists" in line


def test_train_refuses_bfloat16_without_ml_dtypes_saying_how_to_install_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(dtypes, "ml_dtypes", None)
    line = refusal(capsys, train_main, ["--dtype", "bfloat16", "--out-dir", str(tmp_path)])
    assert "--dtype bfloat16" in line and 'pip install "tinygrad_tx[bf16]"' in line


def test_sample_refuses_an_out_dir_without_checkpoint(capsys, tmp_path):
    line = refusal(capsys, sample_main, ["--out-dir", str(tmp_path)])
    assert f"--out-dir {tmp_path}" in line and f"no complete checkpoint in {tmp_path / 'ckpt'}" in line


def test_sample_refuses_a_prompt_outside_the_vocabulary(capsys, checkpoint_dir):
    line = refusal(capsys, sample_main, ["--out-dir", checkpoint_dir, "--prompt", "caf\u00e9"])
    assert "--prompt 'caf\u00e9'" in line and "'\u00e9' is not in the vocabulary" in line


def test_sample_refuses_an_empty_prompt(capsys, checkpoint_dir):
    line = refusal(capsys, sample_main, ["--out-dir", checkpoint_dir, "--prompt", ""])
    assert "--prompt ''" in line


def test_a_bug_is_not_disguised_as_bad_input(monkeypatch, tmp_path):
    """Only the exceptions that mean bad input become usage errors; anything else keeps its traceback."""
    def broken_trainer(config, resume=False):
        raise ValueError("a bug inside the trainer")  # not a ConfigError or DataError
    monkeypatch.setattr("tinygrad_tx.train.Trainer", broken_trainer)
    with pytest.raises(ValueError, match="a bug inside the trainer"):
        train_main(["--out-dir", str(tmp_path)])


@pytest.mark.parametrize("program, argv", [
    ("tinygrad_tx.train", ["--max-iters", "-5"]),
    ("tinygrad_tx.sample", ["--out-dir", "no-such-run"]),
])
def test_a_fresh_interpreter_exits_2_with_one_line(program, argv, tmp_path):
    result = subprocess.run([sys.executable, "-m", program, *argv], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr
    last_line = result.stderr.splitlines()[-1]
    assert last_line.startswith(f"python -m {program}: error: ") and all(word in last_line for word in argv)
