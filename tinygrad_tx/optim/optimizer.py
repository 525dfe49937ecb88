"""Optimizer: parameter groups, per-parameter state, zero_grad and state dicts, as torch.optim.Optimizer.

Subclasses write `step()` against raw backend arrays, in place, so the update records no graph and
runs unchanged on NumPy or CuPy arrays:

    for group in self.param_groups:
        for p in group["params"]:
            if p.grad is None:
                continue
            p.array -= group["lr"] * p.grad.array
            p._version.value += 1     # as PyTorch's in-place update bumps the version

A state dict is PyTorch's layout: {"state": {index: {key: value}}, "param_groups": [{options...,
"params": [index, ...]}]}, parameters numbered from 0 across the groups in order. Tensors in it
are tinygrad_tx Tensors sharing the optimizer's memory (save or copy them before stepping again);
everything else is plain Python (numbers, tuples), ready for JSON.
"""
import functools
from collections import defaultdict

from ..autograd import enable_grad
from ..tensor import Tensor


class _Required:
    """Marks a hyperparameter with no default: every parameter group must give it."""

    def __repr__(self):
        return "<required parameter>"


required = _Required()


class Optimizer:
    def __init_subclass__(cls, **kwargs):
        """Every optimizer's step() records that it ran: a learning-rate schedule stepped before its optimizer
        ever was skips its first value, and warns (as PyTorch's)."""
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:
            cls.step = _recording_step(cls.__dict__["step"])

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = defaultdict(dict)  # parameter -> its state (momentum buffers, moments, step)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got a Tensor of shape {tuple(params.shape)}; pass [tensor]")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a group of parameters with its own options (the optimizer's defaults fill the rest)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"add_param_group: expected a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError("add_param_group: the group has no 'params' entry")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering of "
                            "a set changes between runs; use a list")
        group["params"] = params = list(params)
        for position, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"add_param_group: parameter {position} of the group is a {type(p).__name__}, "
                                "not a Tensor")
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor (parameter {position} of the group, shape "
                                 f"{tuple(p.shape)}, made by {p.grad_fn.name})")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("add_param_group: a parameter appears twice in the group")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            group.setdefault(name, default)
        seen = {id(p) for other in self.param_groups for p in other["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Drop every gradient (set_to_none, the default: the next backward writes a fresh one) or zero it."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad = p.grad.new_zeros(p.grad.shape)  # a new array: grads may be read-only broadcasts

    def step(self, closure=None):
        raise NotImplementedError(f"{type(self).__name__} does not define step()")

    def _closure_loss(self, closure):
        """Re-evaluate the model (with the graph on, even though step runs under no_grad) when asked."""
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # --- saving and loading -----------------------------------------------------------------------------
    def state_dict(self):
        """PyTorch's layout, parameters replaced by their position (see the module docstring)."""
        index_of, groups = {}, []
        for group in self.param_groups:
            indices = []
            for p in group["params"]:
                indices.append(index_of.setdefault(id(p), len(index_of)))
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": indices})
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if self.state.get(p):
                    state[index_of[id(p)]] = dict(self.state[p])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore options and state saved by state_dict(), onto this optimizer's own parameters.

        The saved groups must match this optimizer's: same count, same sizes, and every saved state
        tensor the shape of its parameter. State tensors are copied onto each parameter's device (and
        floating ones cast to its dtype), so the loaded optimizer never shares memory with the dict.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups', got "
                             f"{sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state dict has {len(saved_groups)} parameter groups, "
                             f"the optimizer has {len(self.param_groups)}")
        params_by_index = {}
        for number, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: parameter group {number} has {len(saved['params'])} "
                                 f"parameters in the state dict, {len(group['params'])} in the optimizer")
            for index, p in zip(saved["params"], group["params"]):
                params_by_index[int(index)] = (p, number)
        new_state = defaultdict(dict)
        for index, entry in state_dict["state"].items():
            if int(index) not in params_by_index:
                raise ValueError(f"{name}.load_state_dict: the state dict has state for parameter {index}, which "
                                 f"no parameter group lists (indices {sorted(params_by_index)})")
            p, number = params_by_index[int(index)]
            new_state[p] = {key: self._loaded_value(key, value, p, f"parameter {index} (group {number})")
                            for key, value in entry.items()}
        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            options = {k: (tuple(v) if isinstance(group.get(k), tuple) and isinstance(v, list) else v)
                       for k, v in saved.items() if k != "params"}  # JSON turns tuples (betas) into lists
            new_groups.append({**group, **options, "params": group["params"]})
        self.state, self.param_groups = new_state, new_groups

    def _loaded_value(self, key, value, p, where):
        if key == "step":  # kept as a Python int here; PyTorch's is a 0-d tensor
            return int(value.item() if isinstance(value, Tensor) else value)
        if isinstance(value, Tensor):
            if tuple(value.shape) != tuple(p.shape):
                raise ValueError(f"{type(self).__name__}.load_state_dict: state '{key}' of {where} has shape "
                                 f"{tuple(value.shape)}, the parameter has shape {tuple(p.shape)}")
            value = value.detach().to(p.device)
            if value.dtype.is_floating and value.dtype is not p.dtype:
                value = value.to(p.dtype)
            return Tensor._make(value.backend.copy(value.array), value.device)
        return value

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for number, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {number}")
            lines.extend(f"    {key}: {value}" for key, value in sorted(group.items()) if key != "params")
        return "\n".join(lines) + "\n)"


def _recording_step(step):
    @functools.wraps(step)
    def recorded_step(self, *args, **kwargs):
        self._has_stepped = True
        return step(self, *args, **kwargs)
    return recorded_step
