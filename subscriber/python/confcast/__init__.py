"""confcast - read the config a confcast-publisher broadcasts through shared memory.

    import confcast
    sub = confcast.Subscriber()                # $CONFCAST_SEGMENT, else "holmesgpt-config"
    snap = sub.snapshot()                      # immutable (maps are read-only dicts), cached per version
    snap["llm"]["model"], snap.get("llm.model"), snap.version, snap.sha256
    sub.wait(snap.version, timeout=5.0)        # -> new version or None
    sub.on_change(lambda snap: ...)            # on a background thread

    cm = confcast.ConfigManager()              # the HolmesGPT API's ConfigManager interface
    cm.start(); cm.get_llm_model(); cm.stop()

Standard library only: the C library libconfcast.so is loaded with ctypes
from $CONFCAST_LIBRARY, else beside this package, else the loader's search
path - on first use, so importing never fails for lack of it. Per-request
pinning for ASGI apps is in ``confcast.asgi``. See README.md beside the package.

Threading: see each class; everything here is safe to use from many threads.
"""

from .config_manager import ConfigManager
from .errors import (Closed, ConfcastError, ConfigUnavailable, Corrupt, Empty, Incompatible,
                     InvalidArgument, KeyNotFound, LibraryNotFound, PermissionDenied, SegmentNotFound,
                     SystemCallError, Timeout, Truncated, TypeMismatch)
from .snapshot import FrozenDict, Snapshot
from .subscriber import Subscriber

__version__ = "0.1.0"

__all__ = [
    "Subscriber", "Snapshot", "FrozenDict", "ConfigManager",
    "ConfcastError", "LibraryNotFound", "SegmentNotFound", "Incompatible", "Corrupt", "Empty",
    "KeyNotFound", "TypeMismatch", "Truncated", "InvalidArgument", "PermissionDenied", "Timeout",
    "SystemCallError", "Closed", "ConfigUnavailable",
]
