"""confcast.asgi.PinnedConfigMiddleware: one snapshot per request, kept across a reload.
Driven as plain ASGI (no server), against a real publisher."""

from __future__ import annotations

import asyncio
import json

import pytest

import confcast
from confcast.asgi import PinnedConfigMiddleware, current_snapshot, pinned_snapshot
from cc_helpers import holmes_config


def run_request(app, path: str = "/") -> tuple[int, dict, bytes]:
    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


async def json_response(send, payload, status=200):
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def test_pins_one_snapshot_for_the_whole_request(subscriber, configmap):
    async def app(scope, receive, send):
        first = pinned_snapshot(scope)
        assert current_snapshot() is first
        before = first.get("llm.model")
        # a reload happens while this request is in flight
        loop = asyncio.get_running_loop()
        configmap.update(holmes_config("during-request"))
        new_version = await loop.run_in_executor(None, subscriber.wait, first.version, 10)
        assert new_version is not None
        after = pinned_snapshot(scope)
        await json_response(send, {
            "before": before, "after": after.get("llm.model"), "same": after is first,
            "contextvar_same": current_snapshot() is first, "live": subscriber.get("llm.model"),
        })

    status, _, body = run_request(PinnedConfigMiddleware(app, source=subscriber))
    answer = json.loads(body)
    assert status == 200
    assert answer == {"before": "gpt-4o", "after": "gpt-4o", "same": True, "contextvar_same": True,
                      "live": "during-request"}
    # the next request gets the new version
    async def next_app(scope, receive, send):
        await json_response(send, {"model": pinned_snapshot(scope).get("llm.model")})

    _, _, body = run_request(PinnedConfigMiddleware(next_app, source=subscriber))
    assert json.loads(body) == {"model": "during-request"}


def test_source_may_be_a_config_manager_or_a_callable(publisher):
    cm = confcast.ConfigManager(segment=publisher.segment)

    async def app(scope, receive, send):
        await json_response(send, {"version": pinned_snapshot(scope).version})

    try:
        for source in (cm, lambda: cm):
            status, _, body = run_request(PinnedConfigMiddleware(app, source=source))
            assert status == 200 and json.loads(body)["version"] == cm.version
    finally:
        cm.stop()


def test_no_config_answers_503_or_lets_the_app_decide(library_path, segment):
    cm = confcast.ConfigManager(segment=segment)  # nothing is published there

    async def app(scope, receive, send):
        try:
            pinned_snapshot(scope)
            await json_response(send, {"pinned": True})
        except confcast.ConfigUnavailable:
            await json_response(send, {"pinned": False})

    status, headers, body = run_request(PinnedConfigMiddleware(app, source=cm))
    assert status == 503 and segment in json.loads(body)["detail"]
    assert headers[b"retry-after"] == b"1"
    status, _, body = run_request(PinnedConfigMiddleware(app, source=cm, required=False))
    assert status == 200 and json.loads(body) == {"pinned": False}


def test_current_snapshot_outside_a_request_is_an_error():
    with pytest.raises(confcast.ConfigUnavailable):
        current_snapshot()
