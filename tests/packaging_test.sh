#!/usr/bin/env bash
# packaging_test.sh BUILD_DIR - the packages a user installs from, installed
# the way a user installs them (root, on a throwaway Debian 12 machine):
#
#   1. `cpack -G DEB` from BUILD_DIR: file name, contents, Depends; lintian
#      reports nothing (warnings included) beyond the package's overrides;
#   2. `apt-get install ./confcast_*.deb` on this machine: the confcast user,
#      /etc/confcast root:confcast 0750, `systemd-analyze verify` of the
#      installed unit; the unit's ExecStart run by hand as the confcast user,
#      the way systemd would (its RuntimeDirectory, UMask, NAME.env, %i), on
#      /etc/confcast/NAME.yaml; the segment read by a worker user in the
#      confcast group with the installed confcastctl and Debian's
#      /usr/bin/python3 (no library or PYTHONPATH variable); ExecReload's
#      SIGHUP publishes the edited config; a user outside the group is refused;
#   3. `apt-get purge`: nothing of the package is left (programs, Python
#      package, /etc/confcast, /run/confcast, the statoverride);
#   4. `pip install --no-build-isolation --no-index subscriber/python` into a
#      fresh venv, then a live segment read through it, with the library
#      the package carries.
#
# The machine is left as it was: the package purged, the confcast user and
# group removed if this test made them, every process, segment and temporary
# file removed, also on failure. It refuses to run when confcast is already
# installed or /etc/confcast exists. Exit 0 when every check passes.
set -euo pipefail

