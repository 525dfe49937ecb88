#!/usr/bin/env bash
# Every check that needs an NVIDIA GPU, in one command, staged so that a short time gives the most:
#
#     PYTHONPATH=. bash benchmarks/gpu_check.sh [OUT_DIR]      # default out/gpu_check; about 8 minutes
#
#   a. probe (seconds): versions, NVRTC, device, cuBLAS/cuRAND present, a matmul, a draw, a kernel compile
#   b. kernels: each against its CuPy array code and torch, float32/float16/bfloat16 (tests/test_cuda.py)
#   c. GPT-2 step CPU against GPU, RNG (our Philox words against the NumPy reference), memory statistics,
#      TF32, batched products on the tensor-core path, erf keeping float16, autocast bfloat16
#   d. CLI round trip: 20 iterations in float16, resume, a tf32 run, the checkpoint loaded on the CPU
#   e. the race: GPT-2 124M training steps against PyTorch eager, alternating (benchmarks/gpt2_race.py), then
#      each kernel against its CuPy array code (benchmarks/gpu_benchmark.py)
#   f. the rest of the suite with 'cuda' in the device list
#   g. data parallelism on one GPU: NCCL at world size 1 (collectives in float32/float16/bfloat16, DDP's buckets
#      against the plain model), the MPI backend with GPU tensors; two GPUs in two ranks stay unchecked here
# Each stage has its own time limit; a failing stage is recorded and the next one runs. Everything goes to
# OUT_DIR; the summary at the end lists each stage's status and time, and the exit status is non-zero if any
# stage failed. Without a GPU the GPU stages are skipped (a dry run of the script itself).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/gpu_check}
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONPATH=${PYTHONPATH:-.}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
FAILED=0

stage() {  # stage NAME SECONDS COMMAND...: run with a time limit, log to OUT/NAME.log, record the outcome
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout --signal=INT --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local status=$?
  local outcome=passed
  if [ $status -eq 124 ] || [ $status -eq 137 ]; then outcome="TIMED OUT"; FAILED=1
  elif [ $status -ne 0 ]; then outcome="FAILED ($status)"; FAILED=1; fi
  tail -n 5 "$OUT/$name.log"
  printf '%-14s %-12s %4ds\n' "$name" "$outcome" $((SECONDS - start)) | tee -a "$SUMMARY"
}

if ! "$PY" -c "import tinygrad_tx as tg, sys; sys.exit(0 if tg.cuda.is_available() else 1)"; then
  echo "no CUDA device visible: dry run, GPU stages skipped" | tee -a "$SUMMARY"
  stage dry_run 120 "$PY" -m pytest -q -x tests/test_cuda.py tests/test_kernels_cpu.py tests/test_batched_gemm.py \
      tests/test_philox.py -p no:cacheprovider
  cat "$SUMMARY"
  exit $FAILED
fi

nvidia-smi > "$OUT/nvidia_smi.txt" 2>&1
stage a_probe 60 "$PY" benchmarks/gpu_probe.py "$OUT"
stage b_kernels 90 env TINYGRAD_TX_REQUIRE_GPU=1 "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py \
    -k "kernel or adamw or erf or bfloat16"
stage c_model_rng 60 env TINYGRAD_TX_REQUIRE_GPU=1 "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py \
    -k "not kernel and not adamw"
stage d_cli 90 bash -c "
  set -e
  '$PY' -m tinygrad_tx.train --preset shakespeare-char --device cuda --dtype float16 --max-iters 20 \
      --eval-interval 10 --eval-iters 2 --sample-tokens 20 --out-dir '$OUT/train_f16'
  '$PY' -m tinygrad_tx.train --preset shakespeare-char --device cuda --dtype float16 --max-iters 40 \
      --eval-interval 10 --eval-iters 2 --sample-tokens 20 --out-dir '$OUT/train_f16' --resume
  '$PY' -m tinygrad_tx.train --preset shakespeare-char --device cuda --dtype tf32 --max-iters 20 \
      --eval-interval 10 --eval-iters 2 --sample-tokens 20 --out-dir '$OUT/train_tf32'
  '$PY' -m tinygrad_tx.sample --out-dir '$OUT/train_f16' --device cpu --max-new-tokens 20"
stage e_race 150 "$PY" benchmarks/gpt2_race.py --out "$OUT/race.json"
stage e_kernels 45 "$PY" benchmarks/gpu_benchmark.py --steps 10
stage f_suite 120 "$PY" -m pytest -q -rs -p no:cacheprovider -x tests --ignore=tests/test_random_programs.py \
    --ignore=tests/test_random_programs_float32.py
stage g_nccl 90 "$PY" -m tinygrad_tx.distributed.run --nproc-per-node 1 tests/distributed/workers/gpu_nccl.py

echo "== summary"
cat "$SUMMARY"
exit $FAILED
