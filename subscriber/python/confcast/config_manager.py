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

Cost: the getters' answers are computed once per version (``_Values``), so
a getter is one check of the segment's version word (with its retired flag,
in one comparison) plus one attribute load - cheaper than the original's
RLock alone. Nothing is
copied: ``get_toolsets()`` returns the version's own read-only ``FrozenDict``,
the same object for every caller until a new version is published.

No defaults are kept here: the publisher fills every missing field in from
the HolmesGPT schema (publisher/schemas/holmesgpt.yaml, the one place they
are written) before it publishes, so each value comes from the snapshot. A
version that lacks one of these fields, or holds one of another type, was
published with another ``--schema``: every getter then raises
``KeyNotFound`` (or ``TypeMismatch``) naming the field, rather than answering
with a value nobody configured, and ``log_level`` is left alone.

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
from ._version_word import expected_pair
from .errors import Closed, KeyNotFound, TypeMismatch
from .snapshot import Snapshot
from .subscriber import Subscriber

_USE_CONSTRUCTOR_TIMEOUT = object()

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_MISSING = object()


def _field(snap: Snapshot, path: str, types: tuple[type, ...], expected: str) -> Any:
    """The value at ``path`` when it is one of ``types`` (never a bool standing in for a number)."""
    value = snap.get(path, _MISSING)
    if value is _MISSING:
        raise KeyNotFound(f"config version {snap.version} is not a HolmesGPT config: it has no {path!r} "
                          "(published with another --schema?)", path=path)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise TypeMismatch(f"config version {snap.version} is not a HolmesGPT config: {path!r} is "
                           f"{type(value).__name__}, expected {expected}", path=path)
    return value


class _Values:
    """What each getter answers for one snapshot, computed once per version, and what a getter
    compares to know they are still current: the subscriber's live view of the segment's
    [version, retired] words (``pair``) and what that view equals while the snapshot's version is
    published (``expected``; see ``confcast._version_word``).

    Keeping the view here rather than asking the subscriber saves a getter three attribute loads;
    in exchange the subscriber tells its manager whenever its view changes (another segment
    installed, or closed), and the manager drops its values then.
    """

    __slots__ = ("pair", "expected", "snapshot", "llm_model", "llm_provider", "llm_endpoint", "llm_max_retries",
                 "llm_timeout", "llm_temperature", "toolsets", "log_level")

    def __init__(self, snap: Snapshot | None, pair: memoryview | None) -> None:
        self.pair = pair  # None equals no view: the next call checks through Subscriber.snapshot()
        self.snapshot = snap
        if snap is None:  # current for no version: never answers a getter
            self.expected = expected_pair(-1)
            return
        self.expected = snap._expected_pair
        self.llm_model = _field(snap, "llm.model", (str,), "a string")
        self.llm_provider = _field(snap, "llm.provider", (str,), "a string")
        self.llm_endpoint = _field(snap, "llm.endpoint", (str, type(None)), "a string or null")
        self.llm_max_retries = _field(snap, "llm.max_retries", (int,), "an int")
        self.llm_timeout = _field(snap, "llm.timeout_seconds", (int,), "an int")
        self.llm_temperature = float(_field(snap, "llm.temperature", (float, int), "a number"))
        # The snapshot's own map: one read-only object per version, whichever thread computes this.
        self.toolsets = _field(snap, "toolsets", (dict,), "a map")
        self.log_level = _field(snap, "log_level", (str,), "a string").upper()


