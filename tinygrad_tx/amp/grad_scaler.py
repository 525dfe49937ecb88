"""GradScaler: dynamic loss scaling for float16 training, as torch.amp.GradScaler.

Small float16 gradients underflow to zero. Multiplying the loss by a large scale S before backward
lifts them into range; dividing the gradients by S before the optimizer step undoes it. When S is
too large some gradient overflows to inf (or becomes nan): that step is skipped and S shrinks.

    scaler = GradScaler()
    with autocast("cuda", dtype=float16):
        loss = model(x, y)[1]
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)          # optional: only to clip or inspect the true gradients
    clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(optimizer)              # skipped if a gradient is inf or nan
    scaler.update()                     # S *= backoff_factor after a skip; S *= growth_factor after
                                        # growth_interval steps in a row without one

The scale is a Python float; the inf/nan check costs one device synchronization per step. A scaler for
'cuda' (the default) on a machine without a GPU warns and disables itself, as PyTorch's: every call then
passes through.
"""
import warnings

_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"


class GradScaler:
    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        if growth_factor <= 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got {backoff_factor}")
        if growth_interval < 1 or int(growth_interval) != growth_interval:
            raise ValueError(f"GradScaler: growth_interval must be a positive integer, got {growth_interval}")
        self.device = device
        self._enabled = bool(enabled)
        if self._enabled and str(device).partition(":")[0] == "cuda":
            from .. import cuda  # here, not at import: tinygrad_tx.cuda.amp builds on this module
            if not cuda.is_available():  # as PyTorch: without a GPU there is nothing to scale for
                warnings.warn("tinygrad_tx.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.",
                              stacklevel=2)
                self._enabled = False
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0  # steps in a row without inf/nan
        self._per_optimizer = {}  # id(optimizer) -> {"stage": ..., "found_inf": bool}

    # --- the four calls of a step ---------------------------------------------------------------------------------
    def scale(self, outputs):
        """outputs (a tensor, or a list/tuple of them) times the current scale."""
        from ..tensor import Tensor  # here, not at import: tensor.py imports the amp package for autocast
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError(f"GradScaler.scale: expected a Tensor or a list/tuple of them, got {type(outputs).__name__}")

    def unscale_(self, optimizer):
        """Divide the optimizer's gradients by the scale, in place, and record whether any is inf or nan."""
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state["stage"] is _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update()")
        if state["stage"] is _STEPPED:
            raise RuntimeError("unscale_() is being called after step(); call update() first")
        state["found_inf"] = self._unscale_grads(optimizer)
        state["stage"] = _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """optimizer.step(), unless a gradient is inf or nan (then nothing changes). Returns what step returned."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("GradScaler.step: closures are not supported (the closure's backward would not be "
                               "scaled)")
        state = self._state(optimizer)
        if state["stage"] is _STEPPED:
            raise RuntimeError("step() has already been called since the last update()")
        if state["stage"] is _READY:
            self.unscale_(optimizer)
        result = None if state["found_inf"] else optimizer.step(*args, **kwargs)
        state["stage"] = _STEPPED
        return result

    def update(self, new_scale=None):
        """Back the scale off if any optimizer saw inf/nan since the last update; grow it after growth_interval
        clean steps. new_scale (a number or a one-element tensor) sets it directly instead."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if hasattr(new_scale, "item") else new_scale)
        else:
            if not self._per_optimizer:
                raise RuntimeError("GradScaler.update: no unscale_() or step() ran since the last update(), so there "
                                   "is no inf/nan check to update the scale from")
            if any(s["found_inf"] for s in self._per_optimizer.values()):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer = {}

    # --- inspection and checkpoints -----------------------------------------------------------------------------------
    def get_scale(self):
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self):
        return self._growth_factor

    def get_backoff_factor(self):
        return self._backoff_factor

    def get_growth_interval(self):
        return self._growth_interval

    def is_enabled(self):
        return self._enabled

    def state_dict(self):
        """Plain numbers (JSON-ready), PyTorch's keys; empty when disabled."""
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor, "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict):
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError("GradScaler.load_state_dict: the state dict is empty, possibly saved from a disabled "
                               "GradScaler")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])

    # --- internals ----------------------------------------------------------------------------------------------------
    def _state(self, optimizer):
        return self._per_optimizer.setdefault(id(optimizer), {"stage": _READY, "found_inf": False})

    def _unscale_grads(self, optimizer):
        """grad /= scale for every gradient; True if any gradient has an inf or nan. One sync per device."""
        grads = {}
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if p.grad.dtype.name == "float16":
                        raise ValueError(f"GradScaler.unscale_: a gradient of shape {tuple(p.grad.shape)} is float16; "
                                         "keep the parameters float32 and run the model under autocast instead")
                    grads[id(p.grad)] = p.grad
        inverse = 1.0 / self._scale
        non_finite = {}  # device -> (backend, per-gradient flags still on the device)
        for grad in grads.values():
            backend = grad.backend
            _, flags = non_finite.setdefault(grad.device, (backend, []))
            flags.append(backend.logical_not(backend.isfinite(grad.array)).any())
            # a new array rather than *=: a gradient may be a broadcast (one element repeated) or share memory with
            # another gradient
            grad.array = grad.array * grad.array.dtype.type(inverse)
        return any(backend.any(backend.stack(flags, 0)) for backend, flags in non_finite.values())
