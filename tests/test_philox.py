"""The GPU's random generator (backend/philox.py), run here on NumPy with reference Philox words."""
import numpy as np
import pytest
from philox_reference import philox_words
from tinygrad_tx.backend.philox import PhiloxGenerator


def generator(seed=0):
    return PhiloxGenerator(np, philox_words, seed)


def test_a_saved_state_repeats_the_draws():
    g = generator(5)
    g.randn((10,), np.float32)
    state = g.get_state()
    first = [g.randn((3, 7), np.float32), g.rand((11,), np.float64), g.randint(-3, 9, (13,), np.int64)]
    g.set_state(state)
    again = [g.randn((3, 7), np.float32), g.rand((11,), np.float64), g.randint(-3, 9, (13,), np.int64)]
    for a, b in zip(first, again):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert generator(5).get_state() == {"seed": 5, "offset": 0}
    assert not np.array_equal(generator(6).rand((8,), np.float32), generator(5).rand((8,), np.float32))


def assert_counts_as_expected(counts, probabilities):
    """Each bin within 5 standard deviations of its binomial expectation."""
    n = counts.sum()
    expected = n * np.asarray(probabilities)
    assert (np.abs(counts - expected) < 5 * np.sqrt(expected * (1 - np.asarray(probabilities)))).all(), counts


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_distributions(dtype):
    g = generator(1)
    uniform = g.rand((200_000,), dtype)
    assert uniform.dtype == dtype and 0 <= uniform.min() and uniform.max() < 1
    assert_counts_as_expected(np.histogram(uniform, bins=20, range=(0, 1))[0], [1 / 20] * 20)
    normal = g.randn((200_001,), dtype)  # odd: half a Box-Muller pair is dropped
    assert normal.dtype == dtype and np.isfinite(normal).all()
    edges = np.array([-np.inf, -2, -1, 0, 1, 2, np.inf])
    cdf = np.array([0, 0.0227501, 0.1586553, 0.5, 0.8413447, 0.9772499, 1])
    assert_counts_as_expected(np.histogram(normal, bins=edges)[0], np.diff(cdf))
    integers = g.randint(-5, 5, (100_000,), np.int64)
    assert integers.min() == -5 and integers.max() == 4
    assert_counts_as_expected(np.bincount(integers + 5), [1 / 10] * 10)


def test_draws_never_overlap():
    # each draw starts at a fresh block of four words: the second draw's words follow the first's
    g = generator(3)
    g.rand((5,), np.float32)
    assert g.get_state()["offset"] == 2
    assert np.array_equal(g._words(4), philox_words(4, 3, 2))


def test_bad_state_and_range_are_errors():
    with pytest.raises(ValueError, match="expected {'seed': int, 'offset': int}"):
        generator().set_state({"seed": 1, "draws": 2})
    with pytest.raises(ValueError, match="randint: high"):
        generator().randint(3, 3, (2,), np.int64)
