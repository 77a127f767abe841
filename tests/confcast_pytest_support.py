"""What both pytest suites (tests/python, tests/observability) need alike:
bounded waits, unique segment names and their removal.

Imported by name: tests/ is on sys.path (tests/observability is a package
below it; tests/python/conftest.py adds it).

Threading: plain functions used from pytest's main thread.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02):
    """Polls ``predicate`` until it returns something truthy; fails naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def unique_segment(suite: str = "pytest") -> str:
    return f"confcast-{suite}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def remove_segment(segment: str) -> None:
    """Removes a segment and the publisher lock it keeps beside it (NAME.confcast-lock)."""
    base = segment if segment.startswith("/") else f"/dev/shm/{segment}"
    for path in (base, base + ".confcast-lock"):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


@pytest.fixture
def segment():
    """A unique segment name; the segment is removed after the test, whatever happened."""
    name = unique_segment()
    yield name
    remove_segment(name)
