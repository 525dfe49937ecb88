"""tinygrad_tx.cuda.amp: PyTorch's old spellings of autocast and GradScaler, deprecated there in favour of
tinygrad_tx.amp.autocast("cuda") and tinygrad_tx.amp.GradScaler("cuda"); they warn as PyTorch's do."""
import warnings

from .. import amp
from ..dtype import float16

__all__ = ["autocast", "GradScaler"]


def _deprecated(name):
    warnings.warn(f"`tinygrad_tx.cuda.amp.{name}(args...)` is deprecated. Please use "
                  f"`tinygrad_tx.amp.{name}('cuda', args...)` instead.", FutureWarning, stacklevel=3)


class autocast(amp.autocast):
    def __init__(self, enabled=True, dtype=float16, cache_enabled=True):
        _deprecated("autocast")
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(amp.GradScaler):
    def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
                 enabled=True):
        _deprecated("GradScaler")
        super().__init__("cuda", init_scale, growth_factor, backoff_factor, growth_interval, enabled)
