"""nn.init against torch.nn.init. Random draws cannot equal PyTorch's, so the tests check the arithmetic (fans,
gains, bounds) exactly against PyTorch's own helpers, and the drawn values by their statistics: bounds, mean, std,
orthogonality."""
import math
import warnings

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from conftest import to_numpy
from tinygrad_tx import nn

NONLINEARITIES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                  "sigmoid", "tanh", "relu", "leaky_relu", "selu"]


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_calculate_gain_is_torchs(nonlinearity):
    assert nn.init.calculate_gain(nonlinearity) == torch.nn.init.calculate_gain(nonlinearity)


@pytest.mark.parametrize("param", [None, 0, 0.2, 1, 3, -0.5])
def test_leaky_relu_gain_takes_the_slope(param):
    assert nn.init.calculate_gain("leaky_relu", param) == torch.nn.init.calculate_gain("leaky_relu", param)


@pytest.mark.parametrize("nonlinearity, param", [("leaky_relu", True), ("leaky_relu", "0.1"), ("softmax", None),
                                                 ("gelu", None)])
def test_calculate_gain_errors(nonlinearity, param):
    with pytest.raises(ValueError):
        torch.nn.init.calculate_gain(nonlinearity, param)
    with pytest.raises(ValueError, match="negative_slope|unsupported nonlinearity"):
        nn.init.calculate_gain(nonlinearity, param)


