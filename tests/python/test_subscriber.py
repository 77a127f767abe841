"""confcast.Subscriber against a real confcast-publisher: typed reads, caching per version,
wait(), on_change(), info(), errors and close()."""

from __future__ import annotations

import hashlib
import logging
import threading
import time

import pytest

import confcast
from cc_helpers import Publisher, holmes_config, wait_until


def publish(configmap, subscriber, text: str, timeout: float = 5.0) -> int:
    """Writes ``text`` like the kubelet does; returns the version it became."""
    before = subscriber.version
    configmap.update(text)
    version = subscriber.wait(before, timeout=timeout)
    assert version is not None, f"no new version within {timeout} s after an update"
    return version


def test_get_returns_typed_values(subscriber):
    assert subscriber.get("llm.model") == "gpt-4o"
    assert type(subscriber.get("llm.max_retries")) is int
    assert type(subscriber.get("llm.timeout_seconds")) is int
    assert type(subscriber.get("llm.temperature")) is float
    assert subscriber.get("llm.endpoint") is None
    assert subscriber.get("toolsets.kubernetes/core.enabled") is True
    assert subscriber.get("toolsets.prometheus/metrics.enabled") is False
    assert subscriber.get("toolsets.kubernetes/core.config.namespaces.1") == "monitoring"
    assert subscriber.get("log_level") == "INFO"


def test_get_of_a_subtree_is_a_new_plain_structure(subscriber):
    toolsets = subscriber.get("toolsets")
    assert type(toolsets) is dict
    assert type(toolsets["kubernetes/core"]["config"]["namespaces"]) is list
    toolsets["kubernetes/core"]["enabled"] = False  # ours to change ...
    assert subscriber.get("toolsets.kubernetes/core.enabled") is True  # ... without touching anyone else's


def test_get_of_a_missing_path_gives_the_default(subscriber):
    assert subscriber.get("llm.no_such_key") is None
    assert subscriber.get("no.such.path", default=42) == 42
    assert subscriber.get("toolsets.kubernetes/core.config.namespaces.9", "none") == "none"


def test_typed_c_getters(subscriber):
    assert subscriber.get_int("llm.max_retries") == 3
    assert type(subscriber.get_int("llm.max_retries")) is int
    assert subscriber.get_float("llm.temperature") == 0.0
    assert type(subscriber.get_float("llm.timeout_seconds")) is float  # an int reads as float too
    assert subscriber.get_bool("toolsets.kubernetes/core.enabled") is True
    assert subscriber.get_str("llm.provider") == "openai"
    assert subscriber.get_json("toolsets.kubernetes/core.config.namespaces") == ["default", "monitoring", "kube-system"]
    assert subscriber.get_json("llm")["model"] == "gpt-4o"


def test_missing_path_raises_key_not_found_from_typed_getters(subscriber):
    with pytest.raises(confcast.KeyNotFound) as err:
        subscriber.get_int("llm.no_such_key")
    assert isinstance(err.value, KeyError) and isinstance(err.value, confcast.ConfcastError)
    assert "llm.no_such_key" in str(err.value)
    assert err.value.path == "llm.no_such_key"
    assert subscriber.get_str("llm.no_such_key", default="fallback") == "fallback"


def test_wrong_type_raises_type_mismatch(subscriber):
    with pytest.raises(confcast.TypeMismatch) as err:
        subscriber.get_int("llm.model")
    assert isinstance(err.value, TypeError)
    assert "llm.model" in str(err.value)
    with pytest.raises(confcast.TypeMismatch):
        subscriber.get_str("llm.max_retries")
    with pytest.raises(confcast.TypeMismatch):
        subscriber.get_bool("toolsets")


def test_snapshot_is_cached_until_a_publish(subscriber, configmap):
    first = subscriber.snapshot()
    assert subscriber.snapshot() is first
    assert subscriber.snapshot() is first
    version = publish(configmap, subscriber, holmes_config("gpt-4.1"))
    second = subscriber.snapshot()
    assert second is not first
    assert second.version == version > first.version
    assert second["llm"]["model"] == "gpt-4.1"
    assert first["llm"]["model"] == "gpt-4o"  # an old snapshot never changes
    assert subscriber.snapshot() is second


def test_snapshot_sha256_is_that_of_the_file_of_its_version(subscriber, configmap):
    assert subscriber.snapshot().sha256 == hashlib.sha256(configmap.read_bytes()).hexdigest()
    publish(configmap, subscriber, holmes_config("o3-mini"))
    snap = subscriber.snapshot()
    assert snap["llm"]["model"] == "o3-mini"
    assert snap.sha256 == hashlib.sha256(configmap.read_bytes()).hexdigest()
    assert snap.sha256 == subscriber.info()["sha256"]


