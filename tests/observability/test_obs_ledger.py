"""The worker ledger's four metrics: present (and promtool-clean) from the first scrape, and a real
Prometheus following a Python worker that holds an old version until it is SIGKILLed.

The worker is a real process reading the publisher's segment through the Python package; the
publisher counts it from its own scans of the ledger beside the segment.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .obs_support import BASE_CONFIG, Scrape, ctl, wait_until, write_atomic
from .test_obs_prometheus import PrometheusServer, prometheus_binary  # noqa: F401 (a fixture)

PACKAGE = str(Path(__file__).resolve().parents[2] / "subscriber" / "python")

HOLDER = r"""
import sys, confcast
sub = confcast.Subscriber(sys.argv[1])
with sub.pin() as snap:
    print(snap.version, flush=True)
    sys.stdin.readline()  # held until killed (or told)
"""


def start_holder(library_path: str, segment: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, segment], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": PACKAGE,
                                              "CONFCAST_LIBRARY": library_path})
    assert holder.stdout.readline().strip() == "1"
    return holder


def test_the_ledger_metrics_are_there_from_the_first_scrape_and_promtool_clean(start_publisher):
    publisher = start_publisher()
    first = Scrape(publisher.metrics_port)
    assert first.value("confcast_workers") == 0
    assert first.value("confcast_workers_holding_old_version") == 0
    assert first.value("confcast_oldest_version_held") == 1  # the published version: nobody holds older
    assert first.value("confcast_drain_seconds_count") in (0, 1)  # the first publish drains at the first scan
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    checked = subprocess.run([promtool, "check", "metrics"], input=first.text, capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_sees_a_holder_of_an_old_version_and_its_death(prometheus_binary, start_publisher, config_file,
                                                                  ctl_binary, library_path, segment, tmp_path):
    publisher = start_publisher()
    holder = start_holder(library_path, segment)
    server = PrometheusServer(tmp_path, publisher.metrics_port).start()
    try:
        server.wait_value("confcast_workers", 1)
        write_atomic(config_file, BASE_CONFIG.replace("gpt-4o", "gpt-4.1"))
        assert ctl(ctl_binary, segment, "wait", "--after", "1", "--timeout", "15").returncode == 0
        server.wait_value("confcast_workers_holding_old_version", 1)
        server.wait_value("confcast_oldest_version_held", 1)
        drained_before = Scrape(publisher.metrics_port).value("confcast_drain_seconds_count")

        holder.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        holder.wait(10)
        # The publisher's own view (its scan every 200 ms) within 2 s of the death ...
        wait_until(lambda: Scrape(publisher.metrics_port).value("confcast_workers") == 0, 2,
                   "the killed worker to leave confcast_workers")
        assert time.monotonic() - killed < 2.0
        after = Scrape(publisher.metrics_port)
        assert after.value("confcast_workers_holding_old_version") == 0
        assert after.value("confcast_oldest_version_held") == 2
        # ... the publish of version 2 drained when its last holder died ...
        assert after.value("confcast_drain_seconds_count") == drained_before + 1
        assert after.value("confcast_drain_seconds_sum") > 0
        # ... and Prometheus's.
        server.wait_value("confcast_workers", 0)
        server.wait_value("confcast_oldest_version_held", 2)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        server.stop()
