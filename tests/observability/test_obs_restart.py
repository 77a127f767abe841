"""A restarted publisher adopts the segment (versions continue): /metrics and the
segment still agree. The counters describe one publisher process in both places
(a restart is a counter reset); the version gauge is the segment's version."""

from __future__ import annotations

import signal

import pytest

from .obs_support import BASE_CONFIG, Scrape, ctl, ctl_status, wait_until, write_atomic

TIMEOUT = 15


def stop_cleanly(first):
    first.signal(signal.SIGTERM)
    assert first.process.wait(TIMEOUT) == 0, first.log_text()


def agree(publisher, ctl_binary, segment) -> tuple[Scrape, dict]:
    scrape = Scrape(publisher.metrics_port)
    status = ctl_status(ctl_binary, segment)
    where = f"/metrics:\n{scrape.text}\nstatus:\n{status['text']}"
    assert scrape.version == status["version"], where
    assert scrape.reload_total == status["reloads"], where
    assert scrape.reload_errors_total == status["errors"], where
    assert scrape.errors_by_reason() == status["errors_by_reason"], where
    return scrape, status


def test_restart_with_the_same_config_publishes_nothing(start_publisher, ctl_binary, segment):
    stop_cleanly(start_publisher())
    second = start_publisher()
    scrape, status = agree(second, ctl_binary, segment)
    assert status["version"] == 1 and status["reloads"] == 0, status["text"]
    assert scrape.last_reload_timestamp == 0


def test_restart_with_a_new_config_continues_the_versions(start_publisher, config_file, ctl_binary, segment):
    stop_cleanly(start_publisher())
    write_atomic(config_file, BASE_CONFIG.replace("gpt-4o", "gpt-4.1"))
    second = start_publisher()
    wait_until(lambda: Scrape(second.metrics_port).version == 2, TIMEOUT, "version 2")
    _, status = agree(second, ctl_binary, segment)
    assert status["version"] == 2 and status["reloads"] == 1, status["text"]


def test_restart_with_a_bad_config_keeps_the_version_gauge(start_publisher, config_file, ctl_binary, segment):
    stop_cleanly(start_publisher())
    write_atomic(config_file, "llm: [unclosed\n")
    second = start_publisher(wait=False)
    wait_until(lambda: _errors(second) == 1, TIMEOUT, "the bad config to be counted")
    assert second.process.poll() is None, second.log_text()  # a version is live: not fatal
    assert ctl(ctl_binary, segment, "get", "llm.model").stdout.strip() == "gpt-4o"
    _, status = agree(second, ctl_binary, segment)
    assert status["version"] == 1, status["text"]


def _errors(publisher) -> float:
    try:
        return Scrape(publisher.metrics_port).reload_errors_total
    except OSError:
        return -1
