"""tinygrad_tx.cpu: the CPU device, as torch.cpu, and the switch of its fused kernels.

The fused ops (layer_norm, softmax, gelu, cross_entropy, scaled_dot_product_attention, AdamW, the gradients'
norm in clip_grad_norm_) run multi-threaded Numba kernels on float32 CPU tensors where Numba is installed
(pip install "tinygrad_tx[cpu]"), and their NumPy array code otherwise. use_kernels(False), or
TINYGRAD_TX_CPU_KERNELS=0 before starting, chooses the array code.
"""
from .backend.cpu_kernels import kernels_enabled, numba_available, set_kernels_enabled

__all__ = ["is_available", "device_count", "current_device", "synchronize", "use_kernels", "kernels_enabled",
           "kernels_available"]


def is_available():
    return True


def device_count():
    return 1


def current_device():
    return "cpu"


def synchronize(device=None):
    """Nothing to wait for: every CPU op has finished when it returns."""


def use_kernels(enabled=True):
    """Run the fused ops with the Numba kernels (True, the default) or with the NumPy array code (False)."""
    set_kernels_enabled(enabled)


def kernels_available():
    """Whether the fused ops run the Numba kernels now: Numba is installed and the kernels are switched on."""
    return kernels_enabled() and numba_available()
