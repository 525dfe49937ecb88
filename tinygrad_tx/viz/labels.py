"""How things read in the picture: shapes, counts, numbers, tensor values. Plain text only:
dot.py escapes it, so these functions never need to care what characters a name holds."""
import numpy as np

MAX_VALUES = 8  # show_values prints tensors up to this many elements


def shape_text(shape):
    return "scalar" if len(shape) == 0 else "\u00d7".join(str(s) for s in shape)


def dtype_text(dtype):
    return getattr(dtype, "name", str(dtype))


def tensor_text(shape, dtype, show_shapes=True, show_dtypes=True, device=None):
    parts = []
    if show_shapes:
        parts.append(shape_text(shape))
    if show_dtypes:
        parts.append(dtype_text(dtype))
    if device is not None and device != "cpu":
        parts.append(device)
    return " ".join(parts)


def count_text(n):
    """1234 -> '1.2K', 124439808 -> '124.4M'."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= limit:
            return f"{n / limit:.1f}{suffix}"
    return str(n)


def norm_text(value):
    return "none" if value is None else f"{value:.2e}"


def values_text(array):
    """A tiny tensor's values, micrograd style: '6.0000' or '[1.000, -2.000]'; a summary when larger."""
    if array is None:
        return "?"
    array = np.asarray(array)
    if array.size > MAX_VALUES:
        return f"{array.size} values"
    if array.ndim == 0 or array.size == 1:
        value = array.reshape(()).item()
        return f"{value:.4f}" if isinstance(value, float) else str(value)
    return np.array2string(array, precision=3, separator=", ", suppress_small=True).replace("\n", " ")


def path_range_text(paths):
    """['transformer.h.1', ..., 'transformer.h.11'] -> 'transformer.h.1\u201311'."""
    if len(paths) == 1:
        return paths[0]
    first, last = paths[0], paths[-1]
    head, _, tail = last.rpartition(".")
    if tail.isdigit() and first.startswith(head + ".") and first[len(head) + 1:].isdigit():
        return f"{first}\u2013{tail}"
    return f"{first} \u2026 {last}"
