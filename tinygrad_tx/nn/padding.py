"""F.pad, as torch.nn.functional.pad: constant padding of any trailing dims, and reflect, replicate and circular
padding of the last 1, 2 or 3 dims of a (batched) signal, image or volume.

`pad` lists (before, after) pairs starting from the last dim: (left, right, top, bottom, ...). A negative amount
crops. Everything is composed from differentiable ops: constant padding concatenates constant blocks, the other
modes read each output position from an input position (index_select), so their gradients add up where one
input position feeds several outputs.
"""
from .. import creation
from ..tensor import cat

MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode="constant", value=None):
    pairs = _pairs(input, pad)
    if mode not in MODES:
        raise NotImplementedError(f"pad: unrecognised padding mode {mode!r} (expected one of {', '.join(MODES)})")
    if mode == "constant":
        return _constant(input, pairs, 0 if value is None else value)
    if value is not None:
        raise RuntimeError(f"pad: padding mode {mode!r} doesn't take in value argument")
    _check_signal_shape(input, pairs, mode)
    for dim, (before, after) in zip(range(input.ndim - 1, -1, -1), pairs):
        if mode == "circular" and (before < 0 or after < 0):  # circular wraps around what is left after the crop
            input = _cropped(input, dim, before, after)
            before, after = max(before, 0), max(after, 0)
        input = input.index_select(dim, _source_positions(input, dim, before, after, mode))
    return input


def _pairs(input, pad):
    if not isinstance(pad, (list, tuple)) or not all(isinstance(n, int) and not isinstance(n, bool) for n in pad):
        raise TypeError(f"pad: `pad` must be a tuple of ints, got {pad!r}")
    if len(pad) % 2:
        raise RuntimeError(f"pad: padding length must be divisible by 2, got {len(pad)} ({tuple(pad)})")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError(f"pad: padding length should be less than or equal to two times the input dimension but "
                           f"got padding length {len(pad)} and input of dimension {input.ndim}")
    return [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)]  # pairs[0] pads the last dim


def _constant(input, pairs, value):
    for dim, (before, after) in zip(range(input.ndim - 1, -1, -1), pairs):
        size = input.shape[dim]
        if size + before + after < 0:
            raise RuntimeError(f"pad: the input size {size}, plus negative padding {before} and {after} resulted in "
                               f"a negative output size, at dim {dim} of input shape {tuple(input.shape)}")
        input = _cropped(input, dim, before, after)
        pieces = [_block(input, dim, before, value), input, _block(input, dim, after, value)]
        pieces = [piece for piece in pieces if piece is not None]
        if len(pieces) > 1:
            input = cat(pieces, dim)
    return input


def _cropped(input, dim, before, after):
    """input without the first -before and last -after entries along dim (nothing cut for amounts >= 0)."""
    if before >= 0 and after >= 0:
        return input
    index = [slice(None)] * input.ndim
    index[dim] = slice(max(-before, 0), input.shape[dim] - max(-after, 0))
    return input[tuple(index)]


def _block(input, dim, size, value):
    """A block of `value` (in input's dtype, as PyTorch casts it) to put beside input along dim."""
    if size <= 0:
        return None
    shape = input.shape[:dim] + (size,) + input.shape[dim + 1:]
    return creation.full(shape, value, dtype=input.dtype, device=input.device)


def _check_signal_shape(input, pairs, mode):
    """Non-constant modes pad the last 1, 2 or 3 dims of (C, ...) or (N, C, ...)."""
    padded = len(pairs)
    if padded not in (1, 2, 3) or input.ndim not in (padded + 1, padded + 2):
        raise NotImplementedError(
            f"pad: padding size {2 * padded} is not supported for {input.ndim}D input tensor in mode {mode!r}; "
            "non-constant padding takes a 2D or 3D input with padding size 2 (the last dim), a 3D or 4D input with "
            "padding size 4 (the last 2 dims), or a 4D or 5D input with padding size 6 (the last 3 dims)")
    for dim, (before, after) in zip(range(input.ndim - 1, -1, -1), pairs):
        size = input.shape[dim]
        if size == 0:
            raise RuntimeError(f"pad: mode {mode!r} needs non-empty padded dims, got input of shape "
                               f"{tuple(input.shape)}")
        if mode == "reflect" and (before >= size or after >= size):
            raise RuntimeError(f"pad: padding size should be less than the corresponding input dimension in mode "
                               f"'reflect', but got padding ({before}, {after}) at dimension {dim} of input "
                               f"{list(input.shape)}")
        if size + before + after < 0:
            raise RuntimeError(f"pad: the input size {size}, plus negative padding {before} and {after} resulted in "
                               f"a negative output size, at dim {dim} of input shape {tuple(input.shape)}")
        kept = size - max(-before, 0) - max(-after, 0)  # circular wraps around what the negative amounts leave
        if mode == "circular" and (before > kept or after > kept):
            raise RuntimeError(f"pad: padding value causes wrapping around more than once: padding ({before}, "
                               f"{after}) at dimension {dim} of input {list(input.shape)}")


def _source_positions(input, dim, before, after, mode):
    """For each output position along dim, the input position it copies (positions before 0 and past the end
    fold back by the mode)."""
    size = input.shape[dim]
    positions = creation.arange(-before, size + after, device=input.device)
    if mode == "replicate":
        return positions.clamp(0, size - 1)
    if mode == "circular":
        return positions.remainder(size)
    positions = positions.abs()  # reflect about 0, then about size - 1 (the edges themselves are not repeated)
    return (size - 1) - ((size - 1) - positions).abs()
