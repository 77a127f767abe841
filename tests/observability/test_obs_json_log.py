"""--log-format json: across a run with a publish, rejections of hostile files (a key
holding a quote and a newline, bytes that are not UTF-8) and a stop, every line of
stderr is one JSON object with time, level and message; reload lines carry the
version, hash and changes, rejection lines the reason and position."""

from __future__ import annotations

import datetime
import os
import signal

from .obs_support import BASE_CONFIG, Scrape, ctl, wait_until, write_atomic

TIMEOUT = 15
LEVELS = {"trace", "debug", "info", "warning", "error", "critical"}
WEIRD_KEY = 'we"ird\nkey'
HOSTILE_SCHEMA_VIOLATION = 'llm:\n  model: gpt-4o\ntoolsets:\n  "we\\"ird\\nkey": 5\n'
NOT_UTF8 = b'llm:\n  model: gpt-4o\n  max_retries: "\xff\xfe\xc3("\n'


def test_every_line_is_json_with_the_fields_of_its_event(start_publisher, config_file, ctl_binary, segment):
    publisher = start_publisher("--log-format", "json")
    port = publisher.metrics_port

    write_atomic(config_file, BASE_CONFIG.replace("gpt-4o", "gpt-4.1"))
    assert ctl(ctl_binary, segment, "wait", "--after", "1", "--timeout", str(TIMEOUT)).returncode == 0
    write_atomic(config_file, HOSTILE_SCHEMA_VIOLATION)
    wait_until(lambda: Scrape(port).reload_errors_total == 1, TIMEOUT, "the hostile key to be rejected")
    write_atomic(config_file, NOT_UTF8)
    wait_until(lambda: Scrape(port).reload_errors_total == 2, TIMEOUT, "the non-UTF-8 file to be rejected")
    publisher.signal(signal.SIGTERM)
    assert publisher.process.wait(TIMEOUT) == 0, publisher.log_text()

    records = publisher.json_log()  # fails on the first line that is not JSON (or not UTF-8)
    assert len(records) >= 5, publisher.log_text()
    for record in records:
        assert isinstance(record, dict), record
        assert isinstance(record.get("message"), str) and record["message"], record
        assert record.get("level") in LEVELS, record
        when = datetime.datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
        assert when.tzinfo is not None, record
        assert abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) < 600, record

    reloads = [r for r in records if r["message"].startswith("published config version")]
    assert [r["version"] for r in reloads] == [1, 2], reloads
    for r in reloads:
        assert isinstance(r["sha256"], str) and len(r["sha256"]) >= 12 and int(r["sha256"], 16) >= 0, r
        assert isinstance(r["changes"], list), r
    assert any("llm.model" in c and "gpt-4o" in c and "gpt-4.1" in c for c in reloads[1]["changes"]), reloads[1]

    rejections = [r for r in records if r["message"].startswith("rejected config")]
    assert len(rejections) == 2, rejections
    for r in rejections:
        assert r["level"] == "error", r
        assert r["file"] == str(config_file), r
        assert isinstance(r["line"], int) and r["line"] >= 1, r
        assert isinstance(r["column"], int) and r["column"] >= 1, r
    hostile, not_utf8 = rejections
    assert hostile["reason"] == "validate", hostile
    assert hostile["path"] == f"toolsets.{WEIRD_KEY}", hostile
    assert hostile["line"] == 4, hostile
    assert not_utf8["reason"] in ("parse", "validate"), not_utf8
    if not_utf8["reason"] == "validate":
        assert not_utf8["path"] == "llm.max_retries", not_utf8

    stops = [r for r in records if r["message"].startswith("stopping")]
    assert len(stops) == 1 and stops[0]["level"] == "info", records[-3:]


def test_a_fatal_start_is_a_json_line_too(start_publisher, config_file):
    write_atomic(config_file, HOSTILE_SCHEMA_VIOLATION)
    publisher = start_publisher("--log-format", "json", wait=False)
    assert publisher.process.wait(TIMEOUT) == 1, publisher.log_text()
    records = publisher.json_log()
    assert records and records[-1]["level"] == "critical", records
    assert str(config_file) in records[-1]["message"], records[-1]


def test_bytes_that_are_not_utf8_become_replacement_characters(start_publisher, tmp_path, ctl_binary, segment):
    # A file name is any bytes; it reaches the log in every field and message.
    directory = tmp_path / os.fsdecode(b"conf\xff\xfedir")
    directory.mkdir()
    config = directory / os.fsdecode(b"bad\xc3(.yaml")
    config.write_text(BASE_CONFIG)
    publisher = start_publisher("--log-format", "json", config=config)
    write_atomic(config, "llm:\n  max_retries: 99\n")
    wait_until(lambda: Scrape(publisher.metrics_port).reload_errors_total == 1, TIMEOUT, "the rejection")
    publisher.signal(signal.SIGTERM)
    assert publisher.process.wait(TIMEOUT) == 0, publisher.log_text()

    records = publisher.json_log()
    rejection = next(r for r in records if r["message"].startswith("rejected config"))
    assert rejection["file"].endswith("/conf\ufffd\ufffddir/bad\ufffd(.yaml"), rejection
    assert rejection["path"] == "llm.max_retries", rejection
    starting = next(r for r in records if r["message"] == "confcast-publisher starting")
    assert "\ufffd" in starting["config"], starting
