"""The counters move exactly as they should, and the segment (confcastctl status and
the C ABI) always agrees with /metrics.

One publisher (--poll-seconds 1, --max-config-bytes 512) goes through: a valid
change, an unchanged rewrite, invalid YAML, a schema violation, a too-large file,
a deleted file, and the same bad file seen again by the poll. Every file is
replaced atomically (temp + rename), as editors and kubelet do, so a poll never
reads half a file."""

from __future__ import annotations

import os

import pytest

from .obs_support import (BASE_CONFIG, REASONS, FileOpens, Scrape, SegmentReader, close_to, ctl, ctl_status,
                          wait_until, write_atomic)

MAX_CONFIG_BYTES = 512
TIMEOUT = 15


class Expected:
    """What /metrics and the segment must say after each step."""

    def __init__(self):
        self.reloads = 1
        self.version = 1
        self.errors = {reason: 0 for reason in REASONS}

    def reject(self, reason: str) -> None:
        self.errors[reason] += 1

    def publish(self) -> None:
        self.reloads += 1
        self.version += 1


def assert_agree(port: int, ctl_binary: str, segment: str, reader: SegmentReader, expected: Expected, step: str):
    """/metrics == the segment == what the step should have left."""
    scrape = Scrape(port)
    status = ctl_status(ctl_binary, segment)
    info = reader.info()
    want_errors = sum(expected.errors.values())
    where = f"after {step}:\n/metrics:\n{scrape.text}\nconfcastctl status:\n{status['text']}"
    assert scrape.reload_total == expected.reloads, where
    assert scrape.version == expected.version, where
    assert scrape.reload_errors_total == want_errors, where
    assert scrape.errors_by_reason() == expected.errors, where
    assert status["reloads"] == info.reload_total == expected.reloads, where
    assert status["version"] == info.version == expected.version, where
    assert status["errors"] == info.reload_errors_total == want_errors, where
    assert status["errors_by_reason"] == expected.errors, where
    # The gauge is the publish time the segment stores, to the precision of a
    # double of unix seconds (~0.24 us today) and of its text form.
    published = info.published_unix_ns / 1e9
    assert close_to(scrape.last_reload_timestamp, published, 2e-6), \
        f"last_reload_timestamp {scrape.last_reload_timestamp!r} != published {published!r}; {where}"
    return scrape, status


def wait_errors(port: int, total: int, what: str) -> None:
    wait_until(lambda: Scrape(port).reload_errors_total >= total, TIMEOUT, what)


def wait_for_poll_rereads(config_file, what: str) -> None:
    """Two more opens of the config by the 1-second poll: the first poll's reload has
    completed without counting anything (the loop is single-threaded)."""
    opens = FileOpens(config_file)
    try:
        opens.wait_for(2, TIMEOUT, what)
    finally:
        opens.close()


def unchanged_lines(publisher) -> int:
    return sum(1 for r in publisher.json_log() if r["message"].startswith("file event: unchanged"))


def test_each_event_moves_exactly_the_right_counter(start_publisher, config_file, ctl_binary, library_path, segment):
    publisher = start_publisher("--poll-seconds", "1", "--max-config-bytes", str(MAX_CONFIG_BYTES),
                                "--log-format", "json", "--log-level", "debug")
    port = publisher.metrics_port
    reader = SegmentReader(library_path, segment)
    expected = Expected()
    try:
        assert_agree(port, ctl_binary, segment, reader, expected, "the first load")

        # A valid change: one publish, the version and the publish time move.
        before = Scrape(port)
        changed = BASE_CONFIG.replace("max_retries: 3", "max_retries: 5")
        write_atomic(config_file, changed)
        assert ctl(ctl_binary, segment, "wait", "--after", "1", "--timeout", str(TIMEOUT)).returncode == 0
        wait_until(lambda: Scrape(port).reload_total == 2, TIMEOUT, "reload_total 2")
        expected.publish()
        after, _ = assert_agree(port, ctl_binary, segment, reader, expected, "a valid change")
        assert after.last_reload_timestamp > before.last_reload_timestamp
        assert after.value("confcast_publish_duration_seconds_count") == \
            before.value("confcast_publish_duration_seconds_count") + 1

        # An unchanged rewrite (new inode, same bytes): the file event is handled
        # (its debug line is the barrier) and nothing moves.
        seen_unchanged = unchanged_lines(publisher)
        write_atomic(config_file, changed)
        wait_until(lambda: unchanged_lines(publisher) > seen_unchanged, TIMEOUT,
                   "the publisher to handle the unchanged rewrite")
        same, _ = assert_agree(port, ctl_binary, segment, reader, expected, "an unchanged rewrite")
        assert same.last_reload_timestamp == after.last_reload_timestamp

        # Invalid YAML: +1 error, reason parse; the poll reading it again counts nothing.
        write_atomic(config_file, "llm:\n  model: [unclosed\n")
        wait_errors(port, 1, "the parse error to be counted")
        expected.reject("parse")
        assert_agree(port, ctl_binary, segment, reader, expected, "invalid YAML")
        last_error = ctl_status(ctl_binary, segment)["last_error"]
        assert last_error.startswith(f"{config_file}:2:") or last_error.startswith(f"{config_file}:3:"), last_error
        wait_for_poll_rereads(config_file, "the poll to re-read the invalid YAML")
        assert_agree(port, ctl_binary, segment, reader, expected, "the poll re-reading the same invalid YAML")

        # A schema violation: +1, reason validate (and the poll does not recount it).
        write_atomic(config_file, BASE_CONFIG.replace("max_retries: 3", "max_retries: 99"))
        wait_errors(port, 2, "the schema violation to be counted")
        expected.reject("validate")
        _, status = assert_agree(port, ctl_binary, segment, reader, expected, "a schema violation")
        assert "llm.max_retries" in status["last_error"], status["text"]
        wait_for_poll_rereads(config_file, "the poll to re-read the schema violation")
        assert_agree(port, ctl_binary, segment, reader, expected, "the poll re-reading the schema violation")

        # Too large: +1, reason too_large.
        write_atomic(config_file, BASE_CONFIG + "# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
        assert os.path.getsize(config_file) > MAX_CONFIG_BYTES
        wait_errors(port, 3, "the too-large file to be counted")
        expected.reject("too_large")
        assert_agree(port, ctl_binary, segment, reader, expected, "a too-large file")
        wait_for_poll_rereads(config_file, "the poll to re-read the too-large file")
        assert_agree(port, ctl_binary, segment, reader, expected, "the poll re-reading the too-large file")

        # Deleted: +1, reason io.
        os.unlink(config_file)
        wait_errors(port, 4, "the deleted file to be counted")
        expected.reject("io")
        assert_agree(port, ctl_binary, segment, reader, expected, "a deleted file")

        # Back to the published content: nothing is published or counted; the
        # version readers have is still the one from the valid change.
        seen_unchanged = unchanged_lines(publisher)
        write_atomic(config_file, changed)
        wait_until(lambda: unchanged_lines(publisher) > seen_unchanged, TIMEOUT,
                   "the publisher to see the restored file")
        wait_for_poll_rereads(config_file, "the poll to re-read the restored file")
        assert_agree(port, ctl_binary, segment, reader, expected, "restoring the published content")

        # A bad content seen before counts again once a good one came between.
        write_atomic(config_file, "llm:\n  model: [unclosed\n")
        wait_errors(port, 5, "the parse error to be counted again")
        expected.reject("parse")
        assert_agree(port, ctl_binary, segment, reader, expected, "the same invalid YAML after a good one")

        assert publisher.process.poll() is None, publisher.log_text()
    finally:
        reader.close()
