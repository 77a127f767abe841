"""When the publisher dies, the demo's /healthz turns 503 once its heartbeat is older than
CONFCAST_MAX_AGE, while every worker keeps serving the last good version."""

from __future__ import annotations

import signal

import pytest

from cc_helpers import analyze, holmes_config, request, wait_until
from conftest import start_demo_stack, stop_demo_stack

WORKERS = 4


@pytest.fixture
def stack(publisher_binary, tmp_path):
    configmap, proc, server, segment = start_demo_stack(tmp_path, publisher_binary, env={"CONFCAST_MAX_AGE": "2"})
    try:
        yield configmap, proc, server
    finally:
        stop_demo_stack(proc, server, segment)


def test_healthz_turns_503_when_the_heartbeat_goes_stale(stack):
    configmap, proc, server = stack
    configmap.update(holmes_config("last-published"))
    wait_until(lambda: all(a.json()["model"] == "last-published"
                           for a in server.all_worker_answers(lambda: analyze(server.port)).values()),
               10, "every worker on the last published model")
    healthy = server.all_worker_answers(lambda: request(server.port, "GET", "/healthz"))
    assert {answer.status for answer in healthy.values()} == {200}

    proc.stop(signal.SIGKILL)

    unhealthy: dict[int, int] = {}

    def all_unhealthy():
        for answer in server.all_worker_answers(lambda: request(server.port, "GET", "/healthz")).values():
            if answer.status == 503:
                unhealthy[answer.pid] = answer.status
                assert answer.json()["status"] == "stale"
        return len(unhealthy) >= WORKERS

    wait_until(all_unhealthy, 15, f"/healthz of every worker to turn 503 (so far {sorted(unhealthy)})", interval=0.2)
    # requests are still served, from the last good version
    answers = server.all_worker_answers(lambda: analyze(server.port))
    assert {answer.status for answer in answers.values()} == {200}
    assert {answer.json()["model"] for answer in answers.values()} == {"last-published"}
    # and a config change now reaches nobody (there is no publisher), without breaking anything
    configmap.update(holmes_config("nobody-publishes-this"))
    answers = server.all_worker_answers(lambda: analyze(server.port))
    assert {answer.json()["model"] for answer in answers.values()} == {"last-published"}
