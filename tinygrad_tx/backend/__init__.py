"""Device names -> array backends. A backend is created the first time its device is used."""
from .array_backend import ArrayBackend

_backends = {}


def normalize_device(device):
    """'cpu', 'cuda', 'cuda:1' -> canonical device string."""
    device = str(device) if device is not None else "cpu"
    if device == "cuda":
        return "cuda:0"
    if device == "cpu" or (device.startswith("cuda:") and device[5:].isdigit()):
        return device
    raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")


def get_backend(device):
    backend = _backends.get(device)  # the hot path: a device string seen before
    if backend is not None:
        return backend
    device = normalize_device(device)
    if device not in _backends:
        if device == "cpu":
            from .numpy_backend import NumpyBackend
            _backends[device] = NumpyBackend()
        else:
            _backends[device] = _cuda_backend(int(device[5:]))
    return _backends[device]


def _cuda_backend(index):
    try:
        from .cupy_backend import CupyBackend
    except ImportError as error:
        raise RuntimeError(
            "device 'cuda' needs CuPy, which is not installed: "
            'pip install "tinygrad_tx[cuda]" (or "tinygrad_tx[cuda12]" for CUDA 12)') from error
    return CupyBackend(index)


def loaded_backends():
    return list(_backends.values())


__all__ = ["ArrayBackend", "get_backend", "normalize_device", "loaded_backends"]
