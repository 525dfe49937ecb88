"""Parameter: a leaf tensor that a Module registers as learnable."""
from ..tensor import Tensor


class Parameter(Tensor):
    def __init__(self, data, requires_grad=True):
        data = data.detach() if isinstance(data, Tensor) else Tensor(data)
        self._init(data.array, data.device, data.backend)
        self._version = data._version
        self.requires_grad_(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        """As PyTorch: a Parameter of copied values with the same requires_grad, without .grad."""
        copied = memo[id(self)] = type(self)(self.detach().clone(), self.requires_grad)
        return copied
