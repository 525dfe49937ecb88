"""PhiloxGenerator: the GPU's random numbers, from Philox4x32-10 words (kernels/random.cu) turned into floats
and integers by array code.

Every value is a pure function of (seed, index of its words), never of the GPU's size or how the kernel was
launched: a seed gives the same numbers on every GPU model, and the generator's state is two integers, saved
and restored with a checkpoint. One generator per device, made once (PyTorch's CUDA generator works the same
way, with a seed and an offset).
"""
import math

import numpy as np


def uniform_from_words(words):
    """float32 uniforms in [0, 1) from uint32 words: the top 24 bits, exactly representable. The attention kernel's
    dropout makes its uniforms the same way (attention.cu, dropout_scale)."""
    return (words >> 8).astype(np.float32) * np.float32(2.0 ** -24)


class PhiloxGenerator:
    def __init__(self, xp, philox_words, seed=0):
        """xp: the array module (cupy); philox_words(n, seed, first_block) -> n uint32 words."""
        self.xp, self.philox_words = xp, philox_words
        self.seed(seed)

    def seed(self, seed):
        self.seed_value, self.offset = int(seed) % 2 ** 64, 0  # offset: blocks of four words used so far

    def get_state(self):
        return {"seed": self.seed_value, "offset": self.offset}

    def set_state(self, state):
        if not isinstance(state, dict) or set(state) != {"seed", "offset"}:
            raise ValueError(f"set_rng_state on a CUDA device: expected {{'seed': int, 'offset': int}}, got {state!r}")
        self.seed_value, self.offset = int(state["seed"]), int(state["offset"])

    def reserve(self, n):
        """(seed, first block) of n fresh words, skipped over as a draw would use them, for a kernel to make."""
        position = (self.seed_value, self.offset)
        self.offset += -(-n // 4)
        return position

    def _words(self, n):
        """n fresh words; the next draw starts at the next block of four."""
        return self.philox_words(n, *self.reserve(n))

    def _unit(self, n, dtype):
        """n uniform values in [0, 1): 24 random bits each for float32, 53 for float64 (two words)."""
        if np.dtype(dtype).itemsize <= 4:
            return uniform_from_words(self._words(n))
        words = self._words(2 * n).reshape(n, 2).astype(np.uint64)
        return ((words[:, 0] >> 5) * 2.0 ** 26 + (words[:, 1] >> 6)).astype(np.float64) * 2.0 ** -53

    def rand(self, shape, dtype):
        n = math.prod(shape)
        work = np.float64 if np.dtype(dtype).itemsize > 4 else np.float32
        return self._unit(n, work).reshape(shape).astype(dtype, copy=False)

    def randn(self, shape, dtype):
        """Box-Muller on pairs of uniforms: r = sqrt(-2 log(1 - u1)), (r cos 2 pi u2, r sin 2 pi u2)."""
        xp = self.xp
        n = math.prod(shape)
        work = np.float64 if np.dtype(dtype).itemsize > 4 else np.float32
        pairs = -(-n // 2)
        uniform = self._unit(2 * pairs, work).reshape(pairs, 2)
        radius = xp.sqrt(-2 * xp.log1p(-uniform[:, 0]))  # 1 - u1 is in (0, 1]: the log is finite
        angle = (2 * math.pi) * uniform[:, 1]
        normal = xp.stack([radius * xp.cos(angle), radius * xp.sin(angle)], axis=1).reshape(-1)[:n]
        return normal.astype(work, copy=False).reshape(shape).astype(dtype, copy=False)

    def randint(self, low, high, shape, dtype):
        """low + v mod (high - low), v a 64-bit word pair: the bias is below 2**-32 for any range under 2**32."""
        n = math.prod(shape)
        span = int(high) - int(low)
        if span <= 0:
            raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
        words = self._words(2 * n).reshape(n, 2).astype(np.uint64)
        values = (words[:, 0] | (words[:, 1] << np.uint64(32))) % np.uint64(span)
        return (values.astype(np.int64) + int(low)).reshape(shape).astype(dtype, copy=False)
