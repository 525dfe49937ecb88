"""The training precision a --dtype flag names, as one object the training loop asks.

    float32   plain float32 (the default)
    tf32      float32 tensors, matrix products on TF32 tensor cores (cuBLAS; --device cuda only)
    float16   autocast to float16 (float32 master weights and reductions) plus dynamic loss scaling
    bfloat16  autocast to bfloat16 (float32 master weights), no loss scaling: bfloat16 has float32's range,
              so gradients do not underflow; needs ml_dtypes (pip install "tinygrad_tx[bf16]")

    precision = Precision("float16", "cuda")
    with precision.autocast():
        loss = model(x, y)[1]
    precision.scaler.scale(loss).backward()
    precision.scaler.unscale_(optimizer)     # no-ops for float32 and tf32: the scaler is disabled
    precision.scaler.step(optimizer)
    precision.scaler.update()
"""
from ..dtype import bfloat16, float16, require_bfloat16
from .autocast_mode import autocast
from .grad_scaler import GradScaler

DTYPES = ("float32", "tf32", "float16", "bfloat16")


class Precision:
    def __init__(self, dtype="float32", device="cpu"):
        if dtype not in DTYPES:
            raise ValueError(f"unknown training dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
        self.dtype = dtype
        self.device_type = str(device).split(":")[0]
        if dtype == "bfloat16":
            try:
                require_bfloat16()
            except ImportError as error:
                raise ValueError(f"--dtype bfloat16: {error}") from None
            if self.device_type == "cuda":
                from .. import cuda
                if not cuda.is_bf16_supported():
                    raise ValueError("--dtype bfloat16 on a GPU needs a CuPy that stores bfloat16 (CuPy 14 or newer, "
                                     "with ml_dtypes); use --dtype float16 there")
        if dtype == "tf32":
            if self.device_type != "cuda":
                raise ValueError(f"--dtype tf32 is a cuBLAS math mode for GPU matrix products: it needs --device cuda, "
                                 f"got --device {device}")
            from .. import cuda
            cuda.set_tf32(True)
        self.scaler = GradScaler(self.device_type, enabled=dtype == "float16")

    def autocast(self):
        """The region the forward pass runs in: autocast to float16 or bfloat16 for those, a no-op region otherwise."""
        fast_dtype = bfloat16 if self.dtype == "bfloat16" else float16
        return autocast(self.device_type, fast_dtype, enabled=self.dtype in ("float16", "bfloat16"))
