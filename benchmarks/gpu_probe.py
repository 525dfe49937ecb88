"""Stage (a) of gpu_check.sh: what this GPU machine has, in seconds, before anything long runs.

Prints and writes OUT/probe.json: CuPy and CUDA versions, NVRTC's version, the device, whether the CUDA
libraries CuPy loads at run time are there (NVRTC, cuBLAS, cuRAND), a small matmul, one random draw, and one
kernel compile with its time (the kernel cache starts empty on a fresh machine).
"""
import json
import os
import sys
import time


def main(out_dir):
    import cupy
    import numpy as np

    import tinygrad_tx as tg
    from tinygrad_tx.backend import kernels

    facts = {"cupy": cupy.__version__, "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
             "driver": cupy.cuda.runtime.driverGetVersion(),
             "device": tg.cuda.get_device_name(0), "bf16_supported": tg.cuda.is_bf16_supported()}
    from cupy_backends.cuda.libs import nvrtc
    facts["nvrtc"] = nvrtc.getVersion()
    a = cupy.random.standard_normal((256, 256), dtype=cupy.float32)  # cuRAND and cuBLAS load here
    facts["matmul_max_error"] = float(abs(cupy.asnumpy(a @ a) - cupy.asnumpy(a).astype(np.float64) @
                                          cupy.asnumpy(a).astype(np.float64)).max())
    x = tg.randn(1000, device="cuda")
    facts["our_randn_mean"], facts["our_randn_std"] = float(x.mean().item()), float(x.std().item())
    start = time.perf_counter()
    kernels.load_module("softmax", 0).get_function("softmax_forward_f32")
    facts["softmax_compile_seconds"] = round(time.perf_counter() - start, 3)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "probe.json"), "w") as f:
        json.dump(facts, f, indent=2)
    print(json.dumps(facts, indent=2))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/gpu_check")
