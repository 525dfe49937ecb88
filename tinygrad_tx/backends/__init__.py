"""tinygrad_tx.backends: the switches of torch.backends that training scripts set at start-up.

    tinygrad_tx.backends.cuda.matmul.allow_tf32 = True   # float32 matrix products on TF32 tensor cores
    tinygrad_tx.backends.cudnn.allow_tf32 = True         # accepted; nothing here runs on cuDNN
    tinygrad_tx.backends.cudnn.benchmark = True          # accepted; nothing here runs on cuDNN
    tinygrad_tx.backends.mps.is_available()              # False: no Apple GPU backend

(Not to be confused with tinygrad_tx.backend, the NumPy and CuPy array backends.)
"""
from . import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
