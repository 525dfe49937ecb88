"""The kernel table: every CUDA kernel family, executed on the CPU (tests/cuda_cpu), per storage dtype and
direction: how many outputs were checked against torch in float64 and the largest error, relative to
max(1, the largest |value|). Runs most of tests/test_kernels_cpu.py's full set (several minutes).

    python benchmarks/kernel_table.py
"""
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import numpy as np  # noqa: E402

import test_kernels_cpu as checks  # noqa: E402
from cuda_cpu.executed_kernels import ExecutedKernels  # noqa: E402


def main():
    kernels = ExecutedKernels()
    for dtype in checks.STORAGE:
        for width in (1, 31, 32, 100, 768, 4096):
            for affine in (True, False):
                checks.check_layer_norm(kernels, 300 if width <= 768 else 70, width, affine, dtype, seed=width)
        for width in (1, 2, 31, 32, 33, 255, 257, 4096, 50257):
            for log in (False, True):
                checks.check_softmax(kernels, 3, width, log, dtype, seed=width)
        for approximate_tanh in (False, True):
            for size in (1, 1000, 5000):
                checks.check_gelu(kernels, size, approximate_tanh, dtype)
        for classes in (65, 50257):
            for smoothing in (0.0, 0.1):
                checks.check_cross_entropy(kernels, 7 if classes == 65 else 2, classes, smoothing, dtype)
        # every head dim with short, tile-crossing and long lengths, equal and not (the whole product of lengths
        # is tests/test_kernels_cpu.py --long)
        for head_dim in (16, 40, 64, 128):
            for length, source_length in ((1, 1), (7, 200), (65, 64), (200, 65)):
                for causal in (False, True):
                    checks.check_attention(kernels, 2, length, source_length, head_dim, causal, dtype,
                                           seed=head_dim)
    for p in (0.1, 0.5):
        checks.check_attention(kernels, 3, 65, 40, 40, False, np.float32, dropout=(p, 12345, 7))
    checks.check_adamw(kernels, [1, 7, 300, 1000])
    print("| family | dtype | direction | outputs checked | max error (relative to max(1, largest value)) |")
    print("| --- | --- | --- | ---: | ---: |")
    for (family, dtype, direction), (cases, worst) in sorted(checks.ERRORS.items()):
        print(f"| {family} | {dtype} | {direction} | {cases} | {worst:.2e} |")


if __name__ == "__main__":
    main()
