"""confcast.ConfigManager keeps no defaults: every value it answers comes from the snapshot, where
the publisher put the defaults of the one HolmesGPT schema file (publisher/schemas/holmesgpt.yaml);
a segment published with another --schema is refused by field, not answered with made-up values."""

from __future__ import annotations

import logging
import shutil

import pytest
import yaml

import confcast
from cc_helpers import Publisher
from confcast_pytest_support import REPO

CONFIGS = REPO / "tests" / "data" / "configs"
SCHEMA_FILE = REPO / "publisher" / "schemas" / "holmesgpt.yaml"


def schema_defaults() -> dict[str, object]:
    """{dotted path: default} as the schema file declares them (fields below a wildcard left out)."""
    fields = yaml.safe_load(SCHEMA_FILE.read_text())["fields"]
    return {field["path"]: field["default"] for field in fields if "default" in field and "*" not in field["path"]}


def start_publisher(publisher_binary, tmp_path, segment, config_name, *extra):
    config = tmp_path / "config.yaml"
    shutil.copyfile(CONFIGS / config_name, config)
    return Publisher(publisher_binary, config, segment, tmp_path / "publisher.log", *extra).start().wait_published()


def test_every_getter_answers_the_schema_files_default(publisher_binary, segment, tmp_path, caplog):
    defaults = schema_defaults()
    assert {"llm.model", "llm.provider", "llm.endpoint", "llm.max_retries", "llm.timeout_seconds",
            "llm.temperature", "toolsets", "log_level"} <= defaults.keys()
    caplog.set_level(logging.CRITICAL)  # so that applying the default level is seen (restored at teardown)
    publisher = start_publisher(publisher_binary, tmp_path, segment, "holmesgpt_minimal.yaml")
    try:
        with confcast.ConfigManager(segment=segment) as cm:
            assert cm.get_llm_model() == "claude-3-5-sonnet"  # the one field holmesgpt_minimal.yaml sets
            assert cm.get_llm_provider() == defaults["llm.provider"]
            assert cm.get_llm_endpoint() is None and defaults["llm.endpoint"] is None
            assert cm.get_llm_max_retries() == defaults["llm.max_retries"] and type(cm.get_llm_max_retries()) is int
            assert cm.get_llm_timeout() == defaults["llm.timeout_seconds"] and type(cm.get_llm_timeout()) is int
            assert cm.get_llm_temperature() == defaults["llm.temperature"]
            assert type(cm.get_llm_temperature()) is float
            assert cm.get_toolsets() == defaults["toolsets"] and isinstance(cm.get_toolsets(), dict)
            assert cm.get_log_level() == defaults["log_level"]
            assert logging.getLogger().level == logging.getLevelName(defaults["log_level"])
    finally:
        publisher.stop()


def test_a_config_of_another_schema_is_refused_by_field(publisher_binary, segment, tmp_path, caplog):
    caplog.set_level(logging.ERROR)  # restored at teardown
    publisher = start_publisher(publisher_binary, tmp_path, segment, "app_good.yaml",
                                "--schema", str(CONFIGS / "app_schema.yaml"))
    try:
        with caplog.at_level(logging.WARNING, logger="confcast.config_manager"):  # the warning, whatever the root
            with confcast.ConfigManager(segment=segment) as cm:
                assert cm.subscriber.get("service.name") == "payments"  # the generic API reads it
                getters = (cm.get_llm_model, cm.get_llm_provider, cm.get_llm_endpoint, cm.get_llm_max_retries,
                           cm.get_llm_timeout, cm.get_llm_temperature, cm.get_toolsets, cm.get_log_level)
                for getter in getters:
                    with pytest.raises(confcast.KeyNotFound, match="not a HolmesGPT config") as caught:
                        getter()
                    assert caught.value.path == "llm.model", getter.__name__
                assert logging.getLogger().level == logging.ERROR  # no log_level in the version: left alone
        assert "has no log_level" in caplog.text
    finally:
        publisher.stop()


def test_resolve_name_is_the_c_librarys_rule(monkeypatch):
    monkeypatch.setenv("CONFCAST_SEGMENT", "from-the-environment")
    assert confcast.Subscriber.resolve_name("given") == "given"
    assert confcast.Subscriber.resolve_name() == "from-the-environment"
    monkeypatch.setenv("CONFCAST_SEGMENT", "")  # empty counts as unset, as in confcast_open(NULL)
    assert confcast.Subscriber.resolve_name() == "holmesgpt-config"
    monkeypatch.delenv("CONFCAST_SEGMENT")
    assert confcast.Subscriber.resolve_name(None) == "holmesgpt-config"


def test_a_field_of_another_type_is_refused_by_name(publisher_binary, segment, tmp_path):
    schema = tmp_path / "schema.yaml"
    schema.write_text("fields:\n  - path: llm.model\n    type: int\n    default: 4\n")
    config = tmp_path / "config.yaml"
    config.write_text("other: 1\n")
    publisher = Publisher(publisher_binary, config, segment, tmp_path / "publisher.log",
                          "--schema", str(schema)).start().wait_published()
    try:
        with confcast.ConfigManager(segment=segment, apply_log_level=False) as cm:
            with pytest.raises(confcast.TypeMismatch, match="'llm.model' is int, expected a string") as caught:
                cm.get_llm_timeout()
            assert caught.value.path == "llm.model"
    finally:
        publisher.stop()
