"""confcast.ConfigManager: the HolmesGPT API's ConfigManager interface over a real segment."""

from __future__ import annotations

import logging
import threading

import pytest

import confcast
from cc_helpers import holmes_config, wait_until


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
        assert type(toolsets) is dict and toolsets["kubernetes/core"]["enabled"] is True
        toolsets["kubernetes/core"]["enabled"] = False
        toolsets["new"] = {}
        assert cm.get_toolsets() is not toolsets
        assert cm.get_toolsets()["kubernetes/core"]["enabled"] is True and "new" not in cm.get_toolsets()
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
