"""confcast.asgi - one config version per request for ASGI apps (Starlette, FastAPI).

``PinnedConfigMiddleware`` pins one ``Snapshot`` at the start of each HTTP
or WebSocket request (``Subscriber.pin()``: its version is held in the
worker ledger until the request ends, so ``confcastctl wait --converged``
waits for requests still running on an old config) and makes it the
request's config: in
``request.state.config`` (Starlette keeps ``request.state`` in
``scope["state"]``) and in a context variable (``current_snapshot()``), for
code that has no request at hand. A request in flight during a reload
finishes wholly on the version it started with; the next request gets the
new one. Pinning costs one version check (``Subscriber.snapshot()``) plus a
hold and a release in the ledger. A source without ``pin()`` (nor a
``subscriber`` that has one) is only asked for ``snapshot()``.

Plain ASGI, standard library only; ``fastapi_dependency()`` imports
Starlette only when called.

    app.add_middleware(PinnedConfigMiddleware, source=config_manager)

    @app.post("/analyze")
    async def analyze(request: Request):
        config = pinned_snapshot(request)        # or: current_snapshot()

Threading: the middleware is stateless between requests; the context
variable is per task (copied into threads by Starlette's threadpool).
"""

from __future__ import annotations

import contextvars
import json
from typing import Any, Callable

from .errors import ConfcastError, ConfigUnavailable
from .snapshot import Snapshot

_pinned: contextvars.ContextVar[Snapshot | None] = contextvars.ContextVar("confcast_pinned_snapshot",
                                                                        default=None)


def current_snapshot() -> Snapshot:
    """The snapshot pinned for the request being served; ``ConfigUnavailable`` outside one."""
    snap = _pinned.get()
    if snap is None:
        raise ConfigUnavailable("no confcast snapshot is pinned here (is PinnedConfigMiddleware installed, "
                                "and is the config segment published?)")
    return snap


def pinned_snapshot(request: Any, state_key: str = "config") -> Snapshot:
    """The snapshot pinned for ``request`` (a Starlette Request or an ASGI scope)."""
    scope = request if isinstance(request, dict) else request.scope
    snap = scope.get("state", {}).get(state_key)
    if snap is None:
        raise ConfigUnavailable("no confcast snapshot is pinned for this request (is PinnedConfigMiddleware "
                                "installed, and is the config segment published?)")
    return snap


def fastapi_dependency(state_key: str = "config") -> Callable[..., Snapshot]:
    """A FastAPI dependency giving the request's pinned snapshot: ``config = Depends(fastapi_dependency())``."""
    from starlette.requests import Request

    def pinned_config(request: Request) -> Snapshot:
        return pinned_snapshot(request, state_key)

    return pinned_config


class PinnedConfigMiddleware:
    """ASGI middleware pinning ``source.snapshot()`` for each request.

    ``source`` is anything with a ``snapshot()`` method (a ``Subscriber`` or a
    ``ConfigManager``), or a callable returning one (bound late, e.g. after
    the app's startup event opened it). When no snapshot can be had (the
    segment is not published yet): with ``required=True`` the request gets a
    503 JSON answer; with ``required=False`` it proceeds with nothing pinned
    and ``pinned_snapshot()`` raises ``ConfigUnavailable`` (a ``ConfcastError``)
    where the app asks for it, so routes that need no config still work.
    """

    def __init__(self, app: Any, source: Any, *, state_key: str = "config", required: bool = True) -> None:
        self.app = app
        self.state_key = state_key
        self.required = required
        self._source = source

    def _pin(self) -> Any:
        """A context manager giving the request's snapshot: a ledger pin when the source has one."""
        source = self._source
        if not hasattr(source, "snapshot"):
            source = source()
        pin = getattr(source, "pin", None)
        if pin is None:
            subscriber = getattr(source, "subscriber", None)  # a ConfigManager: pin through its subscriber
            pin = getattr(subscriber, "pin", None)
        if pin is not None:
            return pin()
        return _Unheld(source.snapshot())

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        pin = None
        try:
            pin = self._pin()
            snap: Snapshot | None = pin.__enter__()
        except ConfcastError as exc:
            if self.required:
                await _refuse(scope, send, exc)
                return
            snap, pin = None, None
        scope.setdefault("state", {})[self.state_key] = snap
        token = _pinned.set(snap)
        try:
            await self.app(scope, receive, send)
        finally:
            _pinned.reset(token)
            if pin is not None:
                pin.__exit__(None, None, None)


class _Unheld:
    """A snapshot from a source that cannot pin, in the shape of a pin."""

    __slots__ = ("_snap",)

    def __init__(self, snap: Snapshot) -> None:
        self._snap = snap

    def __enter__(self) -> Snapshot:
        return self._snap

    def __exit__(self, *exc_info) -> None:
        pass


async def _refuse(scope: dict, send: Callable, exc: ConfcastError) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1013})  # "try again later"
        return
    body = json.dumps({"detail": f"config not available: {exc}"}).encode()
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"retry-after", b"1")]})
    await send({"type": "http.response.body", "body": body})
