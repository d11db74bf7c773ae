#!/usr/bin/env bash
# Runs on an NVIDIA GPU machine without network (the device tool, ../shared/GPU.md): unpacks the
# packages carried in .device/ (scripts/fetch_device_debs.sh), registers NVIDIA's OpenCL ICD, builds
# quill in build-device/, then runs the steps asked for: `test` (the suite on the GPU), `bench`
# (kernel benchmarks), `attention` (attention kernels alone), `e2e` (every scheme on stories260K),
# `perf` (quill bench, Llama-2-7B shapes), `profile` (per-kernel split of pp and tg), or `all`.
# Results land in $OUT (default ./device-out).
# Usage: bash scripts/device.sh [test] [bench] [all] [-- extra ctest arguments, e.g. -R Lut]
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${OUT:-device-out}")
mkdir -p "$out"
steps=()
ctest_args=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; ctest_args=("$@"); break; fi
  steps+=("$1"); shift
done
[ ${#steps[@]} -eq 0 ] && steps=(all)

if [ ! -e /etc/OpenCL/vendors/nvidia.icd ]; then
  for f in .device/*.deb; do dpkg -x "$f" /; done
  ldconfig
  mkdir -p /etc/OpenCL/vendors
  lib=$(ldconfig -p | awk '/libnvidia-opencl.so.1/ {print $NF; exit}')
  echo "${lib:-/usr/lib/libnvidia-opencl.so.1}" > /etc/OpenCL/vendors/nvidia.icd
fi
clinfo -l 2>&1 | tee "$out/clinfo.txt"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$out/nvidia-smi.txt"

jobs=$(nproc)
cmake -S . -B build-device -DCMAKE_BUILD_TYPE=Release > "$out/cmake.log" 2>&1 || { tail -30 "$out/cmake.log"; exit 1; }
cmake --build build-device -j "$jobs" > "$out/build.log" 2>&1 || { grep -E "error" "$out/build.log" | head -40; exit 1; }
./build-device/quill devices | tee "$out/devices.txt"
./build-device/quill devices --json > "$out/devices.json"

want() { for s in "${steps[@]}"; do [ "$s" = "$1" ] || [ "$s" = all ] && return 0; done; return 1; }

status=0
if want test; then
  (cd build-device && QUILL_TEST_DEVICE=gpu ctest --output-on-failure -j 8 "${ctest_args[@]}" > "$out/ctest-gpu.log" 2>&1)
  status=$?
  tail -25 "$out/ctest-gpu.log"
fi
if want bench; then
  # GEMV (one token) per scheme at the Llama shapes, then GEMM throughput at 512 tokens.
  schemes=${QUILL_BENCH_SCHEMES:-f16,q8_0,int8,llm-int8,dyn8,nf4,fp4,int4,kmeans4}
  ./build-device/benchmarks/quill_bench_kernels --device gpu -q "$schemes" --tokens 1 \
    --shapes 4096x4096,11008x4096,4096x11008,14336x4096,4096x14336 | tee "$out/bench-gemv.txt"
  ./build-device/benchmarks/quill_bench_kernels --device gpu -q "$schemes" --tokens 512 -r 5 \
    --shapes 4096x4096 | tee "$out/bench-gemm.txt"
fi
if want e2e; then
  # Every scheme end to end on a real model (carried as .device/stories260K.gguf), greedy.
  if [ -f .device/stories260K.gguf ]; then
    for q in f32 f16 q8_0 int8 llm-int8 dyn8 nf4 fp4 int4 kmeans4; do
      printf '%-9s ' "$q"
      ./build-device/quill run -m .device/stories260K.gguf --device gpu -q "$q" --temp 0 -n 40 2>/dev/null
    done | tee "$out/e2e-stories260k.txt"
  fi
fi
if want attention; then
  # The attention kernels alone (decode at several context lengths, prefill of 512 tokens).
  ./build-device/benchmarks/quill_bench_attention gpu | tee "$out/bench-attention.txt"
fi
if want profile; then
  # Per-kernel device time of one pp512 and the tg tokens, int8 and nf4 (where the time goes).
  ./build-device/quill bench --synthetic llama-2-7b --device gpu -q "${QUILL_PROFILE_QUANT:-int8,nf4}" -p 512 -n 32 \
    -r 1 --profile 2>&1 | tee "$out/profile.txt"
fi
if want perf; then
  # llama-bench-like throughput on the Llama-2-7B shapes (synthetic weights).
  ./build-device/quill bench --synthetic llama-2-7b --device gpu -q "${QUILL_BENCH_QUANT:-f16,q8_0,int8,llm-int8,nf4,int4}" \
    -p 512 -n 128 -r "${QUILL_BENCH_REPS:-2}" --json | tee "$out/bench-llama2-7b.jsonl"
fi
exit $status
