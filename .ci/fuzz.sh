#!/usr/bin/env bash
# libFuzzer: installs clang and its runtimes from Debian packages (idempotent, like scripts/install_deps.sh),
# builds fuzz/ in build-fuzz (-DQUILL_FUZZ=ON, ASan + UBSan) and runs each target for $QUILL_FUZZ_SECONDS
# (default 60) from the seed corpus in fuzz/corpus/<target> (copied: new inputs stay in build-fuzz). A crash,
# leak, sanitizer report or timeout fails the run and leaves the input in build-fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${QUILL_FUZZ_DIR:-$root/build-fuzz}
seconds=${QUILL_FUZZ_SECONDS:-60}
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)
step() { echo "fuzz: [$(( $(date +%s) - start ))s] $*" >&2; }

bash scripts/install_deps.sh
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if ! installed clang; then
  step "installing clang"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends clang >&2
fi
major=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n1)
if ! installed "libclang-rt-$major-dev"; then  # libFuzzer and the sanitizer runtimes
  step "installing libclang-rt-$major-dev"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "libclang-rt-$major-dev" >&2
fi

step "building the fuzz targets in $build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DQUILL_FUZZ=ON \
  -DQUILL_BUILD_TESTS=OFF -DQUILL_BUILD_BENCHMARKS=OFF -DQUILL_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j "$jobs" --target fuzz_gguf fuzz_tokenizer >/dev/null

mkdir -p "$build/artifacts"
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for target in gguf tokenizer; do
  work=$build/corpus/$target
  mkdir -p "$work"
  step "fuzz_$target for ${seconds}s (seeds: fuzz/corpus/$target, $(ls fuzz/corpus/$target | wc -l) files)"
  "$build/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-" "$work" "$root/fuzz/corpus/$target" \
    2> "$build/fuzz_$target.log" || { tail -n 60 "$build/fuzz_$target.log" >&2; exit 1; }
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$build/fuzz_$target.log" | sed 's/^/  /' >&2
done
step "OK"
