"""Generator: a random stream of its own, as torch.Generator, for code that must not share the global one.

Samplers and random_split take `generator=`: with one, their draws depend only on its seed; without
one, they draw from the global CPU generator, so tinygrad_tx.manual_seed makes them repeat.
The permutations differ from PyTorch's (the bits come from NumPy's PCG64, not from a Mersenne
Twister): the same seed gives the same order here, not the order PyTorch would give.
"""
import secrets

import numpy as np

from .backend import get_backend

DEFAULT_SEED = 67280421310721  # what a fresh torch.Generator reports as its initial_seed()


class Generator:
    def __init__(self, device="cpu"):
        if str(device) != "cpu":
            raise ValueError(f"Generator: only device 'cpu' is supported, got {device!r}")
        self.device = "cpu"
        self.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed):
        """Restart the stream from `seed`; returns the generator, so Generator().manual_seed(0) reads as torch."""
        seed = int(seed)
        if seed < 0:  # PyTorch reinterprets a negative seed as its unsigned 64-bit pattern
            seed += 2 ** 64
        self._initial_seed = seed
        self._numpy = np.random.default_rng(seed)
        return self

    def seed(self):
        """Seed from the operating system's entropy and return that seed."""
        seed = secrets.randbits(63)
        self.manual_seed(seed)
        return seed

    def initial_seed(self):
        return self._initial_seed

    def get_state(self):
        """The stream's position, as a dict that set_state takes back (PyTorch returns a byte tensor)."""
        return {"initial_seed": self._initial_seed, "bit_generator": self._numpy.bit_generator.state}

    def set_state(self, state):
        self._initial_seed = state["initial_seed"]
        self._numpy.bit_generator.state = state["bit_generator"]
        return self

    def __repr__(self):
        return f"tinygrad_tx.Generator(initial_seed={self._initial_seed})"


def _numpy_generator(generator):
    """The NumPy generator behind `generator`, or the global CPU one (which manual_seed reseeds)."""
    return get_backend("cpu").generator if generator is None else generator._numpy


def randperm(n, generator=None):
    """A random order of range(n), as a list of Python ints."""
    return _numpy_generator(generator).permutation(n).tolist()


def randint_list(high, size, generator=None):
    """`size` integers drawn uniformly from [0, high), as a list of Python ints."""
    return _numpy_generator(generator).integers(0, high, size=size).tolist()


def random_seed(generator=None):
    """A non-negative 63-bit integer to seed something else with (a sampler's epoch, a worker)."""
    return int(_numpy_generator(generator).integers(0, 2 ** 63 - 1))


def weighted_choice(weights, num_samples, replacement, generator=None):
    """`num_samples` indices into `weights`, each drawn with probability proportional to its weight."""
    weights = np.asarray(weights, dtype=np.float64)
    return _numpy_generator(generator).choice(len(weights), size=num_samples, replace=replacement,
                                              p=weights / weights.sum()).tolist()
