#!/usr/bin/env bash
# Every check that needs an NVIDIA GPU, in one command, for whoever has one:
#
#     pip install -e ".[dev,train,cuda]"      # or .[cuda12] with a CUDA 12 driver
#     bash benchmarks/gpu_check.sh
#
# 1. the CUDA tests (kernels against the CuPy array code, CPU against GPU for GPT-2, RNG, memory, TF32,
#    autocast, training), with TINYGRAD_TX_REQUIRE_GPU=1 so a missing GPU fails instead of skipping;
# 2. the whole suite, where every `device`-parametrized test also runs on 'cuda';
# 3. a short training run on tiny Shakespeare in float32, tf32 and float16;
# 4. the GPU benchmark (kernels against CuPy array code; training steps, tokens/s, peak memory).
# Stops at the first failure. Logs go to out/gpu_check/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
LOGS=out/gpu_check
mkdir -p "$LOGS"

nvidia-smi || echo "nvidia-smi not found; continuing (CuPy decides)"
"$PY" -c "import tinygrad_tx as tg, sys; sys.exit(0 if tg.cuda.is_available() else \
'no CUDA device visible to CuPy: install tinygrad_tx[cuda] (CUDA 13) or tinygrad_tx[cuda12] on a GPU machine')"
"$PY" -c "import cupy; print('CuPy', cupy.__version__, '| CUDA runtime', cupy.cuda.runtime.runtimeGetVersion(), \
'| device', cupy.cuda.runtime.getDeviceProperties(0)['name'].decode())"

echo "== 1. CUDA tests"
TINYGRAD_TX_REQUIRE_GPU=1 "$PY" -m pytest -q -rs tests/test_cuda.py tests/test_kernels_compile.py 2>&1 | tee "$LOGS/cuda_tests.txt"

echo "== 2. the whole suite, 'cuda' in the device list"
"$PY" -m pytest -q -rs tests 2>&1 | tee "$LOGS/all_tests.txt"

echo "== 3. training smoke runs"
for dtype in float32 tf32 float16; do
  "$PY" -m tinygrad_tx.train --preset shakespeare-char --device cuda --dtype "$dtype" --max-iters 300 \
      --eval-interval 150 --eval-iters 20 --sample-tokens 100 --out-dir "$LOGS/train_$dtype" 2>&1 | tail -n 8 \
      | tee "$LOGS/train_$dtype.txt"
done

echo "== 4. benchmark"
"$PY" benchmarks/gpu_benchmark.py 2>&1 | tee "$LOGS/benchmark.txt"
echo "all GPU checks passed; logs in $LOGS/"
