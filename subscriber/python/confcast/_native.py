"""confcast._native - finds libconfcast.so and declares the C ABI for ctypes.

The C ABI is declared in ``confcast/confcast.h`` (subscriber/include). Every function gets
its argtypes/restype here, so a wrong argument is a Python error instead of a
silent stack corruption. The library is looked up, in order:

1. ``$CONFCAST_LIBRARY`` (a path to the .so) when set - and nothing else, so a
   mistyped variable fails loudly instead of silently loading another copy;
2. beside the package (``confcast/libconfcast.so``, then its parent directory);
3. the dynamic loader's search path (``ctypes.util.find_library("confcast")``,
   then ``libconfcast.so`` as the loader resolves it).

``Subscriber.pin()`` has a C fast path, the extension module ``confcast._pin``
(``_pin.abi3.so``, built from subscriber/python/extension/pin.c). It is looked
for in the package directory, then beside the library when that was loaded by
an absolute path (a build tree), and bound to that library's functions; when
it is missing, or ``$CONFCAST_PURE_PYTHON`` is set, pin() is pure Python
(same behaviour, about three times the cost).

Threading: the library is loaded once, on first use, under a lock; the loaded
``Library`` is immutable afterwards and shared by every thread. ``CDLL``
releases the GIL around each foreign call, which is what lets ``wait()``
block without stopping other Python threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import logging
import os
import sysconfig
import threading
from pathlib import Path

from .errors import STATUS_TO_ERROR, ConfcastError, LibraryNotFound, SystemCallError

OK = 0
ERR_TRUNCATED = -7

DEFAULT_SEGMENT = "holmesgpt-config"

PIN_EXTENSION = "_pin.abi3.so"
PIN_PROTOCOL = 1  # the attributes pin.c reads; it must say the same

_log = logging.getLogger("confcast")


class Info(ctypes.Structure):
    """``confcast_info``: natural C alignment, exactly as the header declares it."""

    _fields_ = [
        ("version", ctypes.c_uint64),
        ("published_unix_ns", ctypes.c_int64),
        ("heartbeat_unix_ns", ctypes.c_int64),
        ("publisher_pid", ctypes.c_int32),
        ("reload_total", ctypes.c_uint64),
        ("reload_errors_total", ctypes.c_uint64),
        ("sha256_hex", ctypes.c_char * 65),
        ("last_error", ctypes.c_char * 256),
    ]


_handle_p = ctypes.c_void_p
_u64_p = ctypes.POINTER(ctypes.c_uint64)
_size_p = ctypes.POINTER(ctypes.c_size_t)

# name: (restype, argtypes) - one line per function of confcast.h.
_PROTOTYPES = {
    "confcast_open": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(_handle_p)]),
    "confcast_close": (None, [_handle_p]),
    "confcast_version": (ctypes.c_uint64, [_handle_p]),
    "confcast_get_int": (ctypes.c_int, [_handle_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64), _u64_p]),
    "confcast_get_double": (ctypes.c_int, [_handle_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_double), _u64_p]),
    "confcast_get_bool": (ctypes.c_int, [_handle_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), _u64_p]),
    "confcast_get_string": (ctypes.c_int, [_handle_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
                                           _size_p, _u64_p]),
    "confcast_get_json": (ctypes.c_int, [_handle_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
                                         _size_p, _u64_p]),
    "confcast_snapshot_json": (ctypes.c_int, [_handle_p, ctypes.c_char_p, ctypes.c_size_t, _size_p, _u64_p]),
    "confcast_wait": (ctypes.c_int, [_handle_p, ctypes.c_uint64, ctypes.c_int, _u64_p]),
    "confcast_info_get": (ctypes.c_int, [_handle_p, ctypes.POINTER(Info)]),
    "confcast_strerror": (ctypes.c_char_p, [ctypes.c_int]),
    "confcast_is_secret": (ctypes.c_int, [_handle_p, ctypes.c_char_p]),
    "confcast_hold": (ctypes.c_int, [_handle_p, ctypes.c_uint64]),
    "confcast_release": (ctypes.c_int, [_handle_p, ctypes.c_uint64]),
}


class Library:
    """The loaded C library: one attribute per C function, plus where it came from."""

    def __init__(self, cdll: ctypes.CDLL, path: str) -> None:
        self.path = path
        for name, (restype, argtypes) in _PROTOTYPES.items():
            try:
                fn = getattr(cdll, name)
            except AttributeError as exc:
                raise LibraryNotFound(
                    f"{path} is not a confcast library this package can use: it lacks {name}()"
                ) from exc
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name[len("confcast_"):], fn)
        self._cdll = cdll  # keep the library mapped as long as we are
        # The ledger's hold and release, for pin() on every request: called through PyDLL (the GIL
        # stays held: both are lock-free and return in nanoseconds) with ctypes objects as arguments
        # and no argtypes, which halves the cost of a call (argument conversion is most of it). The
        # callers pass exactly (c_void_p handle, c_uint64 version).
        fast = ctypes.PyDLL(path, handle=cdll._handle)
        self.hold_fast = fast.confcast_hold
        self.release_fast = fast.confcast_release
        for fn in (self.hold_fast, self.release_fast):
            fn.restype = ctypes.c_int
        # The C Pin type, or None: Subscriber.pin() then uses its Python one.
        self.pin_type, self.pin_extension = _bind_pin_extension(path, cdll)

    def message(self, status: int) -> str:
        text = self.strerror(status)
        return text.decode("utf-8", "replace") if text else f"confcast status {status}"

    def error(self, status: int, what: str, *, segment: str | None = None,
              path: str | None = None) -> ConfcastError:
        """The exception for a C status code: its class by code, the C message, and context."""
        cls = STATUS_TO_ERROR.get(status, ConfcastError)
        message = f"{what}: {self.message(status)}"
        err = cls(message, status=status, segment=segment, path=path)
        if isinstance(err, SystemCallError):
            err.errno = ctypes.get_errno() or None
            if err.errno:
                message += f" ({os.strerror(err.errno)})"
                err.args = (message,)
        return err


_pin_modules: dict[Path, object] = {}  # each extension file is loaded once per process


def _bind_pin_extension(library_path: str, cdll: ctypes.CDLL) -> tuple[type | None, str | None]:
    """confcast._pin's Pin bound to this library's hold and release, and the file it came from."""
    if os.environ.get("CONFCAST_PURE_PYTHON", "") not in ("", "0"):
        return None, None
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return None, None  # a free-threaded CPython: no stable ABI, and pin.c's safety rests on the GIL
    places = [Path(__file__).resolve().parent / PIN_EXTENSION]
    if "/" in library_path:  # a path, not a name the loader resolved (that could be the working directory)
        places.append(Path(os.path.abspath(library_path)).resolve().parent / PIN_EXTENSION)
    for place in dict.fromkeys(places):  # once each, in order (a venv has both in the package)
        if not place.is_file():
            continue
        try:
            module = _pin_modules.get(place)
            if module is None:
                spec = importlib.util.spec_from_file_location("confcast._pin", place)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                _pin_modules[place] = module
            if getattr(module, "PROTOCOL", None) != PIN_PROTOCOL:
                raise ImportError(f"protocol {getattr(module, 'PROTOCOL', None)}, this package needs {PIN_PROTOCOL}")
            # Refused (ValueError) when the module is bound to another library already: its Pins
            # must never call one library with another's handles.
            module.bind(ctypes.cast(cdll.confcast_hold, ctypes.c_void_p).value,
                        ctypes.cast(cdll.confcast_release, ctypes.c_void_p).value)
        except (ImportError, OSError, ValueError) as exc:
            _log.warning("confcast: not using %s (%s); pin() stays pure Python", place, exc)
            continue
        return module.Pin, str(place)
    _log.debug("confcast: no %s beside the package or %s; pin() is pure Python", PIN_EXTENSION, library_path)
    return None, None


def _candidates() -> list[str]:
    package_dir = Path(__file__).resolve().parent
    beside = [package_dir / "libconfcast.so", package_dir.parent / "libconfcast.so"]
    found = [str(p) for p in beside if p.is_file()]
    from_loader = ctypes.util.find_library("confcast")
    if from_loader:
        found.append(from_loader)
    found.append("libconfcast.so")
    return found


_lock = threading.Lock()
_library: Library | None = None


def library() -> Library:
    """The C library, loaded on first call (so ``import confcast`` never fails for lack of it)."""
    global _library
    lib = _library
    if lib is not None:
        return lib
    with _lock:
        if _library is None:
            _library = _load()
        return _library


def _load() -> Library:
    explicit = os.environ.get("CONFCAST_LIBRARY")
    if explicit:
        try:
            return Library(ctypes.CDLL(explicit, use_errno=True), explicit)
        except OSError as exc:
            raise LibraryNotFound(
                f"cannot load the confcast C library from $CONFCAST_LIBRARY={explicit!r}: {exc}"
            ) from exc
    tried = []
    for candidate in _candidates():
        try:
            return Library(ctypes.CDLL(candidate, use_errno=True), candidate)
        except OSError as exc:
            tried.append(f"{candidate} ({exc})")
    raise LibraryNotFound(
        "cannot find the confcast C library libconfcast.so. Set $CONFCAST_LIBRARY to its path "
        "(e.g. build/subscriber/libconfcast.so), put it beside the confcast package, or install "
        "it where the dynamic loader finds it. Tried: " + "; ".join(tried)
    )


def resolve_segment(segment: str | None) -> str:
    """The segment name the C library will use for ``segment`` (None: $CONFCAST_SEGMENT, else the default)."""
    if segment:
        return segment
    return os.environ.get("CONFCAST_SEGMENT") or DEFAULT_SEGMENT

