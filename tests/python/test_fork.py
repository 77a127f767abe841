"""fork() with a live on_change thread or a started ConfigManager (what gunicorn --preload does):
the child gets its own open of the segment and its own callback thread, close()/stop()
return promptly there, and the parent goes on unaffected."""

from __future__ import annotations

import logging
import os
import threading
import time

import confcast
from cc_helpers import holmes_config, wait_until
from forked import ForkedChild

PROMPT_SECONDS = 1.0  # close() in a child with nothing of its own in flight: about one wait slice


def wait_for_call_in_flight(subscriber) -> None:
    # The on_change thread spends nearly all its time inside confcast_wait; fork while it is there,
    # which is what left the child with a count that never drained.
    wait_until(lambda: subscriber._calls_in_flight > 0, 5, "the on_change thread to be inside confcast_wait",
               interval=0.001)


def test_fork_with_a_live_on_change_thread(subscriber, configmap):
    events_read, events_write = os.pipe()
    seen_here: list[tuple[int, int]] = []

    def on_change(snap):
        seen_here.append((os.getpid(), snap.version))
        os.write(events_write, f"{os.getpid()} {snap.version}\n".encode())

    subscriber.on_change(on_change)
    wait_for_call_in_flight(subscriber)

    def child(report, command):
        report(ready=True, version=subscriber.version)
        wait_until(lambda: (os.getpid(), 2) in seen_here, 10, "the child's own on_change for version 2")
        assert command() == "close"
        started = time.monotonic()
        subscriber.close()
        report(close_seconds=time.monotonic() - started, closed=subscriber.closed)

    forked = ForkedChild(child)
    try:
        assert forked.next_report(10, "that it runs")["version"] == 1
        configmap.update(holmes_config("gpt-5"))
        assert subscriber.wait(1, timeout=10) == 2
        wait_until(lambda: (os.getpid(), 2) in seen_here, 10, "the parent's on_change for version 2")
        forked.send("close")
        closed = forked.next_report(10, "how long its close() took")
        assert closed["closed"] is True
        assert closed["close_seconds"] < PROMPT_SECONDS, closed
        assert forked.finish() == 0
        lines = os.read(events_read, 65536).decode().split()
        assert f"{forked.pid}" in lines, f"the child's on_change never ran: {lines}"
        # The parent's subscriber still follows publishes, on its own thread.
        configmap.update(holmes_config("gpt-6"))
        assert subscriber.wait(2, timeout=10) == 3
        wait_until(lambda: (os.getpid(), 3) in seen_here, 10, "the parent's on_change for version 3")
        assert subscriber.snapshot()["llm"]["model"] == "gpt-6"
        started = time.monotonic()
        subscriber.close()
        assert time.monotonic() - started < PROMPT_SECONDS
    finally:
        forked.finish()
        os.close(events_read)
        os.close(events_write)


def test_fork_with_a_started_config_manager(publisher, configmap):
    root = logging.getLogger()
    level_before = root.level
    manager = confcast.ConfigManager(segment=publisher.segment)
    manager.start()
    try:
        wait_for_call_in_flight(manager.subscriber)

        def child(report, command):
            report(model=manager.get_llm_model())
            # The new log_level is applied by the child's own callback thread.
            wait_until(lambda: manager.get_llm_model() == "gpt-5" and root.level == logging.DEBUG, 10,
                       "the child's ConfigManager to see version 2 and apply its log_level")
            report(version=manager.version, toolsets=sorted(manager.get_toolsets()))
            assert command() == "stop"
            started = time.monotonic()
            manager.stop()
            report(stop_seconds=time.monotonic() - started, started=manager.started)

        forked = ForkedChild(child)
        try:
            assert forked.next_report(10, "its model")["model"] == "gpt-4o"
            configmap.update(holmes_config("gpt-5", log_level="DEBUG"))
            seen = forked.next_report(15, "version 2")
            assert seen["version"] == 2 and "kubernetes/core" in seen["toolsets"]
            forked.send("stop")
            stopped = forked.next_report(10, "how long its stop() took")
            assert stopped["stop_seconds"] < PROMPT_SECONDS and stopped["started"] is False, stopped
            assert forked.finish() == 0
        finally:
            forked.finish()
        # The parent's manager is unaffected.
        wait_until(lambda: manager.get_llm_model() == "gpt-5", 10, "the parent to see version 2")
        started = time.monotonic()
        manager.stop()
        assert time.monotonic() - started < PROMPT_SECONDS
    finally:
        manager.stop()
        root.setLevel(level_before)


def test_close_never_waits_forever_for_a_call_that_does_not_return(subscriber, caplog):
    # A call that never leaves (as a vanished thread's would) must not hang close(): it gives
    # up after a few wait slices and leaves the handle allocated instead of freeing it.
    with subscriber._guard:
        subscriber._calls_in_flight += 1
    closer = threading.Thread(target=subscriber.close, daemon=True)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="confcast"):
        closer.start()
        closer.join(10)
    assert not closer.is_alive(), "close() hung on a call that never returns"
    assert time.monotonic() - started < 3
    assert "still in flight" in caplog.text
    assert subscriber.closed
