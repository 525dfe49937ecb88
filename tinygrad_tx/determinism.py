"""use_deterministic_algorithms, as PyTorch's: ask that every op give the same bits on every run.

The CPU is deterministic throughout. On the GPU, one op is not: index_add (embedding and indexing gradients)
uses CuPy's scatter_add, whose atomic additions land in a different order each run, so sums differ in their
last bits. With deterministic algorithms on, that op raises (or, with warn_only=True, warns), naming itself,
as PyTorch does for ops without a deterministic implementation.
"""
import warnings

_mode = {"enabled": False, "warn_only": False}


def use_deterministic_algorithms(mode, *, warn_only=False):
    _mode["enabled"], _mode["warn_only"] = bool(mode), bool(warn_only)


def are_deterministic_algorithms_enabled():
    return _mode["enabled"]


def is_deterministic_algorithms_warn_only_enabled():
    return _mode["warn_only"]


def alert_not_deterministic(op):
    """Called by an op whose result may vary run to run."""
    if not _mode["enabled"]:
        return
    message = (f"{op} does not have a deterministic implementation, but you set "
               "'tinygrad_tx.use_deterministic_algorithms(True)'. Turn it off for this op, or run it on the CPU")
    if _mode["warn_only"]:
        warnings.warn(message, stacklevel=3)
    else:
        raise RuntimeError(message)
