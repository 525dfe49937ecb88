"""tinygrad_tx.backends.cudnn: PyTorch's cuDNN switches, settable as there. tinygrad_tx runs nothing on
cuDNN (it has no convolutions), so they change nothing; allow_tf32 here is PyTorch's switch for cuDNN's
convolutions, not for matrix products (tinygrad_tx.backends.cuda.matmul.allow_tf32 is that one)."""
enabled = True
allow_tf32 = True
benchmark = False
deterministic = False


def is_available():
    """False: tinygrad_tx does not use cuDNN."""
    return False
