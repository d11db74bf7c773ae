#!/usr/bin/env bash
# Packaging check: install quill to a temporary prefix, then build host programs the way users will —
# examples/generate.c with a plain `cc ... $(pkg-config --cflags --libs quill)` (shared, then static),
# and examples/ as a find_package(quill) CMake project — and run them: the installed example must
# print exactly what the installed `quill run --temp 0` prints, match stories260K's golden text when
# ../shared/models has it, and answer a missing model file with a status and a message.
# Reuses ./build when it exists ($QUILL_BUILD_DIR to choose another); device: $QUILL_TEST_DEVICE or cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${QUILL_BUILD_DIR:-$root/build}
jobs=$(nproc 2>/dev/null || echo 2)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/quill-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
export QUILL_DEVICE=${QUILL_TEST_DEVICE:-cpu}
export QUILL_LOG=warn
start=$(date +%s)
step() { echo "check_install: [$(( $(date +%s) - start ))s] $*" >&2; }
die() { echo "check_install: FAILED: $*" >&2; exit 1; }

step "the CLI is a host application of the C API: no engine/ or host/ header under cli/"
if grep -rnE '#include "(engine|host)/' cli/; then die "cli/ includes engine or host headers (use include/quill.h)"; fi

step "building and installing to $prefix"
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DQUILL_BUILD_TESTS=OFF -DQUILL_BUILD_BENCHMARKS=OFF >/dev/null
fi
cmake --build "$build" -j "$jobs" --target quill_shared quill_static quill >/dev/null
cmake --install "$build" --prefix "$prefix" >/dev/null

libdir=$(dirname "$(find "$prefix" -name quill.pc -path '*pkgconfig*' | head -n1)")/..
libdir=$(cd "$libdir" && pwd)
[[ -f $prefix/include/quill.h && -f $libdir/libquill.a ]] || die "quill.h or libquill.a not installed"
ls "$libdir"/libquill.so* >/dev/null || die "libquill.so not installed"
[[ -f $libdir/cmake/quill/quillConfig.cmake ]] || die "CMake package not installed"

step "exported symbols of libquill.so are the C API only"
leaked=$(nm -D --defined-only "$libdir/libquill.so" | awk '{print $NF}' | grep -v '^quill_' | grep -v '^_init$\|^_fini$' || true)
[[ -z $leaked ]] || die "libquill.so exports non-API symbols: $(echo "$leaked" | head -n 10 | tr '\n' ' ')"
echo "  $(nm -D --defined-only "$libdir/libquill.so" | grep -c ' quill_') quill_* symbols" >&2

export PKG_CONFIG_PATH=$libdir/pkgconfig
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
step "cc + pkg-config: examples/generate.c against libquill.so and libquill.a"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -pedantic examples/generate.c $(pkg-config --cflags --libs quill) -o "$tmp/gen_shared"
static_libs=$(pkg-config --static --libs-only-l quill | sed 's/-lquill\b//')
# shellcheck disable=SC2046,SC2086
cc -std=c11 -Wall -Werror examples/generate.c $(pkg-config --cflags quill) "$libdir/libquill.a" $static_libs \
  -o "$tmp/gen_static"
ldd "$tmp/gen_shared" | grep "$libdir/libquill.so" > /dev/null || die "gen_shared does not load the installed libquill.so"
if ldd "$tmp/gen_static" | grep libquill > /dev/null; then die "gen_static still needs libquill.so"; fi

step "the example decodes as quill run --temp 0 does (synthetic model)"
"$prefix/bin/quill" run --temp 0 -n 24 > "$tmp/run.txt"
"$tmp/gen_shared" "" "Once upon a time" 24 > "$tmp/gen.txt"
cmp "$tmp/run.txt" "$tmp/gen.txt" || die "example output differs from quill run"
"$tmp/gen_static" "" "Once upon a time" 24 > "$tmp/gen_static.txt"
cmp "$tmp/run.txt" "$tmp/gen_static.txt" || die "statically linked example output differs from quill run"

stories=$root/../shared/models/stories260K/stories260K.gguf
if [[ -f $stories ]]; then
  step "stories260K: example == quill run --temp 0 == the golden text"
  "$prefix/bin/quill" run -m "$stories" --temp 0 -n 40 > "$tmp/run.txt"
  "$tmp/gen_shared" "$stories" "Once upon a time" 40 > "$tmp/gen.txt"
  cmp "$tmp/run.txt" "$tmp/gen.txt" || die "stories260K: example output differs from quill run"
  golden="Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball."
  [[ $(head -c ${#golden} "$tmp/gen.txt") == "$golden" ]] || die "stories260K: not the golden text: $(cat "$tmp/gen.txt")"
else
  step "stories260K absent: golden-text step skipped"
fi

step "a missing model file gives a status and a message, not a crash"
set +e
"$tmp/gen_shared" /nonexistent/model.gguf > /dev/null 2> "$tmp/err.txt"
rc=$?
set -e
[[ $rc == 1 ]] || die "missing model: exit status $rc (expected 1)"
grep -q "file error: .*/nonexistent/model.gguf" "$tmp/err.txt" || die "missing model: message was: $(cat "$tmp/err.txt")"

step "find_package(quill): examples/ as a CMake project (shared) and a C+C++ project (static)"
cmake -S examples -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/consumer" >/dev/null
"$tmp/consumer/quill_generate" "" "Once upon a time" 8 > /dev/null
mkdir -p "$tmp/static_consumer"
cat > "$tmp/static_consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.22)
project(quill_static_consumer LANGUAGES C CXX)
find_package(quill REQUIRED)
add_executable(gen $root/examples/generate.c)
target_link_libraries(gen PRIVATE quill::quill_static)
CMAKE
cmake -S "$tmp/static_consumer" -B "$tmp/static_consumer/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/static_consumer/build" >/dev/null
"$tmp/static_consumer/build/gen" "" "Once upon a time" 8 > /dev/null

step "OK in $(( $(date +%s) - start )) s"
