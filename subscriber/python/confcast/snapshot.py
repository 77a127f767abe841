"""confcast.snapshot - one published config version as an immutable Python value.

A ``Snapshot`` is built once per version (by ``Subscriber.snapshot()``) from
the C library's JSON of that version and then shared by every request of the
process, so it must never change: maps are ``FrozenDict`` (a ``dict`` that
refuses every change, so it is C-fast to index and passes ``isinstance(x,
dict)`` and ``json.dumps``), lists are tuples, and the Snapshot itself
refuses assignment. Every node's dotted path (``llm.model``,
``toolsets.kubernetes/core.enabled``, ``a.list.0``) is indexed once at build
time, so ``snap.get(path)`` is one dict lookup; the paths of scalar values
are indexed a second time on their own, so that ``Subscriber.get`` can tell
a scalar (returned as is) from a subtree (copied) with that same one lookup.

Threading: immutable after construction; share it freely between threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

from ._version_word import expected_pair
from .errors import KeyNotFound

_MISSING = object()
SECRET = "<secret>"  # what redacted() puts where a secret value was


def _immutable(what: str, name: str):
    def refuse(self, *args, **kwargs):
        raise TypeError(f"{what} is immutable ({name} is not allowed)")
    refuse.__name__ = name
    return refuse


# Every dict method that changes it in place, and how its refusal names it.
_CHANGES = (("__setitem__", "item assignment"), ("__delitem__", "item deletion"), ("__ior__", "|="),
            ("clear", "clear()"), ("pop", "pop()"), ("popitem", "popitem()"), ("setdefault", "setdefault()"),
            ("update", "update()"))


def _refuses_changes(what: str):
    """Class decorator: every in-place change of the dict raises ``TypeError`` naming ``what``."""
    def decorate(cls):
        for attribute, name in _CHANGES:
            setattr(cls, attribute, _immutable(what, name))
        return cls
    return decorate


@_refuses_changes("a confcast FrozenDict")
class FrozenDict(dict):
    """A ``dict`` that refuses every change (``TypeError``): the maps inside a ``Snapshot``.

    A dict subclass rather than ``types.MappingProxyType`` so that indexing
    runs dict's own C lookup with no proxy in between, and so that code
    written for the dicts the HolmesGPT API used to hand out
    (``isinstance(x, dict)``, ``json.dumps(x)``) keeps working. One object is
    shared by every reader of a version, which is why it must not change.
    ``copy()`` and ``dict(x)`` give a plain, mutable shallow copy.
    """

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> "FrozenDict":
        self = dict.__new__(cls)
        dict.__init__(self, *args, **kwargs)
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # filled by __new__: dict's __init__, called again on a built one, would refill it in place

    def __copy__(self) -> "FrozenDict":
        return self

    def __deepcopy__(self, memo: dict) -> "FrozenDict":
        return self

    def __reduce__(self):
        # Pickle's default for a dict subclass refills it item by item, which __setitem__ refuses.
        return (FrozenDict, (dict(self),))


def _freeze(value: Any, path: str, index: dict[str, Any], scalars: dict[str, Any]) -> Any:
    """The immutable form of a JSON value; records every node's dotted path in ``index``, and
    those of scalars (not maps, not lists) in ``scalars`` too."""
    if isinstance(value, dict):
        frozen = FrozenDict({
            key: _freeze(child, f"{path}.{key}" if path else key, index, scalars)
            for key, child in value.items()
        })
    elif isinstance(value, list):
        frozen = tuple(_freeze(child, f"{path}.{i}" if path else str(i), index, scalars)
                       for i, child in enumerate(value))
    else:
        frozen = value
        if path:
            scalars[path] = frozen
    if path:
        index[path] = frozen
    return frozen


def _under(path: str, roots: set[str]) -> bool:
    """Whether a map or list above ``path`` is one of ``roots``."""
    dot = path.rfind(".")
    while dot > 0:
        if path[:dot] in roots:
            return True
        dot = path.rfind(".", 0, dot)
    return False


def thaw(value: Any) -> Any:
    """A plain, mutable, JSON-serialisable copy (dicts and lists) of a frozen value."""
    kind = type(value)  # exact types first: an ABC isinstance() per scalar would cost more than the copy
    if kind is FrozenDict or kind is dict:
        return {key: thaw(child) for key, child in value.items()}
    if kind is tuple or kind is list:
        return [thaw(child) for child in value]
    if isinstance(value, Mapping):
        return {key: thaw(child) for key, child in value.items()}
    return value


@_refuses_changes("a confcast Snapshot")
class Snapshot(dict):
    """The validated config of one published version (defaults applied).

    ``snap["llm"]["model"]`` indexes like a dict; ``snap.get("llm.model", d)``
    takes a dotted path (a list element is its number); ``snap.version`` and
    ``snap.sha256`` identify the version (the SHA-256 of the config file's
    bytes). ``to_dict()`` gives a plain mutable copy (secret values
    included: readers get them); ``redacted()`` one to show people, with
    every secret value replaced by ``"<secret>"``.

    A dict subclass, not a Python-level Mapping, on purpose: ``snap["llm"]``
    then runs dict's C lookup (tens of ns) instead of a Python
    ``__getitem__`` call, which matters when a request reads a handful of
    fields. Every mutating method is overridden to raise TypeError; the
    nested maps are ``FrozenDict`` and lists are tuples.
    """

    # ``get`` is a slot holding the path index's own bound ``dict.get``: a
    # slot is a data descriptor, so it wins over dict.get, and
    # ``snap.get("llm.model", default)`` runs at C speed with no Python frame.
    __slots__ = ("_paths", "_scalars", "_expected_pair", "version", "sha256", "get", "_secret_probe",
                 "_secret_roots")

    def __init__(self, config: Mapping[str, Any], version: int, sha256: str,
                 secret_probe: Callable[[str], bool] | None = None) -> None:
        paths: dict[str, Any] = {}
        scalars: dict[str, Any] = {}
        root = _freeze(dict(config), "", paths, scalars)
        dict.update(self, root)
        object.__setattr__(self, "_paths", paths)
        object.__setattr__(self, "_scalars", scalars)
        object.__setattr__(self, "version", int(version))
        # What the segment's [version, retired] words equal while this is the current version.
        object.__setattr__(self, "_expected_pair", expected_pair(self.version))
        object.__setattr__(self, "sha256", sha256)
        # get(path, default=None): the value at a dotted path (``llm.model``, ``a.list.0``).
        object.__setattr__(self, "get", paths.get)
        # Which paths are secret is recorded in the segment, per value; asked once, on the first
        # redacted() or is_secret(), so that a process that never shows its config never pays.
        object.__setattr__(self, "_secret_probe", secret_probe)
        object.__setattr__(self, "_secret_roots", None)

    def __missing__(self, key: str) -> Any:
        raise KeyNotFound(f"no key {key!r} in config version {self.version}", path=key)

    def require(self, path: str) -> Any:
        """The value at a dotted path; ``KeyNotFound`` if there is none."""
        value = self._paths.get(path, _MISSING)
        if value is _MISSING:
            raise KeyNotFound(f"no value at {path!r} in config version {self.version}", path=path)
        return value

    def to_dict(self) -> dict[str, Any]:
        return {key: thaw(value) for key, value in dict.items(self)}

    def is_secret(self, path: str) -> bool:
        """Whether the value at a dotted path is a secret (its schema field, or a map or list above
        it, is marked secret); ``KeyNotFound`` if there is no such path."""
        self.require(path)
        roots = self._secrets()
        return path in roots or _under(path, roots)

    def redacted(self) -> dict[str, Any]:
        """A plain copy of the config with every secret value replaced by ``"<secret>"``: what to
        log, print or serve (a ``/config`` route). Readers that need the value use the snapshot."""
        roots = self._secrets()
        if not roots:
            return self.to_dict()

        def copy(value: Any, path: str) -> Any:
            if path in roots:
                return SECRET
            if isinstance(value, Mapping):
                return {key: copy(child, f"{path}.{key}" if path else key) for key, child in value.items()}
            if isinstance(value, tuple):
                return [copy(child, f"{path}.{i}") for i, child in enumerate(value)]
            return value

        return {key: copy(value, key) for key, value in dict.items(self)}

    def _secrets(self) -> frozenset[str]:
        """The topmost secret paths (everything below one is secret too)."""
        roots = self._secret_roots
        if roots is None:
            found: set[str] = set()
            probe = self._secret_probe
            if probe is not None:
                # Parents first, so that nothing below a secret map is asked about.
                for path in sorted(self._paths, key=lambda p: p.count(".")):
                    if path and not _under(path, found) and probe(path):
                        found.add(path)
            roots = frozenset(found)
            object.__setattr__(self, "_secret_roots", roots)
        return roots

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"a confcast Snapshot is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"a confcast Snapshot is immutable (cannot delete {name!r})")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Snapshot):
            return self.version == other.version and self.sha256 == other.sha256 and dict.__eq__(self, other)
        return dict.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __copy__(self) -> "Snapshot":
        return self

    def __deepcopy__(self, memo: dict) -> "Snapshot":
        return self

    def __reduce__(self):
        return (Snapshot, (self.to_dict(), self.version, self.sha256))

    def __repr__(self) -> str:
        return f"<confcast.Snapshot version={self.version} sha256={self.sha256[:12]} keys={sorted(self)}>"
