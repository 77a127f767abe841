#!/usr/bin/python3
"""What the HolmesGPT API's config reads cost in Python: confcast against the design it replaces.

The baseline is the original per-worker design: every worker parses the
YAML into a dict and each getter takes a threading.RLock around it
(``OriginalConfigManager`` below). Everything runs in one process on the
same config (bench/data/holmesgpt_config.yaml), timed the same way.

One request's 8 reads (each timed as one call of a request function):

  original_rlock_8_getters           the original design's 8 getters
  confcast_config_manager_8_getters  confcast.ConfigManager, the drop-in: same 8 method names
  confcast_pinned_snapshot_8_reads   snap = subscriber.snapshot() once (what confcast.asgi does per
                                     request), then 8 snap.get("llm.model") ..., as the demo app reads
  confcast_pinned_snapshot_8_items   the same, indexing: llm = snap["llm"]; llm["model"] ...
  confcast_subscriber_get_8          subscriber.get(path) 8 times (toolsets comes back as a copy)

One value (each timed as a statement, so no wrapper call is counted on either side):

  original_rlock_1_getter            original.get_llm_model()
  confcast_config_manager_1_getter   cm.get_llm_model()
  confcast_subscriber_get_1          sub.get("llm.model")
  confcast_snapshot_item_1           sub.snapshot()["llm"]["model"]
  timeit_empty_statement             "pass": the timing loop's own cost, in every one-value row

The worker ledger (each timed as a statement, like one value):

  confcast_pin_hold_release          "with sub.pin(): pass": the snapshot, a hold and its release in
                                     the worker ledger (what the ASGI middleware adds per request);
                                     pin() in C (confcast._pin) when the build made it
  confcast_pin_pure_python           the same through a subscriber whose pin() is the package's
                                     pure-Python one (its fallback), so both rows make the same calls

The ratios with a target (``RATIOS``; bench/report.py turns them into goals):
ConfigManager's 8 getters <= 0.5 x the original's 8; sub.get("llm.model")
<= 0.5 x one original getter; the cheapest idiomatic one-value read (a
ConfigManager getter or sub.snapshot()["llm"]["model"]) <= 0.4 x one
original getter; a pinned snapshot's 8 reads <= 0.2 x the original's 8.

Each variant is timed with timeit (the same number of calls per repeat for
all, the repeats of all variants interleaved), and the median of the repeats
is reported in ns per call (a request of 8 reads, or one read).

    /usr/bin/python3 bench/python_config_access.py --publisher BUILD/publisher/confcast-publisher \
        --library BUILD/subscriber/libconfcast.so [--json OUT] [--smoke]

It starts the real publisher on a unique segment and stops it (and removes
the segment) at the end, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import timeit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONFIG = os.path.join(HERE, "data", "holmesgpt_config.yaml")


class OriginalConfigManager:
    """The per-worker config holder of the HolmesGPT API plan (the baseline).

    The worker's own file watcher replaces ``_config`` under the lock on a
    reload; every getter takes the lock and reads the dict.
    """

    def __init__(self, config: dict) -> None:
        self._lock = threading.RLock()
        self._config = config

    def _apply(self, config: dict) -> None:
        with self._lock:
            self._config = config

    def get_llm_model(self) -> str:
        with self._lock:
            return self._config.get("llm", {}).get("model", "gpt-4o")

    def get_llm_provider(self) -> str:
        with self._lock:
            return self._config.get("llm", {}).get("provider", "openai")

    def get_llm_endpoint(self) -> str | None:
        with self._lock:
            return self._config.get("llm", {}).get("endpoint")

    def get_llm_max_retries(self) -> int:
        with self._lock:
            return self._config.get("llm", {}).get("max_retries", 3)

    def get_llm_timeout(self) -> int:
        with self._lock:
            return self._config.get("llm", {}).get("timeout_seconds", 60)

    def get_llm_temperature(self) -> float:
        with self._lock:
            return self._config.get("llm", {}).get("temperature", 0.0)

    def get_toolsets(self) -> dict:
        with self._lock:
            return self._config.get("toolsets", {})

    def get_log_level(self) -> str:
        with self._lock:
            return self._config.get("log_level", "INFO")


PATHS = ("llm.model", "llm.provider", "llm.endpoint", "llm.max_retries", "llm.timeout_seconds",
         "llm.temperature", "toolsets", "log_level")


def eight_getters(cm):
    """One request's reads through getters (the original class or confcast's ConfigManager)."""
    def request():
        return (cm.get_llm_model(), cm.get_llm_provider(), cm.get_llm_endpoint(), cm.get_llm_max_retries(),
                cm.get_llm_timeout(), cm.get_llm_temperature(), cm.get_toolsets(), cm.get_log_level())
    return request


def pinned_snapshot(sub):
    def request():
        snap = sub.snapshot()
        return (snap.get("llm.model"), snap.get("llm.provider"), snap.get("llm.endpoint"),
                snap.get("llm.max_retries"), snap.get("llm.timeout_seconds"), snap.get("llm.temperature"),
                snap.get("toolsets"), snap.get("log_level"))
    return request


def pinned_snapshot_items(sub):
    def request():
        snap = sub.snapshot()
        llm = snap["llm"]
        return (llm["model"], llm["provider"], llm["endpoint"], llm["max_retries"], llm["timeout_seconds"],
                llm["temperature"], snap["toolsets"], snap["log_level"])
    return request


def subscriber_get(sub):
    def request():
        return (sub.get("llm.model"), sub.get("llm.provider"), sub.get("llm.endpoint"), sub.get("llm.max_retries"),
                sub.get("llm.timeout_seconds"), sub.get("llm.temperature"), sub.get("toolsets"),
                sub.get("log_level"))
    return request


# One value, as statements over these names (see one_value_statements()).
ONE_VALUE = {
    "original_rlock_1_getter": "original.get_llm_model()",
    "confcast_config_manager_1_getter": "cm.get_llm_model()",
    "confcast_subscriber_get_1": "sub.get('llm.model')",
    "confcast_snapshot_item_1": "sub.snapshot()['llm']['model']",
    "timeit_empty_statement": "pass",
}

# The worker ledger's cost per request, as statements over the same names (no answer to check).
LEDGER = {
    "confcast_pin_hold_release": "with sub.pin():\n    pass",
    "confcast_pin_pure_python": "with pysub.pin():\n    pass",
}

# (name, numerator, denominator or None, target, what): a ratio of medians from one run. A
# numerator that is a tuple is "the cheapest of these" (the one-value read may be either idiom).
RATIOS = [
    ("config_manager_8_getters_over_original_8", "confcast_config_manager_8_getters", "original_rlock_8_getters",
     0.5, "ConfigManager's 8 getters / the original's 8 RLock getters"),
    ("subscriber_get_over_original_1", "confcast_subscriber_get_1", "original_rlock_1_getter",
     0.5, 'sub.get("llm.model") / one original getter'),
    ("one_read_over_original_1", ("confcast_config_manager_1_getter", "confcast_snapshot_item_1"),
     "original_rlock_1_getter", 0.4,
     'cheapest one-value read (cm.get_llm_model() or sub.snapshot()["llm"]["model"]) / one original getter'),
    ("snapshot_item_over_original_1", "confcast_snapshot_item_1", "original_rlock_1_getter",
     None, 'sub.snapshot()["llm"]["model"] / one original getter'),
    ("pinned_over_original", "confcast_pinned_snapshot_8_reads", "original_rlock_8_getters",
     0.2, "pinned snapshot + 8 reads / the original's 8 RLock getters"),
]


def ratios(results: dict) -> dict:
    out = {}
    for name, numerator, denominator, target, what in RATIOS:
        candidates = numerator if isinstance(numerator, tuple) else (numerator,)
        chosen = min(candidates, key=lambda n: results[n]["ns_per_request"])
        ratio = results[chosen]["ns_per_request"] / results[denominator]["ns_per_request"]
        out[name] = {"ratio": ratio, "target": target, "what": what, "numerator": chosen,
                     "denominator": denominator, "numerator_ns": results[chosen]["ns_per_request"],
                     "denominator_ns": results[denominator]["ns_per_request"]}
    return out


def time_all(variants: dict, number: int, repeat: int, names: dict | None = None) -> dict:
    """ns per call of each variant: the median (and min) of `repeat` runs of `number` calls.

    A variant is a callable, or a statement string evaluated over ``names``.
    The repeats are interleaved (one run of every variant, then the next
    round), so a load that comes and goes on the machine hits all alike.
    """
    timers = {name: timeit.Timer(v, globals=names) if isinstance(v, str) else timeit.Timer(v)
              for name, v in variants.items()}
    for timer in timers.values():
        timer.timeit(1)  # warm (the first snapshot() of a version builds it)
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, timer in timers.items():
            runs[name].append(timer.timeit(number) / number * 1e9)
    return {name: {"ns_per_request": statistics.median(r), "min_ns_per_request": min(r),
                   "ns_per_read": statistics.median(r) / (1 if name in ONE_VALUE or name in LEDGER else 8),
                   "repeats_ns": r}
            for name, r in runs.items()}


def start_publisher(publisher: str, segment: str, workdir: str) -> subprocess.Popen:
    config = os.path.join(workdir, "config.yaml")
    shutil.copyfile(CONFIG, config)
    log = open(os.path.join(workdir, "publisher.log"), "wb")
    return subprocess.Popen([publisher, "--config", config, "--segment", segment, "--metrics-address", "none",
                             "--poll-seconds", "0", "--log-level", "warning"],
                            stdout=log, stderr=subprocess.STDOUT)


def stop_publisher(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--publisher", required=True)
    ap.add_argument("--library", help="libconfcast.so (sets CONFCAST_LIBRARY)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--number", type=int, default=20000, help="requests per repeat")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--smoke", action="store_true", help="a brief run (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.number, args.repeat = 200, 2
    if args.library:
        os.environ["CONFCAST_LIBRARY"] = os.path.abspath(args.library)
    sys.path.insert(0, os.path.join(ROOT, "subscriber", "python"))
    import confcast  # noqa: E402  (after the path and CONFCAST_LIBRARY are set)

    segment = f"confcast-bench-py-{os.getpid()}-{secrets.token_hex(4)}"
    workdir = tempfile.mkdtemp(prefix="confcast-bench-py-")
    proc = start_publisher(args.publisher, segment, workdir)
    cm = None
    try:
        sub = confcast.Subscriber.wait_for_segment(segment, timeout=15)
        cm = confcast.ConfigManager(segment=segment, wait_timeout=15, apply_log_level=False)
        cm.start()
        # The original design's dict holds what its own YAML load produced: the
        # same config (the published one is that file with defaults applied).
        original = OriginalConfigManager(sub.snapshot().to_dict())

        variants = {
            "original_rlock_8_getters": eight_getters(original),
            "confcast_config_manager_8_getters": eight_getters(cm),
            "confcast_pinned_snapshot_8_reads": pinned_snapshot(sub),
            "confcast_pinned_snapshot_8_items": pinned_snapshot_items(sub),
            "confcast_subscriber_get_8": subscriber_get(sub),
        }
        # Same answers everywhere, or the comparison means nothing.
        reference = json.dumps(variants["original_rlock_8_getters"](), sort_keys=True, default=dict)
        for name, fn in variants.items():
            got = json.dumps(fn(), sort_keys=True, default=dict)
            if got != reference:
                raise SystemExit(f"{name} reads {got}, the original design {reference}")

        from confcast.subscriber import Pin as PythonPin  # noqa: E402
        pysub = confcast.Subscriber(segment)
        pysub._pin_type = PythonPin
        names = {"original": original, "cm": cm, "sub": sub, "pysub": pysub}
        pin_implementation = type(sub.pin()).__module__
        for name, statement in ONE_VALUE.items():
            if statement != "pass" and eval(statement, names) != "gpt-4o":
                raise SystemExit(f"{name} ({statement}) does not read llm.model")
        variants.update(ONE_VALUE)
        variants.update(LEDGER)
        results = time_all(variants, args.number, args.repeat, names)
        for name, r in results.items():
            if name in ONE_VALUE or name in LEDGER:
                statement = {**ONE_VALUE, **LEDGER}[name].replace("\n   ", "")
                print(f"{name:36s} {r['ns_per_request']:9.1f} ns per call      ({statement})", flush=True)
            else:
                print(f"{name:36s} {r['ns_per_request']:9.0f} ns per request ({r['ns_per_read']:6.1f} ns per read)",
                      flush=True)
        measured = ratios(results)
        for r in measured.values():
            target = "" if r["target"] is None else f" (target <= {r['target']:g})"
            print(f"{r['what']}: {r['numerator_ns']:.0f} / {r['denominator_ns']:.0f} ns = {r['ratio']:.3f}{target}")
        out = {"python": {"executable": sys.executable, "version": sys.version.split()[0],
                          "number": args.number, "repeat": args.repeat, "statistic": "median of repeats",
                          "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
                          "one_value_statements": ONE_VALUE, "ledger_statements": LEDGER,
                          "pin_implementation": pin_implementation, "results": results, "ratios": measured,
                          "pinned_over_original": measured["pinned_over_original"]["ratio"]}}
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=2)
                f.write("\n")
    finally:
        if cm is not None:
            cm.stop()
        stop_publisher(proc)
        for leftover in (segment, segment + ".confcast-lock"):  # the publisher keeps its lock beside the segment
            try:
                os.unlink(f"/dev/shm/{leftover}")
            except FileNotFoundError:
                pass
        shutil.rmtree(f"/dev/shm/{segment}.confcast-ledger", ignore_errors=True)  # and the worker ledger
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
