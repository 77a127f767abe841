"""examples/holmesgpt_api/gunicorn.conf.py with CONFCAST_START_PUBLISHER=1: the gunicorn master
starts the publisher before the workers, and stops it on exit; a config it cannot publish
keeps gunicorn from starting, with a clear message."""

from __future__ import annotations

import os
import subprocess

from cc_helpers import DEMO_DIR, DemoServer, KubeletConfigMap, analyze, holmes_config, remove_segment, unique_segment, wait_until

import confcast


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_master_runs_the_publisher(publisher_binary, tmp_path):
    segment = unique_segment()
    configmap = KubeletConfigMap(tmp_path / "configmap", holmes_config("from-master"))
    server = DemoServer(segment, tmp_path / "gunicorn.log", config_file=DEMO_DIR / "gunicorn.conf.py", env={
        "CONFCAST_START_PUBLISHER": "1", "CONFCAST_PUBLISHER": publisher_binary,
        "CONFIG_FILE": str(configmap.path),
        "CONFCAST_PUBLISHER_ARGS": "--debounce-ms 50 --metrics-address none",
    })
    publisher_pid = None
    try:
        server.start()
        server.wait_serving()
        answers = server.all_worker_answers(lambda: analyze(server.port))
        assert {a.json()["model"] for a in answers.values()} == {"from-master"}
        with confcast.Subscriber(segment) as sub:
            publisher_pid = sub.info()["publisher_pid"]
            assert parent_of(publisher_pid) == server.process.pid  # the master's child, not a worker's
            version = sub.version
            configmap.update(holmes_config("reloaded-under-master"))
            assert sub.wait(version, timeout=10) is not None
        answers = server.all_worker_answers(lambda: analyze(server.port))
        assert {a.json()["model"] for a in answers.values()} == {"reloaded-under-master"}
        assert server.stop() == 0
        wait_until(lambda: not pid_alive(publisher_pid), 10, "the publisher to exit with gunicorn")
        assert os.path.exists(f"/dev/shm/{segment}")  # left in place for the next start
    finally:
        server.stop()
        if publisher_pid and pid_alive(publisher_pid):
            os.kill(publisher_pid, 9)
        remove_segment(segment)


def test_an_unpublishable_config_stops_gunicorn_from_starting(publisher_binary, tmp_path):
    segment = unique_segment()
    configmap = KubeletConfigMap(tmp_path / "configmap", "llm: [unclosed\n")
    server = DemoServer(segment, tmp_path / "gunicorn.log", config_file=DEMO_DIR / "gunicorn.conf.py", env={
        "CONFCAST_START_PUBLISHER": "1", "CONFCAST_PUBLISHER": publisher_binary,
        "CONFIG_FILE": str(configmap.path), "CONFCAST_PUBLISHER_ARGS": "--metrics-address none",
    })
    try:
        server.start()
        try:
            code = server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("gunicorn kept running without a published config:\n" + server.log_tail())
        assert code != 0
        log = server.log_path.read_text()
        assert "confcast-publisher exited with status 1 before publishing" in log
        assert "config.yaml" in log  # the publisher's own message names the file
    finally:
        server.stop()
        remove_segment(segment)
