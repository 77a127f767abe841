"""The Python header mapping and the C handle always read the same file: one open of the
segment serves both, a name that now stands for another file is followed by wait() (and
so by on_change), and info() ages the heartbeat on the monotonic clock (layout 2)."""

from __future__ import annotations

import os
import shutil
import time

import confcast
from cc_helpers import Publisher, holmes_config, remove_segment, unique_segment, wait_until


def inodes_mapped_from(path: str) -> set[int]:
    """Inodes of this process's mappings of ``path`` (also once the name was replaced: "(deleted)")."""
    found = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(None, 5)
            if len(fields) == 6 and fields[5].strip().removesuffix(" (deleted)") == path:
                found.add(int(fields[4]))
    return found


def c_version(subscriber) -> int:
    return subscriber._lib.version(subscriber._handle)


def test_a_name_replaced_while_opening_cannot_split_the_mapping_from_the_handle(subscriber, publisher,
                                                                                 configmap, monkeypatch):
    path = f"/dev/shm/{publisher.segment}"
    other = unique_segment()
    try:
        shutil.copyfile(path, f"/dev/shm/{other}")  # a segment file still at version 1
        os.chmod(f"/dev/shm/{other}", 0o640)
        configmap.update(holmes_config("gpt-5"))
        assert subscriber.wait(1, timeout=10) == 2
        original = os.stat(path).st_ino
        lib = confcast._native.library()
        real_open = lib.open

        def open_then_replace_the_name(*args):
            status = real_open(*args)
            if os.path.exists(f"/dev/shm/{other}"):
                os.rename(f"/dev/shm/{other}", path)  # the name moves on right after the C open
            return status

        monkeypatch.setattr(lib, "open", open_then_replace_the_name)
        sub = confcast.Subscriber(publisher.segment)
        monkeypatch.setattr(lib, "open", real_open)
        try:
            assert os.stat(path).st_ino != original  # the race did happen
            assert sub.version == c_version(sub) == 2
            assert sub.snapshot()["llm"]["model"] == sub.get_str("llm.model") == "gpt-5"
            # Every mapping of that name in this process (ours and the fixture's) is of the file the
            # C handles opened, none of the file the name stands for now.
            mapped = inodes_mapped_from(path)
            assert mapped == {original}, f"mapped inodes {mapped}, the C handle's file is {original}"
        finally:
            sub.close()
    finally:
        remove_segment(other)


def test_a_segment_deleted_and_created_anew_is_followed(publisher_binary, configmap, segment, tmp_path):
    first = Publisher(publisher_binary, configmap.path, segment, tmp_path / "first.log").start()
    second = None
    try:
        first.wait_published()
        configmap.update(holmes_config("gpt-5"))
        sub = confcast.Subscriber(segment)
        try:
            wait_until(lambda: sub.snapshot().version == 2, 10, "version 2 of the first segment")
            seen = []
            sub.on_change(seen.append)
            first.stop()
            remove_segment(segment)
            configmap.update(holmes_config("gpt-6"))
            second = Publisher(publisher_binary, configmap.path, segment, tmp_path / "second.log").start()
            second.wait_published()
            # The new segment starts again at version 1, below what the subscriber saw: still a change.
            wait_until(lambda: seen and seen[-1]["llm"]["model"] == "gpt-6", 10,
                       "on_change to report the segment created anew")
            path = f"/dev/shm/{segment}"
            assert os.fstat(sub._seg.fd).st_ino == os.stat(path).st_ino
            assert sub.version == c_version(sub) == 1
            assert sub.snapshot()["llm"]["model"] == sub.get_str("llm.model") == "gpt-6"
            assert os.stat(path).st_ino in inodes_mapped_from(path)
            # And it goes on following publishes there.
            configmap.update(holmes_config("gpt-7"))
            assert sub.wait(1, timeout=10) == 2
            wait_until(lambda: seen[-1]["llm"]["model"] == "gpt-7", 10, "on_change for version 2 of the new segment")
        finally:
            sub.close()
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_heartbeat_age_is_measured_on_the_monotonic_clock(publisher):
    # A copy of the segment with a heartbeat written by hand: 3 s ago on CLOCK_MONOTONIC, while
    # the wall-clock heartbeat says an hour ago (as after a step of the wall clock).
    name = unique_segment()
    path = f"/dev/shm/{name}"
    try:
        shutil.copyfile(f"/dev/shm/{publisher.segment}", path)
        os.chmod(path, 0o640)
        mono = time.clock_gettime_ns(time.CLOCK_MONOTONIC) - 3_000_000_000
        wall = time.time_ns() - 3600 * 1_000_000_000
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, wall.to_bytes(8, "little", signed=True), 136)
            os.pwrite(fd, mono.to_bytes(8, "little", signed=True), 152)
        finally:
            os.close(fd)
        with confcast.Subscriber(name) as sub:
            info = sub.info()
        assert info["heartbeat_unix_ns"] == wall  # still there, for display
        assert 3.0 <= info["heartbeat_age_seconds"] < 13.0, info
    finally:
        remove_segment(name)


def test_the_layout_version_is_2():
    from confcast import _version_word

    assert _version_word.LAYOUT_VERSION == 2
    assert _version_word.HEARTBEAT_MONO_INDEX * 8 == 152
