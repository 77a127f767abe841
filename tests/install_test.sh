#!/usr/bin/env bash
# install_test.sh BUILD_DIR - the install test: `cmake --install` the build
# tree into a temporary prefix, check the installed layout, build
# examples/cpp-worker (an outside project) against that prefix with
# find_package(confcast) and a C worker with pkg-config, then run the
# installed publisher on a temporary config and check what the workers print,
# before and after a hot reload.
#
# Everything it creates (prefix, build dirs, config, segment, publisher
# process) is removed on exit, also on failure. Exit 0 when every check passes.
set -euo pipefail

if [[ $# -ne 1 || ! -f "$1/CMakeCache.txt" ]]; then
  echo "usage: $0 BUILD_DIR   (a configured confcast build tree)" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d /tmp/confcast-install-test-XXXXXX)
PREFIX="$WORK/prefix"
SEGMENT="cc-install-$$-$RANDOM$RANDOM"
PUBLISHER_PID=""
FAILURES=0

cleanup() {
  if [[ -n "$PUBLISHER_PID" ]] && kill -0 "$PUBLISHER_PID" 2>/dev/null; then
    kill -TERM "$PUBLISHER_PID" 2>/dev/null || true
    for _ in $(seq 1 250); do kill -0 "$PUBLISHER_PID" 2>/dev/null || break; sleep 0.02; done
    kill -KILL "$PUBLISHER_PID" 2>/dev/null || true
    wait "$PUBLISHER_PID" 2>/dev/null || true
  fi
  rm -f "/dev/shm/$SEGMENT" "/dev/shm/$SEGMENT.confcast-lock"
  rm -rf "/dev/shm/$SEGMENT.confcast-ledger"  # the worker ledger beside it
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; FAILURES=$((FAILURES + 1)); }
pass() { echo "ok:   $*"; }
check() {  # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
die() { echo "FAIL: $*" >&2; exit 1; }

# A sanitizer build installs an instrumented libconfcast.so; its consumers
# must be built the same way to load it.
SANITIZE=$(sed -n 's/^CONFCAST_SANITIZE:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
case "$SANITIZE" in
  "") SAN_FLAGS="" ;;
  address) SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" ;;
  thread) SAN_FLAGS="-fsanitize=thread" ;;
  *) die "unknown CONFCAST_SANITIZE '$SANITIZE' in $BUILD" ;;
esac

# --- build what is installed, then install ---------------------------------
cmake --build "$BUILD" -j2 --target confcast-publisher confcastctl confcast >"$WORK/build.log" 2>&1 ||
  { tail -n 40 "$WORK/build.log" >&2; die "building the install targets"; }
cmake --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log" 2>&1 ||
  { cat "$WORK/install.log" >&2; die "cmake --install"; }
pass "cmake --install $BUILD --prefix $PREFIX"

# --- the installed layout ---------------------------------------------------
check "P/bin/confcast-publisher is executable" test -x "$PREFIX/bin/confcast-publisher"
check "P/bin/confcastctl is executable" test -x "$PREFIX/bin/confcastctl"
check "P/lib/libconfcast.so exists" test -e "$PREFIX/lib/libconfcast.so"
check "P/include/confcast/confcast.h exists" test -f "$PREFIX/include/confcast/confcast.h"
check "P/lib/libconfcast_subscriber.a exists (confcast::subscriber is a compiled library)" \
  test -e "$PREFIX/lib/libconfcast_subscriber.a" -o -e "$PREFIX/lib/libconfcast_subscriber.so"
# Exactly the headers a user's #include reaches: the public API and the
# layout headers it includes; no internal header of the libraries.
expected_headers="confcast.h holmesgpt.hpp layout.hpp lookup.hpp read_section.hpp segment_mapping.hpp snapshot.hpp
snapshot_format.hpp status.hpp subscriber.hpp word_access.hpp"
installed_headers=$(cd "$PREFIX/include/confcast" && ls | sort | tr '\n' ' ')
check "P/include/confcast holds the public headers only ($installed_headers)" \
  test "$installed_headers" = "$(echo $expected_headers | tr ' ' '\n' | sort | tr '\n' ' ')"
# The public headers leave no macro behind but their include guards, and
# include no Linux system-call header and no Boost.
if printf '#include <confcast/subscriber.hpp>\n#include <confcast/holmesgpt.hpp>\nint main() { return 0; }\n' |
    c++ -std=c++17 -x c++ -I"$PREFIX/include" -E -dM - -o "$WORK/macros.txt" 2>"$WORK/pp.log"; then
  leaked=$(grep -oE '#define CONFCAST_[A-Z0-9_]+' "$WORK/macros.txt" | grep -vE '_HPP_$|_H_$' || true)
  check "the public headers leave no CONFCAST_ macro behind (${leaked:-none})" test -z "$leaked"
