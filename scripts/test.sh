#!/usr/bin/env bash
# The whole test suite, as CI runs it: install dependencies, build, run every CTest case on the
# OpenCL CPU device (PoCL) unless $QUILL_TEST_DEVICE names another.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
cd build
ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@"
