#!/usr/bin/env bash
# One command from a fresh Debian/Ubuntu machine: install dependencies, build, and run the main job
# (`quill run` on the default model; `quill devices` until the model lands).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
if ./build/quill run --help >/dev/null 2>&1; then
  exec ./build/quill run
else
  exec ./build/quill devices
fi
