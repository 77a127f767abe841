"""`confcastctl status --max-age` as a readiness probe: it fails once the publisher's
heartbeat (refreshed every second) is older than the limit, and passes again as
soon as the publisher beats again. The publisher is frozen with SIGSTOP, so the
segment stays but the heartbeat goes stale, as with a hung publisher."""

from __future__ import annotations

import re
import signal

from .obs_support import ctl, wait_until

TIMEOUT = 15


def probe(ctl_binary: str, segment: str, max_age: str):
    return ctl(ctl_binary, segment, "status", "--max-age", max_age)


def heartbeat_age(result) -> float:
    match = re.search(r"heartbeat age:\s*([0-9.]+|inf)", result.stdout)
    assert match, f"no heartbeat age in:\n{result.stdout}"
    return float(match.group(1))


def test_stale_heartbeat_fails_max_age_and_a_fresh_one_passes(start_publisher, ctl_binary, segment):
    publisher = start_publisher()

    # Fresh: the documented probe (5 missed beats) passes at once; --max-age 1
    # passes too, but sits on the edge of one interval, so it is polled.
    fresh = probe(ctl_binary, segment, "5")
    assert fresh.returncode == 0, f"{fresh.stdout}{fresh.stderr}"
    assert heartbeat_age(fresh) < 2.5
    wait_until(lambda: probe(ctl_binary, segment, "1").returncode == 0, TIMEOUT, "status --max-age 1 to pass")

    publisher.signal(signal.SIGSTOP)
    try:
        stale = wait_until(lambda: (r := probe(ctl_binary, segment, "1")).returncode == 1 and r, TIMEOUT,
                           "status --max-age 1 to fail while the publisher is stopped")
        # confcastctl fails once the age is above 1 s and prints it to the
        # millisecond, so 1.0004 s fails the probe and reads as "1.000".
        assert heartbeat_age(stale) >= 1
        assert "heartbeat" in stale.stderr and "--max-age" in stale.stderr, stale.stderr
        # Without --max-age, status still reports (exit 0) whatever the age.
        assert ctl(ctl_binary, segment, "status").returncode == 0
    finally:
        publisher.signal(signal.SIGCONT)

    wait_until(lambda: probe(ctl_binary, segment, "1").returncode == 0, TIMEOUT,
               "status --max-age 1 to pass again after SIGCONT")
    assert publisher.process.poll() is None, publisher.log_text()
