"""confcast.ConfigManager: the HolmesGPT API's ConfigManager interface over a real segment."""

from __future__ import annotations

import copy
import json
import logging
import os
import threading

import pytest

import confcast
from cc_helpers import Publisher, holmes_config, remove_segment, wait_until


@pytest.fixture
def root_level():
    root = logging.getLogger()
    saved = root.level
    yield root
    root.setLevel(saved)


def test_getters_return_plain_typed_values(publisher):
    cm = confcast.ConfigManager(path=str(publisher.config_path), segment=publisher.segment)
    cm.start()
    try:
        assert cm.get_llm_model() == "gpt-4o" and type(cm.get_llm_model()) is str
        assert cm.get_llm_provider() == "openai"
        assert cm.get_llm_endpoint() is None
        assert cm.get_llm_max_retries() == 3 and type(cm.get_llm_max_retries()) is int
        assert cm.get_llm_timeout() == 60 and type(cm.get_llm_timeout()) is int
        assert cm.get_llm_temperature() == 0.0 and type(cm.get_llm_temperature()) is float
        assert cm.get_log_level() == "INFO"
        toolsets = cm.get_toolsets()
        assert isinstance(toolsets, dict) and toolsets["kubernetes/core"]["enabled"] is True
        assert json.loads(json.dumps(toolsets))["kubernetes/core"]["enabled"] is True
        assert cm.path == str(publisher.config_path)  # accepted, informational: the publisher owns the file
    finally:
        cm.stop()


def test_endpoint_and_temperature_from_the_file(publisher, configmap):
    cm = confcast.ConfigManager(segment=publisher.segment)
    with cm:
        version = cm.version
        configmap.update(holmes_config("gpt-4o", endpoint="https://llm.internal:8443/v1", temperature="1"))
        wait_until(lambda: cm.version > version, 10, "the new version")
        assert cm.get_llm_endpoint() == "https://llm.internal:8443/v1"
        assert cm.get_llm_temperature() == 1.0 and type(cm.get_llm_temperature()) is float


def test_start_and_stop_many_times(publisher, configmap):
    cm = confcast.ConfigManager(segment=publisher.segment)
    cm.stop()  # stopping before starting is fine
    for round_number in range(3):
        cm.start()
        cm.start()  # twice is fine
        assert cm.started
        assert cm.get_llm_model() == ("gpt-4o" if round_number == 0 else f"round-{round_number - 1}")
        version = cm.version
        configmap.update(holmes_config(f"round-{round_number}"))
        wait_until(lambda: cm.get_llm_model() == f"round-{round_number}", 10, f"round {round_number} model")
        assert cm.version > version
        cm.stop()
        cm.stop()
        assert not cm.started
    assert not any(t.name.startswith("confcast-on-change") and t.is_alive() for t in threading.enumerate())
    # a getter after stop() opens the segment again by itself
    assert cm.get_llm_model() == "round-2"
    cm.stop()


def test_log_level_is_applied_on_start_and_on_change(publisher, configmap, root_level):
    root_level.setLevel(logging.INFO)
    configmap.update(holmes_config("gpt-4o", log_level="warning"))
    cm = confcast.ConfigManager(segment=publisher.segment, wait_timeout=5)
    wait_until(lambda: cm.get_log_level() == "WARNING", 10, "log_level WARNING to be published")
    cm.start()
    try:
        assert root_level.level == logging.WARNING
        configmap.update(holmes_config("gpt-4o", log_level="debug"))
        wait_until(lambda: root_level.level == logging.DEBUG, 10, "the root logger to be set to DEBUG")
        assert cm.get_log_level() == "DEBUG"
    finally:
        cm.stop()


def test_start_waits_for_the_publisher_then_fails_clearly(library_path, segment):
    cm = confcast.ConfigManager(segment=segment, wait_timeout=0.2)
    with pytest.raises(confcast.SegmentNotFound) as err:
        cm.start()
    assert segment in str(err.value)
    assert not cm.started
    with pytest.raises(confcast.SegmentNotFound):
        cm.get_llm_model()


def test_one_manager_from_many_threads(publisher, configmap):
    cm = confcast.ConfigManager(segment=publisher.segment)
    cm.start()
    errors = []
    stop = threading.Event()

    def worker():
        while not stop.is_set():
            try:
                model = cm.get_llm_model()
                assert model.startswith(("gpt-4o", "parallel-"))
                assert cm.get_llm_max_retries() == 3
            except Exception as exc:  # collected, asserted below
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for i in range(3):
            configmap.update(holmes_config(f"parallel-{i}"))
            wait_until(lambda: cm.get_llm_model() == f"parallel-{i}", 10, f"parallel-{i}")
        cm.stop()   # getters keep working: they reopen
        cm.start()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        cm.stop()
    assert errors == []


