"""Mixed precision: autocast regions and dynamic loss scaling, as torch.autocast and torch.amp.GradScaler."""
from .autocast_mode import autocast
from .grad_scaler import GradScaler

__all__ = ["autocast", "GradScaler"]
