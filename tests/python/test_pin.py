"""``Subscriber.pin()`` in one process, for both of its implementations: the C one
(``confcast._pin``, which the build puts beside libconfcast.so) and the pure-Python one the
package falls back to. What a pin holds is read back from the process's own ledger entry, the
file the publisher and ``confcastctl`` read; cross-process behaviour is in test_ledger.py.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cc_helpers import holmes_config
from confcast_pytest_support import PYTHON_PACKAGE_DIR, wait_until

sys.path.insert(0, str(PYTHON_PACKAGE_DIR))
import confcast  # noqa: E402
from confcast import _native  # noqa: E402
from confcast.subscriber import Pin as PythonPin  # noqa: E402


@pytest.fixture(params=["c", "python"])
def sub(request, publisher):
    """A Subscriber whose pin() is the C one or the Python one."""
    if request.param == "c":
        assert _native.library().pin_type is not None, "the build has no confcast._pin beside the library"
    subscriber = confcast.Subscriber(publisher.segment)
    if request.param == "python":
        subscriber._pin_type = PythonPin
    yield subscriber
    subscriber.close()


def holds(sub) -> tuple[int, int | None]:
    """(number of holds, oldest version held) in this process's ledger entry."""
    entry = sub.ledger_entry()
    assert entry is not None, "this process is not in the ledger"
    return entry["held"], entry["oldest_held"]


def publish(sub, configmap, model: str) -> int:
    before = sub.version
    configmap.update(holmes_config(model))
    version = sub.wait(before, timeout=10.0)
    assert version is not None and version > before, "the publish did not arrive within 10 s"
    return version


def test_the_build_uses_the_c_pin_beside_the_library(library_path, publisher):
    with confcast.Subscriber(publisher.segment) as subscriber:
        assert type(subscriber.pin()).__module__ == "confcast._pin"
    assert _native.library().pin_extension == str(Path(library_path).resolve().parent / "_pin.abi3.so")


def test_a_pin_holds_its_version_until_it_exits(sub):
    assert holds(sub) == (0, None)
    with sub.pin() as snap:
        assert snap.version == 1 and snap.get("llm.model") == "gpt-4o"
        assert holds(sub) == (1, 1)
    assert holds(sub) == (0, None)


def test_pins_nest_and_each_exit_releases_one_hold(sub):
    with sub.pin():
        with sub.pin() as inner:
            assert inner.version == 1
            assert holds(sub) == (2, 1)
        assert holds(sub) == (1, 1)
    assert holds(sub) == (0, None)


def test_a_pin_entered_twice_is_refused_and_holds_once(sub):
    pin = sub.pin()
    pin.__enter__()
    with pytest.raises(RuntimeError, match="already entered"):
        pin.__enter__()
    assert holds(sub) == (1, 1)
    pin.__exit__(None, None, None)
    pin.__exit__(None, None, None)  # a second exit has nothing left to release
    assert holds(sub) == (0, None)


def test_a_pin_after_a_publish_holds_the_new_version(sub, configmap):
    assert sub.snapshot().version == 1  # cached: the pin must notice it is stale
    assert publish(sub, configmap, "gpt-next") == 2
    with sub.pin() as snap:
        assert (snap.version, snap.get("llm.model")) == (2, "gpt-next")
        assert holds(sub) == (1, 2)
    assert holds(sub) == (0, None)


def test_a_pin_across_a_publish_keeps_holding_the_old_version(sub, configmap):
    with sub.pin() as snap:
        publish(sub, configmap, "gpt-next")
        assert snap.get("llm.model") == "gpt-4o"
        assert holds(sub) == (1, 1)
        with sub.pin() as newer:
            assert newer.version == 2
            assert holds(sub) == (2, 1)
    assert holds(sub) == (0, None)


def test_a_pin_exits_quietly_after_close_and_pin_on_a_closed_subscriber_raises(sub):
    pin = sub.pin()
    pin.__enter__()
    sub.close()
    pin.__exit__(None, None, None)  # the holds went with the handle
    with pytest.raises(confcast.Closed):
        sub.pin().__enter__()


