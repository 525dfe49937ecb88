"""tinygrad_tx.backends.cuda.matmul.allow_tf32: whether cuBLAS may run float32 matrix products on TF32
tensor cores. The same switch as tinygrad_tx.set_float32_matmul_precision: True is "high", False is
"highest", and reading it says whether the precision is below "highest" (as in PyTorch)."""
from .. import cuda as _cuda


class _MatmulSettings:
    __slots__ = ()  # as PyTorch's: a misspelled setting raises instead of being silently stored

    @property
    def allow_tf32(self):
        return _cuda.get_float32_matmul_precision() != "highest"

    @allow_tf32.setter
    def allow_tf32(self, enabled):
        _cuda.set_float32_matmul_precision("high" if enabled else "highest")


matmul = _MatmulSettings()

__all__ = ["matmul"]
