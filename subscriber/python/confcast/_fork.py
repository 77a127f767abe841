"""confcast._fork - makes subscribers and config managers made before ``fork()`` work in the child.

A process that forks keeps only the forking thread: an ``on_change`` thread
that was inside ``confcast_wait`` leaves the child an in-flight call count
that never drains, and any lock a vanished thread held stays held forever.
gunicorn ``--preload`` (a module-level ``ConfigManager`` started at import)
forks exactly such a process. So, in every child, right after ``fork()``:

1. each live ``ConfigManager`` gets fresh locks (first: the callbacks that
   step 2 may start at once take them);
2. each live ``Subscriber`` gets fresh locks, events and counters, opens the
   segment anew by name (its own fd, mapping and C handle; the parent's are
   the parent's), and restarts its ``on_change`` thread if callbacks were
   registered. A reopen that fails is not raised from the hook: the next use
   retries it and raises a clear error if it still fails.

Objects are tracked in WeakSets, so tracking keeps nothing alive.

Threading: ``track_*`` may be called from any thread. The hook runs in the
child while it has a single thread, after ``threading`` re-initialised itself
(it registered its own hook first, at its import).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref

from . import _native

_log = logging.getLogger("confcast")

_managers: "weakref.WeakSet" = weakref.WeakSet()
_subscribers: "weakref.WeakSet" = weakref.WeakSet()


def track_manager(manager) -> None:
    _managers.add(manager)


def track_subscriber(subscriber) -> None:
    _subscribers.add(subscriber)


def _after_fork_in_child() -> None:
    _native._lock = threading.Lock()  # a parent thread may have been loading the library
    for group in (list(_managers), list(_subscribers)):
        for obj in group:
            try:
                obj._after_fork_in_child()
            except Exception:  # never fail the fork itself; the object reports on its next use
                _log.exception("confcast: resetting %r after fork() in process %d failed", obj, os.getpid())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
