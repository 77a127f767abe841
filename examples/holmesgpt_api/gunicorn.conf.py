"""gunicorn settings for the HolmesGPT API demo; optionally runs the confcast publisher.

gunicorn looks for ./gunicorn.conf.py in the directory it is started from,
before applying ``--chdir``, so name this file explicitly:

    CONFCAST_START_PUBLISHER=1 CONFIG_FILE=/etc/holmesgpt/config.yaml \
    CONFCAST_SEGMENT=holmesgpt-config PYTHONPATH=subscriber/python \
      gunicorn -c examples/holmesgpt_api/gunicorn.conf.py \
               --chdir examples/holmesgpt_api -w 4 -k uvicorn.workers.UvicornWorker app:app

(or ``GUNICORN_CMD_ARGS="-c examples/holmesgpt_api/gunicorn.conf.py"``; started
from inside examples/holmesgpt_api it is found by itself). Two modes:

* ``CONFCAST_START_PUBLISHER=1``: the gunicorn master starts
  ``confcast-publisher`` (``$CONFCAST_PUBLISHER``, else the one on PATH) on
  ``$CONFCAST_SEGMENT`` (else the default segment), reading ``$CONFIG_FILE``
  (else its default path), with ``$CONFCAST_PUBLISHER_ARGS`` (e.g.
  ``--debounce-ms 50 --metrics-address none``),
  waits until that publisher has published version >= 1 (at most
  ``$CONFCAST_PUBLISHER_START_TIMEOUT`` s, default 30), and only then lets
  the workers boot. If the publisher exits or times out, gunicorn does not
  start. On exit the master sends it SIGTERM (then SIGKILL after 10 s).
  One publisher per pod, whatever the number of workers.
* otherwise (sidecar mode; also what you get without this file): nothing is
  started; the workers wait for the segment themselves
  (``CONFCAST_WAIT_SECONDS`` in app.py).

Threading: the hooks run in the gunicorn master only, one at a time.
"""

import os
import shlex
import shutil
import signal
import subprocess
import time

worker_class = "uvicorn.workers.UvicornWorker"
graceful_timeout = 10

_publisher = None  # the subprocess.Popen of the publisher we started, if any


def on_starting(server):
    global _publisher
    import confcast  # importing loads no library: sidecar mode needs none in the master

    segment = confcast.Subscriber.resolve_name()  # $CONFCAST_SEGMENT, else the default, as everywhere
    if os.environ.get("CONFCAST_START_PUBLISHER") != "1":
        server.log.info("confcast: sidecar mode, expecting a publisher on segment %r", segment)
        return
    binary = os.environ.get("CONFCAST_PUBLISHER") or shutil.which("confcast-publisher")
    if not binary:
        raise RuntimeError("CONFCAST_START_PUBLISHER=1 but no confcast-publisher: set $CONFCAST_PUBLISHER "
                           "or put it on PATH")
    # The publisher reads $CONFIG_FILE itself (and knows its default path).
    command = [binary, "--segment", segment, *shlex.split(os.environ.get("CONFCAST_PUBLISHER_ARGS", ""))]
    config = os.environ.get("CONFIG_FILE") or "the publisher's default config path"
    server.log.info("confcast: starting %s", shlex.join(command))
    _publisher = subprocess.Popen(command, preexec_fn=_die_with_parent)
    timeout = float(os.environ.get("CONFCAST_PUBLISHER_START_TIMEOUT", "30"))
    try:
        version = _wait_for_first_version(segment, _publisher, timeout)
    except Exception:
        _stop_publisher(server)
        raise
    server.log.info("confcast: publisher pid %d published version %d of %s; booting workers",
                    _publisher.pid, version, config)


def _die_with_parent():
    """Runs in the publisher's child process: SIGTERM it if the master dies without on_exit (e.g. SIGKILL)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_for_first_version(segment, publisher, timeout):
    """Polls (the segment may not exist yet, so there is nothing to sleep on) until OUR publisher published."""
    import confcast

    deadline = time.monotonic() + timeout
    last_problem = "the segment does not exist yet"
    while True:
        code = publisher.poll()
        if code is not None:
            raise RuntimeError(f"confcast-publisher exited with status {code} before publishing "
                               "(see its log above)")
        try:
            with confcast.Subscriber(segment) as subscriber:
                info = subscriber.info()
            # A segment left by an earlier publisher already has a version: wait for ours to own it.
            if info["version"] >= 1 and info["publisher_pid"] == publisher.pid:
                return info["version"]
            last_problem = f"version {info['version']}, publisher pid {info['publisher_pid']}"
        except (confcast.SegmentNotFound, confcast.Empty, confcast.Corrupt) as exc:
            last_problem = str(exc)
        if time.monotonic() >= deadline:
            raise RuntimeError(f"confcast-publisher did not publish segment {segment!r} within {timeout:g} s "
                               f"({last_problem})")
        time.sleep(0.05)


def _stop_publisher(server):
    global _publisher
    publisher, _publisher = _publisher, None
    if publisher is None or publisher.poll() is not None:
        return
    publisher.send_signal(signal.SIGTERM)
    try:
        publisher.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.log.warning("confcast: publisher pid %d ignored SIGTERM; killing it", publisher.pid)
        publisher.kill()
        publisher.wait()
    server.log.info("confcast: publisher stopped (status %s)", publisher.returncode)


def on_exit(server):
    _stop_publisher(server)
