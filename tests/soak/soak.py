#!/usr/bin/python3
"""soak.py - a long run of confcast under abuse, checking what workers rely on.

For a given time: a publisher republishes a config that changes every few
milliseconds; N reader processes read it through libconfcast (ctypes, the C
ABI the Python workers use) and check every value; the publisher is SIGKILLed
at random moments (and now and then stopped with SIGTERM or told to reload
with SIGHUP) and restarted at once; bad configs are mixed into the stream.

Invariants (any violation makes the exit status 1):
  * a read never mixes two versions (torn reads: 0): every field of a config
    is derived from one counter n, and two reads of one version agree;
  * versions only grow, and a newer version never carries an older n;
  * no call takes longer than a second, and every bounded Wait returns on
    time (hangs: 0);
  * a bad config is never served (each carries n = -1);
  * every restart comes up and the last one catches up with the file.

Usage:
  /usr/bin/python3 tests/soak/soak.py [--seconds 120] [--readers 4]
      [--build-dir build-rel] [--publisher PATH] [--library PATH]
      [--kill-every-ms 40:400] [--json]

Runs as any user; creates one /dev/shm segment (confcast-soak-*) and a temporary
directory, both removed at the end.
"""
import argparse
import ctypes
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))  # tests/: confcast_pytest_support, which finds the confcast package
from confcast_pytest_support import Publisher, remove_segment, unique_segment  # noqa: E402
from confcast._native import Info, Library  # noqa: E402

OK, ERR_NO_SEGMENT, ERR_INCOMPATIBLE, ERR_CORRUPT, ERR_EMPTY = 0, -1, -2, -3, -4
ERR_TRUNCATED, ERR_TIMEOUT = -7, -10
HANG_SECONDS = 1.0


def good_config(n):
    return (f"llm:\n  model: m-{n}\n  max_retries: {n % 11}\n"
            f"fault:\n  n: {n}\n  m: {n}\n  s: \"n={n}\"\n  list: [{n}, {n + 1}, {n + 2}]\n")


