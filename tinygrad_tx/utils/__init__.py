"""tinygrad_tx.utils: data loading (utils.data) and TensorBoard logging (utils.tensorboard), as in torch.utils.

utils.tensorboard needs the tensorboard package, so it is imported only when asked for:
`from tinygrad_tx.utils.tensorboard import SummaryWriter`.
"""
from . import data