_NO_VALUES = _Values(None, None)  # current for no version: the first getter computes real ones


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
        self._values = _NO_VALUES
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
        self._values = _NO_VALUES  # they check the parent's mapping, which the child's subscriber replaces

    def _open(self, wait_timeout: float | None) -> Subscriber:
        """A new subscriber, made this manager's. Caller holds _lock."""
        subscriber = Subscriber(self.segment, wait_timeout=wait_timeout)
        subscriber._add_segment_listener(self._forget_values)
        self._subscriber = subscriber
        return subscriber

    def _forget_values(self) -> None:
        # The subscriber reads other version words now (or none): values that check the old ones
        # could go on passing that check, so the next getter computes them anew.
        self._values = _NO_VALUES

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
                subscriber = self._open(timeout)
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
            self._values = _NO_VALUES
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
                return self._open(None)
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

    # Each getter answers from the values computed for the current version, after the check
    # Subscriber.snapshot() makes: the segment's [version, retired] words still equal what they
    # were for that version. It is written out in each getter on purpose: a shared helper would
    # add a Python call, which costs as much as the check itself. A view released by close()
    # compares unequal rather than raising, so no try is needed.

    def _current_values(self) -> _Values:
        """The slow way: the current snapshot (opening or refreshing as needed) and its values."""
        subscriber = self.subscriber
        pair = subscriber._pair
        try:
            snap = subscriber.snapshot()
        except Closed:  # stop() ran on another thread meanwhile: open again, like snapshot() does
            return _Values(self.snapshot(), None)
        # Only the mapped header's view may be kept: the fallback's calls into the C library must
        # not outlive the handle, and the stand-ins of a closed subscriber raise. Without it
        # (values.pair None) every getter comes here, and snapshot() makes the check.
        kept = pair if type(pair) is memoryview else None
        values = self._values
        if values.snapshot is snap and values.pair is kept:
            return values
        values = _Values(snap, kept)
        # Keep them only if snap was checked against this view and it is still the subscriber's:
        # otherwise they could be compared with a segment snap did not come from.
        if subscriber._pair is pair and subscriber._snapshot is snap:
            self._values = values
            # Another segment may have been installed (or stop() may have run) between that test
            # and the store, its _forget_values() running before our store: test once more.
            if subscriber._pair is not pair or self._subscriber is not subscriber:
                self._values = _NO_VALUES
        return values

    def get_llm_model(self) -> str:
        values = self._values
        if values.pair == values.expected:
            return values.llm_model
        return self._current_values().llm_model

    def get_llm_provider(self) -> str:
        values = self._values
        if values.pair == values.expected:
            return values.llm_provider
        return self._current_values().llm_provider

    def get_llm_endpoint(self) -> str | None:
        values = self._values
        if values.pair == values.expected:
            return values.llm_endpoint
        return self._current_values().llm_endpoint

    def get_llm_max_retries(self) -> int:
        values = self._values
        if values.pair == values.expected:
            return values.llm_max_retries
        return self._current_values().llm_max_retries

    def get_llm_timeout(self) -> int:
        values = self._values
        if values.pair == values.expected:
            return values.llm_timeout
        return self._current_values().llm_timeout

    def get_llm_temperature(self) -> float:
        values = self._values
        if values.pair == values.expected:
            return values.llm_temperature
        return self._current_values().llm_temperature

    def get_toolsets(self) -> dict[str, Any]:
        """The version's toolsets as a read-only ``FrozenDict`` (a dict; ``TypeError`` on any change).

        The same object for every caller until a new version is published, so
        nothing is copied per call. A caller that wants to change it takes
        its own copy: ``cm.subscriber.get("toolsets")`` is a new plain dict.
        """
        values = self._values
        if values.pair == values.expected:
            return values.toolsets
        return self._current_values().toolsets

    def get_log_level(self) -> str:
        values = self._values
        if values.pair == values.expected:
            return values.log_level
        return self._current_values().log_level

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
            level = snap.get("log_level")
            if not isinstance(level, str):  # a version published with another --schema
                self.logger.warning("confcast: config version %d has no log_level string; root log level left "
                                    "as it is", snap.version)
                return
            level = level.upper()
            if level not in _LOG_LEVELS:
                self.logger.warning("confcast: ignoring log_level %r of config version %d (not one of %s)",
                                    level, snap.version, ", ".join(_LOG_LEVELS))
                return
            root = logging.getLogger()
            changed = root.level != logging.getLevelName(level)
            root.setLevel(level)
        if changed:
            self.logger.info("confcast: root log level set to %s (config version %d)", level, snap.version)
