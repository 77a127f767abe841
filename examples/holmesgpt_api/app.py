"""The HolmesGPT API stand-in: a FastAPI app whose workers read config through confcast.

Run, from the repository root:

    CONFCAST_SEGMENT=holmesgpt-config PYTHONPATH=subscriber/python \\
      CONFCAST_LIBRARY=$PWD/build/subscriber/libconfcast.so \\
      gunicorn --chdir examples/holmesgpt_api -w 4 -k uvicorn.workers.UvicornWorker app:app

That is sidecar mode: a publisher runs beside gunicorn (in Kubernetes, a
sidecar container sharing the segment). To have the gunicorn master start the
publisher instead, add ``-c examples/holmesgpt_api/gunicorn.conf.py`` and
``CONFCAST_START_PUBLISHER=1`` (see that file).

Each request pins one config snapshot when it starts (``PinnedConfigMiddleware``)
and uses only that one, so a request in flight during a reload finishes on the
version it started with. Pinning costs one version check; the snapshot is
built once per version per worker.

Environment:
  CONFCAST_SEGMENT            the segment (default holmesgpt-config)
  CONFCAST_LIBRARY            path of libconfcast.so, if not installed
  CONFCAST_WAIT_SECONDS       how long a worker's startup waits for the first version (default 10);
                              after that it starts anyway and answers 503 until the config appears
  CONFCAST_MAX_AGE            /healthz turns 503 when the publisher's heartbeat is older (default 5 s)
  CONFCAST_DEMO_TEST_ROUTES   1 adds GET /_test/pinned-across-reload and /_test/hold (tests only)
  CONFIG_FILE                 only logged here: the publisher reads the file

Threading: requests run on each worker's event loop; the config is read
from immutable snapshots, the only shared mutable state is the request
counter (updated on the event loop thread only).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

import confcast
from confcast.asgi import PinnedConfigMiddleware, current_snapshot, pinned_snapshot

WAIT_SECONDS = float(os.environ.get("CONFCAST_WAIT_SECONDS", "10"))
MAX_HEARTBEAT_AGE = float(os.environ.get("CONFCAST_MAX_AGE", "5"))
TEST_ROUTES = os.environ.get("CONFCAST_DEMO_TEST_ROUTES") == "1"
TEST_WAIT_LIMIT_SECONDS = 30.0

if not logging.getLogger().handlers:
    logging.basicConfig(format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("holmesgpt_api")

config_manager = confcast.ConfigManager(path=os.environ.get("CONFIG_FILE"), segment=os.environ.get("CONFCAST_SEGMENT"),
                                        wait_timeout=WAIT_SECONDS)


def config_source() -> confcast.ConfigManager:
    """What the middleware pins from: retries start() (without waiting) until the publisher has published."""
    if not config_manager.started:
        config_manager.start(wait_timeout=0)
    return config_manager


worker_requests_total = 0  # this worker's HTTP requests; only touched on the event loop thread


class WorkerResponseMiddleware:
    """Counts this worker's requests and stamps every response with X-Worker-Pid."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        global worker_requests_total
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        worker_requests_total += 1
        pid_header = (b"x-worker-pid", str(os.getpid()).encode())

        async def send_with_pid(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), pid_header]
            await send(message)

        await self.app(scope, receive, send_with_pid)


app = FastAPI(title="HolmesGPT API (confcast demo)", version="0.1.0")
app.add_middleware(PinnedConfigMiddleware, source=config_source, required=False)
app.add_middleware(WorkerResponseMiddleware)  # outermost: even a 503 from below carries the pid


@app.on_event("startup")
def open_config() -> None:
    try:
        config_manager.start()
    except confcast.ConfcastError as exc:
        # gunicorn halts everything when a worker fails to boot, so start without config and
        # answer 503 until the publisher has published (config_source() retries).
        log.warning("starting without config (will retry per request): %s", exc)


@app.on_event("shutdown")
def close_config() -> None:
    config_manager.stop()


@app.exception_handler(confcast.ConfcastError)
async def config_unavailable(request: Request, exc: confcast.ConfcastError) -> JSONResponse:
    return JSONResponse({"detail": f"config not available: {exc}"}, status_code=503, headers={"Retry-After": "1"})


def analysis_settings(config: confcast.Snapshot) -> dict:
    """What an analysis would run with, all from one pinned version."""
    toolsets = config.get("toolsets") or {}
    return {
        "model": config.get("llm.model"),
        "provider": config.get("llm.provider"),
        "endpoint": config.get("llm.endpoint"),
        "max_retries": config.get("llm.max_retries"),
        "timeout_seconds": config.get("llm.timeout_seconds"),
        "temperature": config.get("llm.temperature"),
        "toolsets_enabled": sorted(name for name, toolset in toolsets.items()
                                   if not (hasattr(toolset, "get") and toolset.get("enabled") is False)),
        "config_version": config.version,
    }


async def analyze(request: Request) -> JSONResponse:
    config = pinned_snapshot(request)
    body = await request.body()
    if body.strip():
        try:
            payload = json.loads(body)
        except ValueError as exc:
            return JSONResponse({"detail": f"body is not JSON: {exc}"}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"detail": "body must be a JSON object"}, status_code=422)
    return JSONResponse(analysis_settings(config))


