"""tinygrad_tx.backends.mps: Apple's Metal GPUs, which tinygrad_tx does not run on."""


def is_available():
    return False


def is_built():
    return False
