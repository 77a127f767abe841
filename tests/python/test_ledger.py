"""The worker ledger with real processes: Python workers that pin and release, a worker killed
while it holds, a worker of another user, forged, corrupt and junk entries, a full ledger, and the
gunicorn demo with requests in flight while a change lands (``confcastctl wait --converged``).

Workers are separate Python processes driven through their stdin (one command per line), so that
every hold the ledger shows was made by a real process that the test can also kill.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import shutil
import tempfile

import pytest

from cc_helpers import DemoServer, KubeletConfigMap, holmes_config
from confcast_pytest_support import (PYTHON_PACKAGE_DIR, Publisher, ctl_binary, remove_segment, unique_segment,
                                     wait_until)

sys.path.insert(0, str(PYTHON_PACKAGE_DIR))
from confcast import _ledger  # noqa: E402

NOBODY = 65534

WORKER = r"""
import json, sys, confcast
sub = confcast.Subscriber(sys.argv[1])
pins = []
print(json.dumps({"ready": sub.snapshot().version, "pin": type(sub.pin()).__module__}), flush=True)
for line in sys.stdin:
    command = line.strip()
    if command == "pin":
        pin = sub.pin()
        pins.append(pin)
        print(json.dumps({"pinned": pin.__enter__().version}), flush=True)
    elif command == "unpin":
        pins.pop().__exit__(None, None, None)
        print(json.dumps({"unpinned": len(pins)}), flush=True)
    elif command == "read":
        print(json.dumps({"read": sub.snapshot().version}), flush=True)
    elif command == "entry":
        print(json.dumps({"entry": sub.ledger_entry()}), flush=True)
