"""confcast._segment - opens one segment file once: trust check, header mapping and C handle.

The package maps the segment's header itself (``_version_word``) and reads
everything else through a C handle. Opening the two by name separately
would let them map different files when the name is replaced in between
(a publisher killed between its rename and its retire mark, a segment
deleted and created anew). So the file is opened ONCE here:

1. ``os.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)`` (no blocking on a
   FIFO planted under the name);
2. ``os.fstat`` of that fd: a regular file, and trusted (``check_trust``);
3. the C handle is opened on ``/proc/self/fd/N`` - the same inode, whatever
   the name stands for by then - and the header page is mapped from the fd.

The fd stays open as long as the handle: the C handle stats its location to
notice a moved name, and with the fd open that location is always its own
file. Noticing that the NAME now stands for another file is therefore the
Python side's job (``OpenSegment.name_moved``, called from ``wait()``).

Trust: a reader refuses a segment that group or others can write, or whose
owner is not root, the reader's effective uid, or ``$CONFCAST_SEGMENT_OWNER``
(a numeric uid) - a writable or foreign segment would let another user feed
config to the worker. The C library makes the same check on its own open;
this one runs first because it can name the owner and the mode.

Threading: ``open_segment`` touches no shared state. An ``OpenSegment`` is
owned by one Subscriber, which closes it only once no thread uses it.
"""

from __future__ import annotations

import ctypes
import errno as errno_codes
import os
import pwd
import re
import stat
import time

from . import _native
from ._version_word import open_version_words
from .errors import (ConfcastError, Corrupt, InvalidArgument, PermissionDenied, SegmentNotFound,
                     SystemCallError)

OWNER_VARIABLE = "CONFCAST_SEGMENT_OWNER"
_NAME_MAX = 255
_PROC_FD = "/proc/self/fd"
_IDENTITY_ATTEMPTS = 5  # only without /proc: open by name until the name held still around the open


def segment_path(segment: str) -> str:
    """The file a segment name stands for (the rules of ``confcast_open``), or ``InvalidArgument``."""
    if "/" not in segment:
        if not segment or len(segment) > _NAME_MAX - 1 or segment in (".", ".."):
            raise InvalidArgument(f"invalid confcast segment name {segment!r}: a shared-memory name is 1 to "
                                  f"{_NAME_MAX - 1} characters without '/' (or give an absolute path)",
                                  segment=segment)
        return "/dev/shm/" + segment
    if segment.startswith("/"):
        return segment
    raise InvalidArgument(f"invalid confcast segment name {segment!r}: a name with '/' must be an absolute path",
                          segment=segment)


def trusted_owner_from_environment() -> int | None:
    """The uid in ``$CONFCAST_SEGMENT_OWNER``, None when unset; ``InvalidArgument`` when not a number."""
    raw = os.environ.get(OWNER_VARIABLE)
    if not raw:
        return None
    value = raw  # as the C library reads it: digits only, no spaces
    # A user name is refused rather than looked up: the variable must mean the same in every container.
    if not re.fullmatch(r"[0-9]{1,10}", value) or int(value) > 0xFFFFFFFE:
        raise InvalidArgument(f"${OWNER_VARIABLE}={raw!r} is not a numeric uid (e.g. "
                              f"{OWNER_VARIABLE}=65534): readers use it to accept a segment owned by that uid")
    return int(value)


def _user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return None


def check_trust(path: str, st: os.stat_result, segment: str | None = None) -> None:
    """Raises ``PermissionDenied`` unless ``st`` (the segment file's fstat) may be trusted."""
    extra_owner = trusted_owner_from_environment()
    euid = os.geteuid()
    mode = stat.S_IMODE(st.st_mode)
    writable_by_others = mode & (stat.S_IWGRP | stat.S_IWOTH)
    trusted_owner = st.st_uid in (0, euid) or (extra_owner is not None and st.st_uid == extra_owner)
    if not writable_by_others and trusted_owner:
        return
    name = _user_name(st.st_uid)
    owner = f"uid {st.st_uid} ({name})" if name else f"uid {st.st_uid}"
    extra = f" (uid {extra_owner})" if extra_owner is not None else " (not set)"
    raise PermissionDenied(
        f"bad ownership or modes for confcast segment {path}: owned by {owner}, mode {mode:04o}; "
        f"readers accept a segment only if no group or other user can write it and it is owned by "
        f"root, uid {euid} (this process's user) or ${OWNER_VARIABLE}{extra}",
        status=PermissionDenied.status, segment=segment, path=path)