# Bad configs, each of another kind; every one says n = -1, so serving one
# would show up in the readers.
BAD_TAIL = "fault:\n  n: -1\n  m: -1\n  s: \"n=-1\"\n  list: [-1, 0, 1]\n"
BAD_CONFIGS = [
    ("wrong type", "llm:\n  max_retries: three\n" + BAD_TAIL),
    ("out of range", "llm:\n  temperature: 9.5\n" + BAD_TAIL),
    ("bad log_level", "log_level: loud\n" + BAD_TAIL),
    ("endpoint not http", "llm:\n  endpoint: ftp://x\n" + BAD_TAIL),
    ("duplicate key", "llm:\n  model: a\n  model: b\n" + BAD_TAIL),
    ("two documents", BAD_TAIL + "---\nllm: {}\n"),
    ("syntax error", "llm: [unterminated\n" + BAD_TAIL),
    ("top-level list", "- " + BAD_TAIL.replace("\n", "\n  ")),
    ("empty file", ""),
    ("binary", "\x7fELF\x02\x01\x01\x00" + BAD_TAIL),
    ("toolset not a map", "toolsets:\n  k: 5\n" + BAD_TAIL),
    ("alias bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(7)) + BAD_TAIL),
]


def load_library(path):
    """libconfcast with every prototype declared (the package's own declarations)."""
    return Library(ctypes.CDLL(path, use_errno=True), path)


def reader(library, segment, stop, results, index):
    """One reader process: read and check until told to stop."""
    lib = load_library(library)
    stats = dict(reads=0, torn=0, backwards=0, hangs=0, bad_served=0, waits=0, versions=0,
                 max_op_ms=0.0, problems=[])
    sub = ctypes.c_void_p()
    last_version, last_n = 0, None
    buf = ctypes.create_string_buffer(64 * 1024)
    size = ctypes.c_size_t()
    version = ctypes.c_uint64()
    v1, v2 = ctypes.c_uint64(), ctypes.c_uint64()
    i1, i2 = ctypes.c_int64(), ctypes.c_int64()

    def problem(kind, text):
        stats[kind] += 1
        if len(stats["problems"]) < 5:
            stats["problems"].append(f"{kind}: {text}")

    def timed(start):
        took = time.monotonic() - start
        stats["max_op_ms"] = max(stats["max_op_ms"], took * 1000)
        if took > HANG_SECONDS:
            problem("hangs", f"a call took {took:.3f} s")

    def seen(ver, n):
        nonlocal last_version, last_n
        if n == -1:
            problem("bad_served", f"version {ver} is a bad config")
        if ver < last_version:
            problem("backwards", f"version {ver} after {last_version}")
        elif ver == last_version and n != last_n:
            problem("torn", f"version {ver} has n {n} and {last_n}")
        elif ver > last_version:
            if last_n is not None and n < last_n:
                problem("backwards", f"n {n} after {last_n}")
            stats["versions"] += 1
            last_version, last_n = ver, n

    while not sub and not stop.is_set():
        if lib.open(segment.encode(), ctypes.byref(sub)) != OK:
            sub = ctypes.c_void_p()
            time.sleep(0.002)
    iteration = 0
    while not stop.is_set():
        iteration += 1
        start = time.monotonic()
        rc = lib.snapshot_json(sub, buf, len(buf), ctypes.byref(size), ctypes.byref(version))
        timed(start)
        if rc == ERR_EMPTY:
            continue
        if rc != OK:
            problem("torn", f"snapshot_json rc {rc}")
            continue
        config = json.loads(buf.raw[:size.value])
        f = config.get("fault", {})
        n = f.get("n")
        if (f.get("m") != n or f.get("s") != f"n={n}" or f.get("list") != [n, n + 1, n + 2]
                or config["llm"]["max_retries"] != n % 11 or config["llm"]["model"] != f"m-{n}"):
            problem("torn", f"inconsistent snapshot {json.dumps(config)[:200]}")
        seen(version.value, n)
        stats["reads"] += 1

        start = time.monotonic()
        r1 = lib.get_int(sub, b"fault.n", ctypes.byref(i1), ctypes.byref(v1))
        r2 = lib.get_int(sub, b"fault.m", ctypes.byref(i2), ctypes.byref(v2))
        timed(start)
        if r1 != OK or r2 != OK:
            problem("torn", f"get_int rc {r1} {r2}")
        else:
            if v1.value == v2.value and i1.value != i2.value:
                problem("torn", f"version {v1.value}: n {i1.value} but m {i2.value}")
            seen(v1.value, i1.value)
            stats["reads"] += 2

        if iteration % 50 == 0:
            start = time.monotonic()
            rc = lib.wait(sub, lib.version(sub), 30, ctypes.byref(version))
            timed(start)
            stats["waits"] += 1
            if rc not in (OK, ERR_TIMEOUT):
                problem("torn", f"wait rc {rc}")
    lib.close(sub)
    results.put((index, stats))


def replace(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(text)
    os.rename(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--build-dir", default=os.path.join(REPO, "build-rel"))
    parser.add_argument("--publisher")
    parser.add_argument("--library")
    parser.add_argument("--kill-every-ms", default="40:400", help="MIN:MAX between two faults")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON too")
    args = parser.parse_args()
    publisher_bin = args.publisher or os.path.join(args.build_dir, "publisher", "confcast-publisher")
    library = args.library or os.path.join(args.build_dir, "subscriber", "libconfcast.so")
    fault_min, fault_max = (int(x) for x in args.kill_every_ms.split(":"))

    workdir = tempfile.mkdtemp(prefix="confcast-soak-")
    config = os.path.join(workdir, "config.yaml")
    segment = unique_segment("soak")
    n = 1
    replace(config, good_config(n))

    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    results = ctx.Queue()
    readers = [ctx.Process(target=reader, args=(library, segment, stop, results, i)) for i in range(args.readers)]
    for r in readers:
        r.start()

    lib = load_library(library)
    pub = Publisher(publisher_bin, config, segment, os.path.join(workdir, "publisher.log"),
                    "--poll-seconds", "1", "--log-level", "error", debounce_ms=0)
    totals = dict(kills=0, terms=0, hups=0, bad_written=0, good_written=1, restarts=0, publisher_failures=0)
    bad_kinds = set()
    failures = []
    started = time.monotonic()
    deadline = started + args.seconds
    watch = ctypes.c_void_p()
    info = Info()

    def stop_publisher(sig):
        """pub.stop; a publisher that ignores the signal is a failure of the soak, not its end."""
        try:
            return pub.stop(sig)
        except AssertionError as error:
            failures.append(str(error).splitlines()[0])
            return None

    def publisher_up():
        """Whether the running publisher has taken over the segment (its pid is in it)."""
        nonlocal watch
        if not watch and lib.open(segment.encode(), ctypes.byref(watch)) != OK:
            watch = ctypes.c_void_p()
            return False
        return lib.info_get(watch, ctypes.byref(info)) == OK and info.publisher_pid == pub.process.pid

    pub.start()
    next_fault = time.monotonic() + random.uniform(fault_min, fault_max) / 1000
    try:
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_fault:
                roll = random.random()
                stopped = False
                if pub.process.poll() is not None:
                    code = pub.process.returncode
                    totals["publisher_failures"] += 1
                    failures.append(f"publisher exited {code} by itself")
                elif roll < 0.70:
                    stop_publisher(signal.SIGKILL)
                    totals["kills"] += 1
                    stopped = True
                elif roll < 0.78 and publisher_up():
                    # A clean stop of a running publisher (one still starting
                    # has not blocked SIGTERM yet, and dies of it).
                    code = stop_publisher(signal.SIGTERM)
                    totals["terms"] += 1
                    stopped = True
                    if code != 0:
                        failures.append(f"SIGTERM: publisher exited {code}")
                elif publisher_up():
                    pub.signal(signal.SIGHUP)
                    totals["hups"] += 1
                if stopped or pub.process.poll() is not None:
                    pub.start()
                    totals["restarts"] += 1
                next_fault = now + random.uniform(fault_min, fault_max) / 1000
            if random.random() < 0.05:
                kind, text = random.choice(BAD_CONFIGS)
                replace(config, text)
                bad_kinds.add(kind)
                totals["bad_written"] += 1
                time.sleep(0.01)  # give it a moment on stage before the next good one
            n += 1
            replace(config, good_config(n))
            totals["good_written"] += 1
            time.sleep(0.003)

        # The last publisher catches up with the last good file.
        if pub.process.poll() is not None:
            pub.start()
        sub = ctypes.c_void_p()
        caught_up = False
        value = ctypes.c_int64()
        end = time.monotonic() + 15
        while time.monotonic() < end and not caught_up:
            if not sub and lib.open(segment.encode(), ctypes.byref(sub)) != OK:
                sub = ctypes.c_void_p()
            elif sub and lib.get_int(sub, b"fault.n", ctypes.byref(value), None) == OK:
                caught_up = value.value == n
            if not caught_up:
                time.sleep(0.005)
        if not caught_up:
            failures.append(f"the last publisher did not publish n={n} within 15 s")
        final_version = lib.version(sub) if sub else 0
        if sub:
            lib.close(sub)
        if watch:
            lib.close(watch)
        code = stop_publisher(signal.SIGTERM)
        if code != 0:
            failures.append(f"final SIGTERM: publisher exited {code}")
    finally:
        stop.set()
        if pub.process and pub.process.poll() is None:
            pub.process.kill()
            pub.process.wait()

    per_reader = {}
    for _ in readers:
        try:
            index, stats = results.get(timeout=10)
            per_reader[index] = stats
        except Exception:  # noqa: BLE001 - a reader that never reports hangs
            break
    hung_readers = 0
    for r in readers:
        r.join(timeout=10)
        if r.is_alive():
            hung_readers += 1
            r.kill()
            r.join()
    elapsed = time.monotonic() - started
    remove_segment(segment)

    def total(key):
        return sum(s[key] for s in per_reader.values())

    summary = dict(
        seconds=round(elapsed, 1), readers=args.readers, reads_checked=total("reads"), waits=total("waits"),
        final_version=final_version, versions_seen_by_a_reader=max((s["versions"] for s in per_reader.values()),
                                                                   default=0),
        sigkills=totals["kills"], sigterms=totals["terms"], sighups=totals["hups"], restarts=totals["restarts"],
        good_configs_written=totals["good_written"], bad_configs_written=totals["bad_written"],
        bad_config_kinds=len(bad_kinds), bad_served=total("bad_served"), torn_reads=total("torn"),
        versions_backwards=total("backwards"), hangs=total("hangs") + hung_readers + (args.readers - len(per_reader)),
        slowest_call_ms=round(max((s["max_op_ms"] for s in per_reader.values()), default=0), 3),
        publisher_failures=totals["publisher_failures"])
    print(f"soak: {summary['seconds']} s, {args.readers} reader processes (libconfcast via ctypes)")
    print(f"  reads checked:        {summary['reads_checked']:,} (+ {summary['waits']:,} bounded waits)")
    print(f"  versions published:   final version {final_version:,}; "
          f"one reader saw {summary['versions_seen_by_a_reader']:,} of them")
    print(f"  publisher faults:     {totals['kills']:,} SIGKILL, {totals['terms']:,} SIGTERM, "
          f"{totals['hups']:,} SIGHUP; {totals['restarts']:,} restarts")
    print(f"  configs written:      {totals['good_written']:,} good, {totals['bad_written']:,} bad "
          f"({len(bad_kinds)} kinds); bad ones served: {summary['bad_served']}")
    print(f"  torn reads:           {summary['torn_reads']}")
    print(f"  versions backwards:   {summary['versions_backwards']}")
    print(f"  hangs:                {summary['hangs']} (slowest call {summary['slowest_call_ms']} ms)")
    problems = [p for s in per_reader.values() for p in s["problems"]] + failures
    for p in problems[:10]:
        print(f"  problem: {p}")
    if args.json:
        print(json.dumps(summary))
    bad = (summary["torn_reads"] or summary["versions_backwards"] or summary["hangs"] or summary["bad_served"]
           or failures or summary["reads_checked"] == 0)
    if not bad:
        subprocess.run(["rm", "-rf", workdir], check=False)
    else:
        print(f"soak: FAILED (publisher log kept in {workdir})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
