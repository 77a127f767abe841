#!/usr/bin/env bash
# reader_only_build_test.sh PUBLISHER - the reader-only build, as a worker
# host without the publisher's dependencies would make it: configure this
# source with CONFCAST_BUILD_PUBLISHER=OFF and every optional package hidden
# (nlohmann-json, CLI11, yaml-cpp, spdlog, prometheus-cpp, GoogleTest), so
# only a compiler, libc and Boost's headers are used; build, install into a
# temporary prefix, check that no publisher was installed, build
# examples/cpp-worker against the prefix, and read a segment that PUBLISHER
# (a full build's confcast-publisher) publishes.
#
# Everything it creates is removed on exit. Exit 0 when every check passes.
set -euo pipefail

if [[ $# -ne 1 || ! -x "$1" ]]; then
  echo "usage: $0 PATH-TO-confcast-publisher" >&2
  exit 2
fi
PUBLISHER=$1
SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d /tmp/confcast-reader-only-XXXXXX)
SEGMENT="confcast-test-readeronly-$$-$RANDOM"
PUBLISHER_PID=""
cleanup() {
  if [[ -n "$PUBLISHER_PID" ]]; then kill -KILL "$PUBLISHER_PID" 2>/dev/null || true; wait "$PUBLISHER_PID" 2>/dev/null || true; fi
  rm -f "/dev/shm/$SEGMENT" "/dev/shm/$SEGMENT.confcast-lock"
  rm -rf "/dev/shm/$SEGMENT.confcast-ledger"  # the worker ledger beside it
  rm -rf "$WORK"
}
trap cleanup EXIT
die() { echo "FAIL: $*" >&2; exit 1; }

hidden=()
for pkg in nlohmann_json CLI11 yaml-cpp spdlog prometheus-cpp GTest benchmark OpenSSL; do
  hidden+=("-DCMAKE_DISABLE_FIND_PACKAGE_${pkg}=ON")
done
cmake -S "$SOURCE" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DCONFCAST_BUILD_PUBLISHER=OFF \
  -DCONFCAST_BUILD_TESTS=OFF -DCONFCAST_BUILD_BENCH=OFF "${hidden[@]}" >"$WORK/configure.log" 2>&1 ||
  { cat "$WORK/configure.log" >&2; die "configure a reader-only build with only Boost's headers"; }
cmake --build "$WORK/build" -j2 >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; die "build"; }
cmake --install "$WORK/build" --prefix "$WORK/prefix" >"$WORK/install.log" 2>&1 ||
  { cat "$WORK/install.log" >&2; die "install"; }
echo "ok:   reader-only build configured, built and installed without the publisher's packages"
[[ ! -e "$WORK/prefix/bin/confcast-publisher" ]] || die "a reader-only install holds confcast-publisher"
[[ -f "$WORK/prefix/lib/libconfcast.so" ]] || die "no lib/libconfcast.so"
[[ -f "$WORK/prefix/include/confcast/subscriber.hpp" ]] || die "no include/confcast/subscriber.hpp"

cmake -S "$SOURCE/examples/cpp-worker" -B "$WORK/worker" -DCMAKE_PREFIX_PATH="$WORK/prefix" \
  >"$WORK/worker-configure.log" 2>&1 || { cat "$WORK/worker-configure.log" >&2; die "configure cpp-worker"; }
cmake --build "$WORK/worker" -j2 >"$WORK/worker-build.log" 2>&1 ||
  { cat "$WORK/worker-build.log" >&2; die "build cpp-worker against the reader-only install"; }
echo "ok:   examples/cpp-worker links confcast::subscriber from the reader-only install"

printf 'llm:\n  model: reader-only-%s\n' "$$" >"$WORK/config.yaml"
"$PUBLISHER" --config "$WORK/config.yaml" --segment "$SEGMENT" --metrics-address none --poll-seconds 0 \
  >"$WORK/publisher.log" 2>&1 &
PUBLISHER_PID=$!
# The worker polls for the segment itself: read until it answers (bounded).
for _ in $(seq 1 250); do
  if out=$("$WORK/worker/cpp-worker" "$SEGMENT" 2>&1) && grep -qxF "llm.model=reader-only-$$" <<<"$out"; then
    echo "ok:   the reader-only cpp-worker reads the published config"
    exit 0
  fi
  kill -0 "$PUBLISHER_PID" 2>/dev/null || { cat "$WORK/publisher.log" >&2; die "the publisher exited"; }
  sleep 0.04
done
echo "$out" >&2
die "the reader-only cpp-worker never read the published config"
