"""Neural-network building blocks, as torch.nn."""
from . import functional, init
from .containers import ModuleDict, ModuleList, Sequential
from .layers import GELU, Dropout, Embedding, Identity, LayerNorm, Linear, ReLU, Sigmoid, Tanh
from .module import Module
from .parameter import Parameter
from .utils import clip_grad_norm_
from . import parallel  # noqa: E402  (DistributedDataParallel; it needs the Module above)
