"""SummaryWriter writes event files that TensorBoard's own reader reads back: tags, steps and values."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_tx as tg

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import metadata as hparams_metadata  # noqa: E402

from tinygrad_tx.utils.tensorboard import SummaryWriter  # noqa: E402


def read(log_dir):
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_scalars_round_trip(tmp_path):
    values = [tg.tensor(0.5), 1.25, np.float32(2.0), tg.tensor([3.5]), 7]  # 0-d tensors, numbers, a 1-element tensor
    with SummaryWriter(tmp_path) as writer:
        for step, value in enumerate(values):
            writer.add_scalar("loss/train", value, step * 10)
        writer.add_scalar("lr", 0.1, walltime=1234.5)
        writer.add_scalar("precise", tg.tensor(1 / 3, dtype=tg.float64), 3, new_style=True, double_precision=True)
    events = read(tmp_path)
    assert set(events.Tags()["scalars"]) == {"loss/train", "lr"}
    assert [(e.step, e.value) for e in events.Scalars("loss/train")] == [(0, 0.5), (10, 1.25), (20, 2.0), (30, 3.5),
                                                                          (40, 7.0)]
    assert events.Scalars("lr")[0].wall_time == 1234.5
    precise = events.Tensors("precise")[0]
    assert precise.step == 3 and precise.tensor_proto.double_val[0] == 1 / 3
    assert len([f for f in os.listdir(tmp_path) if f.startswith("events.out.tfevents")]) == 1
    with SummaryWriter(tmp_path / "bad") as writer, pytest.raises(ValueError, match="single number"):
        writer.add_scalar("x", tg.zeros(3))


def test_add_scalars_writes_one_run_per_key(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        for step in range(3):
            writer.add_scalars("loss", {"train": step, "val": tg.tensor(2.0 * step)}, step)
    for key, scale in [("train", 1), ("val", 2)]:
        scalars = read(tmp_path / f"loss_{key}").Scalars("loss")
        assert [(e.step, e.value) for e in scalars] == [(s, scale * s) for s in range(3)]


def test_histogram_round_trip(tmp_path):
    values = np.random.default_rng(0).normal(size=(40, 25)).astype(np.float32)
    with SummaryWriter(tmp_path) as writer:
        writer.add_histogram("weights", tg.tensor(values), 5)
        writer.add_histogram("weights", values * 2, 6)
        writer.add_histogram("few", [1.0, 2.0, 2.0, 3.0], 0, bins=3)
        writer.add_histogram("merged", values, 0, bins=100, max_bins=10)
    events = read(tmp_path)
    assert set(events.Tags()["histograms"]) == {"weights", "few", "merged"}
    first, second = events.Histograms("weights")
    assert (first.step, second.step) == (5, 6)
    flat = values.astype(np.float64).reshape(-1)
    histogram = first.histogram_value
    assert histogram.num == flat.size and sum(histogram.bucket) == flat.size
    assert histogram.min == pytest.approx(flat.min()) and histogram.max == pytest.approx(flat.max())
    assert histogram.sum == pytest.approx(flat.sum()) and histogram.sum_squares == pytest.approx(flat @ flat)
    assert list(histogram.bucket_limit) == sorted(histogram.bucket_limit)
    assert histogram.bucket[0] == 0  # the empty bucket whose right edge is the left edge of the data
    assert second.histogram_value.max == pytest.approx(2 * flat.max())
    few = events.Histograms("few")[0].histogram_value
    assert list(few.bucket) == [0, 1, 2, 1] and list(few.bucket_limit) == pytest.approx([1, 5 / 3, 7 / 3, 3])
    merged = events.Histograms("merged")[0].histogram_value
    assert len(merged.bucket) <= 11 and sum(merged.bucket) == flat.size


def test_histogram_buckets_as_torch(tmp_path):
    """The default (TensorFlow) buckets give the same histogram as torch.utils.tensorboard writes."""
    torch_tensorboard = pytest.importorskip("torch.utils.tensorboard")
    values = np.random.default_rng(1).normal(size=500)
    with SummaryWriter(tmp_path / "ours") as writer:
        writer.add_histogram("h", values, 0)
    with torch_tensorboard.SummaryWriter(tmp_path / "theirs") as writer:
        writer.add_histogram("h", values, 0)
    ours = read(tmp_path / "ours").Histograms("h")[0].histogram_value
    theirs = read(tmp_path / "theirs").Histograms("h")[0].histogram_value
    assert list(ours.bucket) == list(theirs.bucket) and list(ours.bucket_limit) == list(theirs.bucket_limit)
    assert (ours.min, ours.max, ours.num) == (theirs.min, theirs.max, theirs.num)


def test_text_and_hparams(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        writer.add_text("notes", "**lr** halved", 2)
        writer.add_hparams({"lr": 0.01, "layers": 4, "optimizer": "adamw", "bias": True, "dropout": tg.tensor(0.1)},
                           {"accuracy": 0.9, "loss": tg.tensor(0.25)}, run_name="trial")
    text = read(tmp_path).Tensors("notes/text_summary")[0]
    assert text.step == 2 and text.tensor_proto.string_val == [b"**lr** halved"]

    run = read(tmp_path / "trial")
    assert [e.value for e in run.Scalars("accuracy")] == [pytest.approx(0.9)]
    assert [e.value for e in run.Scalars("loss")] == [0.25]
    content = run.PluginTagToContent("hparams")
    experiment = hparams_metadata.parse_experiment_plugin_data(content[hparams_metadata.EXPERIMENT_TAG])
    assert [info.name for info in experiment.hparam_infos] == ["lr", "layers", "optimizer", "bias", "dropout"]
    assert [m.name.tag for m in experiment.metric_infos] == ["accuracy", "loss"]
    start = hparams_metadata.parse_session_start_info_plugin_data(content[hparams_metadata.SESSION_START_INFO_TAG])
    assert start.hparams["optimizer"].string_value == "adamw" and start.hparams["bias"].bool_value is True
    assert start.hparams["dropout"].number_value == pytest.approx(0.1)
    with pytest.raises(TypeError, match="dictionary"):
        SummaryWriter(tmp_path).add_hparams([("lr", 1)], {})


def test_default_log_dir_flush_close_and_reopen(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    writer = SummaryWriter(comment="_baseline")
    run_dir = writer.get_logdir()
    assert os.path.dirname(run_dir) == "runs" and run_dir.endswith("_baseline") and os.path.isdir(run_dir)
    writer.add_scalar("x", 1.0, 0)
    writer.flush()  # on disk now, before close
    assert [e.value for e in read(run_dir).Scalars("x")] == [1.0]
    writer.close()
    writer.close()  # twice is fine
    writer.add_scalar("x", 2.0, 1)  # writing after close opens a new event file
    writer.close()
    assert [e.value for e in read(run_dir).Scalars("x")] == [1.0, 2.0]


def test_import_without_tensorboard_says_what_to_install():
    """tinygrad_tx imports without tensorboard; the writer's module explains how to get it."""
    program = ("import sys; sys.modules['tensorboard'] = None\n"
               "import tinygrad_tx\n"
               "try:\n"
               "    from tinygrad_tx.utils.tensorboard import SummaryWriter\n"
               "except ImportError as error:\n"
               "    print(error)\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "pip install tensorboard" in result.stdout