"""


def ctl(segment: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([ctl_binary(), "--segment", segment, *args], capture_output=True, text=True,
                          timeout=timeout)


def workers(segment: str) -> dict[int, dict]:
    done = ctl(segment, "workers", "--json")
    assert done.returncode == 0, done.stderr
    return {w["pid"]: w for w in json.loads(done.stdout)["workers"]}


@pytest.fixture(scope="module")
def package_others_can_load():
    """The Python package and its library copied where any user can read them: the source tree
    and build may sit in a directory only their owner can enter (a ``mktemp -d`` clone)."""
    root = tempfile.mkdtemp(prefix="confcast-package-")
    try:
        os.chmod(root, 0o755)
        shutil.copytree(PYTHON_PACKAGE_DIR / "confcast", os.path.join(root, "confcast"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        library = os.path.join(root, "libconfcast.so")
        shutil.copyfile(os.environ["CONFCAST_LIBRARY"], library)
        pin = Path(os.environ["CONFCAST_LIBRARY"]).parent / "_pin.abi3.so"  # pin()'s C fast path, beside it
        if pin.is_file():
            shutil.copyfile(pin, os.path.join(root, pin.name))
        for directory, _, files in os.walk(root):
            os.chmod(directory, 0o755)
            for name in files:
                os.chmod(os.path.join(directory, name), 0o644)
        yield {"PYTHONPATH": root, "CONFCAST_LIBRARY": library}
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Worker:
    """A Python worker process reading ``segment``, driven line by line."""

    def __init__(self, segment: str, *, user: int | None = None, env: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-c", WORKER, segment]
        if user is not None:
            command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONPATH": str(PYTHON_PACKAGE_DIR), **(env or {})},
                                        cwd="/")
        self.pid = self.process.pid
        started = self._answer()
        self.ready = started["ready"]
        self.pin_implementation = started["pin"]  # confcast._pin (C) or confcast.subscriber (Python)

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"worker {self.pid} exited with {self.process.wait(5)}")
        return json.loads(line)

    def do(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._answer()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


@pytest.fixture
def workers_started():
    started: list[Worker] = []

    def start(*args, **kwargs) -> Worker:
        worker = Worker(*args, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def publish(configmap, publisher, model: str, version: int) -> None:
    configmap.update(holmes_config(model))
    wait_until(lambda: workers_version(publisher.segment) >= version, 10, f"version {version} to be published")


@contextlib.contextmanager
def running_gate(segment: str, *args: str):
    """`confcastctl wait --converged ARGS` running in the background; killed at the end if still running."""
    gate = subprocess.Popen([ctl_binary(), "--segment", segment, "wait", "--converged", "--timeout", "20", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield gate
    finally:
        if gate.poll() is None:
            gate.kill()
            gate.wait(10)


def still_waiting(gate: subprocess.Popen, window: float = 0.3) -> bool:
    """True when the gate does not return within ``window`` (the window is what is under test)."""
    try:
        gate.wait(window)
    except subprocess.TimeoutExpired:
        return True
    return False


def gate_opened(gate: subprocess.Popen) -> str:
    out, err = gate.communicate(timeout=10)
    assert gate.returncode == 0, err
    return out.strip()


def workers_version(segment: str) -> int:
    done = ctl(segment, "workers", "--json")
    return json.loads(done.stdout)["version"] if done.returncode == 0 else 0


# pin() in C (confcast._pin, what the build gives) and in pure Python ($CONFCAST_PURE_PYTHON).
PIN_IMPLEMENTATIONS = [pytest.param({}, "confcast._pin", id="c-pin"),
                       pytest.param({"CONFCAST_PURE_PYTHON": "1"}, "confcast.subscriber", id="python-pin")]


@pytest.mark.parametrize("env, implementation", PIN_IMPLEMENTATIONS)
def test_python_workers_hold_and_release_and_the_gate_waits_for_them(publisher, configmap, workers_started, env,
                                                                     implementation):
    a = workers_started(publisher.segment, env=env)
    b = workers_started(publisher.segment, env=env)
    assert a.pin_implementation == b.pin_implementation == implementation
    listed = workers(publisher.segment)
    assert listed[a.pid] == {"pid": a.pid, "version": 1, "oldest_held": None, "held": 0}
    assert listed[b.pid]["held"] == 0
    assert a.do("pin") == {"pinned": 1}
    assert a.do("pin") == {"pinned": 1}
    assert workers(publisher.segment)[a.pid] == {"pid": a.pid, "version": 1, "oldest_held": 1, "held": 2}

    publish(configmap, publisher, "gpt-next", 2)
    # a holds version 1 twice: not converged, and the gate says who holds what.
    gate = ctl(publisher.segment, "wait", "--converged", "--timeout", "0.5")
    assert gate.returncode == 1
    assert f"pid {a.pid} holds 1" in gate.stderr
    text = ctl(publisher.segment, "workers").stdout
    assert "(old)" in text and str(a.pid) in text

    # b reads the new version and holds it: current. a releases one hold: still old.
    assert b.do("pin") == {"pinned": 2}
    assert workers(publisher.segment)[b.pid] == {"pid": b.pid, "version": 2, "oldest_held": 2, "held": 1}
    assert a.do("unpin") == {"unpinned": 1}
    assert ctl(publisher.segment, "wait", "--converged", "--timeout", "0.3").returncode == 1

    # The last release of version 1 ends the wait of a gate already waiting.
    with running_gate(publisher.segment) as gate:
        assert still_waiting(gate)
        a.do("unpin")
        assert gate_opened(gate) == "2"
    assert workers(publisher.segment)[a.pid] == {"pid": a.pid, "version": 1, "oldest_held": None, "held": 0}
    # The worker's own view of its entry, as the demo's /healthz shows it.
    assert a.do("entry")["entry"]["held"] == 0
    assert b.do("entry")["entry"]["oldest_held"] == 2


@pytest.mark.parametrize("env, implementation", PIN_IMPLEMENTATIONS)
def test_a_worker_killed_while_it_holds_drops_out_within_two_seconds(publisher, configmap, workers_started, env,
                                                                     implementation):
    holder = workers_started(publisher.segment, env=env)
    assert holder.pin_implementation == implementation
    holder.do("pin")
    publish(configmap, publisher, "gpt-next", 2)
    assert ctl(publisher.segment, "wait", "--converged", "--timeout", "0.2").returncode == 1
    holder.process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    holder.process.wait(10)
    gate = ctl(publisher.segment, "wait", "--converged", "--timeout", "2")
    assert gate.returncode == 0, gate.stderr
    assert holder.pid not in workers(publisher.segment)
    assert time.monotonic() - killed < 2.0
    # The publisher removes the dead worker's file.
    directory = _ledger.ledger_directory(f"/dev/shm/{publisher.segment}")
    wait_until(lambda: not any(f"-{holder.pid}-" in n for n in os.listdir(directory)), 2, "the dead entry's removal")


def test_a_forked_child_gets_its_own_entry(publisher):
    script = r"""