@app.post("/api/v1/incident/analyze")
async def incident_analyze(request: Request) -> JSONResponse:
    return await analyze(request)


@app.post("/api/v1/recovery/analyze")
async def recovery_analyze(request: Request) -> JSONResponse:
    return await analyze(request)


@app.get("/config")
async def get_config(request: Request) -> JSONResponse:
    config = pinned_snapshot(request)
    # redacted(): the API key and any other secret field show as "<secret>"; handlers that need
    # the key read it from the snapshot itself.
    return JSONResponse({"version": config.version, "sha256": config.sha256, "config": config.redacted()})


def _metric(lines: list[str], name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
    for labels, value in samples:
        lines.append(f"{name}{labels} {value!r}" if isinstance(value, float) else f"{name}{labels} {value}")


@app.get("/metrics")
async def metrics(request: Request) -> Response:
    lines: list[str] = []
    try:
        info = config_manager.subscriber.info()
    except confcast.ConfcastError:
        info = None  # no segment yet: only this worker's own series
    if info is not None:
        _metric(lines, "holmesgpt_config_reload_total", "counter",
                "Successful publishes of a new config version, the first load included (from the segment).",
                [("", info["reload_total"])])
        _metric(lines, "holmesgpt_config_reload_errors_total", "counter",
                "Rejected config reload attempts (from the segment).", [("", info["reload_errors_total"])])
        _metric(lines, "holmesgpt_config_last_reload_timestamp", "gauge",
                "Unix time in seconds of the last successful config publish (from the segment).",
                [("", info["published_unix_ns"] / 1e9)])
    pid = f'{{pid="{os.getpid()}"}}'
    _metric(lines, "confcast_worker_requests_total", "counter", "HTTP requests this worker process served.",
            [(pid, worker_requests_total)])
    pinned = request.state.config
    _metric(lines, "confcast_worker_config_version", "gauge",
            "Config version this worker's requests are pinning now (0 before the first publish).",
            [(pid, pinned.version if pinned is not None else 0)])
    if info is not None and info["heartbeat_age_seconds"] != float("inf"):
        _metric(lines, "confcast_worker_publisher_heartbeat_age_seconds", "gauge",
                "Age of the publisher's last heartbeat as this worker sees it.",
                [(pid, round(info["heartbeat_age_seconds"], 3))])
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8")


@app.get("/healthz")
async def healthz() -> JSONResponse:
    try:
        info = config_manager.subscriber.info()
    except confcast.ConfcastError as exc:
        return JSONResponse({"status": "unavailable", "detail": str(exc)}, status_code=503)
    age = info["heartbeat_age_seconds"]
    healthy = info["version"] > 0 and age < MAX_HEARTBEAT_AGE
    body = {"status": "ok" if healthy else "stale", "config_version": info["version"],
            "heartbeat_age_seconds": None if age == float("inf") else round(age, 3),
            "max_age_seconds": MAX_HEARTBEAT_AGE, "publisher_pid": info["publisher_pid"],
            # This worker's own line of `confcastctl workers` (None: it could not register).
            "ledger": config_manager.subscriber.ledger_entry()}
    return JSONResponse(body, status_code=200 if healthy else 503)


if TEST_ROUTES:
    @app.get("/_test/hold")
    async def hold(request: Request, seconds: float = 1.0) -> StreamingResponse:
        """A slow request: streams its pinned version at once, then again after ``seconds``."""
        version = pinned_snapshot(request).version
        limit = min(max(seconds, 0.0), TEST_WAIT_LIMIT_SECONDS)

        async def body():
            yield json.dumps({"phase": "pinned", "config_version": version}) + "\n"
            await asyncio.sleep(limit)
            yield json.dumps({"phase": "done", "config_version": pinned_snapshot(request).version}) + "\n"

        return StreamingResponse(body(), media_type="application/x-ndjson")

    @app.get("/_test/pinned-across-reload")
    async def pinned_across_reload(request: Request, timeout: float = 10.0) -> StreamingResponse:
        """Reads the config, waits (bounded) for the next version, reads again; streams both reads.

        The first NDJSON line is sent as soon as the config was read, so a
        test can trigger the reload only once the request is surely in flight.
        """
        first = analysis_settings(pinned_snapshot(request))
        subscriber = config_manager.subscriber
        limit = min(max(timeout, 0.0), TEST_WAIT_LIMIT_SECONDS)

        async def body():
            yield json.dumps({"phase": "pinned", **first}) + "\n"
            started = time.monotonic()
            new_version = await run_in_threadpool(subscriber.wait, first["config_version"], limit)
            second = analysis_settings(pinned_snapshot(request))
            live = subscriber.snapshot()
            yield json.dumps({
                "phase": "done",
                "first": first,
                "second": second,
                "second_from_contextvar": current_snapshot().version,
                "waited_for_version": new_version,
                "waited_seconds": round(time.monotonic() - started, 3),
                "live_version": live.version,
                "live_model": live.get("llm.model"),
            }) + "\n"

        return StreamingResponse(body(), media_type="application/x-ndjson")
