"""Runs a function in a fork()ed child of the test process and reads what it reports.

The child inherits the test's objects (a started Subscriber, a ConfigManager),
which is the point: that is what gunicorn ``--preload`` does. The child
talks back through a pipe, one JSON object per line, and always ends with
``os._exit`` (never pytest's teardown). Every wait is bounded; the child is
SIGKILLed by ``finish()`` if it is still alive.

Threading: used from the test's main thread; the child's function may start
threads of its own (callbacks run on the child's on_change thread).
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
import traceback


class ForkedChild:
    def __init__(self, body) -> None:
        """Forks now; the child runs ``body(report)`` where ``report(**fields)`` sends one line."""
        self._read, write = os.pipe()
        self._commands_read, self._commands = os.pipe()
        self._buffer = b""
        self.pid = os.fork()
        if self.pid == 0:  # the child: never return into pytest
            code = 0
            try:
                os.close(self._read)
                os.close(self._commands)

                def report(**fields) -> None:
                    os.write(write, (json.dumps(fields) + "\n").encode())

                body(report, self._wait_command)
            except BaseException:
                try:
                    os.write(write, (json.dumps({"error": traceback.format_exc()}) + "\n").encode())
                except BaseException:
                    pass
                code = 1
            finally:
                os._exit(code)
        os.close(write)
        os.close(self._commands_read)
        self.status: int | None = None

    def _wait_command(self, timeout: float = 20.0) -> str:
        """In the child: the next command line the test sent (bounded)."""
        ready, _, _ = select.select([self._commands_read], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no command from the test within {timeout} s")
        return os.read(self._commands_read, 4096).decode().strip()

    def send(self, command: str) -> None:
        os.write(self._commands, (command + "\n").encode())

    def next_report(self, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            ready = select.select([self._read], [], [], max(0.0, remaining))[0] if remaining > 0 else []
            if not ready:
                raise AssertionError(f"timed out after {timeout:g} s waiting for the forked child to report {what}")
            chunk = os.read(self._read, 65536)
            if not chunk:
                raise AssertionError(f"the forked child exited before reporting {what}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        fields = json.loads(line)
        if "error" in fields:
            raise AssertionError(f"the forked child failed:\n{fields['error']}")
        return fields

    def finish(self, timeout: float = 5.0) -> int:
        """Waits (bounded) for the child to exit, killing it if it does not; its exit status."""
        if self.status is None:
            deadline = time.monotonic() + timeout
            while True:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.status = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() >= deadline:
                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    self.status = -signal.SIGKILL
                    break
                time.sleep(0.01)
            for fd in (self._read, self._commands):
                os.close(fd)
        return self.status
