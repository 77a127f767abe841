#!/usr/bin/env bash
# Installs the Debian 12 packages confcast needs to build, test and run its
# demo, and nothing that is already there. Needs root (apt-get).
#   deploy/install-deps.sh            build + run + test dependencies
#   deploy/install-deps.sh --runtime  only what the demo needs to run
set -euo pipefail

build=(cmake make g++ pkg-config git ca-certificates
       libyaml-cpp-dev libssl-dev libspdlog-dev prometheus-cpp-dev nlohmann-json3-dev libcli11-dev
       libboost-dev libgtest-dev libgmock-dev libbenchmark-dev
       python3-dev)  # the Python package's C pin() (without it, pin() is pure Python)
python=(python3 python3-fastapi python3-uvicorn gunicorn python3-httpx curl)
test_only=(python3-pytest python3-yaml prometheus clang-14 libclang-rt-14-dev libfuzzer-14-dev python3-matplotlib procps
           # the packaging test: cpack -G DEB (dpkg-shlibdeps, file), man pages, lintian,
           # the unit check, and pip installing the Python package into a venv
           dpkg-dev file help2man lintian systemd adduser
           python3-venv python3-pip python3-setuptools python3-wheel)

wanted=("${build[@]}" "${python[@]}")
[[ "${1:-}" == "--runtime" ]] || wanted+=("${test_only[@]}")

missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: need root to apt-get install the packages above" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's prometheus package starts a server on :9090 through systemd where
# systemd runs; the tests start their own on a free port, so that one is not needed.
