"""confcast.subscriber - a worker's read-only view of one confcast segment.

``Subscriber`` wraps one C handle (``confcast_open``). Its hot path,
``snapshot()``, is built so that a request pays one version check and gets a
cached immutable ``Snapshot``:

* steady state: read the segment's version word from our own read-only
  mapping of the header (no ctypes call, no lock, no system call) and
  compare it with the cached snapshot's version;
* after a publish: under a lock, copy the new version's JSON through the C
  library (``confcast_snapshot_json`` - one consistent version), pair it with
  that version's SHA-256 (``confcast_info_get``, retried until both name the
  same version) and freeze it.

The header mapping and the C handle are made from ONE open of the segment
file (``confcast._segment``), so they always read the same file. Opening
refuses a segment that group or others can write, or that is owned by
anyone but root, this process's user or ``$CONFCAST_SEGMENT_OWNER``
(``PermissionDenied``), also when a replacement is followed.

Replacements: a publisher that replaces the segment marks the old one
retired; ``snapshot()`` and ``wait()`` then reopen by name. A name that
moved to another file with no mark (publisher killed mid-replacement, or
the segment deleted and created anew) is noticed by ``wait()`` - and so by
the ``on_change`` thread - which compares the name with the open file at
most about once a second, and follows it the same way.

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
  slice with ``Closed``), at most ``CLOSE_WAIT_SECONDS``; it never waits
  longer. Calls still in flight then keep their handle, which is left
  allocated (a warning is logged) rather than freed under them. It stops the
  callback thread, is idempotent, and using the subscriber afterwards
  raises ``Closed``.
* ``fork()`` is safe (gunicorn ``--preload``, a module-level
  ``ConfigManager``): in the child, each subscriber opens the segment anew -
  its own fd, mapping and C handle - gets fresh locks and counters, and
  restarts its ``on_change`` thread if it had callbacks (``confcast._fork``).
  The parent's subscriber is unaffected. If the segment cannot be opened in
  the child, the next use retries and raises that error if it still fails.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import logging
import math
import os
import sys
import threading
import time
import weakref
from typing import Any, Callable

from . import _fork, _ledger, _native
from ._segment import OpenSegment, open_segment
from ._version_word import HEARTBEAT_MONO_INDEX, RETIRED_INDEX, VERSION_INDEX
from .errors import Closed, ConfcastError, Corrupt, Empty, Incompatible, KeyNotFound, SegmentNotFound, Timeout
from .snapshot import Snapshot, thaw

_log = logging.getLogger("confcast")

WAIT_SLICE_SECONDS = 0.25        # longest single confcast_wait; bounds how long close() waits
CLOSE_WAIT_SECONDS = 4 * WAIT_SLICE_SECONDS  # a few slices: a wait() in flight ends within one
NAME_CHECK_SECONDS = 1.0         # how often wait() looks whether the name moved to another file
_CONSISTENT_READ_ATTEMPTS = 100  # snapshot + info naming the same version; publishes are debounced
_INITIAL_JSON_BYTES = 64 * 1024
_INITIAL_STRING_BYTES = 256
_MISSING = object()
_RETRYABLE_WHILE_WAITING = (SegmentNotFound, Empty, Corrupt)  # a publisher may be creating it right now
_PIN_ATTEMPTS = 100  # pins of a version that moved on before it was held; publishes are debounced

# Stands in for "no snapshot yet": its version matches no version word, so the lock-free paths need
# no None test before comparing.
_NO_SNAPSHOT = Snapshot({}, -1, "")

ChangeCallback = Callable[[Snapshot], Any]


class _ClosedWords:
    """Stands in for the version words (and their pair) after close(), so the lock-free paths
    fail cleanly."""

    def __getitem__(self, index: int) -> int:
        raise Closed("the confcast subscriber is closed")

    def __eq__(self, expected: object) -> bool:
        raise Closed("the confcast subscriber is closed")

    __ne__ = __eq__
    __hash__ = None  # type: ignore[assignment]


_CLOSED_WORDS = _ClosedWords()


class _ReopenWords:
    """Stands in for the version words while the segment is not open in this process (a reopen
    after fork() failed): the next read retries the open, and raises its error if it fails."""

    def __init__(self, subscriber: "Subscriber") -> None:
        self._subscriber = weakref.ref(subscriber)  # no cycle: __del__ must still run

    def _reopened(self) -> "Subscriber":
        subscriber = self._subscriber()
        if subscriber is None:
            raise Closed("the confcast subscriber is closed")
        subscriber._reopen()
        return subscriber

    def __getitem__(self, index: int) -> int:
        return self._reopened()._words[index]

    def __eq__(self, expected: object) -> bool:
        return self._reopened()._pair == expected

    def __ne__(self, expected: object) -> bool:
        return self._reopened()._pair != expected

    __hash__ = None  # type: ignore[assignment]


class Pin:
    """The context of ``Subscriber.pin()``: enters with the held ``Snapshot``, releases on exit.

    This is the pure-Python one; ``confcast._pin.Pin`` (subscriber/python/extension/pin.c) does the
    same in C at about a third of the cost and is used whenever it is found (see ``_native``).
    Runs on every request of the ASGI middleware, so the common case is written out inline (each
    Python call saved is tens of nanoseconds); ``Subscriber._hold_current`` is the general path.
    """

    __slots__ = ("_subscriber", "_segment", "_version_arg")

    def __init__(self, subscriber: "Subscriber") -> None:
        self._subscriber = subscriber
        self._segment: OpenSegment | None = None

    def __enter__(self) -> Snapshot:
        if self._segment is not None:
            raise RuntimeError("this pin() is already entered; call pin() again for another hold")
        sub = self._subscriber
        snap = sub._snapshot
        try:
            if sub._pair != snap._expected_pair:
                snap = sub._refresh()
        except ValueError:  # the mapping was released under our feet: the general path says why
            snap = sub.snapshot()
        held = sub._held_arg
        if held[0] != snap.version:
            held = sub._new_version_arg(snap.version)
        next(sub._pin_calls_in)
        try:
            seg = sub._seg
            ok = (not sub._closing and seg is not None and sub._lib.hold_fast(seg.handle, held[1]) == _native.OK)
            if ok and sub._pair != snap._expected_pair:  # moved on before the hold: see _hold_current
                sub._lib.release_fast(seg.handle, held[1])
                ok = False
        finally:
            next(sub._pin_calls_out)
        if not ok:
            snap, seg, arg = sub._hold_current()
            self._segment, self._version_arg = seg, arg
            return snap
        self._segment, self._version_arg = seg, held[1]
        return snap

    def __exit__(self, *exc_info) -> None:
        seg, self._segment = self._segment, None
        if seg is None:
            return
        sub = self._subscriber  # Subscriber._release, inline
        next(sub._pin_calls_in)
        try:
            handle = seg.handle
            if not sub._closing and handle is not None:  # else closed: its holds went with it
                sub._lib.release_fast(handle, self._version_arg)
        finally:
            next(sub._pin_calls_out)


class Subscriber:
    """Reads the config a confcast publisher broadcasts in ``segment``.

    ``segment`` None means ``$CONFCAST_SEGMENT``, else ``holmesgpt-config``;
    a name without ``/`` is a POSIX shared-memory object, an absolute path a
    file. ``SegmentNotFound`` if it does not exist, unless ``wait_timeout``
    (seconds) is given: then the constructor waits up to that long for the
    segment to exist and hold a published version (see ``wait_for_segment``).
    ``PermissionDenied`` if the segment is not trusted (see the module doc).
    """

    def __init__(self, segment: str | None = None, *, wait_timeout: float | None = None) -> None:
        self._lib = _native.library()
        self._pin_type = self._lib.pin_type or Pin  # C when confcast._pin was found
        self.segment = _native.resolve_segment(segment)
        self._seg: OpenSegment | None = None
        self._handle: ctypes.c_void_p | None = None
        self._words: Any = _CLOSED_WORDS
        self._pair: Any = _CLOSED_WORDS       # [version, retired] of the header: see _version_word
        self._replaced: list[OpenSegment] = []
        self._generation = 0                  # +1 per segment file installed: tells the watcher of a switch
        self._name_checked_at = 0.0
        self._snapshot: Snapshot = _NO_SNAPSHOT
        self._weak_secret_probe = self._secret_probe_of(self)
        self._closing = False
        self._callbacks: list[ChangeCallback] = []
        self._segment_listeners: list[weakref.WeakMethod] = []
        self._watcher: threading.Thread | None = None
        self._watch_seen = 0                  # the last version the watcher reported
        self._json_buffer = ctypes.create_string_buffer(_INITIAL_JSON_BYTES)
        self._fresh_sync_state()

        if wait_timeout is None:
            seg = open_segment(self._lib, self.segment)
        else:
            seg = self._open_waiting(float(wait_timeout))
        self._install(seg)
        _fork.track_subscriber(self)

    def _fresh_sync_state(self) -> None:
        self._pin_calls_in = itertools.count()
        self._pin_calls_out = itertools.count()
        self._held_arg: tuple[int, Any] = (-1, None)
        self._refresh_lock = threading.RLock()  # re-entrant: a reopen may happen inside a refresh
        self._guard = threading.Lock()          # a plain lock: taken twice per C call, so it must be cheap
        self._calls_in_flight = 0
        self._drained = threading.Event()       # set by the last call to leave once close() began
        self._stop = threading.Event()

    @staticmethod
    def resolve_name(segment: str | None = None) -> str:
        """The segment ``Subscriber(segment)`` opens: ``segment``, else ``$CONFCAST_SEGMENT``, else the default.

        The same rule as the C library's and confcast-publisher's, without opening anything.
        """
        return _native.resolve_segment(segment)

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
    def _open_waiting(self, timeout: float) -> OpenSegment:
        deadline = time.monotonic() + timeout
        poll = 0.01
        while True:
            try:
                seg = open_segment(self._lib, self.segment)
            except _RETRYABLE_WHILE_WAITING as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    exc.args = (f"{exc} (waited {timeout:g} s for the publisher)",)
                    raise
                # The segment does not exist yet, so there is no futex to sleep on: poll, backing off.
                time.sleep(min(poll, remaining))
                poll = min(poll * 2, 0.1)
                continue
            if self._lib.version(seg.handle) > 0:
                return seg
            remaining = max(0.0, deadline - time.monotonic())
            out = ctypes.c_uint64()
            status = self._lib.wait(seg.handle, 0, int(math.ceil(remaining * 1000)), ctypes.byref(out))
            if status == _native.OK:
                return seg
            seg.close(self._lib)
            if status == Timeout.status:
                raise Empty(f"confcast segment {self.segment!r} exists but nothing was published "
                            f"within {timeout:g} s", status=Empty.status, segment=self.segment)
            raise self._lib.error(status, f"waiting for a version in {self.segment!r}", segment=self.segment)

    def _install(self, seg: OpenSegment) -> None:
        """Makes ``seg`` the segment every call uses. The one it replaces stays allocated until
        close(), because a thread may still be inside a C call with it."""
        with self._guard:
            if self._closing:
                seg.close(self._lib)
                raise Closed(f"the confcast subscriber of {self.segment!r} is closed", segment=self.segment)
            if self._seg is not None:
                self._replaced.append(self._seg)
            # A snapshot belongs to the file it was read from: a segment created anew may number
            # its versions from 1 again, so an old snapshot with a matching number is not current.
            # Forgotten before the new segment is installed, so that no pin() in between (they take
            # no lock) holds the old file's version number in the new file's ledger.
            self._snapshot = _NO_SNAPSHOT
            self._seg = seg
            self._handle = seg.handle
            self._words = seg.version_words.words
            self._pair = seg.version_words.pair
            self._generation += 1
            self._name_checked_at = time.monotonic()
        self._notify_segment_listeners()

    def _add_segment_listener(self, method) -> None:
        """Calls ``method()`` (a bound method, held weakly) whenever the version words this
        subscriber reads change: another segment installed, or closed. For caches that keep the
        words themselves to check a version without going through the subscriber (ConfigManager).
        The call is made after the change, on the thread that made it; it must not block."""
        with self._guard:
            self._segment_listeners.append(weakref.WeakMethod(method))

    def _notify_segment_listeners(self) -> None:
        for ref in list(self._segment_listeners):
            method = ref()
            if method is not None:
                method()

    def _reopen(self) -> None:
        """Opens the segment when this process has none open (a reopen after fork() failed)."""
        with self._refresh_lock:
            if self._closing or self._seg is not None:
                return
            try:
                seg = open_segment(self._lib, self.segment)
            except ConfcastError as exc:
                exc.args = (f"{exc} (opening it again in process {os.getpid()} after fork())",)
                raise
            self._install(seg)

    # -- the guard that lets close() free the handle safely --------------------
    def _enter(self) -> OpenSegment:
        while True:
            with self._guard:
                if self._closing:
                    raise Closed(f"the confcast subscriber of {self.segment!r} is closed", segment=self.segment)
                seg = self._seg
                if seg is not None:
                    self._calls_in_flight += 1
                    return seg
            self._reopen()

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
        # The hot path of every request: one comparison of the mapped header's [version, retired]
        # words with what they were when this snapshot was current. Kept flat (no helper call, no
        # property) because a Python call costs as much as the check itself; the try costs nothing
        # until something raises (zero-cost exceptions, CPython 3.11). The pair is loaded before the
        # snapshot: if another segment is installed in between, the stale pair cannot match the
        # "no snapshot" that _install leaves.
        pair = self._pair
        snap = self._snapshot
        try:
            if pair == snap._expected_pair:
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
            if snap.version == words[VERSION_INDEX]:
                return snap  # another thread refreshed while we waited for the lock
            text, version, sha256 = self._read_consistent()
            snap = Snapshot(json.loads(text), version, sha256, secret_probe=self._weak_secret_probe)
            self._snapshot = snap
            return snap

    def is_secret(self, path: str) -> bool:
        """Whether the value at a dotted path is a secret (``confcast_is_secret``); ``KeyNotFound``
        if there is none. Reads return a secret's value like any other; this is for code that shows
        values to people (see ``Snapshot.redacted()``)."""
        handle = self._enter().handle
        try:
            status = self._lib.is_secret(handle, path.encode())
        finally:
            self._exit()
        if status < 0:
            raise self._lib.error(status, f"is_secret({path!r}) in {self.segment!r}", segment=self.segment,
                                  path=path)
        return status == 1

    def _secret_probe(self, path: str) -> bool:
        # For Snapshot: the segment's flag of the current version, which names the same paths
        # secret as the snapshot's own while one publisher (one schema) runs. Fails closed: a
        # path that cannot be asked about (gone in a newer version, a closed subscriber) counts
        # as secret, so that redaction never shows too much.
        try:
            return self.is_secret(path)
        except ConfcastError:
            return True

    @staticmethod
    def _secret_probe_of(subscriber: "Subscriber") -> Callable[[str], bool]:
        """_secret_probe through a weak reference: the snapshots it goes into are the subscriber's
        own, and a cycle would keep __del__ from running."""
        ref = weakref.ref(subscriber)

        def probe(path: str) -> bool:
            sub = ref()
            return True if sub is None else sub._secret_probe(path)
        return probe

    def _read_consistent(self) -> tuple[bytes, int, str]:
        """One version's JSON and that same version's SHA-256."""
        handle = self._enter().handle
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
        """The name stands for a new segment now (retired, or moved): open it. Caller holds _refresh_lock."""
        self._install(open_segment(self._lib, self.segment))

    def _follow_if_current(self, seg: OpenSegment) -> None:
        with self._refresh_lock:
            if seg is self._seg:  # else another thread followed it already
                self._follow_replacement()

    # -- the worker ledger ---------------------------------------------------------
    def pin(self) -> "Pin":
        """``with sub.pin() as snap:`` - the current snapshot, its version held in the worker ledger
        until the block ends, so that ``confcastctl wait --converged`` waits for it.

        The ASGI middleware pins each request so. Costs one hold and one release through the C
        library (see ``bench/python_config_access.py``); the snapshot itself is ``snapshot()``'s.
        """
        return self._pin_type(self)

    def ledger_entry(self) -> dict | None:
        """This process's entry in the segment's worker ledger (``pid``, ``version`` read,
        ``oldest_held``, ``held``), or None when the process could not register (see ``confcast.h``)."""
        seg = self._enter()
        try:
            path = seg.path
        finally:
            self._exit()
        return _ledger.own_entry(path)

    # pin() runs on every request, so it does not take the guard's lock (_enter/_exit: two lock
    # round trips per call). Its C calls are counted by two itertools counters instead, whose next()
    # is atomic under the GIL: a call counts itself in, then checks _closing, then calls (the GIL
    # stays held, see _native), then counts itself out; close() sets _closing first and then waits
    # until the counts agree, so no hold or release can use a handle close() frees.

    def _new_version_arg(self, version: int) -> tuple[int, ctypes.c_uint64]:
        held = (version, ctypes.c_uint64(version))
        self._held_arg = held  # one store: another thread sees the old pair or this one
        return held

    def _hold_current(self) -> tuple[Snapshot, OpenSegment, ctypes.c_uint64]:
        """Holds the current snapshot's version; returns it with the segment the hold was made in."""
        hold, release = self._lib.hold_fast, self._lib.release_fast
        for _ in range(_PIN_ATTEMPTS):
            snap = self.snapshot()
            held = self._held_arg
            arg = held[1] if held[0] == snap.version else self._new_version_arg(snap.version)[1]
            next(self._pin_calls_in)
            try:
                seg = self._seg
                if self._closing or seg is None:
                    raise Closed(f"the confcast subscriber of {self.segment!r} is closed", segment=self.segment)
                status = hold(seg.handle, arg)
                # Hold first, then look again: a version that moved on meanwhile may have been
                # judged drained by a rollout gate before the hold was made, so it is not used.
                if status == _native.OK and self._pair != snap._expected_pair:
                    release(seg.handle, arg)
                    continue
            finally:
                next(self._pin_calls_out)
            if status != _native.OK:
                raise self._lib.error(status, f"holding version {snap.version} of {self.segment!r}",
                                      segment=self.segment)
            return snap, seg, arg
        raise ConfcastError(f"the config in {self.segment!r} changed during each of {_PIN_ATTEMPTS} pins; "
                            f"try again", segment=self.segment)

    def _pin_calls_in_flight(self) -> int:
        # The counters' values without advancing them (their repr is "count(N)").
        return int(repr(self._pin_calls_in)[6:-1]) - int(repr(self._pin_calls_out)[6:-1])

    # -- reads --------------------------------------------------------------------
    def get(self, path: str, default: Any = None) -> Any:
        """The value at a dotted path from the current snapshot, or ``default`` if there is none.

        Scalars come back as str/int/float/bool/None; a subtree as a new plain
        ``dict``/``list`` the caller may change. For several reads that must
        agree on one version, read them from one ``snapshot()``.
        """
        # snapshot()'s check, inlined: a second Python call would double the cost of a scalar read,
        # which is then one lookup in the version's index of scalar paths.
        pair = self._pair
        snap = self._snapshot
        try:
            if pair != snap._expected_pair:
                snap = self._refresh()
        except ValueError:
            if self._closing:  # the mapping was released by close() under our feet
                raise Closed(f"the confcast subscriber of {self.segment!r} is closed") from None
            raise
        try:
            return snap._scalars[path]  # a subscript, not .get(): a method call costs ~20 ns more
        except KeyError:
            pass
        value = snap._paths.get(path, _MISSING)  # a subtree, or nothing: rarer, and slower anyway
        return default if value is _MISSING else thaw(value)  # a subtree: the caller's own copy

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
        handle = self._enter().handle
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
            handle = self._enter().handle
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
        while waiting. Follows a segment that was replaced under its name.
        """
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        out = ctypes.c_uint64()
        while True:
            now = time.monotonic()
            if deadline is None:
                slice_ms = int(WAIT_SLICE_SECONDS * 1000)
            else:
                remaining = max(0.0, deadline - now)
                slice_ms = int(math.ceil(min(remaining, WAIT_SLICE_SECONDS) * 1000))
            seg = self._enter()
            try:
                # The C handle was opened through our fd, so it never sees its name move: look here.
                moved = False
                if now - self._name_checked_at >= NAME_CHECK_SECONDS:
                    self._name_checked_at = now
                    moved = seg.name_moved()
                status = Incompatible.status if moved else self._lib.wait(seg.handle, after_version, slice_ms,
                                                                          ctypes.byref(out))
            finally:
                self._exit()
            if status == _native.OK:
                return out.value
            if status == Incompatible.status:
                self._follow_if_current(seg)  # retired, or the name stands for another file now
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
        baseline = self.version  # outside the guard: it may reopen the segment, which takes the guard
        with self._guard:
            if self._closing:
                raise Closed(f"the confcast subscriber of {self.segment!r} is closed", segment=self.segment)
            self._callbacks.append(callback)
            if self._watcher is None:
                self._start_watcher(baseline)
        return callback

    def _start_watcher(self, baseline: int) -> None:
        self._watch_seen = baseline
        self._watcher = threading.Thread(target=self._watch, args=(self._stop,),
                                         name=f"confcast-on-change-{self.segment}", daemon=True)
        self._watcher.start()

    def remove_on_change(self, callback: ChangeCallback) -> None:
        """Stops calling ``callback`` (no error if it was not registered)."""
        with self._guard:
            try:
                self._callbacks.remove(callback)
            except ValueError:
                pass

    def _watch(self, stop: threading.Event) -> None:
        seen = self._watch_seen
        while not stop.is_set():
            generation = self._generation
            try:
                version = self.wait(seen, timeout=WAIT_SLICE_SECONDS)
                # A segment created anew numbers its versions from 1 again: report the switch too.
                if version is None and (self._generation == generation or self.version == seen):
                    continue
                snap = self.snapshot()
            except Closed:
                return
            except ConfcastError:
                _log.exception("confcast: watching %r for changes failed; retrying", self.segment)
                stop.wait(1.0)
                continue
            seen = snap.version
            self._watch_seen = seen
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
        """The publisher's status as kept in the segment (one ``confcast_info_get``).

        ``heartbeat_age_seconds`` is measured on CLOCK_MONOTONIC (the
        header's ``heartbeat_mono_ns``), so a step of the wall clock cannot
        make a live publisher look stale or a dead one fresh; only without
        the header mapping (or before the publisher wrote that word) is it
        taken from the wall clock.
        """
        info = _native.Info()
        seg = self._enter()
        try:
            status = self._lib.info_get(seg.handle, ctypes.byref(info))
            words = seg.version_words
            mono_ns = words.words[HEARTBEAT_MONO_INDEX] if words is not None and words.mapped else 0
        finally:
            self._exit()
        if status != _native.OK:
            raise self._lib.error(status, f"reading the info of {self.segment!r}", segment=self.segment)
        if 0 < mono_ns < 1 << 63:
            heartbeat_age = (time.clock_gettime_ns(time.CLOCK_MONOTONIC) - mono_ns) / 1e9
        elif info.heartbeat_unix_ns > 0:
            heartbeat_age = (time.time_ns() - info.heartbeat_unix_ns) / 1e9
        else:
            heartbeat_age = math.inf
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
        """Frees the handle; waits (bounded) for calls in flight and stops the callback thread. Idempotent."""
        with self._guard:
            if self._closing:
                return
            self._closing = True
            self._stop.set()
            if self._calls_in_flight == 0:
                self._drained.set()
        deadline = time.monotonic() + CLOSE_WAIT_SECONDS
        drained = self._drained.wait(CLOSE_WAIT_SECONDS)  # a wait() in flight returns within one slice
        while self._pin_calls_in_flight() > 0:  # holds and releases in flight take nanoseconds
            if time.monotonic() >= deadline:
                drained = False
                break
            time.sleep(0.0001)
        with self._guard:
            seg, self._seg = self._seg, None
            replaced, self._replaced = self._replaced, []
            self._handle = None
            watcher = self._watcher
            in_flight = self._calls_in_flight
        self._words = self._pair = _CLOSED_WORDS
        self._notify_segment_listeners()
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(max(0.0, deadline - time.monotonic()))  # a callback may be running user code
        segments = [s for s in (seg, *replaced) if s is not None]
        if drained:
            for s in segments:
                s.close(self._lib)
        elif segments:
            # Freeing a handle a thread is inside would be a use-after-free; leaking it is not.
            _log.warning("confcast: %d call(s) on segment %r still in flight %.2g s after close(); "
                         "leaving its handle allocated", in_flight, self.segment, CLOSE_WAIT_SECONDS)

    def _after_fork_in_child(self) -> None:
        """In a fork()ed child: fresh locks and counters, our own open of the segment, our own watcher."""
        self._fresh_sync_state()
        inherited = [s for s in (self._seg, *self._replaced) if s is not None]
        self._seg, self._handle, self._replaced = None, None, []
        self._watcher = None
        for seg in inherited:
            try:
                seg.close(self._lib)  # the child's copy of the parent's: no thread of ours uses it
            except Exception:
                pass
        if self._closing:
            self._words = self._pair = _CLOSED_WORDS
            self._drained.set()
            return
        self._words = self._pair = _ReopenWords(self)
        try:
            self._reopen()
        except Exception as exc:
            _log.warning("confcast: cannot open segment %r in process %d after fork() yet (%s); "
                         "its next use tries again", self.segment, os.getpid(), exc)
        if self._callbacks:
            self._start_watcher(self._watch_seen)

    @property
    def closed(self) -> bool:
        return self._closing

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            # At interpreter exit the watcher can no longer run to leave its call: nothing to wait for.
            if sys.is_finalizing():
                return
            if getattr(self, "_seg", None) is not None or getattr(self, "_replaced", None):
                self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        snap = self._snapshot
        state = "closed" if self._closing else f"version={snap.version if snap is not _NO_SNAPSHOT else '?'}"
        return f"<confcast.Subscriber segment={self.segment!r} {state}>"
