"""Module: a tree of layers that owns parameters, buffers and submodules, as torch.nn.Module."""
from collections import OrderedDict

from ..autograd import no_grad
from ..autograd.function import module_scope
from ..backend.devices import cuda_device
from ..tensor import Tensor, to_arguments
from .parameter import Parameter


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # --- registration: assigning a Parameter or Module attribute registers it ---------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if name in self._parameters and value is not None and not isinstance(value, Parameter):
            raise TypeError(f"cannot assign {type(value).__name__} as parameter '{name}' of "
                            f"{type(self).__name__} (Parameter or None expected); wrap it in Parameter(...) "
                            "or copy the values in with .data or copy_()")
        if name in self._buffers and (value is None or (isinstance(value, Tensor) and
                                                         not isinstance(value, Parameter))):
            self._buffers[name] = value  # a new value for a registered buffer stays a buffer, as in PyTorch
            return
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            members = self.__dict__.get(registry)
            if members is not None and name in members:
                return members[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that belongs to the module's state but is not learned (e.g. a causal mask)."""
        self._buffers[name] = tensor
        if not persistent:
            self.__dict__.setdefault("_non_persistent", set()).add(name)
        else:
            self.__dict__.get("_non_persistent", set()).discard(name)

    def register_parameter(self, name, parameter):
        self.__setattr__(name, parameter) if parameter is not None else self._parameters.pop(name, None)

    def add_module(self, name, module):
        self._modules[name] = module

    # --- running ----------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        with module_scope(self):
            return self.forward(*args, **kwargs)

    # --- walking the tree ---------------------------------------------------------------------------
    def named_modules(self, prefix=""):
        """(path, module) for this module and every descendant, each module once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            path, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield path, module
            children = [(f"{path}.{name}" if path else name, child) for name, child in module._modules.items()
                        if child is not None]
            stack.extend(reversed(children))

    def modules(self):
        return (module for _, module in self.named_modules())

    def named_children(self):
        return ((name, module) for name, module in self._modules.items() if module is not None)

    def children(self):
        return (module for _, module in self.named_children())

    def named_parameters(self, prefix="", recurse=True):
        """(path, parameter) pairs; a parameter shared by two modules (tied weights) appears once."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for path, module in modules:
            for name, parameter in module._parameters.items():
                if parameter is None or id(parameter) in seen:
                    continue
                seen.add(id(parameter))
                yield (f"{path}.{name}" if path else name), parameter

    def parameters(self, recurse=True):
        return (parameter for _, parameter in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix=""):
        for path, module in self.named_modules(prefix):
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{path}.{name}" if path else name), buffer

    def buffers(self):
        return (buffer for _, buffer in self.named_buffers())

    def apply(self, fn):
        """Call fn on every submodule (children first) and on self, as torch.nn.Module.apply."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # --- modes and gradients ---------------------------------------------------------------------------
    def train(self, mode=True):
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for parameter in self.parameters():
            if set_to_none:
                parameter.grad = None
            elif parameter.grad is not None:
                parameter.grad = parameter.grad.new_zeros(parameter.shape)

    def requires_grad_(self, requires_grad=True):
        for parameter in self.parameters():
            parameter.requires_grad_(requires_grad)
        return self

    # --- moving ---------------------------------------------------------------------------------------------
    @no_grad()
    def to(self, *args, **kwargs):
        """Move every parameter and buffer to a device and/or floating dtype, in place: to(device), to(dtype),
        to(device, dtype), to(tensor), as Tensor.to."""
        device, dtype, _, _ = to_arguments(args, kwargs)
        for module in self.modules():
            for parameter in module._parameters.values():
                if parameter is not None:
                    parameter.data = _moved(parameter, device, dtype)
                    if parameter.grad is not None:  # as PyTorch: a gradient follows its parameter
                        parameter.grad = _moved(parameter.grad, device, dtype)
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    module._buffers[name] = _moved(buffer, device, dtype)
        return self

    def cuda(self, device=None):
        return self.to(cuda_device(device))

    def cpu(self):
        return self.to("cpu")

    def float(self):
        return self.to("float32")

    def double(self):
        return self.to("float64")

    def half(self):
        return self.to("float16")

    def bfloat16(self):
        return self.to("bfloat16")

    # --- saving and loading -----------------------------------------------------------------------------------
    def state_dict(self):
        """Every parameter and persistent buffer by its dotted path (tied weights appear under each name)."""
        state = OrderedDict()
        for path, module in self.named_modules():
            skip = module.__dict__.get("_non_persistent", set())
            for registry in (module._parameters, module._buffers):
                for name, tensor in registry.items():
                    if tensor is not None and name not in skip:
                        state[f"{path}.{name}" if path else name] = tensor.detach()
        return state

    @no_grad()
    def load_state_dict(self, state_dict, strict=True):
        """Copy values in by name. Mis-shaped keys always fail; with strict, so do missing and unexpected keys."""
        own = self.state_dict()
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        mismatched = [f"{key}: checkpoint {tuple(state_dict[key].shape)} vs model {tuple(own[key].shape)}"
                      for key in own if key in state_dict and tuple(state_dict[key].shape) != tuple(own[key].shape)]
        problems = []
        if mismatched:
            problems.append("size mismatch for " + "; ".join(mismatched))
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise RuntimeError(f"load_state_dict for {type(self).__name__}: " + ". ".join(problems))
        for key, target in own.items():
            if key in state_dict:
                value = state_dict[key]
                value = value if isinstance(value, Tensor) else Tensor(value)
                target[...] = value.to(target.device).to(target.dtype)
        return _IncompatibleKeys(missing, unexpected)

    # --- printing -----------------------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        """PyTorch's layout: a module without children and with a one-line extra_repr fits on one line; otherwise
        each line of extra_repr (ParameterList's entries) and each child gets its own line, indented."""
        extra_lines = self.extra_repr().split("\n") if self.extra_repr() else []
        child_lines = [f"({name}): " + repr(module).replace("\n", "\n  ") for name, module in self.named_children()]
        if not child_lines and len(extra_lines) <= 1:
            return f"{type(self).__name__}({''.join(extra_lines)})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(extra_lines + child_lines) + "\n)"


class _IncompatibleKeys:
    def __init__(self, missing_keys, unexpected_keys):
        self.missing_keys, self.unexpected_keys = missing_keys, unexpected_keys

    def __repr__(self):
        return f"<IncompatibleKeys missing_keys={self.missing_keys} unexpected_keys={self.unexpected_keys}>"


def _moved(tensor, device, dtype):
    """tensor.to(device, dtype), but integer tensors keep their dtype (as in PyTorch's Module.to)."""
    return tensor.to(device=device, dtype=dtype if tensor.dtype.is_floating else None)
