"""Helpers of the observability tests: real publishers, scrapes of their /metrics,
the segment as confcastctl and the C ABI see it, and inotify-based barriers.

Everything here runs real processes against real files; the fixtures in
conftest.py stop every process and remove every segment they create. Waits
are bounded polls (check, short sleep, until a deadline) or kernel events
(inotify), never a fixed sleep standing in for an event.

Threading: plain functions and objects used from pytest's main thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import math
import os
import re
import select
import signal
import socket
import struct
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

from confcast_pytest_support import remove_segment, wait_until  # noqa: F401 (re-exported)

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


# -- small utilities -----------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replaces ``path`` the way editors and kubelet do (write a temp file, rename), so a
    poll can never read a half-written file and count one change twice."""
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_bytes(data)
    os.rename(tmp, path)


# -- the publisher -----------------------------------------------------------


class Publisher:
    """A real confcast-publisher; stderr goes to a file the tests read (its log)."""

    def __init__(self, binary: str, config: Path, segment: str, log_path: Path, *extra: str,
                 metrics_address: str | None = None):
        """Serves /metrics on 127.0.0.1:<free port> unless ``metrics_address`` says otherwise."""
        if metrics_address is None:
            self.metrics_port = free_port()
            metrics_address = f"127.0.0.1:{self.metrics_port}"
        else:
            self.metrics_port = None
        self.args = [binary, "--config", str(config), "--segment", segment,
                     "--metrics-address", metrics_address, *extra]
        self.segment = segment
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> "Publisher":
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        return self

    def wait_serving(self, timeout: float = 15) -> "Publisher":
        """Until /metrics answers with a published version (the first load is done)."""
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"confcast-publisher exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                return parse_metrics(scrape(self.metrics_port)).get(("confcast_config_version", ()), 0) >= 1
            except OSError:
                return False
        wait_until(ready, timeout, f"confcast-publisher to serve /metrics on port {self.metrics_port}")
        return self

    def signal(self, signo: int) -> None:
        self.process.send_signal(signo)

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop in time; a stopped (SIGSTOP) one is resumed first."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGCONT)
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
            raise AssertionError(f"confcast-publisher ignored SIGTERM for {timeout} s:\n{self.log_text()}")

    def log_bytes(self) -> bytes:
        try:
            return self.log_path.read_bytes()
        except FileNotFoundError:
            return b""

    def log_text(self, lines: int = 40) -> str:
        return "\n".join(self.log_bytes().decode(errors="replace").splitlines()[-lines:])

    def json_log(self) -> list[dict]:
        """Every complete line of a --log-format json log, parsed (a line that is not JSON fails)."""
        records = []
        for number, raw in enumerate(self.log_bytes().split(b"\n")[:-1], 1):
            try:
                records.append(json.loads(raw.decode("utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise AssertionError(f"log line {number} is not a JSON object ({error}): {raw!r}") from None
        return records


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


class ConfcastInfo(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint64), ("published_unix_ns", ctypes.c_int64),
                ("heartbeat_unix_ns", ctypes.c_int64), ("publisher_pid", ctypes.c_int32),
                ("reload_total", ctypes.c_uint64), ("reload_errors_total", ctypes.c_uint64),
                ("sha256_hex", ctypes.c_char * 65), ("last_error", ctypes.c_char * 256)]


class SegmentReader:
    """The segment through the C ABI (confcast_info_get): exact publish times in ns."""

    def __init__(self, library_path: str, segment: str):
        self.lib = ctypes.CDLL(library_path)
        self.lib.confcast_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        self.lib.confcast_info_get.argtypes = [ctypes.c_void_p, ctypes.POINTER(ConfcastInfo)]
        self.lib.confcast_close.argtypes = [ctypes.c_void_p]
        self.lib.confcast_strerror.restype = ctypes.c_char_p
        self.handle = ctypes.c_void_p()
        rc = self.lib.confcast_open(segment.encode(), ctypes.byref(self.handle))
        if rc != 0:
            raise AssertionError(f"confcast_open({segment}): {self.lib.confcast_strerror(rc).decode()}")

    def info(self) -> ConfcastInfo:
        info = ConfcastInfo()
        rc = self.lib.confcast_info_get(self.handle, ctypes.byref(info))
        if rc != 0:
            raise AssertionError(f"confcast_info_get: {self.lib.confcast_strerror(rc).decode()}")
        return info

    def close(self) -> None:
        if self.handle:
            self.lib.confcast_close(self.handle)
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
