#!/usr/bin/env bash
# On a Debian machine with network: downloads the packages the GPU machine lacks (OpenCL loader and
# headers, CLBlast, fmt, CLI11, nlohmann-json, xxhash, GoogleTest, clinfo) into .device/ (git-ignored),
# for scripts/device.sh to unpack there. See ../shared/GPU.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .device
cd .device
apt-get download ocl-icd-libopencl1 ocl-icd-opencl-dev opencl-c-headers opencl-clhpp-headers libclblast1 \
  libclblast-dev clinfo libfmt-dev libfmt9 libcli11-dev nlohmann-json3-dev libxxhash-dev libxxhash0 libgtest-dev \
  googletest
ls -1 .
