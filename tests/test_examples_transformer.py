"""Smoke tests: the Transformer examples run end to end (quick modes) and print what their docs quote."""
import json
import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def run_example(name, *args, timeout=300):
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_attention_by_hand():
    out = run_example("attention_by_hand.py")
    # the numbers docs/transformer.md walks through
    for expected in ("   I   0.1400   0.3200   0.5000   0.6800   0.8600",    # Q K^T, first row
                     "pizza   0.0289   0.0599   0.1239   0.2565   0.5308",   # attention weights, last row
                     "love   0.8515   0.9515   1.0515",                       # the output of "love"
                     "row sums: [1. 1. 1. 1. 1.]", "gradcheck (float64"):
        assert expected in out, expected


def test_seq2seq_quick():
    out = run_example("seq2seq_transformer.py", "--quick")
    assert "sample translations" in out and "test exact-match:" in out


def test_residual_layernorm_study_quick(tmp_path):
    out = run_example("residual_layernorm_study.py", "--quick", "--out-dir", str(tmp_path))
    assert "| depth | variant |" in out
    for name in ("results.md", "results.json", "loss.png", "grad_init.png", "grad_train.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    results = json.loads((tmp_path / "results.json").read_text())
    runs = results["runs"]
    assert len(runs) == 2 * 7
    for run in runs:
        assert len(run["init_layer_grad_norms"]) == run["depth"]
        assert len(run["train_losses"]) == results["settings"]["steps"] or run["diverged"]
    pre_ln = next(r for r in runs if r["variant"] == "pre-LN" and r["depth"] == 2)
    assert pre_ln["final_val_loss"] < pre_ln["init_loss"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