def _os_open_error(exc: OSError, lib, segment: str, path: str) -> ConfcastError:
    """The confcast error for a failed open of the segment file, worded like the C library's."""
    if exc.errno == errno_codes.ENOENT:
        cls = SegmentNotFound
    elif exc.errno in (errno_codes.EACCES, errno_codes.EPERM):
        cls = PermissionDenied
    elif exc.errno in (errno_codes.ENAMETOOLONG, errno_codes.EINVAL):
        cls = InvalidArgument
    else:
        cls = SystemCallError
    err = cls(f"cannot open confcast segment {segment!r} ({path}): {lib.message(cls.status)} "
              f"({exc.strerror})", status=cls.status, segment=segment)
    if isinstance(err, OSError):
        err.errno = exc.errno
    return err


class OpenSegment:
    """One open segment file: its fd, identity, C handle and header words - all of one inode."""

    # address: the handle as an int, 0 once it is freed or forgotten (for the C pin(), confcast._pin).
    __slots__ = ("fd", "path", "dev", "ino", "handle", "address", "version_words")

    def __init__(self, fd: int, path: str, st: os.stat_result, handle: ctypes.c_void_p, version_words) -> None:
        self.fd = fd
        self.path = path
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.handle = handle
        self.address = handle.value or 0
        self.version_words = version_words

    def name_moved(self) -> bool:
        """Whether the name now stands for another file. A name gone for now is not a move:
        a publisher may be about to create it."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return st.st_ino != self.ino or st.st_dev != self.dev

    def close(self, lib) -> None:
        """Frees everything; only when no thread can be inside a C call with ``handle``."""
        handle, self.handle = self.handle, None
        self.address = 0
        words, self.version_words = self.version_words, None
        fd, self.fd = self.fd, -1
        try:
            if words is not None:
                words.close()
        except (BufferError, ValueError):
            pass  # a reader still holds the memoryview: the garbage collector unmaps it later
        if handle is not None:
            lib.close(handle)
        if fd >= 0:
            os.close(fd)

    def abandon(self) -> None:
        """Forgets everything without freeing the C handle (a thread may still be inside it)."""
        self.handle = None
        self.address = 0
        self.version_words = None
        self.fd = -1


def _open_handle_on(lib, fd: int, st: os.stat_result, segment: str, path: str) -> ctypes.c_void_p:
    handle = ctypes.c_void_p()
    if os.path.isdir(_PROC_FD):
        status = lib.open(b"%s/%d" % (_PROC_FD.encode(), fd), ctypes.byref(handle))
        if status != _native.OK:
            raise lib.error(status, f"cannot open confcast segment {segment!r} ({path})", segment=segment)
        return handle
    # Without /proc the C library can only open the name: accept its handle only if the name
    # stood for our fd's file before and after its open, so the two cannot have raced apart.
    for _ in range(_IDENTITY_ATTEMPTS):
        status = lib.open(path.encode(), ctypes.byref(handle))
        if status != _native.OK:
            raise lib.error(status, f"cannot open confcast segment {segment!r} ({path})", segment=segment)
        try:
            after = os.stat(path)
        except OSError:
            after = None
        if after is not None and (after.st_dev, after.st_ino) == (st.st_dev, st.st_ino):
            return handle
        lib.close(handle)
        time.sleep(0.01)
    raise SegmentNotFound(f"cannot open confcast segment {segment!r} ({path}): the name kept moving to "
                          f"other files while it was opened", status=SegmentNotFound.status, segment=segment)


def open_segment(lib, segment: str) -> OpenSegment:
    """Opens ``segment`` (a resolved name): trust-checked, with the header mapping and the C
    handle made from one fd. Raises the ``ConfcastError`` subclass of what went wrong."""
    path = segment_path(segment)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise _os_open_error(exc, lib, segment, path) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Corrupt(f"cannot open confcast segment {segment!r} ({path}): not a regular file",
                          status=Corrupt.status, segment=segment)
        check_trust(path, st, segment)
        handle = _open_handle_on(lib, fd, st, segment, path)
        try:
            version_words = open_version_words(fd, lib.version, handle)
        except BaseException:
            lib.close(handle)
            raise
        return OpenSegment(fd, path, st, handle, version_words)
    except BaseException:
        os.close(fd)
        raise
