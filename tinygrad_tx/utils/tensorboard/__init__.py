"""tinygrad_tx.utils.tensorboard: SummaryWriter, as torch.utils.tensorboard, on the tensorboard package.

It needs tensorboard (not TensorFlow, not PyTorch): pip install tensorboard, or the extra
pip install "tinygrad_tx[tensorboard]". tinygrad_tx itself imports without it.
"""
try:
    import tensorboard  # noqa: F401
except ImportError as error:
    raise ImportError("tinygrad_tx.utils.tensorboard needs the tensorboard package, which is not installed: "
                      'pip install tensorboard (or pip install "tinygrad_tx[tensorboard]")') from error

from .writer import FileWriter, SummaryWriter

__all__ = ["FileWriter", "SummaryWriter"]
