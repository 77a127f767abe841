"""pytest fixtures for the confcast Python package and the HolmesGPT API demo.

The native parts come from the environment, as tests/run sets it:
  CONFCAST_LIBRARY    path of libconfcast.so
  CONFCAST_PUBLISHER  path of confcast-publisher
For convenience, when a variable is unset, the newest build*/ directory of
the repository that has the file is used (and said so in the header); when
neither gives a file, the tests needing it fail with a message saying what
to set.

Every fixture that starts a process stops it, and every segment created
(unique name per test) is removed from /dev/shm at teardown.

Threading: fixtures run on pytest's main thread.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: confcast_pytest_support
from confcast_pytest_support import REPO, Publisher, remove_segment, segment, unique_segment  # noqa: E402,F401 (segment: a fixture)
from cc_helpers import DemoServer, KubeletConfigMap, holmes_config  # noqa: E402


def _locate(variable: str, relative: str) -> tuple[str | None, str]:
    """(path or None, how it was found or what is missing)."""
    explicit = os.environ.get(variable)
    if explicit:
        if os.path.isfile(explicit):
            return os.path.abspath(explicit), f"${variable}"  # the same file from every child's directory
        return None, f"${variable}={explicit!r} does not exist"
    builds = sorted(REPO.glob(f"build*/{relative}"), key=lambda p: p.stat().st_mtime, reverse=True)
    if builds:
        return str(builds[0]), f"fallback {builds[0]} (set ${variable} to choose)"
    return None, (f"${variable} is not set and no {REPO}/build*/{relative} exists: build the project "
                  f"(cmake --build BUILD) and set {variable}=BUILD/{relative}")


LIBRARY, LIBRARY_SOURCE = _locate("CONFCAST_LIBRARY", "subscriber/libconfcast.so")
PUBLISHER, PUBLISHER_SOURCE = _locate("CONFCAST_PUBLISHER", "publisher/confcast-publisher")
if LIBRARY:
    os.environ["CONFCAST_LIBRARY"] = LIBRARY  # the package (and every child process) loads this one
if PUBLISHER:
    os.environ["CONFCAST_PUBLISHER"] = PUBLISHER


def pytest_report_header(config):
    return [f"libconfcast: {LIBRARY or 'MISSING'} ({LIBRARY_SOURCE})",
            f"confcast-publisher: {PUBLISHER or 'MISSING'} ({PUBLISHER_SOURCE})"]


@pytest.fixture(scope="session")
def library_path() -> str:
    if not LIBRARY:
        pytest.fail(f"libconfcast.so not found: {LIBRARY_SOURCE}", pytrace=False)
    return LIBRARY


@pytest.fixture(scope="session")
def publisher_binary(library_path) -> str:
    if not PUBLISHER:
        pytest.fail(f"confcast-publisher not found: {PUBLISHER_SOURCE}", pytrace=False)
    return PUBLISHER


@pytest.fixture
def configmap(tmp_path) -> KubeletConfigMap:
    return KubeletConfigMap(tmp_path / "configmap", holmes_config("gpt-4o"))


@pytest.fixture
def publisher(publisher_binary, configmap, segment, tmp_path):
    """A running publisher that has published version 1 of ``configmap``."""
    proc = Publisher(publisher_binary, configmap.path, segment, tmp_path / "publisher.log").start()
    try:
        proc.wait_published()
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def subscriber(publisher):
    import confcast

    sub = confcast.Subscriber(publisher.segment)
    yield sub
    sub.close()


def start_demo_stack(tmp_dir: Path, publisher_binary: str, *, env: dict[str, str] | None = None, workers: int = 4):
    """(configmap, publisher, server, segment) - the caller stops them with stop_demo_stack()."""
    segment = unique_segment()
    configmap = KubeletConfigMap(tmp_dir / "configmap", holmes_config("gpt-4o"))
    proc = Publisher(publisher_binary, configmap.path, segment, tmp_dir / "publisher.log").start()
    server = DemoServer(segment, tmp_dir / "gunicorn.log", env=env, workers=workers)
    try:
        proc.wait_published()
        server.start()
        server.wait_serving()
    except BaseException:
        stop_demo_stack(proc, server, segment)
        raise
    return configmap, proc, server, segment


def stop_demo_stack(proc: Publisher, server: DemoServer, segment: str) -> None:
    try:
        server.stop()
    finally:
        proc.stop()
        remove_segment(segment)
