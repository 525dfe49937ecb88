"""Device names -> array backends. A backend is created the first time its device is used."""
from .array_backend import ArrayBackend
from .devices import cuda_device_count, device, normalize_device

_backends = {}


def get_backend(device):
    backend = _backends.get(device)  # the hot path: a device string seen before
    if backend is not None:
        return backend
    device = normalize_device(device)
    if device not in _backends:
        if device.type == "cpu":
            from .numpy_backend import NumpyBackend
            _backends[device] = NumpyBackend()
        else:
            _backends[device] = _cuda_backend(device.index)
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


__all__ = ["ArrayBackend", "device", "get_backend", "normalize_device", "cuda_device_count", "loaded_backends"]
