"""In-place initializers, as torch.nn.init. They run without recording the graph.

Random initializers draw from the tensor's device generator (manual_seed repeats them), or from `generator=`
when one is given (drawn on the CPU, then copied to the tensor's device). The numbers differ from PyTorch's;
the distributions, the fans and the gains are PyTorch's.
"""
import math
import warnings

from .. import creation
from ..autograd import no_grad
from ..tensor import Tensor, where

_LINEAR_NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                          "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity, param=None):
    """The factor that keeps activations' variance steady through a layer followed by `nonlinearity`:
    1 for linear ones and sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu
    (slope `param`, 0.01 by default), 3/4 for selu."""
    if nonlinearity in _LINEAR_NONLINEARITIES:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            negative_slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param} is not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4  # found empirically by PyTorch; keeps SELU networks' gradients steady
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight shaped (out, in, *kernel): in * kernel size and out * kernel size."""
    if tensor.ndim < 2:
        raise ValueError("fan in and fan out need a tensor with at least 2 dimensions, got shape "
                         f"{tuple(tensor.shape)}")
    receptive = 1
    for n in tensor.shape[2:]:
        receptive *= n
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


# --- drawing ---------------------------------------------------------------------------------------------------
def _check_floating(tensor):
    if not tensor.dtype.is_floating:  # PyTorch's random kernels have no integer versions either
        raise RuntimeError(f"nn.init: random initialization needs a floating-point tensor, got {tensor.dtype} of "
                           f"shape {tuple(tensor.shape)}")


def _normal(like, mean, std, generator):
    """A new tensor of like's shape, dtype and device, N(mean, std^2)."""
    _check_floating(like)
    if generator is None:
        return creation.empty(*like.shape, dtype=like.dtype, device=like.device).normal_(mean, std)
    values = generator._numpy.standard_normal(tuple(like.shape)) * std + mean
    return Tensor(values, dtype=like.dtype).to(like.device)


def _uniform(like, low, high, generator):
    _check_floating(like)
    if generator is None:
        return creation.empty(*like.shape, dtype=like.dtype, device=like.device).uniform_(low, high)
    values = generator._numpy.random(tuple(like.shape)) * (high - low) + low
    return Tensor(values, dtype=like.dtype).to(like.device)


@no_grad()
def normal_(tensor, mean=0.0, std=1.0, generator=None):
    _check_floating(tensor)
    if generator is None:
        return tensor.normal_(mean, std)
    return tensor.copy_(_normal(tensor, mean, std, generator))


@no_grad()
def uniform_(tensor, a=0.0, b=1.0, generator=None):
    _check_floating(tensor)
    if generator is None:
        return tensor.uniform_(a, b)
    return tensor.copy_(_uniform(tensor, a, b, generator))


@no_grad()
def zeros_(tensor):
    return tensor.zero_()


@no_grad()
def ones_(tensor):
    return tensor.fill_(1.0)


@no_grad()
def constant_(tensor, val):
    return tensor.fill_(val)


@no_grad()
def eye_(tensor):
    """The identity matrix (ones on the diagonal of a 2-D tensor, however rectangular)."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only tensors with 2 dimensions are supported, got shape {tuple(tensor.shape)}")
    return tensor.copy_(creation.eye(*tensor.shape, dtype=tensor.dtype, device=tensor.device))


# --- scaled by the fans: Glorot & Bengio (2010), He et al. (2015) -------------------------------------------------
@no_grad()
def xavier_uniform_(tensor, gain=1.0, generator=None):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


@no_grad()
def xavier_normal_(tensor, gain=1.0, generator=None):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    """gain / sqrt(fan), or None for an empty tensor (nothing to fill; PyTorch warns)."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    return calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))


@no_grad()
def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-bound, bound), bound = sqrt(3) * gain / sqrt(fan): the std that keeps activations' (fan_in) or
    gradients' (fan_out) variance through the layer. a: leaky_relu's negative slope."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


@no_grad()
def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std^2), std = gain / sqrt(fan) (see kaiming_uniform_)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    return tensor if std is None else normal_(tensor, 0.0, std, generator)


# --- shaped distributions ---------------------------------------------------------------------------------------
def _normal_cdf(x):
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


@no_grad()
def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """N(mean, std^2) restricted to [a, b] (a and b are values, not numbers of stds), by rejection as PyTorch:
    normal draws redrawn where they fall outside when [a, b] holds more than 30% of the mass, else uniform
    draws on [a, b] kept with probability density / peak density."""
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The distribution of values may "
                      "be incorrect.", stacklevel=3)
    _check_floating(tensor)
    if tensor.numel() == 0:
        return tensor
    mass = _normal_cdf((b - mean) / std) - _normal_cdf((a - mean) / std)
    if mass > 0.3:
        result = _normal(tensor, mean, std, generator)
        outside = (result < a) | (result > b)
        while outside.any():
            result = where(outside, _normal(tensor, mean, std, generator), result)
            outside = (result < a) | (result > b)
        return tensor.copy_(result)
    peak = max(a, min(mean, b))  # where the density is highest on [a, b]
    log_peak = -0.5 * ((peak - mean) / std) ** 2

    def rejected(candidates):  # log U(0, 1) > log(density / peak density)
        return _uniform(tensor, 0.0, 1.0, generator).log() > -0.5 * ((candidates - mean) / std) ** 2 - log_peak

    result = _uniform(tensor, a, b, generator)
    pending = rejected(result)
    while pending.any():
        candidates = _uniform(tensor, a, b, generator)
        result = where(pending, candidates, result)
        pending = pending & rejected(candidates)
    return tensor.copy_(result)


@no_grad()
def orthogonal_(tensor, gain=1, generator=None):
    """A (semi-)orthogonal matrix (Saxe et al., 2013): Q of the QR factorization of a Gaussian matrix, its columns'
    signs fixed by R's diagonal so Q is uniform over orthogonal matrices. Dims after the first are flattened:
    rows = shape[0], columns = the rest; the rows (or the columns, whichever are fewer) are orthonormal."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported, got shape "
                         f"{tuple(tensor.shape)}")
    _check_floating(tensor)
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    columns = tensor.numel() // rows
    # the factorization in at least float32: the backends' QR takes no 16-bit input
    compute_dtype = tensor.dtype if tensor.dtype.itemsize >= 4 else "float32"
    gaussian = _normal(creation.empty(rows, columns, dtype=compute_dtype, device=tensor.device), 0.0, 1.0, generator)
    if rows < columns:
        gaussian = gaussian.t()
    q, r = gaussian.backend.qr(gaussian.contiguous().array)
    diagonal_signs = gaussian.backend.sign(r.diagonal())
    q = Tensor._make(q * diagonal_signs, tensor.device)
    if rows < columns:
        q = q.t()
    return tensor.copy_((q * gain).reshape(tensor.shape).to(tensor.dtype))
