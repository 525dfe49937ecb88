"""The random programs again, in float32: the same source with float32 data, on tinygrad_tx and on torch.

float32 rounding makes both runs drift from the exact values, by amounts that depend on how each
library orders its sums, so a fixed tolerance would either miss real errors or flag honest rounding.
The yardstick is torch's own float32 error: each value and gradient of ours must lie within
RTOL/ATOL of torch's float32 result plus SLACK times the distance between torch's float32 and float64
results. An ill-conditioned value (where float32 itself says little) is thereby given room, and a
well-conditioned one is held to float32 accuracy. Where torch's float32 happens to land near float64 at an
element of an ill-conditioned array, the array as a whole is judged instead (_as_accurate_as_torch).

    python tests/random_programs_float32.py 17            # how first-order program 17 compares in float32
    python tests/random_programs_float32.py --second 17
"""
import argparse
import warnings

import numpy as np
import torch

from random_programs import compare_runs, generate, run_source

RTOL, ATOL, SLACK = 1e-4, 1e-5, 10


def float32_lines(lines):
    return [line.replace("float64", "float32") for line in lines]


def _arrays(value):
    """The arrays a name holds that a difference can show in: a tensor's value and .grad, a list of gradients."""
    if isinstance(value, (list, tuple)):
        return [array for item in value for array in _arrays(item)]
    if value is None or not hasattr(value, "detach"):
        return []
    arrays = [_numpy(value)]
    if value.grad is not None:
        arrays.append(_numpy(value.grad))
    return arrays


def _numpy(tensor):
    # force: torch hands out some zero gradients as ZeroTensors, which convert only when asked to
    return np.asarray(tensor.detach().numpy(force=True) if isinstance(tensor, torch.Tensor) else tensor.detach().numpy())


def problems_of(program):
    lines = float32_lines(program.lines)
    data32 = [np.asarray(a, dtype=np.float32) for a in program.data]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reading .grad of a torch non-leaf warns
        theirs = run_source(lines, data32, "torch")
        ours = run_source(lines, data32, "tinygrad_tx")
        return _compare(program.torch_run, theirs, ours, lines)


def _compare(theirs64, theirs, ours, lines):
    if (ours.error is None) != (theirs.error is None):
        return compare_runs(ours, theirs, lines)  # names which one raised
    if ours.error is not None or theirs64.error is not None:
        return []
    problems = []
    for name, value in theirs.names.items():
        if name in ("t", "F", "D") or name.startswith("__") or callable(value) and not hasattr(value, "shape"):
            continue
        expected, exact, got = _arrays(value), _arrays(theirs64.names.get(name)), _arrays(ours.names.get(name))
        if len(expected) != len(got) or len(exact) != len(expected):
            continue  # a gradient present on one side only is the float64 test's business
        for e, x, g in zip(expected, exact, got):
            if e.shape != g.shape or e.dtype.kind != "f":
                continue
            allowed = ATOL + RTOL * np.abs(e) + SLACK * np.abs(e - x.astype(np.float64))
            bad = ~(np.abs(g - e) <= allowed) & ~(np.isnan(g) & np.isnan(e))
            if bad.any() and not _as_accurate_as_torch(g, e, x):
                i = np.unravel_index(np.argmax(bad), bad.shape)
                problems.append(f"{name}: {int(bad.sum())} of {e.size} differ in float32, e.g. at {tuple(map(int, i))}: "
                                f"{g[i]!r} vs torch {e[i]!r} (float64: {x[i]!r})")
                break
    return problems


def _as_accurate_as_torch(ours, theirs, exact):
    """Whether ours is, over the whole array, no farther from the float64 result than torch's float32 is, in
    root-mean-square and in the largest difference.

    Torch's distance from float64 at one element measures the conditioning there, but only as one sample of
    rounding: where a value is ill-conditioned (a layer_norm over rows of two nearly equal values: 1/std is
    large), torch's float32 can land close to float64 at one element by chance and far off at the next. An
    element is then judged against the array's errors as a whole."""
    exact = exact.astype(np.float64)
    ours_error, their_error = np.abs(ours - exact), np.abs(theirs - exact)
    if not (np.isfinite(ours_error).all() and np.isfinite(their_error).all()):
        return False
    return np.sqrt(np.mean(ours_error ** 2)) <= np.sqrt(np.mean(their_error ** 2)) + ATOL \
        and ours_error.max() <= their_error.max() + ATOL


def check(seed, second_order=False):
    program = generate(seed, second_order)
    if program.skipped:
        return None
    problems = problems_of(program)
    if not problems:
        return None
    kind = "second-order" if second_order else "first-order"
    listing = "\n".join(f"    {i:2d}  {line}" for i, line in enumerate(float32_lines(program.lines)))
    return f"{kind} program {seed} (float32): " + "; ".join(problems[:3]) + f"\n{listing}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("seed", type=int)
    parser.add_argument("--second", action="store_true", help="a second-order program")
    args = parser.parse_args()
    print(check(args.seed, args.second) or "# agrees with torch in float32")
