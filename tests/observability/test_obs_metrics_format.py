"""/metrics as served: every documented series from the first scrape, the
histogram's buckets, --metrics-prefix, --metrics-address none, and `promtool check
metrics` (Debian's prometheus package) on the whole output."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .obs_support import BASE_CONFIG, REASONS, Scrape, ctl, wait_until, write_atomic

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
BUCKETS = ["0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
           "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]


def promtool_check(text: str) -> None:
    if not os.access(PROMTOOL, os.X_OK):
        pytest.fail(f"promtool not found at {PROMTOOL}: install Debian's prometheus package", pytrace=False)
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"promtool check metrics failed:\n{result.stdout}{result.stderr}\n--- input:\n{text}"
    assert result.stdout.strip() == "" and result.stderr.strip() == "", \
        f"promtool check metrics has remarks:\n{result.stdout}{result.stderr}"


def test_every_series_is_present_from_the_first_scrape_and_promtool_accepts_it(start_publisher):
    publisher = start_publisher()
    first = Scrape(publisher.metrics_port)
    assert first.reload_total == 1  # the first load counts
    assert first.reload_errors_total == 0
    assert first.errors_by_reason() == {reason: 0 for reason in REASONS}
    assert first.version == 1
    assert first.last_reload_timestamp > 1.6e9
    assert first.value("confcast_publish_duration_seconds_count") == 1
    for le in BUCKETS:
        first.value("confcast_publish_duration_seconds_bucket", le=le)
    assert first.value("confcast_publish_duration_seconds_bucket", le="+Inf") == 1
    for name in ("holmesgpt_config_reload_total", "holmesgpt_config_reload_errors_total",
                 "confcast_config_reload_errors_by_reason_total"):
        assert f"# TYPE {name} counter" in first.text
    for name in ("holmesgpt_config_last_reload_timestamp", "confcast_config_version"):
        assert f"# TYPE {name} gauge" in first.text
    assert "# TYPE confcast_publish_duration_seconds histogram" in first.text
    promtool_check(first.text)


def test_promtool_accepts_the_output_after_scrapes_rejections_and_publishes(start_publisher, config_file, ctl_binary,
                                                                           segment):
    publisher = start_publisher()
    write_atomic(config_file, "llm: [unclosed\n")
    wait_until(lambda: Scrape(publisher.metrics_port).reload_errors_total == 1, 10, "the parse error to be counted")
    write_atomic(config_file, BASE_CONFIG.replace("gpt-4o", "gpt-4.1"))
    assert ctl(ctl_binary, segment, "wait", "--after", "1", "--timeout", "10").returncode == 0
    for _ in range(3):  # the exposer's own scrape metrics now hold values too
        text = Scrape(publisher.metrics_port).text
    promtool_check(text)


def test_metrics_prefix_renames_the_three_reload_metrics_only(start_publisher):
    publisher = start_publisher("--metrics-prefix", "myapp")
    scrape = Scrape(publisher.metrics_port, prefix="myapp")
    assert scrape.reload_total == 1
    assert scrape.reload_errors_total == 0
    assert scrape.last_reload_timestamp > 1.6e9
    assert scrape.version == 1
    assert "holmesgpt_" not in scrape.text
    promtool_check(scrape.text)


def test_metrics_address_none_opens_no_socket(start_publisher, ctl_binary, segment):
    publisher = start_publisher(metrics_address="none", wait=False)
    wait_until(lambda: os.path.exists(f"/dev/shm/{segment}") or publisher.process.poll() is not None, 10,
               "the segment to be created")
    waited = ctl(ctl_binary, segment, "wait", "--after", "0", "--timeout", "10")
    assert waited.returncode == 0, f"no publish: {waited.stderr}\n{publisher.log_text()}"
    assert publisher.process.poll() is None, publisher.log_text()
    fd_dir = f"/proc/{publisher.process.pid}/fd"
    sockets = []
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except FileNotFoundError:  # closed meanwhile (the poll's read of the config)
            continue
        if target.startswith("socket:"):
            sockets.append(target)
    assert sockets == [], f"--metrics-address none still holds sockets: {sockets}"
