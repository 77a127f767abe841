"""Readers refuse a segment that group or others can write, or whose owner is not root, the
reader's own uid or $CONFCAST_SEGMENT_OWNER - also when following a replacement - with a
message naming the file, the owner and the mode. Copies of a real segment stand in for
tampered ones; tests needing other users run the reader in a fork()ed child that drops to
uid 1 (daemon), and skip when not run as root."""

from __future__ import annotations

import os
import shutil

import pytest

import confcast
from cc_helpers import remove_segment, unique_segment
from forked import ForkedChild

NOBODY = 65534
DAEMON = 1
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown a segment and to switch users")


@pytest.fixture
def copy_of_segment(publisher):
    """make(mode, owner=None) -> a new segment name holding a copy of the published segment."""
    made = []

    def make(mode: int, owner: int | None = None) -> str:
        name = unique_segment()
        made.append(name)
        path = f"/dev/shm/{name}"
        shutil.copyfile(f"/dev/shm/{publisher.segment}", path)
        if owner is not None:
            os.chown(path, owner, -1)
        os.chmod(path, mode)
        return name

    yield make
    for name in made:
        remove_segment(name)


def read_as(uid: int, segment: str, owner_variable: str | None = None) -> dict:
    """Opens ``segment`` in a child running as ``uid``; what happened."""

    def child(report, command):
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if owner_variable is None:
            os.environ.pop("CONFCAST_SEGMENT_OWNER", None)
        else:
            os.environ["CONFCAST_SEGMENT_OWNER"] = owner_variable
        try:
            with confcast.Subscriber(segment) as sub:
                report(version=sub.snapshot().version)
        except confcast.ConfcastError as exc:
            report(kind=type(exc).__name__, message=str(exc),
                   permission_error=isinstance(exc, PermissionError))

    forked = ForkedChild(child)
    try:
        return forked.next_report(10, f"opening {segment} as uid {uid}")
    finally:
        forked.finish()


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602], ids=lambda mode: f"{mode:04o}")
def test_a_segment_others_can_write_is_refused(copy_of_segment, monkeypatch, mode):
    monkeypatch.delenv("CONFCAST_SEGMENT_OWNER", raising=False)
    name = copy_of_segment(mode)
    with pytest.raises(confcast.PermissionDenied) as err:
        confcast.Subscriber(name)
    assert isinstance(err.value, PermissionError) and isinstance(err.value, confcast.ConfcastError)
    message = str(err.value)
    assert message.startswith(f"bad ownership or modes for confcast segment /dev/shm/{name}: owned by uid "), message
    assert f"mode {mode:04o};" in message
    assert "no group or other user can write it" in message and "$CONFCAST_SEGMENT_OWNER" in message
    # Trusting the owner does not make a writable segment acceptable.
    monkeypatch.setenv("CONFCAST_SEGMENT_OWNER", str(os.geteuid()))
    with pytest.raises(confcast.PermissionDenied):
        confcast.Subscriber(name)


@needs_root
def test_a_foreign_owned_segment_is_refused_unless_named_in_the_environment(copy_of_segment, monkeypatch):
    monkeypatch.delenv("CONFCAST_SEGMENT_OWNER", raising=False)
    name = copy_of_segment(0o644, owner=NOBODY)
    with pytest.raises(confcast.PermissionDenied) as err:
        confcast.Subscriber(name)
    assert str(err.value) == (
        f"bad ownership or modes for confcast segment /dev/shm/{name}: owned by uid {NOBODY} (nobody), mode 0644; "
        "readers accept a segment only if no group or other user can write it and it is owned by root, "
        "uid 0 (this process's user) or $CONFCAST_SEGMENT_OWNER (not set)")
    monkeypatch.setenv("CONFCAST_SEGMENT_OWNER", str(NOBODY))
    with confcast.Subscriber(name) as sub:
        assert sub.snapshot()["llm"]["model"] == "gpt-4o"


@needs_root
def test_another_user_trusts_root_itself_and_the_named_owner_only(copy_of_segment):
    foreign = copy_of_segment(0o644, owner=NOBODY)
    refused = read_as(DAEMON, foreign)
    assert refused["kind"] == "PermissionDenied" and refused["permission_error"], refused
    assert f"owned by uid {NOBODY} (nobody), mode 0644" in refused["message"]
    assert f"uid {DAEMON} (this process's user)" in refused["message"]
    assert read_as(DAEMON, foreign, owner_variable=str(NOBODY)) == {"version": 1}
    assert read_as(DAEMON, copy_of_segment(0o644, owner=DAEMON)) == {"version": 1}
    assert read_as(DAEMON, copy_of_segment(0o644, owner=0)) == {"version": 1}


def test_a_non_numeric_owner_variable_is_a_clear_error(copy_of_segment, monkeypatch):
    name = copy_of_segment(0o640)
    monkeypatch.setenv("CONFCAST_SEGMENT_OWNER", "nobody")
    with pytest.raises(confcast.InvalidArgument) as err:
        confcast.Subscriber(name)
    assert "$CONFCAST_SEGMENT_OWNER='nobody' is not a numeric uid" in str(err.value)
    # Read as the C library reads it: a uid with spaces around it is not a uid either.
    monkeypatch.setenv("CONFCAST_SEGMENT_OWNER", f" {os.geteuid()} ")
    with pytest.raises(confcast.InvalidArgument) as err:
        confcast.Subscriber(name)
    assert "is not a numeric uid" in str(err.value)


def test_following_a_replacement_applies_the_same_rules(subscriber, publisher, copy_of_segment):
    # A file another user could have written, renamed over the name, is not followed.
    untrusted = copy_of_segment(0o666)
    os.rename(f"/dev/shm/{untrusted}", f"/dev/shm/{publisher.segment}")
    with pytest.raises(confcast.PermissionDenied) as err:
        subscriber.wait(subscriber.version, timeout=5)
    assert f"/dev/shm/{publisher.segment}" in str(err.value) and "mode 0666" in str(err.value)
