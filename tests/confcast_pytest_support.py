"""The test-support module of the Python tests (tests/python, tests/observability)
and of tests/soak/soak.py: bounded waits, unique segment names and their removal,
free ports, atomic file replacement, and a real confcast-publisher process.

Imported by name: tests/ is on sys.path (tests/python/conftest.py adds it;
tests/observability is a package below it; soak.py adds it). Importing it also
puts subscriber/python on sys.path when no ``confcast`` package is there yet, so
that ``confcast._native.Info`` (the one ctypes ``confcast_info``) is at hand.

Threading: plain functions and objects used from one thread (pytest's main
thread, or soak.py's driver).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from signal import SIGCONT, SIGTERM

import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON_PACKAGE_DIR = REPO / "subscriber" / "python"
if importlib.util.find_spec("confcast") is None:
    sys.path.insert(0, str(PYTHON_PACKAGE_DIR))


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02):
    """Polls ``predicate`` until it returns something truthy; fails naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def unique_segment(suite: str = "pytest") -> str:
    return f"confcast-{suite}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def remove_segment(segment: str) -> None:
    """Removes a segment and what the publisher keeps beside it: its lock (NAME.confcast-lock)
    and the worker ledger (NAME.confcast-ledger/)."""
    base = segment if segment.startswith("/") else f"/dev/shm/{segment}"
    shutil.rmtree(base + ".confcast-ledger", ignore_errors=True)
    for path in (base, base + ".confcast-lock"):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


@pytest.fixture
def segment():
    """A unique segment name; the segment is removed after the test, whatever happened."""
    name = unique_segment()
    yield name
    remove_segment(name)


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_atomic(path: Path | str, data: bytes | str) -> None:
    """Replaces ``path`` the way editors and kubelet do (write a temp file, rename), so a
    watcher or a poll never reads a half-written file and never counts one change twice."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_bytes(data)
    os.rename(tmp, path)


def ctl_binary() -> str:
    """confcastctl: ``$CONFCAST_CTL``, else the one built beside ``$CONFCAST_PUBLISHER``."""
    explicit = os.environ.get("CONFCAST_CTL")
    if explicit:
        return explicit
    return str(Path(os.environ["CONFCAST_PUBLISHER"]).parents[1] / "subscriber" / "ctl" / "confcastctl")


class Publisher:
    """A real confcast-publisher on one segment; stdout and stderr are appended to
    ``log_path`` (its log, for failure messages), across restarts.

    ``metrics_address`` None serves /metrics on 127.0.0.1:<free port>
    (``metrics_port``); the default "none" serves nothing, so parallel tests
    never compete for a port. ``debounce_ms`` None keeps the publisher's default.
    """

    def __init__(self, binary: str, config: Path | str, segment: str, log_path: Path | str, *extra: str,
                 metrics_address: str | None = "none", debounce_ms: int | None = 50) -> None:
        self.metrics_port = None
        if metrics_address is None:
            self.metrics_port = free_port()
            metrics_address = f"127.0.0.1:{self.metrics_port}"
        self.config_path = Path(config)
        self.segment = segment
        self.log_path = Path(log_path)
        self.args = [binary, "--config", str(config), "--segment", segment, "--metrics-address", metrics_address,
                     *(("--debounce-ms", str(debounce_ms)) if debounce_ms is not None else ()), *extra]
        self.process: subprocess.Popen | None = None

    def start(self) -> "Publisher":
        """Starts it (again, after a stop: the log goes on)."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT)
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"confcast-publisher exited with {self.process.returncode}:\n{self.log_text()}")

    def wait_published(self, timeout: float = 10.0) -> "Publisher":
        """Until this publisher owns the segment and has published a version."""
        import confcast

        def published():
            self._check_alive()
            try:
                with confcast.Subscriber(self.segment) as sub:
                    info = sub.info()
            except (confcast.SegmentNotFound, confcast.Empty):
                return False
            return info["version"] >= 1 and info["publisher_pid"] == self.process.pid

        wait_until(published, timeout, f"publisher on {self.segment} to publish")
        return self

    def wait_serving(self, timeout: float = 15) -> "Publisher":
        """Until /metrics answers with a published version (the first load is done)."""
        import urllib.request

        def ready():
            self._check_alive()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                return False
            return any(line.startswith("confcast_config_version ") and float(line.split()[1]) >= 1
                       for line in text.splitlines())

        wait_until(ready, timeout, f"confcast-publisher to serve /metrics on port {self.metrics_port}")
        return self

    def signal(self, signo: int) -> None:
        self.process.send_signal(signo)

    def stop(self, sig: int = SIGTERM, timeout: float = 10.0) -> int | None:
        """Sends ``sig`` (a stopped, SIGSTOPed, one is resumed first) and returns the exit status;
        None if it was never started. One that ignores ``sig`` for ``timeout`` s is killed, and
        that is a failure."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(SIGCONT)
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
            raise AssertionError(f"confcast-publisher ignored signal {sig} for {timeout} s:\n{self.log_text()}")

    def log_bytes(self) -> bytes:
        try:
            return self.log_path.read_bytes()
        except FileNotFoundError:
            return b""

    def log_text(self, lines: int = 40) -> str:
        return "\n".join(self.log_bytes().decode(errors="replace").splitlines()[-lines:]) or "(no log)"

    def json_log(self) -> list[dict]:
        """Every complete line of a --log-format json log, parsed (a line that is not JSON fails)."""
        records = []
        for number, raw in enumerate(self.log_bytes().split(b"\n")[:-1], 1):
            try:
                records.append(json.loads(raw.decode("utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise AssertionError(f"log line {number} is not a JSON object ({error}): {raw!r}") from None
        return records
