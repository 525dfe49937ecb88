"""docs/pytorch_compat.md's table of PyTorch names is what docs/make_compat_table.py generates now, and the
training-script names it calls present are really there: callable where torch's are, classes where torch's are."""
import importlib.util
import os
import re
import subprocess
import sys

import pytest
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SCRIPT = os.path.join(ROOT, "docs", "make_compat_table.py")


def load_script():
    spec = importlib.util.spec_from_file_location("make_compat_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_compat_table = load_script()


def test_table_is_up_to_date():
    with open(make_compat_table.DOC, encoding="utf-8") as f:
        recorded = re.search(r"from torch (\S+):", f.read())
    installed = make_compat_table.torch_version()
    if recorded and recorded.group(1) != installed:  # the names are torch's: another torch lists others
        pytest.skip(f"the table lists torch {recorded.group(1)}'s names; torch {installed} is installed")
    # a fresh process, so that what other tests import or patch cannot change what the script sees
    result = subprocess.run([sys.executable, SCRIPT, "--check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_check_notices_a_stale_table(tmp_path, monkeypatch):
    with open(make_compat_table.DOC, encoding="utf-8") as f:
        text = f.read()
    stale = tmp_path / "pytorch_compat.md"
    stale.write_text(text.replace("**Present (", "**Present (1", 1), encoding="utf-8")
    monkeypatch.setattr(make_compat_table, "DOC", str(stale))
    assert make_compat_table.main(["--check"]) == 1
    assert make_compat_table.main([]) == 0  # regenerating repairs it and keeps the rest of the page
    regenerated = stale.read_text(encoding="utf-8")
    assert make_compat_table.main(["--check"]) == 0
    before, after = text.split(make_compat_table.BEGIN)[0], text.split(make_compat_table.END)[1]
    assert regenerated.startswith(before) and regenerated.endswith(after)


def test_claimed_training_script_names_work():
    have, _ = make_compat_table.curated()
    assert have
    for path in have:
        ours = make_compat_table.lookup(make_compat_table.tinygrad_tx, path)
        theirs = make_compat_table.torch_lookup(path)
        assert ours is not make_compat_table.MISSING, path
        if callable(theirs):
            assert callable(ours), f"torch.{path} is callable, tinygrad_tx.{path} is {ours!r}"
        elif path.startswith("Tensor."):  # a property such as shape or grad, not a method
            assert not callable(ours), f"torch.{path} is a property, tinygrad_tx.{path} is {ours!r}"
        if isinstance(theirs, type):
            assert isinstance(ours, type), f"torch.{path} is a class, tinygrad_tx.{path} is {ours!r}"


def test_presence_is_by_path():
    lookup, MISSING = make_compat_table.lookup, make_compat_table.MISSING
    assert lookup(torch, "nn.functional.gelu") is torch.nn.functional.gelu
    assert lookup(torch, "Tensor.grad") is None  # looked up on a tensor
    assert lookup(torch, "backends.cudnn.allow_tf32") in (True, False)  # a module attribute dir() does not list
    assert lookup(make_compat_table.tinygrad_tx, "no_such_namespace.gelu") is MISSING
    assert not make_compat_table.present("nn.functional.no_such_function")
