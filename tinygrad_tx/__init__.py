"""tinygrad_tx: a small deep-learning engine with reverse-mode autograd on NumPy and CuPy."""
from . import openblas  # first: it configures OpenBLAS before NumPy loads it
import warnings  # noqa: E402

from . import autograd
from .autograd import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                       set_grad_enabled)
from .backend import device
from .creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, is_tensor, linspace,
                       one_hot, ones, ones_like, rand, rand_like, randint, randint_like, randn, randn_like, randperm,
                       tensor, zeros, zeros_like)
from .dtype import (bfloat16, bool_, finfo, float16, float32, float64, get_default_dtype, iinfo, int32, int64,
                    set_default_dtype)
from .ops.einsum import einsum
from .size import Size
from .random import get_rng_state, initial_seed, manual_seed, set_rng_state
from .determinism import (are_deterministic_algorithms_enabled, is_deterministic_algorithms_warn_only_enabled,
                          use_deterministic_algorithms)
from .generator import Generator
from .tensor import Tensor, cat, stack, where
from . import nn, optim  # noqa: E402  (they build on the names above)
from . import amp, cpu, cuda  # noqa: E402  (cuda imports CuPy only when a function needs it; cpu, Numba)
from .amp import autocast  # noqa: E402
from .cuda import get_float32_matmul_precision, set_float32_matmul_precision  # noqa: E402
from . import backends  # noqa: E402  (torch.backends' switches: TF32, cuDNN, MPS)
from .saving import load, save  # noqa: E402  (save and load store Parameters)
from . import utils  # noqa: E402  (utils.data; utils.tensorboard loads only when imported)

bool = bool_  # PyTorch spells it tinygrad_tx.bool
half, float, double, long, int = float16, float32, float64, int64, int32


def matmul(a, b):
    return a.matmul(b)


def pow(input, exponent):
    """input ** exponent; either may be a number (tinygrad_tx.pow(2, x) is 2 ** x)."""
    return input ** exponent


concat = concatenate = cat


_compile_warned = False


def compile(model=None, **options):
    """torch.compile, without a compiler: returns model (a Module or a function) unchanged, so it runs eagerly,
    op by op, as without compile. Warns once. As a decorator: @compile and @compile(mode=...)."""
    if model is None:
        return lambda model: compile(model, **options)
    global _compile_warned
    if not _compile_warned and not options.get("disable", False):
        _compile_warned = True
        warnings.warn("tinygrad_tx.compile: tinygrad_tx has no compiler; the model is returned unchanged and runs "
                      "eagerly", stacklevel=2)
    return model


def _method(name):
    def function(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)
    function.__name__ = name
    function.__doc__ = f"tinygrad_tx.{name}(x, ...) is x.{name}(...)."
    return function


# the PyTorch functional spellings: tinygrad_tx.exp(x) == x.exp()
for _name in ("exp log sqrt rsqrt tanh sigmoid relu abs sin cos clamp maximum minimum sum mean var std max min "
              "amax amin argmax argmin norm softmax log_softmax reshape permute transpose unsqueeze squeeze flatten "
              "split chunk gather masked_fill tril triu topk multinomial sort logsumexp erf square "
              "add sub mul div neg negative clone numel t exp2 expm1 log2 log1p floor ceil round trunc frac "
              "floor_divide remainder fmod isnan isinf isfinite isclose allclose equal sign logical_not clamp_min "
              "clamp_max clip lerp addcmul addcdiv mm bmm flip roll cumsum argsort index_select "
              "masked_select nonzero unbind").split():
    globals()[_name] = _method(_name)
del _name

__version__ = "0.1.0"
