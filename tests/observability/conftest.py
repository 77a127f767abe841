"""pytest fixtures of the observability tests: the publisher's /metrics,
a real Prometheus scraping it, confcastctl status, and the JSON log.

The binaries come from the environment, as tests/run sets it:
  CONFCAST_PUBLISHER  confcast-publisher
  CONFCAST_CTL        confcastctl
  CONFCAST_LIBRARY    libconfcast.so (optional: else found beside confcastctl)
A test needing one that is not set fails and says what to set.

Each test starts its own publisher on a unique segment (/dev/shm/confcast-obs-*)
with --metrics-address 127.0.0.1:<free port>; teardown stops every process
started and removes the segment, also when the test failed.

This directory is a package (__init__.py) so that this conftest is imported as
observability.conftest and never shadows tests/python's `conftest` module, which
its tests import by that name; shared helpers live in obs_support.

Threading: fixtures run on pytest's main thread.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from confcast_pytest_support import Publisher, segment  # noqa: F401 (segment: a fixture)

from .obs_support import BASE_CONFIG, MissingBinary, binary_from_env, locate_library


def _require(variable: str, what: str) -> str:
    try:
        return binary_from_env(variable, what)
    except MissingBinary as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def publisher_binary() -> str:
    return _require("CONFCAST_PUBLISHER", "the confcast-publisher binary")


@pytest.fixture(scope="session")
def ctl_binary() -> str:
    return _require("CONFCAST_CTL", "the confcastctl binary")


@pytest.fixture(scope="session")
def library_path(ctl_binary) -> str:
    try:
        return locate_library(ctl_binary)
    except MissingBinary as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "config" / "config.yaml"
    path.parent.mkdir()
    path.write_text(BASE_CONFIG)
    return path


@pytest.fixture
def start_publisher(publisher_binary, segment, config_file, tmp_path):
    """start_publisher(*flags) -> a running Publisher on this test's segment and config,
    serving /metrics on a free loopback port; stopped at teardown."""
    started: list[Publisher] = []

    def start(*flags: str, wait: bool = True, metrics_address: str | None = None,
              config: Path | None = None) -> Publisher:
        log = tmp_path / f"publisher-{len(started)}.log"
        publisher = Publisher(publisher_binary, config or config_file, segment, log, *flags,
                              metrics_address=metrics_address)
        started.append(publisher.start())
        return publisher.wait_serving() if wait else publisher

    yield start
    for publisher in started:
        publisher.stop()
