"""The HolmesGPT API demo under a real `gunicorn -w 4 -k uvicorn.workers.UvicornWorker`
with a real confcast-publisher (sidecar mode), reloading a ConfigMap the way the kubelet does.

One publisher + gunicorn stack serves the whole module (booting 4 workers is the
slow part); each test starts from whatever version the previous one left and
uses its own model names.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time

import pytest

import confcast
from cc_helpers import analyze, holmes_config, request, sample, wait_until
from conftest import start_demo_stack, stop_demo_stack

WORKERS = 4
RELOAD_DEADLINE_SECONDS = 2.0


class Stack:
    def __init__(self, configmap, publisher, server, segment) -> None:
        self.configmap = configmap
        self.publisher = publisher
        self.server = server
        self.segment = segment
        self.subscriber = confcast.Subscriber(segment)

    @property
    def port(self) -> int:
        return self.server.port

    def settle(self, model: str, timeout: float = 10.0) -> dict:
        """Waits until every worker answers with ``model``; returns {pid: answer json}."""
        latest: dict[int, dict] = {}

        def settled():
            for answer in sample(lambda: analyze(self.port)):
                assert answer.status == 200, answer.body
                latest[answer.pid] = answer.json()
            return len(latest) >= WORKERS and all(body["model"] == model for body in latest.values())

        wait_until(settled, timeout, f"all {WORKERS} workers to answer model {model!r} (now: "
                   f"{ {pid: body['model'] for pid, body in latest.items()} })", interval=0)
        return latest


@pytest.fixture(scope="module")
def stack(publisher_binary, tmp_path_factory):
    configmap, proc, server, segment = start_demo_stack(tmp_path_factory.mktemp("demo"), publisher_binary)
    stack = Stack(configmap, proc, server, segment)
    try:
        stack.settle("gpt-4o", timeout=30)
        yield stack
    finally:
        stack.subscriber.close()
        stop_demo_stack(proc, server, segment)


def test_every_route_answers_with_the_worker_pid(stack):
    for method, path in [("POST", "/api/v1/incident/analyze"), ("POST", "/api/v1/recovery/analyze"),
                         ("GET", "/config"), ("GET", "/metrics"), ("GET", "/healthz"), ("GET", "/no-such-route")]:
        answer = request(stack.port, method, path)
        assert answer.pid > 0, (method, path)
        assert answer.status == (404 if path == "/no-such-route" else 200), (path, answer.body)


def test_analyze_answers_from_the_config(stack):
    answer = request(stack.port, "POST", "/api/v1/recovery/analyze")  # no body at all is fine
    body = answer.json()
    snap = stack.subscriber.snapshot()
    assert body == {
        "model": snap.get("llm.model"), "provider": "openai", "endpoint": None, "max_retries": 3,
        "timeout_seconds": 60, "temperature": 0.0, "toolsets_enabled": ["kubernetes/core", "kubernetes/logs"],
        "config_version": snap.version,
    }
    assert request(stack.port, "POST", "/api/v1/incident/analyze", b"[1, 2]").status == 422
    assert request(stack.port, "POST", "/api/v1/incident/analyze", b"{not json").status == 400


def test_config_route_shows_the_whole_snapshot(stack):
    body = request(stack.port, "GET", "/config").json()
    snap = stack.subscriber.snapshot()
    assert body["version"] == snap.version
    assert body["config"] == snap.redacted()  # the whole config, the API key as "<secret>"
    assert body["config"]["llm"]["api_key"] == "<secret>" and body["config"]["llm"]["model"] == snap["llm"]["model"]


def test_reload_reaches_every_worker_within_two_seconds(stack):
    stack.settle(stack.subscriber.get("llm.model"))
    old_version = stack.subscriber.version
    changed_at = time.monotonic()
    stack.configmap.update(holmes_config("gpt-4.1-reloaded"))
    answers = []
    first_new: dict[int, float] = {}  # pid -> when its first new answer arrived

    def everyone_new():
        for answer in sample(lambda: analyze(stack.port)):
            answers.append(answer)
            if answer.json()["model"] == "gpt-4.1-reloaded":
                first_new[answer.pid] = min(first_new.get(answer.pid, answer.received_at), answer.received_at)
        return len(first_new) >= WORKERS

    wait_until(everyone_new, 10, f"every worker to answer the new model (so far {sorted(first_new)})", interval=0)
    latest = max(first_new.values()) - changed_at
    assert latest <= RELOAD_DEADLINE_SECONDS, f"the last worker took {latest:.3f} s"
    # None answers with the old one after that: a request sent after its worker served the new
    # version is new (requests already in flight may finish on the old one, as they should).
    answers += sample(lambda: analyze(stack.port), count=64)
    for answer in answers:
        body = answer.json()
        if body["model"] == "gpt-4.1-reloaded":
            assert body["config_version"] > old_version
        else:
            assert body["config_version"] == old_version
            assert answer.sent_at < first_new[answer.pid], f"worker {answer.pid} went back to {body['model']!r}"


def test_invalid_config_leaves_every_worker_on_the_last_good_version(stack):
    stack.configmap.update(holmes_config("last-good"))
    good = stack.settle("last-good")
    good_version = next(iter(good.values()))["config_version"]
    for broken in ("llm: [unclosed\n", holmes_config("bad-range", max_retries=99), ""):
        errors_before = stack.subscriber.info()["reload_errors_total"]
        stack.configmap.update(broken)
        wait_until(lambda: stack.subscriber.info()["reload_errors_total"] > errors_before, 10,
                   f"the publisher to reject {broken[:30]!r}")
        answers = stack.server.all_worker_answers(lambda: analyze(stack.port))
        assert {body.json()["config_version"] for body in answers.values()} == {good_version}
        assert {body.json()["model"] for body in answers.values()} == {"last-good"}
    assert stack.subscriber.version == good_version
    stack.configmap.update(holmes_config("good-again"))
    stack.settle("good-again")


def test_a_burst_of_twenty_updates_is_debounced(stack):
    stack.settle(stack.subscriber.get("llm.model"))
    before = stack.subscriber.version
    for i in range(1, 21):
        stack.configmap.update(holmes_config(f"burst-{i:02d}"))
    wait_until(lambda: stack.subscriber.get("llm.model") == "burst-20", 10, "the last value of the burst")
    stack.settle("burst-20")
    # nothing more arrives after the final value
    assert stack.subscriber.wait(stack.subscriber.version, timeout=0.5) is None
    new_versions = stack.subscriber.version - before
    assert 1 <= new_versions <= 3, f"{new_versions} versions for a burst of 20 updates"


def scrape(port: int) -> tuple[str, dict[str, float]]:
    answer = request(port, "GET", "/metrics")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.body.decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return text, values


def test_metrics_show_reload_counters_rising(stack):
    text, before = scrape(stack.port)
    result = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    version = stack.subscriber.version
    stack.configmap.update(holmes_config("metrics-model"))
    wait_until(lambda: stack.subscriber.version > version, 10, "the reload")
    _, after = scrape(stack.port)
    assert after["holmesgpt_config_reload_total"] > before["holmesgpt_config_reload_total"]
    assert after["holmesgpt_config_last_reload_timestamp"] > before["holmesgpt_config_last_reload_timestamp"]
    assert after["holmesgpt_config_reload_errors_total"] >= before["holmesgpt_config_reload_errors_total"]
    worker_series = [name for name in after if name.startswith("confcast_worker_config_version{pid=")]
    assert len(worker_series) == 1 and after[worker_series[0]] == stack.subscriber.version
    errors = after["holmesgpt_config_reload_errors_total"]
    stack.configmap.update("llm: {model: ''}\n")
    wait_until(lambda: scrape(stack.port)[1]["holmesgpt_config_reload_errors_total"] > errors, 10,
               "the error counter to rise")


def test_a_request_in_flight_keeps_the_version_it_started_with(stack):
    stack.configmap.update(holmes_config("before-reload"))
    stack.settle("before-reload")
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    try:
        conn.request("GET", "/_test/pinned-across-reload?timeout=10")
        response = conn.getresponse()
        assert response.status == 200
        pinned = json.loads(response.readline())
        assert pinned["phase"] == "pinned" and pinned["model"] == "before-reload"
        # The request is in flight and has read its config once: reload now.
        stack.configmap.update(holmes_config("after-reload"))
        done = json.loads(response.readline())
    finally:
        conn.close()
    assert done["phase"] == "done"
    assert done["waited_for_version"] is not None and done["waited_for_version"] > pinned["config_version"]
    assert done["first"] == done["second"], "the request saw two versions"
    assert done["second"]["model"] == "before-reload"
    assert done["second"]["config_version"] == pinned["config_version"]
    assert done["second_from_contextvar"] == pinned["config_version"]
    assert done["live_model"] == "after-reload" and done["live_version"] > pinned["config_version"]
    # the next request gets the new version
    stack.settle("after-reload")


def test_test_routes_are_off_unless_enabled(publisher_binary, tmp_path):
    configmap, proc, server, segment = start_demo_stack(tmp_path, publisher_binary,
                                                        env={"CONFCAST_DEMO_TEST_ROUTES": "0"}, workers=1)
    try:
        assert request(server.port, "GET", "/_test/pinned-across-reload?timeout=0").status == 404
        assert request(server.port, "GET", "/healthz").status == 200
    finally:
        stop_demo_stack(proc, server, segment)
