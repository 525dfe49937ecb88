"""Neural-network building blocks, as torch.nn."""
from . import functional, init
from .attention import MultiheadAttention
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .layers import (GELU, Dropout, Embedding, Flatten, Identity, LayerNorm, Linear, LogSoftmax, ReLU, RMSNorm,
                     Sigmoid, SiLU, Softmax, Tanh)
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import Module
from .parameter import Parameter
from .utils import clip_grad_norm_
from . import parallel  # noqa: E402  (DistributedDataParallel; it needs the Module above)
