"""confcast.subscriber - a worker's read-only view of one confcast segment.

``Subscriber`` wraps one C handle (``confcast_open``). Its hot path,
``snapshot()``, is built so that a request pays one version check and gets a
cached immutable ``Snapshot``:

* steady state: read the segment's version word from our own read-only
  mapping of the header (no ctypes call, no lock) and compare it with the
  cached snapshot's version;
* after a publish: under a lock, copy the new version's JSON through the C
  library (``confcast_snapshot_json`` - one consistent version), pair it with
  that version's SHA-256 (``confcast_info_get``, retried until both name the
  same version) and freeze it.

Threading contract
------------------
* Every method may be called from any number of threads at once.
* ``snapshot()``/``version``/``get()`` take no lock in the steady state.
* ``wait()`` blocks in the kernel (futex) with the GIL released; it waits in
  slices of at most ``WAIT_SLICE_SECONDS`` so that ``close()`` can stop it.
* ``on_change`` callbacks run on ONE daemon thread per subscriber (started by
  the first ``on_change``), never on the caller's thread or a request's. A
  callback that raises is logged, and the others still run. A burst of
  publishes may be reported once, with the newest snapshot.
* ``close()`` waits for C calls in flight (a ``wait()`` ends within one
  slice with ``Closed``), stops the callback thread, then frees the handle.
  It is idempotent. Using the subscriber afterwards raises ``Closed``.
* Open subscribers in the process that uses them: after ``fork()`` the
  callback thread does not exist in the child (gunicorn: open in the worker,
  e.g. in the app's startup event, not with ``--preload`` at import time).
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import threading
import time
from types import MappingProxyType
from typing import Any, Callable

from . import _native
from ._version_word import RETIRED_INDEX, VERSION_INDEX, open_version_words
from .errors import (Closed, ConfcastError, Corrupt, Empty, Incompatible, KeyNotFound,
                     SegmentNotFound, Timeout)
from .snapshot import Snapshot, thaw

_log = logging.getLogger("confcast")

WAIT_SLICE_SECONDS = 0.25        # longest single confcast_wait; bounds how long close() waits
_CONSISTENT_READ_ATTEMPTS = 100  # snapshot + info naming the same version; publishes are debounced
_INITIAL_JSON_BYTES = 64 * 1024
_INITIAL_STRING_BYTES = 256
_MISSING = object()
_RETRYABLE_WHILE_WAITING = (SegmentNotFound, Empty, Corrupt)  # a publisher may be creating it right now

ChangeCallback = Callable[[Snapshot], Any]


class _ClosedWords:
    """Stands in for the version words after close(), so the lock-free paths fail cleanly."""

    def __getitem__(self, index: int) -> int:
        raise Closed("the confcast subscriber is closed")


_CLOSED_WORDS = _ClosedWords()


class Subscriber:
    """Reads the config a confcast publisher broadcasts in ``segment``.

    ``segment`` None means ``$CONFCAST_SEGMENT``, else ``holmesgpt-config``;
    a name without ``/`` is a POSIX shared-memory object, an absolute path a
    file. ``SegmentNotFound`` if it does not exist, unless ``wait_timeout``
    (seconds) is given: then the constructor waits up to that long for the
    segment to exist and hold a published version (see ``wait_for_segment``).
    """

    def __init__(self, segment: str | None = None, *, wait_timeout: float | None = None) -> None:
        self._lib = _native.library()
        self.segment = _native.resolve_segment(segment)
        self._handle: ctypes.c_void_p | None = None
        self._words: Any = _CLOSED_WORDS
        self._version_words = None
        self._snapshot: Snapshot | None = None
        self._refresh_lock = threading.Lock()
        self._guard = threading.Lock()        # a plain lock: taken twice per C call, so it must be cheap
        self._calls_in_flight = 0
        self._drained = threading.Event()     # set by the last call to leave once close() began
        self._closing = False
        self._stop = threading.Event()
        self._callbacks: list[ChangeCallback] = []
        self._watcher: threading.Thread | None = None
        self._replaced_handles: list[ctypes.c_void_p] = []
        self._json_buffer = ctypes.create_string_buffer(_INITIAL_JSON_BYTES)

        if wait_timeout is None:
            self._handle = self._open_handle()
        else:
            self._handle = self._open_handle_waiting(float(wait_timeout))
        self._version_words = open_version_words(self.segment, self._lib.version, self._handle)
        self._words = self._version_words.words

    @classmethod
    def wait_for_segment(cls, segment: str | None = None, timeout: float = 30.0) -> "Subscriber":
        """Opens ``segment`` once it exists and has a published version, waiting up to ``timeout`` s.

        For workers that may start before the publisher (a sidecar, or
        gunicorn workers racing it). Raises the last error (``SegmentNotFound``,
        ``Empty``) when the time runs out; other errors (e.g.
        ``PermissionDenied``) at once.
        """
        return cls(segment, wait_timeout=timeout)

    # -- opening -------------------------------------------------------------
    def _open_handle(self) -> ctypes.c_void_p:
        handle = ctypes.c_void_p()
        status = self._lib.open(self.segment.encode(), ctypes.byref(handle))
        if status != _native.OK:
            where = _native.segment_file(self.segment) or self.segment
            raise self._lib.error(status, f"cannot open confcast segment {self.segment!r} ({where})",
                                  segment=self.segment)
        return handle

    def _open_handle_waiting(self, timeout: float) -> ctypes.c_void_p:
        deadline = time.monotonic() + timeout
        poll = 0.01
        while True:
            try:
                handle = self._open_handle()
            except _RETRYABLE_WHILE_WAITING as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    exc.args = (f"{exc} (waited {timeout:g} s for the publisher)",)
                    raise
                # The segment does not exist yet, so there is no futex to sleep on: poll, backing off.
                time.sleep(min(poll, remaining))
                poll = min(poll * 2, 0.1)
                continue
            version_now = self._lib.version(handle)
            if version_now > 0:
                return handle
            remaining = max(0.0, deadline - time.monotonic())
            out = ctypes.c_uint64()
            status = self._lib.wait(handle, 0, int(math.ceil(remaining * 1000)), ctypes.byref(out))
            if status == _native.OK:
                return handle
            self._lib.close(handle)
            if status == Timeout.status:
                raise Empty(f"confcast segment {self.segment!r} exists but nothing was published "
                            f"within {timeout:g} s", status=Empty.status, segment=self.segment)
            raise self._lib.error(status, f"waiting for a version in {self.segment!r}", segment=self.segment)

    # -- the guard that lets close() free the handle safely --------------------
    def _enter(self) -> ctypes.c_void_p:
        with self._guard:
            if self._closing:
                raise Closed(f"the confcast subscriber of {self.segment!r} is closed", segment=self.segment)
            self._calls_in_flight += 1
            return self._handle

    def _exit(self) -> None:
        with self._guard:
            self._calls_in_flight -= 1
            if self._calls_in_flight == 0 and self._closing:
                self._drained.set()

    # -- versions and snapshots -------------------------------------------------
    @property
    def version(self) -> int:
        """The published version now (0 when nothing is published). No ctypes call."""
        try:
            return self._words[VERSION_INDEX]
        except ValueError:
            if self._closing:  # the mapping was released by close() under our feet
                raise Closed(f"the confcast subscriber of {self.segment!r} is closed") from None
            raise

    def snapshot(self) -> Snapshot:
        """The current version as an immutable ``Snapshot``; the same object until a new publish."""
        snap = self._snapshot
        try:
            words = self._words
            if snap is not None and snap.version == words[VERSION_INDEX] and not words[RETIRED_INDEX]:
                return snap
            return self._refresh()
        except ValueError:
            if self._closing:  # the mapping was released by close() under our feet
                raise Closed(f"the confcast subscriber of {self.segment!r} is closed") from None
            raise

    def _refresh(self) -> Snapshot:
        with self._refresh_lock:
            words = self._words
            if words[RETIRED_INDEX]:
                self._follow_replacement()
                words = self._words
            snap = self._snapshot
            if snap is not None and snap.version == words[VERSION_INDEX]:
                return snap  # another thread refreshed while we waited for the lock
            text, version, sha256 = self._read_consistent()
            snap = Snapshot(json.loads(text), version, sha256)
            self._snapshot = snap
            if self._words[VERSION_INDEX] < version:
                # Versions only grow: our mapping lags the C library's, so it maps a segment
                # that was replaced on disk. Follow the C library.
                self._remap()
            return snap

    def _read_consistent(self) -> tuple[bytes, int, str]:
        """One version's JSON and that same version's SHA-256."""
        handle = self._enter()
        try:
            info = _native.Info()
            for _ in range(_CONSISTENT_READ_ATTEMPTS):
                text, version = self._snapshot_json(handle)
                status = self._lib.info_get(handle, ctypes.byref(info))
                if status != _native.OK:
                    raise self._lib.error(status, f"reading the info of {self.segment!r}", segment=self.segment)
                if info.version == version:
                    return text, version, info.sha256_hex.decode("ascii")
        finally:
            self._exit()
        raise ConfcastError(f"the config in {self.segment!r} changed during each of "
                            f"{_CONSISTENT_READ_ATTEMPTS} reads; try again", segment=self.segment)

    def _snapshot_json(self, handle) -> tuple[bytes, int]:
        length = ctypes.c_size_t()
        version = ctypes.c_uint64()
        while True:
            buf = self._json_buffer
            status = self._lib.snapshot_json(handle, buf, len(buf), ctypes.byref(length), ctypes.byref(version))
            if status == _native.OK:
                return ctypes.string_at(buf, length.value), version.value
            if status == _native.ERR_TRUNCATED:
                # Grow with headroom, so a config that grows a little does not truncate every time.
                self._json_buffer = ctypes.create_string_buffer(length.value + length.value // 4 + 1)
                continue
            raise self._lib.error(status, f"reading the config snapshot of {self.segment!r}", segment=self.segment)

    def _follow_replacement(self) -> None:
        """A publisher replaced the segment (another layout or capacity): open the new one.

        The C handle keeps reading the old segment by design, so open a new
        handle; the old one stays allocated until close(), because a thread
        may still be inside a C call with it. Caller holds _refresh_lock.
        """
        handle = self._open_handle()
        with self._guard:
            if self._closing:
                self._lib.close(handle)
                raise Closed(f"the confcast subscriber of {self.segment!r} is closed", segment=self.segment)
            self._replaced_handles.append(self._handle)
            self._handle = handle
        self._remap()

    def _remap(self) -> None:
        """Maps the segment's header again (it was retired or replaced). Caller holds _refresh_lock."""
        if self._closing:
            return
        # The old mapping is not closed here: a lock-free reader may still hold it. Dropping the
        # reference lets the garbage collector unmap it once nobody reads it.
        self._version_words = open_version_words(self.segment, self._lib.version, self._handle)
        self._words = self._version_words.words

    # -- reads --------------------------------------------------------------------
    def get(self, path: str, default: Any = None) -> Any:
        """The value at a dotted path from the current snapshot, or ``default`` if there is none.

        Scalars come back as str/int/float/bool/None; a subtree as a new plain
        ``dict``/``list`` the caller may change. For several reads that must
        agree on one version, read them from one ``snapshot()``.
        """
        value = self.snapshot().get(path, _MISSING)
        if value is _MISSING:
            return default
        if isinstance(value, (MappingProxyType, tuple)):
            return thaw(value)
        return value

    def get_int(self, path: str, default: Any = _MISSING) -> int:
        """An int read straight from the segment (``confcast_get_int``): ``TypeMismatch`` for another type."""
        out = ctypes.c_int64()
        if self._typed_get(self._lib.get_int, path, out, default):
            return out.value
        return default

    def get_float(self, path: str, default: Any = _MISSING) -> float:
        """A float (an int value too) straight from the segment (``confcast_get_double``)."""
        out = ctypes.c_double()
        if self._typed_get(self._lib.get_double, path, out, default):
            return out.value
        return default

    def get_bool(self, path: str, default: Any = _MISSING) -> bool:
        """A bool straight from the segment (``confcast_get_bool``)."""
        out = ctypes.c_int()
        if self._typed_get(self._lib.get_bool, path, out, default):
            return bool(out.value)
        return default

    def get_str(self, path: str, default: Any = _MISSING) -> str:
        """A string straight from the segment (``confcast_get_string``)."""
        found = self._buffer_get(self._lib.get_string, path, default)
        return default if found is _MISSING else found.decode("utf-8")

    def get_json(self, path: str, default: Any = _MISSING) -> Any:
        """The value or subtree at a path, as plain Python data (``confcast_get_json``)."""
        found = self._buffer_get(self._lib.get_json, path, default)
        return default if found is _MISSING else json.loads(found)

    def _typed_get(self, fn, path: str, out, default) -> bool:
        handle = self._enter()
        try:
            status = fn(handle, path.encode(), ctypes.byref(out), None)
        finally:
            self._exit()
        if status == _native.OK:
            return True
        if status == KeyNotFound.status and default is not _MISSING:
            return False
        raise self._lib.error(status, f"reading {path!r} from {self.segment!r}", segment=self.segment, path=path)

    def _buffer_get(self, fn, path: str, default):
        encoded = path.encode()
        length = ctypes.c_size_t()
        buf = ctypes.create_string_buffer(_INITIAL_STRING_BYTES)
        while True:
            handle = self._enter()
            try:
                status = fn(handle, encoded, buf, len(buf), ctypes.byref(length), None)
            finally:
                self._exit()
            if status == _native.OK:
                return ctypes.string_at(buf, length.value)
            if status == _native.ERR_TRUNCATED:
                buf = ctypes.create_string_buffer(length.value + 1)
                continue
            if status == KeyNotFound.status and default is not _MISSING:
                return _MISSING
            raise self._lib.error(status, f"reading {path!r} from {self.segment!r}",
                                  segment=self.segment, path=path)

    # -- waiting and change notification -------------------------------------------
    def wait(self, after_version: int, timeout: float | None = None) -> int | None:
        """Blocks until the version is above ``after_version``; returns it, or None after ``timeout`` s.

        Returns at once if it already is. ``timeout`` None waits until a
        publish (or ``close()``, which raises ``Closed``). The GIL is released
        while waiting.
        """
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        out = ctypes.c_uint64()
        while True:
            if deadline is None:
                slice_ms = int(WAIT_SLICE_SECONDS * 1000)
            else:
                remaining = max(0.0, deadline - time.monotonic())
                slice_ms = int(math.ceil(min(remaining, WAIT_SLICE_SECONDS) * 1000))
            handle = self._enter()
            try:
                status = self._lib.wait(handle, after_version, slice_ms, ctypes.byref(out))
            finally:
                self._exit()
            if status == _native.OK:
                return out.value
            if status == Incompatible.status:
                with self._refresh_lock:  # the segment was replaced under the handle: follow it
                    if handle is self._handle:
                        self._follow_replacement()
                continue
            if status != Timeout.status:
                raise self._lib.error(status, f"waiting for a version after {after_version} in {self.segment!r}",
                                      segment=self.segment)
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def on_change(self, callback: ChangeCallback) -> ChangeCallback:
        """Calls ``callback(snapshot)`` on the subscriber's background thread after each new publish.

        Returns ``callback``, so it also works as a decorator.
        """
        with self._guard:
            if self._closing:
                raise Closed(f"the confcast subscriber of {self.segment!r} is closed", segment=self.segment)
            self._callbacks.append(callback)
            if self._watcher is None:
                baseline = self.version
                self._watcher = threading.Thread(target=self._watch, args=(baseline,),
                                                 name=f"confcast-on-change-{self.segment}", daemon=True)
                self._watcher.start()
        return callback

    def remove_on_change(self, callback: ChangeCallback) -> None:
        """Stops calling ``callback`` (no error if it was not registered)."""
        with self._guard:
            try:
                self._callbacks.remove(callback)
            except ValueError:
                pass

    def _watch(self, seen: int) -> None:
        while not self._stop.is_set():
            try:
                version = self.wait(seen, timeout=WAIT_SLICE_SECONDS)
                if version is None:
                    continue
                snap = self.snapshot()
            except Closed:
                return
            except ConfcastError:
                _log.exception("confcast: watching %r for changes failed; retrying", self.segment)
                self._stop.wait(1.0)
                continue
            seen = snap.version
            with self._guard:
                callbacks = list(self._callbacks)
            for callback in callbacks:
                try:
                    callback(snap)
                except Exception:  # a callback's bug must not stop the notifications
                    _log.exception("confcast: on_change callback %r failed for version %d",
                                   callback, snap.version)

    # -- status ---------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The publisher's status as kept in the segment (one ``confcast_info_get``)."""
        info = _native.Info()
        handle = self._enter()
        try:
            status = self._lib.info_get(handle, ctypes.byref(info))
        finally:
            self._exit()
        if status != _native.OK:
            raise self._lib.error(status, f"reading the info of {self.segment!r}", segment=self.segment)
        now_ns = time.time_ns()
        heartbeat_age = (now_ns - info.heartbeat_unix_ns) / 1e9 if info.heartbeat_unix_ns > 0 else math.inf
        return {
            "segment": self.segment,
            "version": info.version,
            "sha256": info.sha256_hex.decode("ascii"),
            "published_unix_ns": info.published_unix_ns,
            "heartbeat_unix_ns": info.heartbeat_unix_ns,
            "heartbeat_age_seconds": max(0.0, heartbeat_age),
            "publisher_pid": info.publisher_pid,
            "reload_total": info.reload_total,
            "reload_errors_total": info.reload_errors_total,
            "last_error": info.last_error.decode("utf-8", "replace"),
        }

    # -- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        """Frees the handle; waits for calls in flight and stops the callback thread. Idempotent."""
        with self._guard:
            if self._closing:
                return
            self._closing = True
            self._stop.set()
            if self._calls_in_flight == 0:
                self._drained.set()
        self._drained.wait()  # a wait() in flight returns within one slice
        with self._guard:
            handle, self._handle = self._handle, None
            replaced, self._replaced_handles = self._replaced_handles, []
            watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join()
        version_words, self._version_words = self._version_words, None
        self._words = _CLOSED_WORDS
        if version_words is not None:
            version_words.close()
        for old in [handle, *replaced]:
            if old is not None:
                self._lib.close(old)

    @property
    def closed(self) -> bool:
        return self._closing

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_handle", None) is not None:
                self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closing else f"version={self._snapshot.version if self._snapshot else '?'}"
        return f"<confcast.Subscriber segment={self.segment!r} {state}>"
