"""What one request pays for its config: confcast vs the original per-worker ConfigManager.

The original HolmesGPT API ConfigManager kept the parsed YAML in a dict behind
a threading.RLock and had one locked getter per field; a request called ~8 of
them. With confcast a request pins one snapshot (one version check against
the mapped segment) and reads its fields from that immutable object; the
drop-in ConfigManager's getters make that check and return a value computed
once per version (get_toolsets() returns the version's read-only map: no
copy). bench/python_config_access.py is the benchmark with targets; this one
shows the parts.

    PYTHONPATH=subscriber/python CONFCAST_LIBRARY=build/subscriber/libconfcast.so \\
    CONFCAST_PUBLISHER=build/publisher/confcast-publisher \\
      /usr/bin/python3 examples/holmesgpt_api/bench_config_access.py [--segment NAME]

Without --segment it starts its own publisher on a temporary segment with
config.yaml beside this file, and removes both at the end. Prints ns per
request (median of the repeats) for each way of reading.

Threading: single-threaded on purpose - this is the per-request cost, not throughput.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import timeit
import uuid
from pathlib import Path

import confcast
from confcast import _native

HERE = Path(__file__).resolve().parent


class RLockConfigManager:
    """The original design: a dict guarded by an RLock, one locked getter per field."""

    def __init__(self, config: dict) -> None:
        self._lock = threading.RLock()
        self._config = config

    def get_llm_model(self):
        with self._lock:
            return self._config["llm"]["model"]

    def get_llm_provider(self):
        with self._lock:
            return self._config["llm"]["provider"]

    def get_llm_endpoint(self):
        with self._lock:
            return self._config["llm"].get("endpoint")

    def get_llm_max_retries(self):
        with self._lock:
            return self._config["llm"]["max_retries"]

    def get_llm_timeout(self):
        with self._lock:
            return self._config["llm"]["timeout_seconds"]

    def get_llm_temperature(self):
        with self._lock:
            return self._config["llm"]["temperature"]

    def get_toolsets(self):
        with self._lock:
            return dict(self._config["toolsets"])  # a copy, so callers cannot change the shared dict

    def get_log_level(self):
        with self._lock:
            return self._config["log_level"]


def original_request(cm: RLockConfigManager):
    return (cm.get_llm_model(), cm.get_llm_provider(), cm.get_llm_endpoint(), cm.get_llm_max_retries(),
            cm.get_llm_timeout(), cm.get_llm_temperature(), cm.get_toolsets(), cm.get_log_level())


def pinned_request_dotted(sub: confcast.Subscriber):
    snap = sub.snapshot()
    get = snap.get
    return (get("llm.model"), get("llm.provider"), get("llm.endpoint"), get("llm.max_retries"),
            get("llm.timeout_seconds"), get("llm.temperature"), get("toolsets"), get("log_level"))


def pinned_request_items(sub: confcast.Subscriber):
    snap = sub.snapshot()
    llm = snap["llm"]
    return (llm["model"], llm["provider"], llm["endpoint"], llm["max_retries"], llm["timeout_seconds"],
            llm["temperature"], snap["toolsets"], snap["log_level"])


def config_manager_request(cm: confcast.ConfigManager):
    return (cm.get_llm_model(), cm.get_llm_provider(), cm.get_llm_endpoint(), cm.get_llm_max_retries(),
            cm.get_llm_timeout(), cm.get_llm_temperature(), cm.get_toolsets(), cm.get_log_level())


def c_getters_request(sub: confcast.Subscriber):
    return (sub.get_str("llm.model"), sub.get_str("llm.provider"), sub.get_json("llm.endpoint"),
            sub.get_int("llm.max_retries"), sub.get_int("llm.timeout_seconds"), sub.get_float("llm.temperature"),
            sub.get_json("toolsets"), sub.get_str("log_level"))


def measure(fn, repeats: int) -> tuple[float, float]:
    """(best, median) ns per call over ``repeats`` runs of >= 0.2 s each.

    The best run is the cost without interference (timeit's advice); the
    median shows how much a busy machine adds.
    """
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    runs = [run / number * 1e9 for run in timer.repeat(repeat=repeats, number=number)]
    return min(runs), statistics.median(runs)


def start_publisher(segment: str, workdir: Path) -> subprocess.Popen:
    binary = os.environ.get("CONFCAST_PUBLISHER") or shutil.which("confcast-publisher")
    if not binary:
        sys.exit("set $CONFCAST_PUBLISHER (or pass --segment of a running publisher)")
    config = workdir / "config.yaml"
    shutil.copy(HERE / "config.yaml", config)
    process = subprocess.Popen([binary, "--config", str(config), "--segment", segment, "--metrics-address", "none"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        confcast.Subscriber.wait_for_segment(segment, timeout=10).close()
    except confcast.ConfcastError:
        process.kill()
        raise
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segment", help="read this segment (default: start a publisher on a temporary one)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    publisher = None
    workdir = Path(tempfile.mkdtemp(prefix="confcast-bench-"))
    segment = args.segment or f"confcast-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        if not args.segment:
            publisher = start_publisher(segment, workdir)
        sub = confcast.Subscriber(segment)
        cm = confcast.ConfigManager(segment=segment, apply_log_level=False)
        cm.start()
        original = RLockConfigManager(sub.snapshot().to_dict())
        lib = _native.library()
        handle = sub._handle

        cases = [
            ("(the benchmark's own call overhead: an empty lambda)", lambda: None),
            ("original: 8 RLock getters on a dict (toolsets copied)", lambda: original_request(original)),
            ("confcast: pin snapshot + 8 snap.get('a.b')", lambda: pinned_request_dotted(sub)),
            ("confcast: pin snapshot + 8 snap['a']['b']", lambda: pinned_request_items(sub)),
            ("confcast: 8 ConfigManager getters (nothing copied)", lambda: config_manager_request(cm)),
            ("confcast: 8 typed C getters via ctypes", lambda: c_getters_request(sub)),
            ("one value: original get_llm_model() (RLock)", original.get_llm_model),
            ("one value: cm.get_llm_model()", cm.get_llm_model),
            ("one value: sub.get('llm.model')", lambda: sub.get("llm.model")),
            ("one value: sub.snapshot()['llm']['model']", lambda: sub.snapshot()["llm"]["model"]),
            ("  part: sub.snapshot() (version check, cached)", sub.snapshot),
            ("  part: sub.version (mapped word)", lambda: sub.version),
            ("  part: one ctypes call confcast_version()", lambda: lib.version(handle)),
            ("  part: one RLock acquire+release", lambda: original._lock.__enter__() or original._lock.__exit__()),
        ]
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
              f"segment {segment}, {args.repeats} runs each")
        print(f"{'best':>8} {'median':>8}  per request / per call")
        for name, fn in cases:
            best, median = measure(fn, args.repeats)
            print(f"{best:6.0f}ns {median:6.0f}ns  {name}")
        cm.stop()
        sub.close()
    finally:
        if publisher is not None:
            publisher.send_signal(signal.SIGTERM)
            publisher.wait(timeout=10)
            try:
                os.unlink(f"/dev/shm/{segment}")
            except FileNotFoundError:
                pass
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
