"""confcast._version_word - the segment's version word, read without a ctypes call.

``Subscriber.snapshot()`` is called once per request and is almost always
answered from its cache; all it must learn is whether the published version
changed. A ctypes call costs ~250 ns, an index into a memoryview ~30 ns, so the
package maps the segment's header page read-only itself and reads the
version word directly (layout: common/include/confcast/layout.hpp):

    offset 0    magic           u64  0x54534143464E4F43 ("CONFCAST")
    offset 8    layout_version  u32  1
    offset 72   version         u64  the version in the active slot
    offset 144  retired         u32  1 once a newer segment replaced this one

On x86-64 (and arm64) an aligned 8-byte load is atomic, and CPython's
memoryview reads a 'Q' item with one such load, so the word is never torn.
Only the version is read this way; every byte of config still comes through
the C library, which does the sequence checks.

If the mapping cannot be made (unknown segment form, an incompatible layout,
no /dev/shm) the words come from ``confcast_version`` instead: slower, same
answers.

Threading: a ``VersionWords`` is read by any number of threads without a
lock; ``close()`` must only run when no other thread reads it (the
Subscriber guarantees that).
"""

from __future__ import annotations

import mmap
import os
import sys

from ._native import segment_file

MAGIC = 0x54534143464E4F43
LAYOUT_VERSION = 1
HEADER_BYTES = 4096
VERSION_INDEX = 72 // 8   # index of the version word in the header viewed as u64[]
RETIRED_INDEX = 144 // 8  # retired (u32) + reserved (u32, zero): non-zero once retired


class MappedVersionWords:
    """``words[VERSION_INDEX]`` / ``words[RETIRED_INDEX]`` straight from the mapped header."""

    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._map = mmap.mmap(fd, HEADER_BYTES, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        self.words = memoryview(self._map).cast("Q")
        if self.words[0] != MAGIC or (self.words[1] & 0xFFFFFFFF) != LAYOUT_VERSION:
            self.close()
            raise ValueError(f"{path} has no confcast layout {LAYOUT_VERSION} header")

    def close(self) -> None:
        words, self.words = self.words, None
        if words is not None:
            words.release()
        self._map.close()


class CallVersionWords:
    """Fallback with the same indexing, answered by ``confcast_version``."""

    def __init__(self, version_fn, handle) -> None:
        self._version = version_fn
        self._handle = handle
        self.words = self

    def __getitem__(self, index: int) -> int:
        if index == VERSION_INDEX:
            return self._version(self._handle)
        return 0  # the C library follows a retired segment by itself

    def close(self) -> None:
        self._handle = None


def open_version_words(segment: str, version_fn, handle):
    """The fastest reader of the version word that works for this segment."""
    path = segment_file(segment)
    if path is not None and sys.byteorder == "little":
        try:
            return MappedVersionWords(path)
        except (OSError, ValueError):
            pass
    return CallVersionWords(version_fn, handle)