else
  cat "$WORK/pp.log" >&2
  fail "the public headers preprocess against the prefix alone"
fi
syscall_headers=$(printf '#include <confcast/subscriber.hpp>\n' | c++ -std=c++17 -x c++ -I"$PREFIX/include" -H -fsyntax-only - 2>&1 |
  grep -E 'linux/futex.h|sys/syscall.h|boost/' || true)
check "the public headers include no Linux system-call header and no Boost" test -z "$syscall_headers"
check "P/lib/cmake/confcast/confcastConfig.cmake exists" test -f "$PREFIX/lib/cmake/confcast/confcastConfig.cmake"
check "P/lib/cmake/confcast/confcastConfigVersion.cmake exists" \
  test -f "$PREFIX/lib/cmake/confcast/confcastConfigVersion.cmake"
check "P/lib/pkgconfig/confcast.pc exists" test -f "$PREFIX/lib/pkgconfig/confcast.pc"

# Nothing installed outside the prefix, and nothing installed points back
# into the source or build tree.
outside=$(grep -v "^$PREFIX/" "$BUILD/install_manifest.txt" || true)
check "every installed file is under the prefix" test -z "$outside"
[[ -z "$outside" ]] || echo "$outside" >&2
leaks=$(grep -rlE "$SOURCE/|$BUILD/" "$PREFIX/lib/cmake" "$PREFIX/lib/pkgconfig" 2>/dev/null || true)
check "installed CMake/pkg-config files do not reference the source or build tree" test -z "$leaks"
[[ -z "$leaks" ]] || echo "$leaks" >&2

# libconfcast.so exports the C ABI and nothing else.
if [[ -e "$PREFIX/lib/libconfcast.so" ]]; then
  exported=$(nm -D --defined-only "$PREFIX/lib/libconfcast.so" | awk '$2 != "A" {print $3}' | sed 's/@.*//' | sort -u)
  foreign=$(echo "$exported" | grep -v '^confcast_' || true)
  check "libconfcast.so exports only confcast_* symbols" test -z "$foreign"
  [[ -z "$foreign" ]] || echo "unexpected exports: $foreign" >&2
  for fn in open close version get_int get_double get_bool get_string get_json snapshot_json wait info_get strerror \
            key_new key_free get_int_key get_double_key get_bool_key get_string_key; do
    check "libconfcast.so exports confcast_$fn" grep -qx "confcast_$fn" <<<"$exported"
  done
fi

# --- an outside project: find_package(confcast) ----------------------------
WORKER_BUILD="$WORK/cpp-worker-build"
if cmake -S "$SOURCE/examples/cpp-worker" -B "$WORKER_BUILD" -DCMAKE_PREFIX_PATH="$PREFIX" \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="$SAN_FLAGS" -DCMAKE_CXX_FLAGS="$SAN_FLAGS" \
      -DCMAKE_EXE_LINKER_FLAGS="$SAN_FLAGS" >"$WORK/worker-configure.log" 2>&1; then
  pass "examples/cpp-worker configures against the prefix"
else
  cat "$WORK/worker-configure.log" >&2
  die "examples/cpp-worker does not configure against $PREFIX"
fi
found_dir=$(sed -n 's/^confcast_DIR:PATH=//p' "$WORKER_BUILD/CMakeCache.txt")
check "find_package(confcast) found the installed package (confcast_DIR=$found_dir)" \
  test "$found_dir" = "$PREFIX/lib/cmake/confcast"
if cmake --build "$WORKER_BUILD" -j2 >"$WORK/worker-build.log" 2>&1; then
  pass "examples/cpp-worker builds"
else
  cat "$WORK/worker-build.log" >&2
  die "examples/cpp-worker does not build against $PREFIX"
fi

# --- a C program through pkg-config ----------------------------------------
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
pc_prefix=$(pkg-config --variable=prefix confcast 2>/dev/null || true)
check "confcast.pc's prefix is the install prefix ($pc_prefix)" test "$(realpath -m "$pc_prefix")" = "$PREFIX"
pc_flags=$(pkg-config --cflags --libs confcast)
C_WORKER="$WORK/c-worker"
# shellcheck disable=SC2086  # the flags are words
if cc -std=c11 -Wall -Wextra -Werror $SAN_FLAGS "$SOURCE/examples/cpp-worker/c_worker.c" $pc_flags \
      -Wl,-rpath,"$PREFIX/lib" -o "$C_WORKER" 2>"$WORK/c-worker.log"; then
  pass "c_worker.c builds with pkg-config confcast ($pc_flags)"