import json, os, sys, confcast
sub = confcast.Subscriber(sys.argv[1])
with sub.pin():
    pid = os.fork()
    if pid == 0:
        entry = sub.ledger_entry()
        with sub.pin() as snap:
            both = sub.ledger_entry()
        os.write(1, (json.dumps({"child": os.getpid(), "entry": entry, "pinned": both}) + "\n").encode())
        os._exit(0)
    os.waitpid(pid, 0)
    print(json.dumps({"parent": os.getpid(), "entry": sub.ledger_entry()}), flush=True)
"""
    done = subprocess.run([sys.executable, "-c", script, publisher.segment], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "PYTHONPATH": str(PYTHON_PACKAGE_DIR)})
    assert done.returncode == 0, done.stderr
    child, parent = (json.loads(line) for line in done.stdout.splitlines())
    # The child's entry is its own: its pid, none of the parent's holds; its own pin counts there.
    assert child["entry"]["pid"] == child["child"] and child["entry"]["held"] == 0
    assert child["pinned"]["held"] == 1
    assert parent["entry"]["pid"] == parent["parent"] and parent["entry"]["held"] == 1


def entry_bytes(pid: int, start_time: int, held_version: int, *, pid_namespace: int | None = None) -> bytes:
    """A well-formed ledger entry holding ``held_version`` once (the layout of layout.hpp)."""
    if pid_namespace is None:
        pid_namespace = os.stat("/proc/self/ns/pid").st_ino
    data = bytearray(_ledger.ENTRY_SIZE)
    struct.pack_into("<QIIiIQQ", data, 0, _ledger.MAGIC, _ledger.LAYOUT_VERSION, _ledger.ENTRY_SIZE, pid,
                     _ledger.HOLD_SLOTS, start_time, pid_namespace)
    struct.pack_into("<Q", data, 64, held_version)
    struct.pack_into("<Q", data, 128, (held_version << 16) | 1)
    return bytes(data)


def start_time_of(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rindex(")") + 2:].split()[19])


def plant_locked(directory: str, name: str, data: bytes) -> int:
    """Writes an entry file and holds an exclusive lock on it, as a live worker would; returns the fd."""
    fd = os.open(os.path.join(directory, name), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_a_reused_pid_does_not_keep_a_dead_workers_hold(publisher, configmap):
    """An entry naming a live pid with another start time (the pid was reused) counts for nothing;
    the same entry with the right start time counts (so the check can fail)."""
    publish(configmap, publisher, "gpt-next", 2)
    directory = _ledger.ledger_directory(f"/dev/shm/{publisher.segment}")
    sleeper = subprocess.Popen(["sleep", "60"])
    fds = []
    try:
        real = start_time_of(sleeper.pid)
        fds.append(plant_locked(directory, f"w-reused-{sleeper.pid}", entry_bytes(sleeper.pid, real + 12345, 1)))
        assert sleeper.pid not in workers(publisher.segment)
        assert ctl(publisher.segment, "wait", "--converged", "--timeout", "1").returncode == 0
        fds.append(plant_locked(directory, f"w-genuine-{sleeper.pid}", entry_bytes(sleeper.pid, real, 1)))
        assert workers(publisher.segment)[sleeper.pid]["oldest_held"] == 1
        assert ctl(publisher.segment, "wait", "--converged", "--timeout", "0.3").returncode == 1
    finally:
        for fd in fds:
            os.close(fd)
        sleeper.kill()
        sleeper.wait()


def test_corrupt_and_junk_entries_are_ignored_and_reads_go_on(publisher, configmap, workers_started):
    directory = _ledger.ledger_directory(f"/dev/shm/{publisher.segment}")
    real = workers_started(publisher.segment)
    real.do("pin")
    own = os.getpid()
    bad = bytearray(entry_bytes(own, start_time_of(own), 1))
    bad[0] ^= 0xFF  # the magic
    huge = entry_bytes(own, start_time_of(own), 1)[:128] + struct.pack("<Q", 1) + bytes(120)  # count, no version
    fds = [plant_locked(directory, "w-bad-magic", bytes(bad)),
           plant_locked(directory, "w-short", b"\x01" * 10),
           plant_locked(directory, "w-count-without-version", huge)]
    os.mkfifo(os.path.join(directory, "w-fifo"))
    os.symlink("/etc/passwd", os.path.join(directory, "w-link"))
    try:
        listed = workers(publisher.segment)
        assert set(listed) == {real.pid}
        publish(configmap, publisher, "gpt-next", 2)
        assert real.do("read") == {"read": 2}
        assert real.do("unpin") == {"unpinned": 0}
        assert ctl(publisher.segment, "wait", "--converged", "--timeout", "5").returncode == 0
        # The publisher removes the junk no live process holds (FIFO, link); the locked files stay.
        wait_until(lambda: not os.path.lexists(os.path.join(directory, "w-fifo"))
                   and not os.path.lexists(os.path.join(directory, "w-link")), 2, "junk removal")
        assert publisher.running()
        assert os.path.exists(os.path.join(directory, "w-bad-magic"))
    finally:
        for fd in fds:
            os.close(fd)


def test_a_full_ledger_stops_new_entries_not_reads(publisher, configmap, workers_started):
    directory = _ledger.ledger_directory(f"/dev/shm/{publisher.segment}")
    publisher.stop()  # so that nobody cleans up the filler while the test looks
    fillers = []
    for i in range(1024):
        path = os.path.join(directory, f"w-filler-{i}")
        open(path, "wb").close()
        fillers.append(path)
    late = workers_started(publisher.segment)
    assert late.ready == 1  # opened and read
    assert late.do("pin") == {"pinned": 1}  # holds pair up without an entry
    assert late.do("entry") == {"entry": None}
    done = ctl(publisher.segment, "workers", "--json")
    assert done.returncode == 0 and "is full" in done.stderr
    assert late.pid not in {w["pid"] for w in json.loads(done.stdout)["workers"]}
    # A gate cannot vouch for workers it cannot see.
    gate = ctl(publisher.segment, "wait", "--converged", "--timeout", "0.3")
    assert gate.returncode == 1 and "is full" in gate.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a worker as nobody")
def test_a_worker_of_another_user_registers_and_cannot_touch_other_entries(publisher_binary, configmap, tmp_path,
                                                                         workers_started, package_others_can_load):
    segment = unique_segment()
    proc = Publisher(publisher_binary, configmap.path, segment, tmp_path / "publisher.log",
                     "--segment-mode", "0644").start()
    try:
        proc.wait_published()
        directory = _ledger.ledger_directory(f"/dev/shm/{segment}")
        # Readable by others: others may register (sticky, so only in their own name).
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o1777
        root_worker = workers_started(segment)
        other = workers_started(segment, user=NOBODY,
                                env={"CONFCAST_SEGMENT_OWNER": "0", **package_others_can_load})
        assert other.pin_implementation == "confcast._pin"
        other.do("pin")
        listed = workers(segment)
        assert listed[other.pid]["held"] == 1 and listed[root_worker.pid]["held"] == 0
        nobody_entry = next(n for n in os.listdir(directory) if f"-{other.pid}-" in n)
        assert os.stat(os.path.join(directory, nobody_entry)).st_uid == NOBODY
        root_entry = next(n for n in os.listdir(directory) if f"-{root_worker.pid}-" in n)
        attempt = subprocess.run(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-c",
             "import os, sys\n"
             "for act in (lambda: os.unlink(sys.argv[1]), lambda: open(sys.argv[1], 'r+b'),\n"
             "            lambda: os.rename(sys.argv[1], sys.argv[1] + '-x'), lambda: open(sys.argv[2], 'r+b')):\n"
             "    try:\n"
             "        act(); print('allowed')\n"
             "    except PermissionError:\n"
             "        print('refused')\n",
             os.path.join(directory, root_entry), f"/dev/shm/{segment}"],
            capture_output=True, text=True, timeout=30)
        assert attempt.stdout.split() == ["refused"] * 4, attempt
        assert root_worker.pid in workers(segment)
    finally:
        proc.stop()
        remove_segment(segment)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a worker as nobody")
def test_a_user_who_cannot_read_the_segment_cannot_register(publisher, workers_started):
    directory = _ledger.ledger_directory(f"/dev/shm/{publisher.segment}")
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o1770  # the segment is 0640: its group only
    planted = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-c",
         "import os, sys\ntry:\n    open(os.path.join(sys.argv[1], 'w-forged'), 'wb')\n    print('allowed')\n"
         "except PermissionError:\n    print('refused')\n", directory],
        capture_output=True, text=True, timeout=30)
    assert planted.stdout.strip() == "refused", planted


def read_ndjson_line(response) -> dict:
    return json.loads(response.readline())


def test_gunicorn_requests_in_flight_hold_the_gate_until_they_finish(publisher_binary, tmp_path):
    segment = unique_segment()
    configmap = KubeletConfigMap(tmp_path / "configmap", holmes_config("gpt-4o"))
    proc = Publisher(publisher_binary, configmap.path, segment, tmp_path / "publisher.log").start()
    server = DemoServer(segment, tmp_path / "gunicorn.log", workers=4)
    try:
        proc.wait_published()
        server.start()
        server.wait_serving()
        wait_until(lambda: len(workers(segment)) == 4, 15, "four gunicorn workers in the ledger")

        hold_seconds = 3.0
        results: dict[int, list[dict]] = {}
        finished: dict[int, float] = {}
        started = threading.Barrier(5)

        def slow_request(i: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("GET", f"/_test/hold?seconds={hold_seconds}")
            response = conn.getresponse()
            first = read_ndjson_line(response)
            started.wait(15)
            second = read_ndjson_line(response)
            finished[i] = time.monotonic()
            results[i] = [first, second]
            conn.close()

        threads = [threading.Thread(target=slow_request, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        started.wait(15)  # four requests in flight, each pinned on version 1
        listed = workers(segment)
        assert sum(w["held"] for w in listed.values()) == 4, (listed, results)
        configmap.update(holmes_config("gpt-next"))
        wait_until(lambda: workers_version(segment) == 2, 10, "version 2")
        gate = ctl(segment, "wait", "--converged", "--timeout", "30")
        converged = time.monotonic()
        for t in threads:
            t.join(30)
        assert gate.returncode == 0, gate.stderr
        assert gate.stdout.strip() == "2"
        assert len(finished) == 4
        # The gate opened only once every request in flight had finished on its version.
        assert converged >= max(finished.values()) - 0.05
        assert all(r[0]["config_version"] == 1 and r[1]["config_version"] == 1 for r in results.values())
        # A new request runs on version 2, and the worker's /healthz shows its own entry.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/healthz")
        health = json.loads(conn.getresponse().read())
        conn.close()
        assert health["ledger"]["pid"] in workers(segment)
    finally:
        try:
            server.stop()
        finally:
            proc.stop()
            remove_segment(segment)


def test_the_gate_can_first_wait_for_the_change_to_be_published(publisher, configmap, workers_started):
    """wait --after V --converged: the operator's gate after `kubectl apply`, when the kubelet has not
    delivered the new file yet: a version above V first, then no worker on an older one."""
    holder = workers_started(publisher.segment)
    holder.do("pin")
    with running_gate(publisher.segment, "--after", "1") as gate:
        assert still_waiting(gate)  # nothing published yet (and version 1 is held: it would be "converged")
        publish(configmap, publisher, "gpt-next", 2)
        assert still_waiting(gate)  # published, but version 1 is still held
        holder.do("unpin")
        assert gate_opened(gate) == "2"
