"""PyTorch code runs unchanged: tests/pytorch_style/train_char.py, a small GPT training script written against
`import torch`, runs on PyTorch and on tinygrad_tx (run_as_torch.py answers `import torch` with tinygrad_tx)
from the same initial weights and batches. Losses, evaluations and the greedy sample must agree to float32
rounding; tinygrad_tx's checkpoint must resume exactly where the uninterrupted run would be."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "pytorch_style", "train_char.py")
RUN_AS_TORCH = os.path.join(ROOT, "tests", "pytorch_style", "run_as_torch.py")

# float32's spacing near a loss of 4 is 4.8e-7; eight AdamW steps from the same weights stay within a few of it
LOSS_TOLERANCE = 1e-5

CONFIGS = {  # the two attention paths, the loss scaler on and off, LayerNorm and Linear with and without bias
    "sdpa-float16-scaler": ["--flash=true", "--bias=true", "--dtype=float16"],
    "masked-softmax-float32": ["--flash=false", "--bias=false", "--dtype=float32"],
}


def run(library, out_dir, *options):
    command = [sys.executable, SCRIPT] if library == "torch" else [sys.executable, RUN_AS_TORCH, SCRIPT]
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([*command, f"--out_dir={out_dir}", *options], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, f"{library} run failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def by_kind(records):
    return ({r["iter"]: r["loss"] for r in records if "iter" in r},
            {r["eval"]: (r["train"], r["val"]) for r in records if "eval" in r},
            [r["sample"] for r in records if "sample" in r])


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def runs(request, tmp_path_factory):
    """The script on torch (writing its initial weights) and on tinygrad_tx (reading them), 8 iterations."""
    directory = tmp_path_factory.mktemp(request.param)
    options = [*CONFIGS[request.param], "--max_iters=8", "--sample_tokens=24"]
    weights = str(directory / "init.npz")
    theirs = run("torch", directory / "torch", *options, f"--dump_weights={weights}")
    ours = run("tinygrad_tx", directory / "ours", *options, f"--init_weights={weights}")
    return directory, options, weights, ours, theirs


def test_losses_evaluations_and_sample_match_pytorch(runs):
    _, _, _, ours, theirs = runs
    (our_losses, our_evals, our_sample), (their_losses, their_evals, their_sample) = by_kind(ours), by_kind(theirs)
    assert sorted(our_losses) == list(range(8)) and sorted(our_evals) == [0, 4, 8]
    assert sorted(our_losses) == sorted(their_losses) and sorted(our_evals) == sorted(their_evals)
    np.testing.assert_allclose([our_losses[i] for i in range(8)], [their_losses[i] for i in range(8)],
                               rtol=0, atol=LOSS_TOLERANCE)
    np.testing.assert_allclose([our_evals[i] for i in (0, 4, 8)], [their_evals[i] for i in (0, 4, 8)],
                               rtol=0, atol=LOSS_TOLERANCE)
    assert our_losses[7] < our_losses[0] - 0.1  # it trained
    assert len(our_sample[0]) == 1 + 24 and our_sample == their_sample  # greedy (top_k=1): the same characters


def test_resume_from_checkpoint_continues_the_uninterrupted_run(runs):
    directory, options, weights, ours, _ = runs
    half = directory / "resumed"
    run("tinygrad_tx", half, *options, f"--init_weights={weights}", "--max_iters=4")
    resumed = run("tinygrad_tx", half, *options, "--init_from=resume")  # the script's --max_iters=8 again
    straight_losses, straight_evals, straight_sample = by_kind(ours)
    resumed_losses, resumed_evals, resumed_samples = by_kind(resumed)  # the log holds both halves
    assert resumed_losses == straight_losses  # exactly: the checkpoint holds every bit the next step reads
    assert resumed_evals == straight_evals and resumed_samples[-1] == straight_sample[0]