if [[ $# -ne 1 || ! -f "$1/CMakeCache.txt" || ! -f "$1/CPackConfig.cmake" ]]; then
  echo "usage: $0 BUILD_DIR   (a configured confcast build tree with the publisher)" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "$0: installs a Debian package: needs root" >&2
  exit 2
fi
if dpkg-query -W -f='${Status}' confcast 2>/dev/null | grep -q "installed"; then
  echo "$0: the confcast package is installed on this machine; not touching it" >&2
  exit 2
fi
if [[ -e /etc/confcast ]]; then
  echo "$0: /etc/confcast exists without the package; not touching it" >&2
  exit 2
fi

WORK=$(mktemp -d /tmp/confcast-packaging-test-XXXXXX)
chmod 0755 "$WORK"  # the worker users below run from here
NAME="packaging-test-$$"
SHM_SEGMENT="cc-packaging-$$-$RANDOM$RANDOM"
WORKER=nobody         # the worker user: exists on every Debian system
PUBLISHER_PID=""
VENV_PUBLISHER_PID=""
INSTALLED=0
USER_EXISTED=0; getent passwd confcast >/dev/null && USER_EXISTED=1
GROUP_EXISTED=0; getent group confcast >/dev/null && GROUP_EXISTED=1
FAILURES=0
export DEBIAN_FRONTEND=noninteractive PYTHONDONTWRITEBYTECODE=1
# The installed package must find its library by itself: none of the
# variables a source-tree run uses.
unset CONFCAST_LIBRARY PYTHONPATH CONFCAST_SEGMENT CONFCAST_SEGMENT_OWNER CONFIG_FILE

fail() { echo "FAIL: $*" >&2; FAILURES=$((FAILURES + 1)); }
pass() { echo "ok:   $*"; }
check() {  # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@" >"$WORK/out" 2>&1; then pass "$what"; else fail "$what"; sed 's/^/      /' "$WORK/out" >&2; fi
}
stop() {  # stop PID: SIGTERM (the unit's KillSignal), at most 5 s to exit, then SIGKILL
  local pid=$1
  if [[ -z "$pid" ]] || ! kill -TERM "$pid" 2>/dev/null; then return 0; fi
  timeout 5 tail --pid="$pid" -s 0.02 -f /dev/null || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop "$PUBLISHER_PID"
  stop "$VENV_PUBLISHER_PID"
  rm -f "/dev/shm/$SHM_SEGMENT" "/dev/shm/$SHM_SEGMENT.confcast-lock"
  rm -rf "/dev/shm/$SHM_SEGMENT.confcast-ledger"
  if ((INSTALLED)); then
    apt-get purge -y -qq confcast >/dev/null 2>&1 || dpkg --purge confcast >/dev/null 2>&1 || true
  fi
  if ((!USER_EXISTED)) && getent passwd confcast >/dev/null; then deluser --system --quiet confcast >/dev/null 2>&1 || true; fi
  if ((!GROUP_EXISTED)) && getent group confcast >/dev/null; then delgroup --system --quiet confcast >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

expect_eq() {  # expect_eq DESCRIPTION EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi
}
as_worker() {  # as_worker [--no-group] COMMAND...: the worker user, in the confcast group or not
  local groups=confcast
  if [[ "$1" == --no-group ]]; then groups=nogroup; shift; fi
  (cd "$WORK" && setpriv --reuid="$WORKER" --regid=nogroup --groups="$groups" -- \
     env CONFCAST_SEGMENT_OWNER="$(id -u confcast)" "$@")
}

VERSION=$(sed -nE 's/^project\(confcast VERSION ([0-9.]+).*/\1/p' "$SOURCE/CMakeLists.txt")
ARCH=$(dpkg --print-architecture)
DEB="$WORK/confcast_${VERSION}_${ARCH}.deb"

# -- 1. the .deb ---------------------------------------------------------------
echo "packaging_test: cpack -G DEB in $BUILD"
(cd "$WORK" && cpack -G DEB -B "$WORK" --config "$BUILD/CPackConfig.cmake" >"$WORK/cpack.log" 2>&1) ||
  { cat "$WORK/cpack.log" >&2; fail "cpack -G DEB"; exit 1; }
[[ -f "$DEB" ]] || { ls "$WORK" >&2; fail "cpack made no $(basename "$DEB")"; exit 1; }
pass "cpack made $(basename "$DEB")"

dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' >"$WORK/contents"
for path in /usr/bin/confcast-publisher /usr/bin/confcastctl /usr/lib/libconfcast.so /usr/lib/libconfcast.so.0 \
            /usr/include/confcast/confcast.h /usr/include/confcast/subscriber.hpp \
            /usr/lib/cmake/confcast/confcastConfig.cmake /usr/lib/pkgconfig/confcast.pc \
            /usr/lib/python3/dist-packages/confcast/__init__.py /usr/lib/python3/dist-packages/confcast/_native.py \
            /usr/lib/python3/dist-packages/confcast/_pin.abi3.so \
            /lib/systemd/system/confcast-publisher@.service /etc/confcast/ \
            /usr/share/doc/confcast/copyright /usr/share/doc/confcast/examples/holmesgpt.yaml \
            /usr/share/man/man1/confcast-publisher.1.gz /usr/share/man/man1/confcastctl.1.gz; do
  grep -qxF "$path" "$WORK/contents" || fail "the package lacks $path"
done
pass "the package holds the programs, library, headers, CMake/pkg-config files, Python package, unit, docs"
if grep -q "dist-packages/confcast/libconfcast" "$WORK/contents"; then fail "a library copy inside the Python package"; fi
depends=$(dpkg-deb -f "$DEB" Depends)
for dep in python3 adduser libc6 libstdc++6 libyaml-cpp libssl3 libspdlog; do
  [[ "$depends" == *"$dep"* ]] || fail "Depends lacks $dep: $depends"
done
pass "Depends (dpkg-shlibdeps + python3, adduser): $depends"
expect_eq "Version is project(confcast VERSION)" "$VERSION" "$(dpkg-deb -f "$DEB" Version)"

# Errors and warnings fail; the overrides the package ships say why each is accepted.
check "lintian: no errors, no warnings" lintian --fail-on error,warning "$DEB"

# -- 2. installed ----------------------------------------------------------------
INSTALLED=1
check "apt-get install $(basename "$DEB")" apt-get install -y -qq --no-install-recommends "$DEB"
if [[ $(id -u confcast) -lt 1000 && $(id -gn confcast) == confcast ]]; then
  pass "confcast is a system user with its own group"
else
  fail "confcast: $(id confcast 2>&1)"
fi
expect_eq "/etc/confcast is root:confcast 0750" "root:confcast 750" "$(stat -c '%U:%G %a' /etc/confcast)"

UNIT=/lib/systemd/system/confcast-publisher@.service
# An instance of the installed template, as systemctl enable would load it.
check "systemd-analyze verify confcast-publisher@$NAME.service prints nothing" \
  bash -c "out=\$(systemd-analyze verify --man=no '$UNIT:confcast-publisher@$NAME.service' 2>&1); echo \"\$out\"; [[ -z \"\$out\" ]]"

install -o root -g confcast -m 0640 /usr/share/doc/confcast/examples/holmesgpt.yaml "/etc/confcast/$NAME.yaml"
sed -i 's/^  model: gpt-4o /  model: packaged-1 /' "/etc/confcast/$NAME.yaml"
# No metrics port (a CI machine may serve 9464 already), and no watch, so
# only the reload below can publish the edit.
printf 'CONFCAST_METRICS_ADDRESS=none\nCONFCAST_PUBLISHER_ARGS=--no-watch --log-format json\n' \
  | install -o root -g confcast -m 0640 /dev/stdin "/etc/confcast/$NAME.env"

# ExecStart as systemd runs it: %i, then the unit's Environment= defaults
# overridden by NAME.env, as the confcast user, with the RuntimeDirectory
# (0755, the user's) and the UMask the unit sets.
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
exec_start=${exec_start//%i/$NAME}
runtime_mode=$(sed -n 's/^RuntimeDirectoryMode=//p' "$UNIT")
umask_value=$(sed -n 's/^UMask=//p' "$UNIT")
install -d -o confcast -g confcast -m "$runtime_mode" /run/confcast
(
  # KEY=VALUE lines, the value taken whole (spaces included) as systemd does.
  while IFS='=' read -r key value; do
    [[ -n "$key" && "$key" != \#* ]] && export "$key=$value"
  done < <(sed -n 's/^Environment=//p' "$UNIT"; cat "/etc/confcast/$NAME.env")
  umask "$umask_value"
  cd /
  eval "exec setpriv --reuid=confcast --regid=confcast --init-groups --no-new-privs -- $exec_start"
) >"$WORK/publisher.log" 2>&1 &
PUBLISHER_PID=$!
SEGMENT=/run/confcast/$NAME

# confcastctl wait needs the segment to exist: wait (bounded) for the
# publisher to create it, or to die.
for _ in $(seq 1 500); do
  [[ -e "$SEGMENT" ]] || ! kill -0 "$PUBLISHER_PID" 2>/dev/null && break
  sleep 0.02
done
if as_worker /usr/bin/confcastctl --segment "$SEGMENT" wait --after 0 --timeout 10 >/dev/null; then
  pass "the unit's ExecStart published $SEGMENT"
else
  fail "no version in $SEGMENT within 10 s"; cat "$WORK/publisher.log" >&2
fi
expect_eq "/run/confcast is confcast's, 0755" "confcast:confcast 755" "$(stat -c '%U:%G %a' /run/confcast)"
expect_eq "the segment is confcast's, 0640" "confcast:confcast 640" "$(stat -c '%U:%G %a' "$SEGMENT")"
expect_eq "confcastctl (worker in the confcast group) reads llm.model" "packaged-1" \
  "$(as_worker /usr/bin/confcastctl --segment "$SEGMENT" get llm.model 2>&1)"

read_with_debian_python() {  # prints: where the package came from, whether the library is mapped, llm.model, then its pin()
  as_worker /usr/bin/python3 -c '
import sys, confcast, confcast._native as native
with confcast.Subscriber(sys.argv[1]) as sub:
    model = sub.get("llm.model")
    print(confcast.__file__)
    print(open("/proc/self/maps").read().count("/usr/lib/libconfcast.so.0"))
    print(model)
    with sub.pin() as snap:
        print(type(sub.pin()).__module__, native.library().pin_extension, sub.ledger_entry()["held"])' "$SEGMENT" 2>&1
}
mapfile -t py < <(read_with_debian_python)
expect_eq "/usr/bin/python3 imports the packaged confcast" \
  "/usr/lib/python3/dist-packages/confcast/__init__.py" "${py[0]:-}"
if [[ "${py[1]:-0}" =~ ^[1-9] ]]; then
  pass "it loaded /usr/lib/libconfcast.so.0 (no environment variable)"
else
  fail "it did not map /usr/lib/libconfcast.so.0: ${py[*]}"
fi
expect_eq "/usr/bin/python3 reads llm.model" "packaged-1" "${py[2]:-}"
expect_eq "its pin() is the packaged C one, and holds" \
  "confcast._pin /usr/lib/python3/dist-packages/confcast/_pin.abi3.so 1" "${py[3]:-}"

# ExecReload: the unit's own command, with $MAINPID.
sed -i 's/^  model: packaged-1 /  model: packaged-2 /' "/etc/confcast/$NAME.yaml"
reload=$(sed -n 's/^ExecReload=//p' "$UNIT")
reload=${reload//\$MAINPID/$PUBLISHER_PID}
# shellcheck disable=SC2086  # the unit's command line, split as systemd splits it
check "ExecReload ($reload)" $reload
check "the reload published version 2" as_worker /usr/bin/confcastctl --segment "$SEGMENT" wait --after 1 --timeout 10
expect_eq "confcastctl reads the reloaded llm.model" "packaged-2" \
  "$(as_worker /usr/bin/confcastctl --segment "$SEGMENT" get llm.model 2>&1)"

set +e
as_worker --no-group /usr/bin/confcastctl --segment "$SEGMENT" get llm.model >"$WORK/out" 2>&1
refused=$?
set -e
expect_eq "a user outside the confcast group is refused (confcastctl exit 5)" 5 "$refused"

stop "$PUBLISHER_PID"
PUBLISHER_PID=""
check "SIGTERM left the segment for the workers" test -f "$SEGMENT"

# Where systemd is the init system, the instance itself: start, read,
# reload, stop. (Elsewhere, e.g. in a container, the run by hand above is
# as far as the machine allows.)
if [[ -d /run/systemd/system ]]; then
  INSTANCE="confcast-publisher@$NAME.service"
  sed -i 's/^  model: packaged-2 /  model: packaged-3 /' "/etc/confcast/$NAME.yaml"
  check "systemctl start $INSTANCE" systemctl start "$INSTANCE"
  check "the service published the edited config (version 3)" \
    as_worker /usr/bin/confcastctl --segment "$SEGMENT" wait --after 2 --timeout 10
  expect_eq "confcastctl reads the service's llm.model" "packaged-3" \
    "$(as_worker /usr/bin/confcastctl --segment "$SEGMENT" get llm.model 2>&1)"
  sed -i 's/^  model: packaged-3 /  model: packaged-4 /' "/etc/confcast/$NAME.yaml"
  check "systemctl reload $INSTANCE" systemctl reload "$INSTANCE"
  check "the reload published version 4" \
    as_worker /usr/bin/confcastctl --segment "$SEGMENT" wait --after 3 --timeout 10
  check "systemctl stop $INSTANCE" systemctl stop "$INSTANCE"
  expect_eq "it stopped cleanly" "inactive" "$(systemctl is-active "$INSTANCE" 2>&1)"
  systemctl reset-failed "$INSTANCE" 2>/dev/null || true
else
  echo "skip: systemd is not the init system here: the unit is verified and its ExecStart run by hand"
fi

# -- 3. purged -------------------------------------------------------------------
check "apt-get purge confcast" apt-get purge -y -qq confcast
INSTALLED=0
if dpkg-query -W -f='${Status}' confcast 2>/dev/null | grep -q installed; then
  fail "dpkg still lists confcast as installed"
fi
for path in /usr/bin/confcast-publisher /usr/lib/libconfcast.so.0 /usr/lib/python3/dist-packages/confcast \
            "$UNIT" /etc/confcast /run/confcast; do
  [[ ! -e "$path" ]] || fail "purge left $path"
done
pass "purge removed the files, /etc/confcast and /run/confcast"
check "purge removed the statoverride" bash -c '! dpkg-statoverride --list /etc/confcast'

# -- 4. pip into a fresh venv --------------------------------------------------------
# --system-site-packages: Debian's wheel (and an app's gunicorn, uvicorn,
# fastapi) come from Debian's dist-packages; pip never reaches an index.
/usr/bin/python3 -m venv --system-site-packages "$WORK/venv"
check "pip install --no-build-isolation --no-index subscriber/python" \
  env CMAKE_BUILD_PARALLEL_LEVEL="${JOBS:-2}" "$WORK/venv/bin/pip" install -q --no-build-isolation --no-index \
  "$SOURCE/subscriber/python"
site=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
check "the venv's confcast carries libconfcast.so" test -f "$site/confcast/libconfcast.so"
venv_version=$("$WORK/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("confcast"))')
expect_eq "the Python package's version is project(confcast VERSION)" "$VERSION" "$venv_version"

printf 'llm:\n  model: from-venv\n' >"$WORK/venv.yaml"
"$BUILD/publisher/confcast-publisher" --config "$WORK/venv.yaml" --segment "$SHM_SEGMENT" \
  --metrics-address none >"$WORK/venv-publisher.log" 2>&1 &
VENV_PUBLISHER_PID=$!
(cd "$WORK" && "$WORK/venv/bin/python" -c '
import sys, confcast, confcast._native as native
with confcast.Subscriber(sys.argv[1]) as sub:
    if sub.wait(0, timeout=10.0) is None:
        sys.exit("nothing published within 10 s")
    print(confcast.__file__)
    print(native.library().path)
    print(sub.get("llm.model"))
    print(native.library().pin_extension)' "$SHM_SEGMENT") >"$WORK/venv-read" 2>&1 || { cat "$WORK/venv-read" "$WORK/venv-publisher.log" >&2; }
mapfile -t py <"$WORK/venv-read"
expect_eq "the venv imports its own confcast" "$site/confcast/__init__.py" "${py[0]:-}"
expect_eq "it loads the library inside the package" "$site/confcast/libconfcast.so" "${py[1]:-}"
expect_eq "it reads the live segment" "from-venv" "${py[2]:-}"
expect_eq "its pin() is the C one inside the package" "$site/confcast/_pin.abi3.so" "${py[3]:-}"
stop "$VENV_PUBLISHER_PID"
VENV_PUBLISHER_PID=""

if ((FAILURES)); then
  echo "packaging_test: $FAILURES check(s) failed" >&2
  exit 1
fi
echo "packaging_test: all checks passed"
