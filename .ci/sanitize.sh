#!/usr/bin/env bash
# ASan + UBSan: builds the test suite and the CLI in build-asan (-DQUILL_SANITIZE=address,undefined, -O1, gcc) and
# runs the tests that cover untrusted input and shared state on the OpenCL CPU device (PoCL): GGUF reader, Llama
# loader, tokenizer, C API, session, sampler, hostile files, limits, concurrency, kernel build errors.
# Any sanitizer report fails the run. Suppressions (PoCL/LLVM internals only) and why: docs/RELIABILITY.md.
# $QUILL_ASAN_TESTS overrides the CTest -R regex; $QUILL_ASAN_DIR the build folder.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${QUILL_ASAN_DIR:-$root/build-asan}
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)
step() { echo "sanitize: [$(( $(date +%s) - start ))s] $*" >&2; }

bash scripts/install_deps.sh
step "configuring $build (address,undefined)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Sanitize -DQUILL_SANITIZE=address,undefined -DQUILL_BUILD_BENCHMARKS=OFF \
  -DQUILL_BUILD_EXAMPLES=OFF >/dev/null
step "building quill_tests and quill"
cmake --build "$build" -j "$jobs" --target quill_tests quill >/dev/null

# Leaks inside the OpenCL ICD loader and PoCL (its LLVM JIT, its device threads' per-thread state, dlopen'ed
# drivers) are reported at exit and are not quill's: suppress by library, never by a quill symbol.
cat > "$build/lsan.supp" <<'SUPP'
leak:libpocl
leak:libOpenCL
leak:libLLVM
leak:libclang-cpp
leak:pocl-devices
SUPP
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=0:check_initialization_order=1
# use_tls=0: after PoCL reports a kernel compile error, LSan's exit-time scan of dynamic TLS finds a stale
# DTV entry (a range like 0x143f-0x800002541) and its tracer dies with SIGSEGV before any report
# (ProgramBuild.SyntaxErrorCarriesTheBuildLog, every run). Not scanning TLS can only add leak reports
# (memory reachable only from TLS would count as leaked), never hide one.
export LSAN_OPTIONS=suppressions=$build/lsan.supp:print_suppressions=0:use_tls=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export QUILL_DEVICE=${QUILL_TEST_DEVICE:-cpu}
export QUILL_LOG=warn
tests=${QUILL_ASAN_TESTS:-'Gguf|LlamaLoader|Tokenizer|CApi|Session|Sampler|Hostile|Limits|Concurrency|ProgramBuild'}
step "running ctest -R '$tests'"
cd "$build"
ctest --output-on-failure -j "$jobs" -R "$tests" --timeout 900
step "OK"
