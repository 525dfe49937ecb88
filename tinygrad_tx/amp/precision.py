"""The training precision a --dtype flag names, as one object the training loop asks.

    float32   plain float32 (the default)
    tf32      float32 tensors, matrix products on TF32 tensor cores (cuBLAS; --device cuda only)
    float16   autocast to float16 (float32 master weights and reductions) plus dynamic loss scaling
    bfloat16  refused with an explanation: NumPy and CuPy have no bfloat16 dtype

    precision = Precision("float16", "cuda")
    with precision.autocast():
        loss = model(x, y)[1]
    precision.scaler.scale(loss).backward()
    precision.scaler.unscale_(optimizer)     # no-ops for float32 and tf32: the scaler is disabled
    precision.scaler.step(optimizer)
    precision.scaler.update()
"""
from ..dtype import float16
from .autocast_mode import autocast
from .grad_scaler import GradScaler

DTYPES = ("float32", "tf32", "float16", "bfloat16")


class Precision:
    def __init__(self, dtype="float32", device="cpu"):
        if dtype not in DTYPES:
            raise ValueError(f"unknown training dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
        if dtype == "bfloat16":
            raise ValueError("--dtype bfloat16 is not supported: NumPy and CuPy, the array libraries under tinygrad_tx, "
                             "have no bfloat16 dtype; use --dtype float16 (autocast with loss scaling) or, on a GPU, "
                             "--dtype tf32")
        self.dtype = dtype
        self.device_type = str(device).split(":")[0]
        if dtype == "tf32":
            if self.device_type != "cuda":
                raise ValueError(f"--dtype tf32 is a cuBLAS math mode for GPU matrix products: it needs --device cuda, "
                                 f"got --device {device}")
            from .. import cuda
            cuda.set_tf32(True)
        self.scaler = GradScaler(self.device_type, enabled=dtype == "float16")

    def autocast(self):
        """The region the forward pass runs in: float16 autocast for 'float16', a no-op region otherwise."""
        return autocast(self.device_type, float16, enabled=self.dtype == "float16")
