"""A /metrics address that cannot be served is a clear error and exit 1, never an
abort: a port another process listens on, a bad port, no port, an IPv6 address
(the embedded HTTP server has no IPv6), an address of no local interface."""

from __future__ import annotations

import signal
import socket

import pytest

from .obs_support import free_port

TIMEOUT = 15


def run_expecting_failure(start_publisher, address: str, *flags: str):
    publisher = start_publisher(*flags, metrics_address=address, wait=False)
    try:
        code = publisher.process.wait(TIMEOUT)
    except Exception:
        raise AssertionError(f"the publisher did not exit with --metrics-address {address!r}:\n{publisher.log_text()}")
    log = publisher.log_text()
    assert code == 1, f"exit {code} (-{int(signal.SIGABRT)} is an abort) with --metrics-address {address!r}:\n{log}"
    assert "terminate called" not in log and "Aborted" not in log, log
    assert "--metrics-address" in log and address in log, log
    return publisher


def test_port_in_use(start_publisher):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        log = run_expecting_failure(start_publisher, f"127.0.0.1:{port}").log_text()
    assert "already in use" in log, log


def test_port_in_use_as_json(start_publisher):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        records = run_expecting_failure(start_publisher, f"127.0.0.1:{port}", "--log-format", "json").json_log()
    assert records[-1]["level"] == "critical", records
    assert "already in use" in records[-1]["message"], records


@pytest.mark.parametrize("address, says", [
    ("nohost:99999", "not a number from 0 to 65535"),
    ("127.0.0.1:http", "not a number from 0 to 65535"),
    ("127.0.0.1", "expected HOST:PORT"),
    ("[::1]:9464", "IPv6"),
    ("192.0.2.1:9464", "no network interface"),  # TEST-NET-1: never local
])
def test_bad_addresses(start_publisher, address, says):
    log = run_expecting_failure(start_publisher, address).log_text()
    assert says in log, log


def test_a_host_name_is_resolved(start_publisher):
    port = free_port()
    publisher = start_publisher(metrics_address=f"localhost:{port}", wait=False)
    publisher.metrics_port = port
    publisher.wait_serving()
