"""confcast._ledger - reads this process's own entry in a segment's worker ledger.

The C library registers the process on open and keeps the entry (see
``confcast.h``, ``confcast_hold``); this module only reads it back, for a
worker to show where it stands (the demo's ``/healthz``). The entry's bytes
are laid out in ``common/include/confcast/layout.hpp`` (``LedgerEntry``):
a header (magic, layout version, size, pid, slot count, start time, pid
namespace), the newest version read at 64, the overflow hold word at 72 and
16 hold words at 128, each ``(version << 16) | count``.

Threading: ``own_entry`` opens, reads and closes one file; no shared state.
"""

from __future__ import annotations

import os
import struct

LEDGER_SUFFIX = ".confcast-ledger"
ENTRY_PREFIX = "w-"
ENTRY_SIZE = 256
MAGIC = int.from_bytes(b"CCLEDGER", "little")
LAYOUT_VERSION = 1
HOLD_SLOTS = 16
_HEADER = struct.Struct("<QIIiIQQ")  # magic, layout_version, entry_size, pid, hold_slots, start_time, pid_namespace
_NEWEST_READ_OFFSET = 64
_OVERFLOW_OFFSET = 72
_HOLDS_OFFSET = 128
_COUNT_BITS = 16


def ledger_directory(segment_file: str) -> str:
    """Where the worker ledger of the segment at ``segment_file`` lives."""
    return segment_file + LEDGER_SUFFIX


def decode_entry(data: bytes) -> dict | None:
    """An entry's fields (pid, version read, oldest held, number of holds), or None if not an entry."""
    if len(data) != ENTRY_SIZE:
        return None
    magic, version, size, pid, slots, start_time, pid_namespace = _HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != LAYOUT_VERSION or size != ENTRY_SIZE or slots != HOLD_SLOTS:
        return None
    newest_read, overflow = struct.unpack_from("<QQ", data, _NEWEST_READ_OFFSET)
    words = list(struct.unpack_from(f"<{HOLD_SLOTS}Q", data, _HOLDS_OFFSET)) + [overflow]
    held = [(w >> _COUNT_BITS, w & ((1 << _COUNT_BITS) - 1)) for w in words if w & ((1 << _COUNT_BITS) - 1)]
    return {
        "pid": pid,
        "start_time": start_time,
        "pid_namespace": pid_namespace,
        "version": newest_read,
        "oldest_held": min((v for v, _ in held), default=None),
        "held": sum(c for _, c in held),
    }


def own_entry(segment_file: str) -> dict | None:
    """This process's entry in the ledger beside ``segment_file``, or None if it has none."""
    directory = ledger_directory(segment_file)
    suffix_pid = f"-{os.getpid()}-"
    try:
        names = [n for n in os.listdir(directory) if n.startswith(ENTRY_PREFIX) and suffix_pid in n]
    except OSError:
        return None
    for name in names[:16]:
        try:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            entry = decode_entry(os.pread(fd, ENTRY_SIZE, 0))
        finally:
            os.close(fd)
        if entry is not None and entry["pid"] == os.getpid():
            return {"entry": name, **entry}
    return None
