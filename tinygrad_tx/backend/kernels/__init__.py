"""Our CUDA kernels: the .cu sources beside this file, compiled once per device and cached.

One file per kernel family (layer_norm, softmax, gelu, cross_entropy, attention, adamw, random), each with
extern "C" entry points NAME_f32, NAME_f16 and NAME_bf16 (adamw: float32 only; random: words, philox_words). They share common.cuh, which is
pasted into each source before compiling: CuPy keys its on-disk cache (~/.cupy/kernel_cache) on the
source text, so an edit of the header recompiles every family instead of reusing a stale binary.

The fused ops use the kernels when the backend has them (`backend.kernels` is not None). Set
TINYGRAD_TX_CUDA_KERNELS=0 before starting, or call tinygrad_tx.cuda.use_kernels(False), to run the
plain CuPy array code instead: the same generic code the CPU runs, which tests compare the kernels with.
"""
import os

KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))
FAMILIES = ("layer_norm", "softmax", "gelu", "cross_entropy", "attention", "adamw", "random")
HEADER = "common.cuh"
# float32 math without --use_fast_math, so the kernels agree with the array code to float32 rounding; CuPy adds
# -ftz=true itself, so denormals flush to zero (the CPU executor in the tests does the same)
COMPILE_OPTIONS = ("--std=c++14",)

_switch = {"enabled": os.environ.get("TINYGRAD_TX_CUDA_KERNELS", "1") != "0"}
_modules = {}  # (family, device index) -> cupy.RawModule


def kernels_enabled():
    return _switch["enabled"]


def set_kernels_enabled(enabled):
    """Turn our kernels on or off for every CUDA device (off: the fused ops run plain CuPy array code)."""
    _switch["enabled"] = bool(enabled)


def source_path(family):
    return os.path.join(KERNEL_DIR, f"{family}.cu")


def source(family):
    """The family's .cu text with common.cuh pasted in where it is included: one self-contained unit."""
    if family not in FAMILIES:
        raise ValueError(f"unknown kernel family {family!r}; known: {', '.join(FAMILIES)}")
    with open(source_path(family)) as f:
        text = f.read()
    with open(os.path.join(KERNEL_DIR, HEADER)) as f:
        header = f.read()
    return text.replace(f'#include "{HEADER}"', header.replace("#pragma once\n", ""))  # once is all it appears


def load_module(family, device_index):
    """The compiled module of a family on a device (compiled by NVRTC on first use, then cached)."""
    key = (family, device_index)
    if key not in _modules:
        import cupy
        with cupy.cuda.Device(device_index):
            _modules[key] = cupy.RawModule(code=source(family), options=COMPILE_OPTIONS)
    return _modules[key]
