"""Seeding. Each device has its own generator; manual_seed seeds them all, so runs repeat exactly."""
from .backend import get_backend, loaded_backends

_seed = {"value": 0}


def manual_seed(seed):
    """Seed the generator of every device, including ones first used later."""
    _seed["value"] = int(seed)
    for backend in loaded_backends():
        backend.seed(int(seed))


def initial_seed():
    return _seed["value"]


def get_rng_state(device="cpu"):
    """The generator state as a JSON-serializable dict (checkpoints store it)."""
    return get_backend(device).get_rng_state()


def set_rng_state(state, device="cpu"):
    get_backend(device).set_rng_state(state)
