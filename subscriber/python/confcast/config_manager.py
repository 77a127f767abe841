"""confcast.config_manager - the HolmesGPT API's ConfigManager, backed by a confcast segment.

The HolmesGPT API's own ``ConfigManager`` loaded the YAML file in every
worker, watched it on a thread and guarded a dict with an RLock. This class
keeps its method names and return types (``start``, ``stop``,
``get_llm_model``, ..., ``get_toolsets``, ``get_log_level``) so code calling
it runs unchanged, but the file now belongs to the one confcast-publisher:
each getter reads the worker's cached snapshot of the published version
(one version check, no lock, no file access).

``path`` is accepted for compatibility only: the publisher's ``--config`` /
``$CONFIG_FILE`` decides which file is read; here it is kept as ``.path`` for
code that logs it.

Each getter reads the current version on its own; two getters called one
after the other may straddle a reload. Code that needs several values from
one version reads them from one ``snapshot()`` (``confcast.asgi`` pins one
per request).

Threading contract: every method may be called from any thread. ``start()``
and ``stop()`` are serialised by a lock and may be called any number of
times, in any order. Applying ``log_level`` happens on the subscriber's
callback thread, never in a request.

fork(): a manager made (and started) before ``fork()`` - a module-level one
under gunicorn ``--preload`` - works in the child: it gets fresh locks, its
subscriber opens the segment anew in the child and restarts the callback
thread there (``confcast._fork``), and ``stop()`` returns promptly in either
process.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from . import _fork
from .errors import Closed
from .snapshot import Snapshot, thaw
from .subscriber import Subscriber

_USE_CONSTRUCTOR_TIMEOUT = object()

# The defaults of the built-in schema (CONTRACT section 1). The publisher applies them before
# publishing, so these only matter for a segment written with another --schema.
DEFAULT_LLM_MODEL = "gpt-4o"
DEFAULT_LLM_PROVIDER = "openai"
DEFAULT_LLM_MAX_RETRIES = 3
DEFAULT_LLM_TIMEOUT_SECONDS = 60
DEFAULT_LLM_TEMPERATURE = 0.0
DEFAULT_LOG_LEVEL = "INFO"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigManager:
    """Config access for one worker process, in the HolmesGPT API's shape.

    ``segment`` None means ``$CONFCAST_SEGMENT``, else ``holmesgpt-config``.
    ``start()`` waits up to ``wait_timeout`` seconds (None: not at all) for
    the publisher's first version, then follows new versions and applies
    their ``log_level`` to the root logger (``apply_log_level=False`` turns
    that off). A getter called before ``start()`` opens the segment itself
    without waiting.
    """

    def __init__(self, path: str | None = None, logger: logging.Logger | None = None,
                 segment: str | None = None, *, wait_timeout: float | None = None,
                 apply_log_level: bool = True) -> None:
        self.path = path
        self.logger = logger or logging.getLogger("confcast.config_manager")
        self.segment = segment
        self.wait_timeout = wait_timeout
        self.apply_log_level = apply_log_level
        self._subscriber: Subscriber | None = None
        self._started = False
        self._applied_version = 0
        self._fresh_locks()
        _fork.track_manager(self)

    def _fresh_locks(self) -> None:
        self._lock = threading.Lock()
        self._log_level_lock = threading.Lock()

    def _after_fork_in_child(self) -> None:
        # A thread that held one of these in the parent does not exist in the child.
        self._fresh_locks()

    # -- lifecycle ---------------------------------------------------------------
    def start(self, wait_timeout: Any = _USE_CONSTRUCTOR_TIMEOUT) -> None:
        """Opens the segment (waiting up to ``wait_timeout`` s if given) and follows its versions.

        A no-op when already started. Raises ``SegmentNotFound``/``Empty``
        when the publisher has not published in time.
        """
        timeout = self.wait_timeout if wait_timeout is _USE_CONSTRUCTOR_TIMEOUT else wait_timeout
        with self._lock:
            if self._started:
                return
            subscriber = self._subscriber
            if subscriber is None or subscriber.closed:
                subscriber = Subscriber(self.segment, wait_timeout=timeout)
                self._subscriber = subscriber
            snap = subscriber.snapshot()
            subscriber.on_change(self._on_change)
            self._started = True
            with self._log_level_lock:
                self._applied_version = 0  # apply again: someone may have changed the level meanwhile
        self.logger.info("confcast: following config segment %r (version %d, sha256 %s)%s",
                         subscriber.segment, snap.version, snap.sha256[:12],
                         f"; {self.path} is read by the publisher" if self.path else "")
        self._apply_log_level(snap)

    def stop(self) -> None:
        """Stops following versions and closes the segment. A no-op when not started."""
        with self._lock:
            subscriber, self._subscriber = self._subscriber, None
            self._started = False
        if subscriber is not None:
            subscriber.close()

    @property
    def started(self) -> bool:
        return self._started

    def __enter__(self) -> "ConfigManager":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- access ------------------------------------------------------------------------
    @property
    def subscriber(self) -> Subscriber:
        """The open ``Subscriber`` (opened now, without waiting, if needed)."""
        subscriber = self._subscriber
        if subscriber is not None and not subscriber.closed:
            return subscriber
        with self._lock:
            if self._subscriber is None or self._subscriber.closed:
                self._subscriber = Subscriber(self.segment)
            return self._subscriber

    def snapshot(self) -> Snapshot:
        """The current version, immutable; read several values from one of these to agree on a version."""
        subscriber = self._subscriber
        if subscriber is not None:
            try:
                return subscriber.snapshot()
            except Closed:  # stop() ran on another thread meanwhile; open again below
                pass
        return self.subscriber.snapshot()

    @property
    def version(self) -> int:
        return self.snapshot().version

    def get_config(self) -> dict[str, Any]:
        """The whole config of the current version as a new plain dict."""
        return self.snapshot().to_dict()

    def get_llm_model(self) -> str:
        return str(self.snapshot().get("llm.model", DEFAULT_LLM_MODEL))

    def get_llm_provider(self) -> str:
        return str(self.snapshot().get("llm.provider", DEFAULT_LLM_PROVIDER))

    def get_llm_endpoint(self) -> str | None:
        endpoint = self.snapshot().get("llm.endpoint")
        return None if endpoint is None else str(endpoint)

    def get_llm_max_retries(self) -> int:
        return int(self.snapshot().get("llm.max_retries", DEFAULT_LLM_MAX_RETRIES))

    def get_llm_timeout(self) -> int:
        return int(self.snapshot().get("llm.timeout_seconds", DEFAULT_LLM_TIMEOUT_SECONDS))

    def get_llm_temperature(self) -> float:
        return float(self.snapshot().get("llm.temperature", DEFAULT_LLM_TEMPERATURE))

    def get_toolsets(self) -> dict[str, Any]:
        """A new dict each call: the caller may change it without affecting anyone."""
        toolsets = self.snapshot().get("toolsets")
        return thaw(toolsets) if toolsets is not None else {}

    def get_log_level(self) -> str:
        return str(self.snapshot().get("log_level", DEFAULT_LOG_LEVEL)).upper()

    # -- reacting to new versions --------------------------------------------------------
    def _on_change(self, snap: Snapshot) -> None:
        self.logger.info("confcast: config version %d is live (sha256 %s)", snap.version, snap.sha256[:12])
        self._apply_log_level(snap)

    def _apply_log_level(self, snap: Snapshot) -> None:
        if not self.apply_log_level:
            return
        with self._log_level_lock:  # start() and the callback thread may both get here
            if snap.version <= self._applied_version:
                return
            self._applied_version = snap.version
            level = str(snap.get("log_level", DEFAULT_LOG_LEVEL)).upper()
            if level not in _LOG_LEVELS:
                self.logger.warning("confcast: ignoring log_level %r of config version %d (not one of %s)",
                                    level, snap.version, ", ".join(_LOG_LEVELS))
                return
            root = logging.getLogger()
            changed = root.level != logging.getLevelName(level)
            root.setLevel(level)
        if changed:
            self.logger.info("confcast: root log level set to %s (config version %d)", level, snap.version)