def test_version_follows_publishes(subscriber, configmap):
    v1 = subscriber.version
    assert v1 >= 1
    v2 = publish(configmap, subscriber, holmes_config("model-b"))
    assert subscriber.version == v2 > v1


def test_wait_times_out_with_none(subscriber):
    started = time.monotonic()
    assert subscriber.wait(subscriber.version, timeout=0.3) is None
    assert 0.25 <= time.monotonic() - started < 3.0
    assert subscriber.wait(subscriber.version, timeout=0) is None


def test_wait_returns_at_once_when_already_newer(subscriber):
    current = subscriber.version
    started = time.monotonic()
    assert subscriber.wait(current - 1, timeout=10) == current
    assert time.monotonic() - started < 1.0


def test_wait_wakes_on_a_publish_and_releases_the_gil(subscriber, configmap):
    current = subscriber.version
    result = {}
    waiter = threading.Thread(target=lambda: result.setdefault("v", subscriber.wait(current, timeout=10)))
    waiter.start()
    # The main thread runs Python while the waiter is blocked in C: the GIL is released.
    spins = 0
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        spins += 1
    assert spins > 1000 and waiter.is_alive()
    configmap.update(holmes_config("gpt-4o-mini"))
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert result["v"] == current + 1


def test_on_change_runs_callbacks_on_one_background_thread(subscriber, configmap, caplog):
    seen = []
    changed = threading.Event()

    def broken(snapshot):
        raise RuntimeError("a callback bug")

    def record(snapshot):
        seen.append((snapshot.version, snapshot["llm"]["model"], threading.current_thread()))
        changed.set()

    subscriber.on_change(broken)
    assert subscriber.on_change(record) is record
    with caplog.at_level(logging.ERROR, logger="confcast"):
        configmap.update(holmes_config("model-1"))
        assert changed.wait(10), "on_change callback not called"
        changed.clear()
        configmap.update(holmes_config("model-2"))
        wait_until(lambda: any(model == "model-2" for _, model, _ in seen), 10, "second callback")
    threads = {thread for _, _, thread in seen}
    assert len(threads) == 1
    (thread,) = threads
    assert thread is not threading.main_thread() and thread.daemon
    assert [model for _, model, _ in seen][-1] == "model-2"
    assert "a callback bug" in caplog.text  # the raising callback was logged, not fatal


def test_remove_on_change(subscriber, configmap):
    calls = []
    subscriber.on_change(calls.append)
    subscriber.remove_on_change(calls.append)
    marker = threading.Event()
    subscriber.on_change(lambda snap: marker.set())
    configmap.update(holmes_config("model-x"))
    assert marker.wait(10)
    assert calls == []


def test_info(subscriber, publisher):
    info = subscriber.info()
    assert info["version"] == subscriber.version
    assert info["publisher_pid"] == publisher.process.pid
    assert info["reload_total"] >= 1
    assert info["reload_errors_total"] == 0
    assert len(info["sha256"]) == 64
    assert info["last_error"] == ""
    assert 0 <= info["heartbeat_age_seconds"] < 5
    assert info["published_unix_ns"] > 0


def test_rejected_config_keeps_the_last_good_version(subscriber, configmap):
    good = subscriber.snapshot()
    errors_before = subscriber.info()["reload_errors_total"]
    configmap.update(holmes_config("broken-model", max_retries=99))
    wait_until(lambda: subscriber.info()["reload_errors_total"] > errors_before, 10, "the rejection to be counted")
    assert subscriber.snapshot() is good
    assert "llm.max_retries" in subscriber.info()["last_error"]


def test_no_segment_raises_segment_not_found(library_path, segment):
    with pytest.raises(confcast.SegmentNotFound) as err:
        confcast.Subscriber(segment)
    assert segment in str(err.value)
    assert err.value.status == -1