def test_threads_pinning_during_publishes_release_every_hold(sub, configmap):
    seen: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    stop = threading.Event()

    def pin_loop(index: int) -> None:
        versions = seen.setdefault(index, [])
        try:
            while not stop.is_set():
                with sub.pin() as snap:
                    # The version a pin enters with is held while it lasts.
                    if len(versions) % 200 == 0:
                        held, oldest = holds(sub)
                        assert held >= 1 and oldest <= snap.version
                    versions.append(snap.version)
        except BaseException as exc:  # reported below, on the main thread
            errors.append(exc)

    threads = [threading.Thread(target=pin_loop, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        for model in ("gpt-a", "gpt-b", "gpt-c"):
            last = publish(sub, configmap, model)
        # Each thread goes on until it has pinned the last version (or failed).
        wait_until(lambda: errors or (len(seen) == 4 and all(v and v[-1] == last for v in seen.values())), 10,
                   "every thread to pin the last version")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert holds(sub) == (0, None)
    for versions in seen.values():
        assert versions == sorted(versions), "a thread's pins went back to an older version"
        assert versions[-1] == last == 4


def test_close_while_threads_pin_ends_them_with_closed(sub):
    # close() frees the C handle while threads pin (the C pin relies on the GIL for never using
    # it afterwards, the Python one on its counters). What this shows is liveness: every thread
    # ends with Closed, none hangs or dies otherwise; a use after free it would not see (the
    # extension is not built into the sanitizer builds).
    outcomes: list[BaseException] = []
    enough = threading.Barrier(5)

    def pin_until_closed() -> None:
        pins = 0
        try:
            while True:
                with sub.pin():
                    pins += 1
                if pins == 100:
                    enough.wait(10)
        except BaseException as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=pin_until_closed) for _ in range(4)]
    for t in threads:
        t.start()
    enough.wait(10)
    sub.close()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert len(outcomes) == 4 and all(isinstance(e, confcast.Closed) for e in outcomes), outcomes


def test_a_pin_entered_before_fork_exits_in_the_child_without_touching_the_parents_hold(sub):
    pin = sub.pin()
    pin.__enter__()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, and never return into pytest
        status = 1
        try:
            os.close(read_end)
            pin.__exit__(None, None, None)  # the parent's segment is not the child's: nothing to release
            with sub.pin() as snap:  # the child's own entry
                inside = sub.ledger_entry()
            after = sub.ledger_entry()
            os.write(write_end, f"{snap.version} {inside['pid'] == os.getpid()} {inside['held']} "
                                f"{after['held']}".encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            reported = pipe.read().decode()
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and reported == "1 True 1 0", reported
    assert holds(sub) == (1, 1)  # the parent's hold is still there
    pin.__exit__(None, None, None)
    assert holds(sub) == (0, None)


def test_the_environment_can_ask_for_the_pure_python_pin(library_path, publisher):
    done = subprocess.run(
        [sys.executable, "-c",
         "import sys, confcast\n"
         "with confcast.Subscriber(sys.argv[1]) as sub:\n"
         "    with sub.pin() as snap:\n"
         "        print(type(sub.pin()).__module__, snap.version, sub.ledger_entry()['held'])\n",
         publisher.segment],
        env={**os.environ, "PYTHONPATH": str(PYTHON_PACKAGE_DIR), "CONFCAST_PURE_PYTHON": "1"},
        capture_output=True, text=True, timeout=30)
    assert done.stdout.split() == ["confcast.subscriber", "1", "1"], done


def test_the_bound_extension_refuses_a_second_library(library_path, publisher, tmp_path):
    # Pins made for the package's library must never call another one with its handles.
    lib = _native.library()
    module = _native._pin_modules[Path(lib.pin_extension)]
    other = tmp_path / "libconfcast-copy.so"
    shutil.copyfile(library_path, other)
    copy = ctypes.CDLL(str(other))
    with pytest.raises(ValueError, match="bound to another libconfcast.so"):
        module.bind(ctypes.cast(copy.confcast_hold, ctypes.c_void_p).value,
                    ctypes.cast(copy.confcast_release, ctypes.c_void_p).value)
    with confcast.Subscriber(publisher.segment) as first:  # still bound to the package's library
        with first.pin():
            assert type(first.pin()).__module__ == "confcast._pin" and holds(first) == (1, 1)
        assert holds(first) == (0, None)


def test_an_extension_of_another_protocol_is_not_used(library_path, monkeypatch, caplog):
    lib = _native.library()
    monkeypatch.setattr(_native, "PIN_PROTOCOL", _native.PIN_PROTOCOL + 1)
    with caplog.at_level(logging.WARNING, logger="confcast"):
        assert _native._bind_pin_extension(lib.path, lib._cdll) == (None, None)
    assert "pin() stays pure Python" in caplog.text and "protocol" in caplog.text
