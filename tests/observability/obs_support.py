"""Helpers of the observability tests: scrapes of the publisher's /metrics, the
segment as confcastctl and the C ABI see it, and inotify-based barriers. The
publisher, waits, ports and file replacement come from confcast_pytest_support
(re-exported here).

Everything here runs real processes against real files; the fixtures in
conftest.py stop every process and remove every segment they create. Waits
are bounded polls (check, short sleep, until a deadline) or kernel events
(inotify), never a fixed sleep standing in for an event.

Threading: plain functions and objects used from pytest's main thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import re
import select
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

from confcast._native import Info, Library
from confcast_pytest_support import Publisher, free_port, remove_segment, wait_until, write_atomic  # noqa: F401 (re-exported)

# A valid HolmesGPT config, well under the --max-config-bytes the counter test sets.
BASE_CONFIG = """\
llm:
  model: gpt-4o
  provider: openai
  max_retries: 3
log_level: INFO
"""

# -- binaries ------------------------------------------------------------------


class MissingBinary(Exception):
    """A binary the tests need is not configured; the message says what to set."""


def binary_from_env(variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise MissingBinary(f"${variable} is not set: point it at {what} "
                            f"(tests/run sets it; e.g. {variable}=BUILD/...)")
    if not (os.path.isfile(value) and os.access(value, os.X_OK)):
        raise MissingBinary(f"${variable}={value!r} is not an executable file ({what})")
    return value


def locate_library(ctl: str) -> str:
    """libconfcast.so: $CONFCAST_LIBRARY, else beside confcastctl in a build tree or an install prefix."""
    explicit = os.environ.get("CONFCAST_LIBRARY")
    if explicit:
        if not os.path.isfile(explicit):
            raise MissingBinary(f"$CONFCAST_LIBRARY={explicit!r} does not exist")
        return explicit
    ctl_dir = Path(ctl).resolve().parent
    for candidate in (ctl_dir.parent / "libconfcast.so", ctl_dir.parent / "lib" / "libconfcast.so"):
        if candidate.is_file():
            return str(candidate)
    raise MissingBinary("libconfcast.so not found: set $CONFCAST_LIBRARY (it is not beside $CONFCAST_CTL either)")


# -- /metrics -----------------------------------------------------------------


def scrape(port: int, timeout: float = 5) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as response:
        return response.read().decode()


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[tuple[str, tuple], float]:
    """Prometheus text format -> {(name, ((label, value), ...)): value}."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            raise AssertionError(f"unparseable /metrics line: {line!r}")
        name, labels, value = match.groups()
        key = tuple(sorted(_LABEL.findall(labels or "")))
        samples[(name, key)] = float(value)  # float() takes NaN, +Inf
    return samples


class Scrape:
    """One /metrics scrape, read by metric name."""

    def __init__(self, port: int, prefix: str = "holmesgpt"):
        self.text = scrape(port)
        self.samples = parse_metrics(self.text)
        self.prefix = prefix

    def value(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        if key not in self.samples:
            raise AssertionError(f"/metrics has no series {name}{labels or ''}:\n{self.text}")
        return self.samples[key]

    @property
    def reload_total(self) -> float:
        return self.value(f"{self.prefix}_config_reload_total")

    @property
    def reload_errors_total(self) -> float:
        return self.value(f"{self.prefix}_config_reload_errors_total")

    @property
    def last_reload_timestamp(self) -> float:
        return self.value(f"{self.prefix}_config_last_reload_timestamp")

    @property
    def version(self) -> float:
        return self.value("confcast_config_version")

    def errors_by_reason(self) -> dict[str, float]:
        return {reason: self.value("confcast_config_reload_errors_by_reason_total", reason=reason)
                for reason in REASONS}


REASONS = ("io", "too_large", "parse", "validate")


# -- the segment ---------------------------------------------------------------


def ctl(ctl_binary: str, segment: str, *args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run([ctl_binary, "--segment", segment, *args], capture_output=True, text=True,
                          timeout=timeout, errors="replace")


_ERRORS_LINE = re.compile(r"reload errors:\s*(\d+)\s*\(io (\d+), too_large (\d+), parse (\d+), validate (\d+)\)")


def ctl_status(ctl_binary: str, segment: str) -> dict:
    """`confcastctl status`, parsed: version, reloads, errors, errors_by_reason, last_error, text."""
    result = ctl(ctl_binary, segment, "status")
    if result.returncode != 0:
        raise AssertionError(f"confcastctl status exited {result.returncode}: {result.stderr}")
    fields = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    errors = _ERRORS_LINE.search(result.stdout)
    if not errors:
        raise AssertionError(f"no 'reload errors:' line in confcastctl status:\n{result.stdout}")
    counts = [int(g) for g in errors.groups()]
    return {"version": int(fields["version"]), "reloads": int(fields["reloads"]), "errors": counts[0],
            "errors_by_reason": dict(zip(REASONS, counts[1:])), "last_error": fields.get("last error", ""),
            "text": result.stdout}


class SegmentReader:
    """The segment through the C ABI (confcast_info_get): exact publish times in ns."""

    def __init__(self, library_path: str, segment: str):
        self.lib = Library(ctypes.CDLL(library_path, use_errno=True), library_path)
        self.handle = ctypes.c_void_p()
        rc = self.lib.open(segment.encode(), ctypes.byref(self.handle))
        if rc != 0:
            raise AssertionError(f"confcast_open({segment}): {self.lib.message(rc)}")

    def info(self) -> Info:
        info = Info()
        rc = self.lib.info_get(self.handle, ctypes.byref(info))
        if rc != 0:
            raise AssertionError(f"confcast_info_get: {self.lib.message(rc)}")
        return info

    def close(self) -> None:
        if self.handle:
            self.lib.close(self.handle)
            self.handle = ctypes.c_void_p()


# -- inotify: "the publisher has read the file again" ---------------------------

_IN_OPEN = 0x00000020
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class FileOpens:
    """Counts opens of one file (IN_OPEN on its inode). The publisher's poll opens the
    config every --poll-seconds; two opens after a point mean the reload of the
    first one has returned (the publisher's loop is single-threaded), a barrier
    for "the poll saw this content and did nothing"."""

    def __init__(self, path: Path):
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if _libc.inotify_add_watch(self.fd, str(path).encode(), _IN_OPEN) < 0:
            os.close(self.fd)
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")

    def wait_for(self, count: int, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        seen = 0
        while seen < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what} ({seen}/{count} opens)")
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            data = os.read(self.fd, 4096)
            offset = 0
            while offset < len(data):
                _, mask, _, name_len = struct.unpack_from("iIII", data, offset)
                offset += 16 + name_len
                if mask & _IN_OPEN:
                    seen += 1

    def close(self) -> None:
        os.close(self.fd)


def close_to(a: float, b: float, tolerance: float) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= tolerance
