"""confcast.errors - the exceptions of the confcast package.

Every failure the package reports is a ``ConfcastError``; each status code of
the C ABI (``confcast.h``) has its own subclass, carrying the C library's own
message (``confcast_strerror``) plus what the caller asked for (segment,
path), so a log line says what failed and where. Some also derive from the
matching built-in exception, so ordinary Python code that catches
``KeyError`` / ``TypeError`` / ``PermissionError`` keeps working.

Threading: exception classes and instances hold no shared state.
"""

from __future__ import annotations


class ConfcastError(Exception):
    """Base of every confcast failure.

    ``status`` is the C status code (0 when the error did not come from the C
    library), ``segment`` and ``path`` say what was being read when known.
    """

    status = 0

    def __init__(self, message: str, *, status: int | None = None,
                 segment: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.segment = segment
        self.path = path

    def __str__(self) -> str:
        return self.args[0] if self.args else self.__class__.__name__


class LibraryNotFound(ConfcastError, ImportError):
    """libconfcast.so could not be found or loaded, or lacks a symbol."""


class SegmentNotFound(ConfcastError):
    """The segment does not exist (the publisher has not created it yet)."""

    status = -1


class Incompatible(ConfcastError):
    """The segment was written with a layout this library does not support."""

    status = -2


class Corrupt(ConfcastError):
    """The segment failed verification."""

    status = -3


class Empty(ConfcastError):
    """The segment exists but nothing has been published into it yet."""

    status = -4


class KeyNotFound(ConfcastError, KeyError):
    """No value at that path. Also a ``KeyError``, so ``snap["x"]`` behaves like a dict."""

    status = -5

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable
        return ConfcastError.__str__(self)


class TypeMismatch(ConfcastError, TypeError):
    """The value at that path has another type than the getter reads."""

    status = -6


class Truncated(ConfcastError):
    """A buffer was too small. Handled inside the package; seen only if a value keeps growing."""

    status = -7


class InvalidArgument(ConfcastError, ValueError):
    """A bad argument (e.g. a malformed segment name or path)."""

    status = -8


class PermissionDenied(ConfcastError, PermissionError):
    """The segment exists but this process may not read it (see --segment-mode), or may not
    trust it: group or others can write it, or its owner is not root, this process's user or
    ``$CONFCAST_SEGMENT_OWNER``."""

    status = -9


class Timeout(ConfcastError, TimeoutError):
    """A bounded wait ran out (``wait()`` itself returns None instead)."""

    status = -10


class SystemCallError(ConfcastError, OSError):
    """A system call failed; ``errno`` says which way."""

    status = -11


class Closed(ConfcastError):
    """The subscriber was closed (or is closing) and can no longer read."""


class ConfigUnavailable(ConfcastError):
    """No snapshot was pinned for this request (see ``confcast.asgi``)."""


STATUS_TO_ERROR: dict[int, type[ConfcastError]] = {
    cls.status: cls
    for cls in (SegmentNotFound, Incompatible, Corrupt, Empty, KeyNotFound, TypeMismatch,
                Truncated, InvalidArgument, PermissionDenied, Timeout, SystemCallError)
}
