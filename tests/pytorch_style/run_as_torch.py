"""Run a PyTorch script on tinygrad_tx, unchanged: `import torch` gets tinygrad_tx, `torch.nn` gets
tinygrad_tx.nn, and so on for every `torch.X`.

    python tests/pytorch_style/run_as_torch.py SCRIPT.py [ARGS...]

The script runs as __main__ with sys.argv = [SCRIPT.py, ARGS...], as `python SCRIPT.py ARGS...` would.
A `torch.X` that tinygrad_tx lacks fails as a missing `tinygrad_tx.X` would.
"""
import importlib
import importlib.abc
import importlib.util
import os
import runpy
import sys


class TorchAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers imports of torch and torch.X with the modules tinygrad_tx and tinygrad_tx.X."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("tinygrad_tx" + spec.name[len("torch"):])

    def exec_module(self, module):
        pass  # the tinygrad_tx module is imported already


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: python tests/pytorch_style/run_as_torch.py SCRIPT.py [ARGS...]")
    sys.meta_path.insert(0, TorchAlias())
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as when the script is run directly
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