else
  cat "$WORK/c-worker.log" >&2
  fail "c_worker.c builds with pkg-config confcast ($pc_flags)"
  C_WORKER=""
fi

# --- run the installed publisher and the workers ---------------------------
CONFIG="$WORK/config.yaml"
write_config() {  # write_config MODEL RETRIES: replaced atomically, as an editor does
  cat >"$CONFIG.tmp" <<EOF
llm:
  model: $1
  provider: openai
  max_retries: $2
  temperature: 0.25
toolsets:
  kubernetes/core:
    enabled: true
log_level: info
EOF
  mv -f "$CONFIG.tmp" "$CONFIG"
}
MODEL1="install-model-$RANDOM"
MODEL2="install-model-$RANDOM-reloaded"
write_config "$MODEL1" 4

"$PREFIX/bin/confcast-publisher" --config "$CONFIG" --segment "$SEGMENT" --metrics-address none \
  --debounce-ms 20 --poll-seconds 0 >"$WORK/publisher.log" 2>&1 &
PUBLISHER_PID=$!

# The segment appears when the publisher has started: no event to wait on, so poll (bounded).
ctl() { "$PREFIX/bin/confcastctl" --segment "$SEGMENT" "$@"; }
ready=""
for _ in $(seq 1 500); do
  if ctl wait --after 0 --timeout 1 >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$PUBLISHER_PID" 2>/dev/null || break
  sleep 0.02
done
if [[ -z "$ready" ]]; then
  cat "$WORK/publisher.log" >&2
  die "the installed publisher did not publish version 1 within 10 s"
fi
pass "the installed confcast-publisher published version 1"
check "installed confcastctl get llm.model" test "$(ctl get llm.model)" = "$MODEL1"

expect_output() {  # expect_output DESCRIPTION OUTPUT LINE...
  local what=$1 output=$2; shift 2
  local line ok=1
  for line in "$@"; do
    grep -qxF "$line" <<<"$output" || { ok=""; echo "missing line '$line' in:" >&2; echo "$output" >&2; }
  done
  check "$what" test -n "$ok"
}

out=$("$WORKER_BUILD/cpp-worker" "$SEGMENT" 2>&1) || fail "cpp-worker exited $? : $out"
expect_output "cpp-worker prints llm.model, the version and a Key read" "$out" \
  "llm.model=$MODEL1" "version=1" "llm.provider=openai" "llm.temperature=0.25" "llm.max_retries=4 (version 1)"
if [[ -n "$C_WORKER" ]]; then
  out=$("$C_WORKER" "$SEGMENT" 2>&1) || fail "c-worker exited $? : $out"
  expect_output "c-worker (pkg-config) prints llm.model and the version" "$out" \
    "llm.model=$MODEL1" "version=1" "llm.max_retries=4"
fi
out=$("$WORKER_BUILD/c-worker-cmake" "$SEGMENT" 2>&1) || fail "c-worker-cmake exited $? : $out"
expect_output "c-worker (confcast::c) prints llm.model and the version" "$out" "llm.model=$MODEL1" "version=1"

# A worker waiting for the next version wakes on the hot reload.
"$WORKER_BUILD/cpp-worker" "$SEGMENT" --wait-after 1 --timeout-ms 15000 >"$WORK/waiter.out" 2>&1 &
WAITER_PID=$!
write_config "$MODEL2" 6
if wait "$WAITER_PID"; then
  expect_output "a waiting cpp-worker sees the reloaded version" "$(cat "$WORK/waiter.out")" \
    "llm.model=$MODEL2" "version=2" "llm.max_retries=6 (version 2)"
else
  cat "$WORK/waiter.out" "$WORK/publisher.log" >&2
  fail "the waiting cpp-worker saw no reload"
fi

out=$("$WORKER_BUILD/cpp-worker" "${SEGMENT}-missing" 2>&1) && rc=0 || rc=$?
check "cpp-worker exits 2 for a missing segment" test "$rc" -eq 2

kill -TERM "$PUBLISHER_PID"
publisher_rc=0
wait "$PUBLISHER_PID" || publisher_rc=$?
PUBLISHER_PID=""
check "the installed publisher stops cleanly on SIGTERM (exit $publisher_rc)" test "$publisher_rc" -eq 0

if [[ $FAILURES -ne 0 ]]; then
  echo "install test: $FAILURES check(s) failed" >&2
  exit 1
fi
echo "install test: all checks passed"
