"""Helpers of the Python package tests: realistic HolmesGPT configs, kubelet-style
ConfigMap updates, and HTTP against a real gunicorn. The publisher, waits, segment
names and ports come from confcast_pytest_support (re-exported here for the tests
that import them from this module).

Everything here starts real processes and touches real files; every process
started is stopped, and every segment removed, by the fixture that made it
(conftest.py). Waits are bounded polling loops (check, short sleep, until a
deadline), never one fixed sleep.

Threading: the helpers are plain functions; ``sample()`` fans HTTP requests
out over a thread pool and collects the answers.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from confcast_pytest_support import (PYTHON_PACKAGE_DIR, REPO, Publisher, free_port,  # noqa: F401 (re-exported)
                                     remove_segment, unique_segment, wait_until)

DEMO_DIR = REPO / "examples" / "holmesgpt_api"


def holmes_config(model: str = "gpt-4o", *, provider: str = "openai", endpoint: str | None = None,
                  max_retries: int = 3, timeout_seconds: int = 60, temperature: str = "0.0",
                  log_level: str = "INFO", prometheus_enabled: bool = False) -> str:
    """A realistic HolmesGPT config (YAML text), with the knobs the tests turn."""
    return f"""\
llm:
  model: {model}
  provider: {provider}
  endpoint: {'null' if endpoint is None else endpoint}
  max_retries: {max_retries}
  timeout_seconds: {timeout_seconds}
  temperature: {temperature}
toolsets:
  kubernetes/core:
    enabled: true
    config:
      namespaces: [default, monitoring, kube-system]
  kubernetes/logs: {{}}
  prometheus/metrics:
    enabled: {'true' if prometheus_enabled else 'false'}
    config:
      prometheus_url: http://prometheus.monitoring:9090
log_level: {log_level}
"""


class KubeletVolume:
    """A ConfigMap or Secret volume with several keys, as the kubelet writes and updates it:
    one file per key, all of them swapped together by one rename of ``..data``.

        DIR/KEY   -> ..data/KEY         (one symlink per key)
        DIR/..data -> ..TIMESTAMP       (a directory holding every key's file)

    ``update`` writes every key of the new version into a new timestamped directory, adds
    the symlinks of new keys, swaps ``..data``, then removes the symlinks of keys that are
    gone and the old directory, in the kubelet's order.
    """

    def __init__(self, directory: Path, files: dict[str, str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._counter = 0
        self.files = dict(files)
        self._current = self._write_version_dir(files)
        os.symlink(self._current, self.directory / "..data")
        for key in files:
            os.symlink(f"..data/{key}", self.directory / key)

    def _write_version_dir(self, files: dict[str, str]) -> str:
        self._counter += 1
        name = time.strftime("..%Y_%m_%d_%H_%M_%S.") + f"{time.time_ns() % 10**9:09d}{self._counter:04d}"
        version_dir = self.directory / name
        version_dir.mkdir()
        for key, text in files.items():
            (version_dir / key).write_text(text)
        return name

    def update(self, files: dict[str, str]) -> None:
        new = self._write_version_dir(files)
        for key in files.keys() - self.files.keys():
            os.symlink(f"..data/{key}", self.directory / key)
        tmp_link = self.directory / "..data_tmp"
        os.symlink(new, tmp_link)
        os.rename(tmp_link, self.directory / "..data")
        for key in self.files.keys() - files.keys():
            os.unlink(self.directory / key)
        shutil.rmtree(self.directory / self._current)
        self._current = new
        self.files = dict(files)


class KubeletConfigMap(KubeletVolume):
    """A ConfigMap volume with one key, as the kubelet writes it, updated the way the kubelet updates it.

        DIR/config.yaml -> ..data/config.yaml
        DIR/..data      -> ..2024_01_01_00_00_00.123456789   (a directory)

    An update writes a new timestamped directory, points ``..data_tmp`` at it,
    renames ``..data_tmp`` over ``..data`` (atomic), then removes the old
    directory.
    """

    def __init__(self, directory: Path, text: str, file_name: str = "config.yaml") -> None:
        super().__init__(directory, {file_name: text})
        self.file_name = file_name
        self.path = self.directory / file_name

    def update(self, text: str) -> None:  # type: ignore[override]
        super().update({self.file_name: text})

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


class Answer:
    """One HTTP answer: status, headers (lower-case names), body, and when it was asked and answered."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes, sent_at: float, received_at: float) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.sent_at = sent_at          # time.monotonic() before connecting
        self.received_at = received_at  # time.monotonic() after the whole body arrived

    @property
    def pid(self) -> int:
        return int(self.headers["x-worker-pid"])

    def json(self):
        return json.loads(self.body)


def request(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 10.0) -> Answer:
    """One request on a new connection (so that successive requests spread over the workers)."""
    sent_at = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Connection": "close"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body, sent_at,
                      time.monotonic())
    finally:
        conn.close()


def analyze(port: int) -> Answer:
    return request(port, "POST", "/api/v1/incident/analyze", b'{"question": "why is my pod crashlooping?"}')


_pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="http-sample")


def sample(call, count: int = 16) -> list[Answer]:
    """``count`` concurrent calls of ``call()``; concurrency makes every worker accept some."""
    return list(_pool.map(lambda _: call(), range(count)))


class DemoServer:
    """gunicorn -w N -k uvicorn.workers.UvicornWorker serving examples/holmesgpt_api/app.py."""

    def __init__(self, segment: str, log_path: Path, *, workers: int = 4, env: dict[str, str] | None = None,
                 config_file: Path | None = None, command: list[str] | None = None) -> None:
        self.segment = segment
        self.config_file = config_file
        self.command = command  # instead of the gunicorn command below (e.g. examples/run-demo)
        self.workers = workers
        self.port = free_port()
        self.log_path = log_path
        self.env = {
            **os.environ,
            "CONFCAST_SEGMENT": segment,
            "PYTHONPATH": str(PYTHON_PACKAGE_DIR),
            "CONFCAST_DEMO_TEST_ROUTES": "1",
            "CONFCAST_START_PUBLISHER": "0",
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "DemoServer":
        # The documented gunicorn command, plus a bind address (and -c when a test wants the hooks).
        command = ["/usr/bin/gunicorn", "--chdir", str(DEMO_DIR), "-w", str(self.workers),
                   "-k", "uvicorn.workers.UvicornWorker", "-b", f"127.0.0.1:{self.port}", "app:app"]
        if self.config_file is not None:
            command[1:1] = ["-c", str(self.config_file)]
        if self.command is not None:
            command = self.command
        with open(self.log_path, "ab") as log:
            # Own session: teardown can signal the whole group we created (master + workers).
            self.process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def wait_serving(self, timeout: float = 30.0) -> None:
        def serving():
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                return request(self.port, "GET", "/healthz", timeout=2).status == 200
            except OSError:
                return False

        wait_until(serving, timeout, "gunicorn to serve /healthz", interval=0.1)

    def all_worker_answers(self, call, timeout: float = 15.0, rounds_after: int = 0) -> dict[int, Answer]:
        """Samples until every worker (by X-Worker-Pid) has answered; the last answer of each."""
        latest: dict[int, Answer] = {}

        def all_seen():
            for answer in sample(call):
                latest[answer.pid] = answer
            return len(latest) >= self.workers

        wait_until(all_seen, timeout, f"answers from all {self.workers} workers (saw {sorted(latest)})", interval=0)
        return latest

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # gunicorn's graceful stop; the master stops its workers
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        try:  # anything of ours still alive after the master is gone (our own session: our processes)
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.process.returncode
