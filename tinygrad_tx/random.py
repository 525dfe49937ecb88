"""Seeding. Each device has its own generator; manual_seed seeds them all, so runs repeat exactly."""
from .backend import get_backend, loaded_backends

_seed = {"value": 0}
_device_type_seeds = {}  # 'cuda' -> the seed tinygrad_tx.cuda.manual_seed gave, for CUDA devices first used later


def manual_seed(seed):
    """Seed the generator of every device, including ones first used later."""
    _seed["value"] = int(seed)
    _device_type_seeds.clear()
    for backend in loaded_backends():
        backend.seed(int(seed))


def manual_seed_device_type(device_type, seed):
    """Seed every device of one type ('cuda'), including ones first used later (tinygrad_tx.cuda.manual_seed)."""
    _device_type_seeds[device_type] = int(seed)
    for backend in loaded_backends():
        if backend.device.split(":")[0] == device_type:
            backend.seed(int(seed))


def initial_seed(device_type=None):
    """The seed a device of this type starts from: the last manual_seed, or cuda.manual_seed for 'cuda'."""
    return _device_type_seeds.get(device_type, _seed["value"])


def get_rng_state(device="cpu"):
    """The generator state as a JSON-serializable dict (checkpoints store it)."""
    return get_backend(device).get_rng_state()


def set_rng_state(state, device="cpu"):
    get_backend(device).set_rng_state(state)
