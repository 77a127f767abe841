"""gunicorn --preload -w 2 -k uvicorn.workers.UvicornWorker with a module-level ConfigManager
started at import (in the master, before fork): every worker follows new versions on its own
callback thread, and a SIGTERM shutdown (whose lifespan stops the manager) completes in time."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cc_helpers import PYTHON_PACKAGE_DIR, REPO, Publisher, free_port, holmes_config, request, sample, wait_until

DATA_DIR = Path(__file__).resolve().parent / "data"
WORKERS = 2
SHUTDOWN_SECONDS = 10.0  # gunicorn's own graceful timeout is 30 s: a hung worker would exceed this


@pytest.fixture
def preloaded(publisher_binary, configmap, segment, tmp_path):
    proc = Publisher(publisher_binary, configmap.path, segment, tmp_path / "publisher.log").start()
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    # The package this test process imports (what $PYTHONPATH chose), else the repository's.
    python_path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(PYTHON_PACKAGE_DIR)) if p)
    env = {**os.environ, "CONFCAST_SEGMENT": segment, "PYTHONPATH": python_path}
    server = None
    try:
        proc.wait_published()
        with open(log_path, "ab") as log:
            server = subprocess.Popen(
                ["/usr/bin/gunicorn", "--preload", "--chdir", str(DATA_DIR), "-w", str(WORKERS),
                 "-k", "uvicorn.workers.UvicornWorker", "-b", f"127.0.0.1:{port}", "preload_app:app"],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        yield server, port, log_path
    finally:
        if server is not None:
            if server.poll() is None:
                server.kill()
                server.wait()
            try:
                os.killpg(server.pid, signal.SIGKILL)  # our own session: whatever is left of ours
            except ProcessLookupError:
                pass
        proc.stop()


def answers_of_every_worker(port: int, log_path: Path, accept, what: str) -> dict[int, dict]:
    latest: dict[int, dict] = {}

    def every_worker_accepts():
        for answer in sample(lambda: request(port, "GET", "/", timeout=5)):
            assert answer.status == 200, answer.body
            latest[answer.pid] = answer.json()
        return len(latest) >= WORKERS and all(accept(a) for a in latest.values())

    try:
        wait_until(every_worker_accepts, 20, what, interval=0.05)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last answers {latest}\n{log_path.read_text(errors='replace')[-3000:]}")
    return latest


def test_preloaded_config_manager_follows_versions_in_every_worker(preloaded, configmap):
    server, port, log_path = preloaded

    def serving():
        assert server.poll() is None, log_path.read_text(errors="replace")
        try:
            return request(port, "GET", "/", timeout=2).status == 200
        except OSError:
            return False

    wait_until(serving, 30, "gunicorn --preload to serve", interval=0.1)
    first = answers_of_every_worker(port, log_path, lambda a: a["version"] == 1, "version 1 from every worker")
    assert server.pid not in first  # answers come from forked workers

    configmap.update(holmes_config("gpt-5"))
    answers_of_every_worker(
        port, log_path, lambda a: a["version"] == 2 and a["model"] == "gpt-5" and a["callback_version"] == 2,
        "every worker to serve version 2, seen by its own on_change thread")

    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=SHUTDOWN_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"gunicorn did not shut down within {SHUTDOWN_SECONDS} s of SIGTERM:\n"
                    f"{log_path.read_text(errors='replace')[-3000:]}")
    assert server.returncode == 0, log_path.read_text(errors="replace")[-3000:]
    assert time.monotonic() - started < SHUTDOWN_SECONDS