def test_get_toolsets_is_one_read_only_dict_per_version(publisher, configmap):
    cm = confcast.ConfigManager(segment=publisher.segment, apply_log_level=False)
    with cm:
        toolsets = cm.get_toolsets()
        assert isinstance(toolsets, dict)
        # Nothing is copied per call: every caller gets the version's own object ...
        assert cm.get_toolsets() is toolsets
        assert cm.snapshot()["toolsets"] is toolsets
        # ... which is why nobody may change it.
        with pytest.raises(TypeError):
            toolsets["new"] = {}
        with pytest.raises(TypeError):
            del toolsets["kubernetes/core"]
        with pytest.raises(TypeError):
            toolsets["kubernetes/core"]["enabled"] = False
        for change in (lambda: toolsets.pop("kubernetes/core"), lambda: toolsets.update(new={}),
                       lambda: toolsets.setdefault("new", {}), toolsets.popitem, toolsets.clear):
            with pytest.raises(TypeError):
                change()
        with pytest.raises(TypeError):
            toolsets |= {"new": {}}
        assert copy.deepcopy(toolsets) is toolsets
        assert cm.get_toolsets() is toolsets and toolsets["kubernetes/core"]["enabled"] is True
        assert "new" not in toolsets
        # A private, changeable copy when one is wanted.
        mine = cm.subscriber.get("toolsets")
        mine["kubernetes/core"]["enabled"] = False
        assert cm.get_toolsets()["kubernetes/core"]["enabled"] is True

        version = cm.version
        configmap.update(holmes_config("gpt-4o", prometheus_enabled=True))
        assert cm.subscriber.wait(version, timeout=10) is not None
        newer = cm.get_toolsets()
        assert newer is not toolsets and newer["prometheus/metrics"]["enabled"] is True
        assert cm.get_toolsets() is newer
        assert toolsets["prometheus/metrics"]["enabled"] is False  # an old version's map never changes


def every_getter(cm) -> tuple:
    return (cm.get_llm_model(), cm.get_llm_provider(), cm.get_llm_endpoint(), cm.get_llm_max_retries(),
            cm.get_llm_timeout(), cm.get_llm_temperature(), cm.get_toolsets()["prometheus/metrics"]["enabled"],
            cm.get_log_level())


@pytest.mark.parametrize("started", [True, False], ids=["started", "not-started"])
def test_every_getter_sees_a_new_version_as_soon_as_it_is_published(publisher, configmap, started):
    cm = confcast.ConfigManager(segment=publisher.segment, apply_log_level=False)
    if started:
        cm.start()
    try:
        before = every_getter(cm)
        assert before == ("gpt-4o", "openai", None, 3, 60, 0.0, False, "INFO") and every_getter(cm) == before
        version = cm.version
        configmap.update(holmes_config("gpt-5", provider="azure", endpoint="https://llm.internal/v1", max_retries=5,
                                       timeout_seconds=90, temperature="0.5", log_level="debug",
                                       prometheus_enabled=True))
        # No waiting for a callback or a cache to expire: once the version word moved, every
        # getter answers from the new version on its very next call.
        assert cm.subscriber.wait(version, timeout=10) is not None
        after = every_getter(cm)
        assert after == ("gpt-5", "azure", "https://llm.internal/v1", 5, 90, 0.5, True, "DEBUG")
        assert [type(value) for value in after] == [str, str, str, int, int, float, bool, str]
    finally:
        cm.stop()


def test_getters_follow_a_segment_created_anew_at_the_same_version(publisher_binary, configmap, segment, tmp_path):
    """A segment deleted and created anew numbers its versions from 1 again: the getters' answers
    belong to the file they were read from, not to a version number."""
    first = Publisher(publisher_binary, configmap.path, segment, tmp_path / "first.log").start()
    second = None
    cm = confcast.ConfigManager(segment=segment, apply_log_level=False)
    try:
        first.wait_published()
        cm.start()
        assert (cm.version, cm.get_llm_model()) == (1, "gpt-4o")
        first.stop()
        remove_segment(segment)
        configmap.update(holmes_config("gpt-6"))
        second = Publisher(publisher_binary, configmap.path, segment, tmp_path / "second.log").start()
        second.wait_published()
        # start() keeps an on_change thread, which notices the name moved within about a second.
        wait_until(lambda: cm.get_llm_model() == "gpt-6", 10, "the getters to follow the new segment")
        assert cm.version == 1 and cm.snapshot()["llm"]["model"] == "gpt-6"
        inode = os.stat(f"/dev/shm/{segment}").st_ino
        assert os.fstat(cm.subscriber._seg.fd).st_ino == inode
    finally:
        cm.stop()
        first.stop()
        if second is not None:
            second.stop()