SHAPES = [(3, 4), (7, 2), (5, 3, 2), (6, 2, 3, 4), (4, 3, 1, 1, 5), (0, 3), (2, 0, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_fans_are_torchs(shape):
    ours = nn.init._calculate_fan_in_and_fan_out(tg.empty(*shape))
    assert ours == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
    for mode in ("fan_in", "fan_out", "FAN_OUT"):
        assert nn.init._calculate_correct_fan(tg.empty(*shape), mode) == \
            torch.nn.init._calculate_correct_fan(torch.empty(*shape), mode)


def test_fan_errors():
    for shape in [(5,), ()]:
        with pytest.raises(ValueError, match="at least 2 dimensions"):
            nn.init._calculate_fan_in_and_fan_out(tg.empty(*shape))
    with pytest.raises(ValueError, match="Mode fan_both not supported"):
        nn.init.kaiming_uniform_(tg.empty(3, 3), mode="fan_both")


def kaiming_std(shape, a, mode, nonlinearity):
    """PyTorch's own arithmetic, from its own helpers: the oracle for ours."""
    fan = torch.nn.init._calculate_correct_fan(torch.empty(*shape), mode)
    return torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)


KAIMING = [((400, 300), 0, "fan_in", "leaky_relu"), ((400, 300), math.sqrt(5), "fan_in", "leaky_relu"),
           ((200, 600), 0, "fan_out", "relu"), ((64, 32, 3, 3), 0.1, "fan_in", "leaky_relu"),
           ((64, 32, 3, 3), 0, "fan_out", "tanh"), ((300, 500), 0, "fan_in", "selu"),
           ((300, 500), 0, "fan_in", "linear")]


@pytest.mark.parametrize("shape, a, mode, nonlinearity", KAIMING, ids=str)
def test_kaiming_uniform_bound_and_std(shape, a, mode, nonlinearity):
    tensor = nn.Parameter(tg.empty(*shape, dtype=tg.float64))
    assert nn.init.kaiming_uniform_(tensor, a=a, mode=mode, nonlinearity=nonlinearity) is tensor
    values = to_numpy(tensor)
    bound = math.sqrt(3.0) * kaiming_std(shape, a, mode, nonlinearity)
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.999 * bound
    assert abs(values.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert abs(values.mean()) < 0.02 * bound
    assert tensor.requires_grad and tensor.grad_fn is None


@pytest.mark.parametrize("shape, a, mode, nonlinearity", KAIMING, ids=str)
def test_kaiming_normal_std(shape, a, mode, nonlinearity):
    tensor = tg.empty(*shape, dtype=tg.float64)
    nn.init.kaiming_normal_(tensor, a, mode, nonlinearity)
    values = to_numpy(tensor)
    std = kaiming_std(shape, a, mode, nonlinearity)
    assert abs(values.std() - std) < 0.02 * std and abs(values.mean()) < 0.02 * std


def test_kaiming_on_an_empty_tensor_warns_and_does_nothing():
    for initializer in (nn.init.kaiming_uniform_, nn.init.kaiming_normal_):
        with pytest.warns(UserWarning, match="zero-element"):
            assert initializer(tg.empty(0, 3)).shape == (0, 3)


def truncated_normal_moments(mean, std, a, b):
    """Mean and std of N(mean, std^2) restricted to [a, b], from the closed form."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: (1 + math.erf(x / math.sqrt(2))) / 2  # noqa: E731
    mass = cdf(beta) - cdf(alpha)
    shift = (pdf(alpha) - pdf(beta)) / mass
    variance = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / mass - shift ** 2
    return mean + std * shift, std * math.sqrt(variance)


TRUNCATED = [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04), (0.5, 2.0, -1.0, 4.0),  # most of the mass: normal draws
             (0.0, 1.0, 2.0, 3.0), (1.0, 0.5, -1.0, 0.0), (0.0, 1.0, -0.1, 0.1)]  # a narrow window: uniform proposals


@pytest.mark.parametrize("mean, std, a, b", TRUNCATED, ids=str)
@pytest.mark.parametrize("dtype", [tg.float64, tg.float32])
def test_trunc_normal_bounds_and_moments(mean, std, a, b, dtype):
    tensor = nn.Parameter(tg.empty(400, 500, dtype=dtype))
    assert nn.init.trunc_normal_(tensor, mean, std, a, b) is tensor
    values = to_numpy(tensor).astype(np.float64)
    assert values.min() >= a and values.max() <= b
    expected_mean, expected_std = truncated_normal_moments(mean, std, a, b)
    tolerance = 5 * expected_std / math.sqrt(values.size)
    assert abs(values.mean() - expected_mean) < tolerance
    assert abs(values.std() - expected_std) < 0.01 * expected_std
    assert tensor.requires_grad and tensor.grad_fn is None


def test_trunc_normal_warns_when_the_mean_is_far_from_the_window():
    for module, empty in ((torch.nn.init, torch.empty), (nn.init, tg.empty)):
        with pytest.warns(UserWarning, match="mean is more than 2 std from"):
            module.trunc_normal_(empty(10), mean=5.0, std=1.0, a=-1.0, b=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.init.trunc_normal_(tg.empty(10), mean=2.5, std=1.0, a=-1.0, b=1.0)


@pytest.mark.parametrize("shape", [(30, 50), (50, 30), (40, 40), (20, 3, 4), (8, 4, 3, 3)], ids=str)
@pytest.mark.parametrize("gain", [1, 2.5])
def test_orthogonal_rows_or_columns_are_orthonormal(shape, gain):
    tensor = nn.Parameter(tg.empty(*shape, dtype=tg.float64))
    assert nn.init.orthogonal_(tensor, gain=gain) is tensor
    matrix = to_numpy(tensor).reshape(shape[0], -1) / gain
    gram = matrix @ matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix.T @ matrix
    np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=1e-12)
    assert tensor.requires_grad and tensor.grad_fn is None


def test_orthogonal_is_uniform_not_biased_by_the_factorization():
    """Without the sign fix, Q's diagonal would lean one way (QR makes R's diagonal positive)."""
    diagonals = []
    for _ in range(200):
        diagonals.append(np.diag(to_numpy(nn.init.orthogonal_(tg.empty(4, 4, dtype=tg.float64)))))
    assert abs(np.mean(diagonals)) < 0.1


def test_orthogonal_in_float32_and_float16_and_errors():
    for dtype, atol in ((tg.float32, 1e-5), (tg.float16, 5e-3)):
        tensor = nn.init.orthogonal_(tg.empty(16, 16, dtype=dtype))
        matrix = to_numpy(tensor).astype(np.float64)
        assert tensor.dtype is dtype
        np.testing.assert_allclose(matrix @ matrix.T, np.eye(16), atol=atol)
    with pytest.raises(ValueError, match="2 or more dimensions"):
        nn.init.orthogonal_(tg.empty(5))
    assert nn.init.orthogonal_(tg.empty(0, 4)).shape == (0, 4)


def test_eye_is_torchs():
    for shape in [(3, 3), (2, 5), (5, 2)]:
        np.testing.assert_array_equal(to_numpy(nn.init.eye_(tg.randn(*shape))),
                                      torch.nn.init.eye_(torch.empty(*shape)).numpy())
    with pytest.raises(ValueError, match="2 dimensions"):
        nn.init.eye_(tg.empty(2, 2, 2))


@pytest.mark.parametrize("draw", [
    lambda t, g: nn.init.normal_(t, 1.0, 2.0, generator=g), lambda t, g: nn.init.uniform_(t, -1.0, 1.0, generator=g),
    lambda t, g: nn.init.xavier_uniform_(t, generator=g), lambda t, g: nn.init.xavier_normal_(t, generator=g),
    lambda t, g: nn.init.kaiming_uniform_(t, generator=g), lambda t, g: nn.init.kaiming_normal_(t, generator=g),
    lambda t, g: nn.init.trunc_normal_(t, generator=g), lambda t, g: nn.init.trunc_normal_(t, a=0.0, b=0.1, generator=g),
    lambda t, g: nn.init.orthogonal_(t, generator=g)])
def test_a_generator_repeats_the_draws(draw):
    generator = tg.Generator().manual_seed(5)
    first = to_numpy(draw(tg.empty(6, 7), generator)).copy()
    generator.manual_seed(5)
    np.testing.assert_array_equal(to_numpy(draw(tg.empty(6, 7), generator)), first)
    assert not np.array_equal(to_numpy(draw(tg.empty(6, 7), generator)), first)


def test_random_initializers_refuse_integer_tensors_as_torch():
    for initializer in (nn.init.normal_, nn.init.uniform_, nn.init.xavier_uniform_, nn.init.kaiming_normal_,
                        nn.init.trunc_normal_, nn.init.orthogonal_):
        with pytest.raises(RuntimeError):
            getattr(torch.nn.init, initializer.__name__)(torch.zeros(3, 3, dtype=torch.int64))
        with pytest.raises(RuntimeError, match="floating-point tensor, got tinygrad_tx.int64"):
            initializer(tg.zeros(3, 3, dtype=tg.int64))
