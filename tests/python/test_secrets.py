"""Secret values (the built-in schema's ``llm.api_key``) reach the readers and no output.

The leak test runs a real publisher (text and JSON logs, /metrics served) and the real 4-worker
gunicorn demo through several rotations of the key, a wrong-typed key, a key in a list and an empty
one, then searches every log line, every ``confcastctl status``/``dump``/``get``, ``--check`` output,
both /metrics and the demo's ``/config`` for each secret string. The same run proves the values
really were there to leak: readers and ``--show-secrets`` give them.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from cc_helpers import DemoServer, KubeletConfigMap, Publisher, holmes_config, remove_segment, request, unique_segment
from confcast_pytest_support import ctl_binary, wait_until

import confcast

ROTATIONS = ["sk-leak-first-7f3a9c", "sk-leak-second-b41d02", "sk-leak-third-e8c6f5"]
REJECTED = {  # each rejected: its secret string must not appear in an error either
    "a list": "  api_key: [sk-leak-in-a-list-5d21aa]\n",
    "a map": "  api_key: {value: sk-leak-in-a-map-93be47}\n",
    "an int": "  api_key: 4815162342\n",
}
WARNING = "readable by users outside its group"  # the publisher's warning about a segment mode 0644
EVERY_SECRET = [*ROTATIONS, "sk-leak-in-a-list-5d21aa", "sk-leak-in-a-map-93be47", "4815162342"]


def config_with_key(key_line: str) -> str:
    return holmes_config("gpt-4o").replace("llm:\n", "llm:\n" + key_line, 1)


def ctl(segment: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ctl_binary(), "--segment", segment, *args], capture_output=True, text=True, timeout=30)


def scrape(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.read().decode()


def assert_no_secret(where: str, text: str) -> None:
    for secret in EVERY_SECRET:
        assert secret not in text, f"{where} shows the secret {secret!r}:\n{text[:2000]}"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_output_ever_shows_a_secret_value(publisher_binary, tmp_path, log_format):
    segment = unique_segment()
    configmap = KubeletConfigMap(tmp_path / "configmap", config_with_key(f"  api_key: {ROTATIONS[0]}\n"))
    proc = Publisher(publisher_binary, configmap.path, segment, tmp_path / "publisher.log",
                     "--log-format", log_format, "--log-level", "debug", metrics_address=None)
    server = DemoServer(segment, tmp_path / "gunicorn.log")
    outputs: list[tuple[str, str]] = []

    def collect(label: str) -> None:
        for args in (["status"], ["dump"], ["dump", "--json"], ["get", "llm.api_key"], ["get", "llm"]):
            done = ctl(segment, *args)
            assert done.returncode == 0, done.stderr
            outputs.append((f"confcastctl {' '.join(args)} ({label})", done.stdout + done.stderr))
        outputs.append((f"publisher /metrics ({label})", scrape(proc.metrics_port)))
        for answer in server.all_worker_answers(lambda: request(server.port, "GET", "/config")).values():
            outputs.append((f"demo /config of worker {answer.pid} ({label})", answer.body.decode()))
        outputs.append((f"demo /metrics ({label})", request(server.port, "GET", "/metrics").body.decode()))

    try:
        proc.start().wait_serving()
        server.start()
        server.wait_serving()
        with confcast.Subscriber(segment) as sub:
            for number, key in enumerate(ROTATIONS):
                if number:
                    version = sub.version
                    configmap.update(config_with_key(f"  api_key: {key}\n"))
                    assert sub.wait(version, timeout=10) is not None
                snap = sub.snapshot()
                # The value is there for readers: a leak test that cannot fail would prove nothing.
                assert snap["llm"]["api_key"] == key and sub.get("llm.api_key") == key
                assert snap.is_secret("llm.api_key") and sub.is_secret("llm.api_key")
                assert not snap.is_secret("llm.model")
                assert snap.redacted()["llm"]["api_key"] == "<secret>"
                assert snap.redacted()["llm"]["model"] == snap["llm"]["model"]
                assert ctl(segment, "get", "--show-secrets", "llm.api_key").stdout == key + "\n"
                shown = json.loads(ctl(segment, "dump", "--json", "--show-secrets").stdout)
                assert shown["config"]["llm"]["api_key"] == key
                assert ctl(segment, "get", "llm.api_key").stdout == "<secret>\n"
                collect(f"rotation {number + 1}")
                wait_until(lambda: all(json.loads(a.body)["config"]["llm"]["api_key"] == "<secret>" and
                                       json.loads(a.body)["version"] == snap.version
                                       for a in server.all_worker_answers(
                                           lambda: request(server.port, "GET", "/config")).values()),
                           10, "every worker to serve the redacted new version")

            good_version = sub.version
            for kind, key_line in REJECTED.items():
                errors = sub.info()["reload_errors_total"]
                configmap.update(config_with_key(key_line))
                wait_until(lambda: sub.info()["reload_errors_total"] > errors, 10, f"the key as {kind} to be rejected")
                assert sub.version == good_version
                last_error = sub.info()["last_error"]
                assert "llm.api_key" in last_error and "expected" in last_error, last_error
                collect(f"rejected {kind}")
                check = subprocess.run([publisher_binary, "--check", "--config", str(configmap.path)],
                                       capture_output=True, text=True, timeout=30)
                assert check.returncode == 1 and "llm.api_key" in check.stdout, check
                outputs.append((f"--check ({kind})", check.stdout + check.stderr))
            configmap.update(config_with_key('  api_key: ""\n'))
            wait_until(lambda: "empty string" in sub.info()["last_error"], 10, "the empty key to be rejected")
            assert sub.get("llm.api_key") == ROTATIONS[-1]  # the last good key still serves

        proc.stop()
        server.stop()
        log = proc.log_bytes().decode()
        changed = [line for line in log.splitlines() if "llm.api_key: changed" in line]
        assert len(changed) == len(ROTATIONS) - 1, log  # the diff names the path, without values
        if log_format == "json":
            proc.json_log()  # every line is one JSON object
        outputs.append(("publisher log", log))
        outputs.append(("gunicorn log", server.log_path.read_text(errors="replace")))
        for where, text in outputs:
            assert_no_secret(where, text)
    finally:
        server.stop()
        proc.stop()
        remove_segment(segment)


def test_a_check_of_a_valid_config_with_a_secret_prints_no_value(publisher_binary, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(config_with_key(f"  api_key: {ROTATIONS[0]}\n"))
    check = subprocess.run([publisher_binary, "--check", "--config", str(config)], capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0, check
    assert_no_secret("--check", check.stdout + check.stderr)


@pytest.fixture
def keyed_publisher(publisher_binary, tmp_path):
    """A publisher with the default options on a config whose API key is set, once it has published."""
    segment = unique_segment()
    config = tmp_path / "config.yaml"
    config.write_text(config_with_key(f"  api_key: {ROTATIONS[0]}\n"))
    proc = Publisher(publisher_binary, config, segment, tmp_path / "publisher.log").start()
    try:
        proc.wait_published()
        yield proc
    finally:
        proc.stop()
        remove_segment(segment)


def test_redacted_copies_and_leaves_the_snapshot_alone(keyed_publisher):
    with confcast.Subscriber(keyed_publisher.segment) as sub:
        snap = sub.snapshot()
        redacted = snap.redacted()
        redacted["llm"]["model"] = "changed-in-the-copy"  # a plain dict
        assert snap["llm"]["model"] == "gpt-4o" and snap["llm"]["api_key"] == ROTATIONS[0]
        assert redacted["toolsets"] == snap.to_dict()["toolsets"]
        with pytest.raises(confcast.KeyNotFound):
            snap.is_secret("llm.nope")
        with pytest.raises(confcast.KeyNotFound):
            sub.is_secret("llm.nope")


def test_a_segment_every_user_can_read_is_warned_about_once_it_holds_a_secret(publisher_binary, tmp_path):
    # The segment's mode alone decides who reads the secret: 0644 gives it to every local user.
    segment = unique_segment()
    configmap = KubeletConfigMap(tmp_path / "configmap", config_with_key("  api_key: null\n"))
    proc = Publisher(publisher_binary, configmap.path, segment, tmp_path / "publisher.log", "--segment-mode", "0644")
    try:
        proc.start().wait_published()
        configmap.update(config_with_key(f"  api_key: {ROTATIONS[0]}\n"))
        wait_until(lambda: WARNING in proc.log_text(400), 10, "the warning")
        lines = proc.log_text(400).splitlines()
        warnings = [i for i, line in enumerate(lines) if WARNING in line]
        published_2 = next(i for i, line in enumerate(lines) if "published config version 2" in line)
        # One warning, for version 2: version 1 (no key set) had nothing to warn about.
        assert len(warnings) == 1 and warnings[0] > published_2, lines
        warning = lines[warnings[0]]
        assert f"/dev/shm/{segment}" in warning and "mode 0644" in warning and "llm.api_key" in warning
        assert "--segment-mode 0640" in warning
        assert_no_secret("the warning", warning)
    finally:
        proc.stop()
        remove_segment(segment)


def test_the_default_mode_keeps_the_secret_to_the_group_and_says_nothing(keyed_publisher):
    assert Path(f"/dev/shm/{keyed_publisher.segment}").stat().st_mode & 0o777 == 0o640
    keyed_publisher.stop()  # its log is complete: a warning about version 1 would be in it
    assert "published config version 1" in keyed_publisher.log_text(400)
    assert WARNING not in keyed_publisher.log_text(400)