def test_wait_for_segment_times_out_clearly(library_path, segment):
    started = time.monotonic()
    with pytest.raises(confcast.SegmentNotFound) as err:
        confcast.Subscriber.wait_for_segment(segment, timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 3
    assert "waited 0.3 s" in str(err.value)


def test_wait_for_segment_returns_once_published(publisher_binary, configmap, segment, tmp_path):
    opened = {}
    waiter = threading.Thread(target=lambda: opened.setdefault("sub", confcast.Subscriber(segment, wait_timeout=20)))
    waiter.start()
    proc = Publisher(publisher_binary, configmap.path, segment, tmp_path / "late-publisher.log")
    try:
        assert waiter.is_alive()  # nothing to open yet
        proc.start()
        waiter.join(timeout=20)
        assert not waiter.is_alive()
        sub = opened["sub"]
        try:
            assert sub.version >= 1
            assert sub.get("llm.model") == "gpt-4o"
        finally:
            sub.close()
    finally:
        proc.stop()


def test_close_is_idempotent_and_final(publisher):
    with confcast.Subscriber(publisher.segment) as sub:
        assert sub.get("llm.model") == "gpt-4o"
    assert sub.closed
    sub.close()
    with pytest.raises(confcast.Closed):
        sub.snapshot()
    with pytest.raises(confcast.Closed):
        sub.get_int("llm.max_retries")
    with pytest.raises(confcast.Closed):
        sub.get("llm.model")
    with pytest.raises(confcast.Closed):
        _ = sub.version


def test_close_stops_a_blocked_wait_and_the_callback_thread(publisher):
    sub = confcast.Subscriber(publisher.segment)
    sub.on_change(lambda snap: None)
    outcome = {}

    def wait_forever():
        try:
            outcome["result"] = sub.wait(sub.version)
        except confcast.Closed as exc:
            outcome["closed"] = exc

    waiter = threading.Thread(target=wait_forever)
    waiter.start()
    wait_until(lambda: sub._calls_in_flight > 0, 5, "the waiter to enter confcast_wait")
    started = time.monotonic()
    sub.close()
    waiter.join(timeout=5)
    assert not waiter.is_alive()
    assert "closed" in outcome
    assert time.monotonic() - started < 2
    assert not any(t.name.startswith("confcast-on-change") and t.is_alive() for t in threading.enumerate())


def test_snapshot_from_many_threads_during_publishes(subscriber, configmap):
    failures = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            snap = subscriber.snapshot()
            model = snap["llm"]["model"]
            if snap.get("llm.model") != model or not model.startswith(("gpt-4o", "burst-")):
                failures.append((snap.version, model))

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for thread in readers:
        thread.start()
    try:
        for i in range(5):
            publish(configmap, subscriber, holmes_config(f"burst-{i}"))
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert failures == []
    assert subscriber.snapshot()["llm"]["model"] == "burst-4"


def test_get_sees_a_new_version_as_soon_as_it_is_published(subscriber, configmap):
    assert subscriber.get("llm.model") == "gpt-4o"
    assert subscriber.get("toolsets.prometheus/metrics.enabled") is False
    assert subscriber.get("llm.no_such_key", "default") == "default"
    # No cache to expire: once the version word moved, the next get() reads the new version.
    publish(configmap, subscriber, holmes_config("gpt-5", max_retries=7, prometheus_enabled=True))
    assert subscriber.get("llm.model") == "gpt-5"
    assert subscriber.get("llm.max_retries") == 7
    assert subscriber.get("toolsets.prometheus/metrics.enabled") is True
    assert subscriber.get("llm.no_such_key", "default") == "default"
    assert subscriber.get("toolsets.prometheus/metrics")["enabled"] is True



def test_a_retired_segment_is_left_by_the_lock_free_reads_alone(publisher_binary, configmap, segment, tmp_path):
    """A publisher restarted with another --capacity replaces the segment and marks the old one
    retired; the old one keeps its last version number forever. With no callback thread to follow
    the replacement, snapshot(), get() and the ConfigManager getters must notice the retired word
    themselves: "same version" is not "current"."""
    first = Publisher(publisher_binary, configmap.path, segment, tmp_path / "first.log").start()
    second = None
    sub = cm = None
    try:
        first.wait_published()
        sub = confcast.Subscriber(segment)
        cm = confcast.ConfigManager(segment=segment, apply_log_level=False)  # not started: no thread
        assert (sub.snapshot().version, sub.get("llm.model"), cm.get_llm_model()) == (1, "gpt-4o", "gpt-4o")
        toolsets = cm.get_toolsets()
        old_inode = sub._seg.ino
        first.stop()
        configmap.update(holmes_config("gpt-6"))
        second = Publisher(publisher_binary, configmap.path, segment, tmp_path / "second.log")
        second.args += ["--capacity", str(2 << 20)]  # another shape: the publisher replaces the segment
        second.start()
        second.wait_published()
        # The replacement continues the numbering: version 2, in a new file.
        wait_until(lambda: sub.snapshot().version == 2, 10, "snapshot() to follow the replacement")
        assert sub._seg.ino != old_inode
        assert sub.snapshot()["llm"]["model"] == sub.get("llm.model") == "gpt-6"
        assert cm.get_llm_model() == "gpt-6" and cm.version == 2
        assert cm.get_toolsets() is not toolsets and cm.get_toolsets() is cm.get_toolsets()
    finally:
        if cm is not None:
            cm.stop()
        if sub is not None:
            sub.close()
        first.stop()
        if second is not None:
            second.stop()
