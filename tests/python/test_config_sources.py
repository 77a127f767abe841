"""Several config sources against a real confcast-publisher on real files: a ConfigMap
directory with several keys and a Secret-like directory beside it, updated the way the
kubelet updates them, merged into one validated version; --check and $CONFIG_FILE with
several sources; the byte limit over all files together."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import time
from pathlib import Path

import pytest

import confcast
from cc_helpers import KubeletVolume, Publisher, wait_until
from confcast_pytest_support import write_atomic

BASE = "llm:\n  model: base-model\n  max_retries: 3\ntoolsets:\n  k8s:\n    enabled: true\n"


def new_version(sub, before: int, timeout: float = 10.0) -> int:
    version = sub.wait(before, timeout=timeout)
    assert version is not None, f"no version after {before} within {timeout} s"
    return version


def stays_at(sub, version: int, quiet_seconds: float) -> None:
    """That no second version follows: absence can only be seen over a window, so this
    watches for one (waking at once if it comes) for ``quiet_seconds``."""
    assert sub.wait(version, timeout=quiet_seconds) is None, "an extra version was published"
    assert sub.version == version


def combined_sha256(files: list[tuple[str, bytes]]) -> str:
    """The hash of several source files: name and bytes, each after its 8-byte big-endian length."""
    h = hashlib.sha256()
    for name, data in files:
        h.update(struct.pack(">Q", len(name.encode())) + name.encode() + struct.pack(">Q", len(data)) + data)
    return h.hexdigest()


@pytest.fixture
def run_publisher(publisher_binary, segment, tmp_path):
    started = []

    def start(*sources: Path, debounce_ms: int = 50, extra: tuple[str, ...] = ()) -> Publisher:
        more = [arg for source in sources[1:] for arg in ("--config", str(source))]
        proc = Publisher(publisher_binary, sources[0], segment, tmp_path / f"publisher{len(started)}.log",
                         *more, *extra, debounce_ms=debounce_ms)
        started.append(proc)
        return proc.start().wait_published()

    yield start
    for proc in started:
        proc.stop()


def test_a_configmap_with_several_keys_swapped_at_once_is_one_version(run_publisher, segment, tmp_path):
    cm = KubeletVolume(tmp_path / "cm", {"10-base.yaml": BASE, "20-override.yaml": "llm:\n  model: over\n"})
    proc = run_publisher(cm.directory)
    with confcast.Subscriber(segment) as sub:
        snap = sub.snapshot()
        assert snap["llm"]["model"] == "over" and snap["llm"]["max_retries"] == 3
        d = str(cm.directory)
        assert snap.sha256 == combined_sha256([(f"{d}/10-base.yaml", BASE.encode()),
                                               (f"{d}/20-override.yaml", b"llm:\n  model: over\n")])
        before = sub.version
        cm.update({"10-base.yaml": BASE.replace("max_retries: 3", "max_retries: 7") + "extra:\n  list: [1, 2, 3]\n",
                   "20-override.yaml": "llm:\n  model: both\nextra:\n  list: [9]\n"})
        version = new_version(sub, before)
        assert version == before + 1
        snap = sub.snapshot()
        assert (snap["llm"]["model"], snap["llm"]["max_retries"]) == ("both", 7)
        assert list(snap["extra"]["list"]) == [9]  # a list is replaced, never concatenated
        stays_at(sub, version, 1.0)
    assert "watching 1 source: " + str(cm.directory) + " (2 files)" in proc.log_text(200)


def test_keys_added_to_and_removed_from_a_directory(run_publisher, segment, tmp_path):
    cm = KubeletVolume(tmp_path / "cm", {"10-base.yaml": BASE})
    plain = tmp_path / "plain"
    plain.mkdir()
    write_atomic(plain / "50-plain.yaml", "llm:\n  provider: plain\n")
    run_publisher(cm.directory, plain)
    with confcast.Subscriber(segment) as sub:
        assert sub.snapshot()["llm"]["provider"] == "plain"
        v = sub.version
        cm.update({"10-base.yaml": BASE, "30-added.yaml": "llm:\n  model: added\n"})
        v = new_version(sub, v)
        assert sub.snapshot()["llm"]["model"] == "added"
        cm.update({"10-base.yaml": BASE})
        v = new_version(sub, v)
        assert sub.snapshot()["llm"]["model"] == "base-model"
        # A plain directory: a file appearing, then one vanishing; other names are ignored.
        write_atomic(plain / "60-new.yml", "llm:\n  max_retries: 8\n")
        v = new_version(sub, v)
        assert sub.snapshot()["llm"]["max_retries"] == 8
        (plain / "60-new.yml").unlink()
        v = new_version(sub, v)
        assert sub.snapshot()["llm"]["max_retries"] == 3
        (plain / "notes.txt").write_text("llm: [not, yaml, config]\n")
        (plain / ".hidden.yaml").write_text("llm: 1\n")
        stays_at(sub, v, 1.0)


SECRET_A = {"credentials.yaml": "llm:\n  endpoint: https://a.example\n"}
SECRET_B = {"credentials.yaml": "llm:\n  endpoint: https://b.example\n"}
CM_M2 = {"config.yaml": BASE.replace("base-model", "m2")}


def configmap_and_secret(tmp_path: Path) -> tuple[KubeletVolume, KubeletVolume]:
    return KubeletVolume(tmp_path / "cm", {"config.yaml": BASE}), KubeletVolume(tmp_path / "secret", SECRET_A)


def test_two_volumes_updated_inside_the_debounce_window_are_one_version(run_publisher, segment, tmp_path):
    cm, secret = configmap_and_secret(tmp_path)
    run_publisher(cm.directory, secret.directory, debounce_ms=1500)
    with confcast.Subscriber(segment) as sub:
        before = sub.version
        started = time.monotonic()
        cm.update(CM_M2)
        secret.update(SECRET_B)
        assert time.monotonic() - started < 1.0, "the two updates took longer than the window allows"
        version = new_version(sub, before)
        assert version == before + 1
        assert (sub.snapshot()["llm"]["model"], sub.snapshot()["llm"]["endpoint"]) == ("m2", "https://b.example")
        stays_at(sub, version, 2.0)


def test_two_volumes_updated_apart_are_two_versions(run_publisher, segment, tmp_path):
    cm, secret = configmap_and_secret(tmp_path)
    run_publisher(cm.directory, secret.directory, debounce_ms=50)
    with confcast.Subscriber(segment) as sub:
        v = sub.version
        cm.update(CM_M2)
        v1 = new_version(sub, v)
        assert sub.snapshot()["llm"]["model"] == "m2" and sub.snapshot()["llm"]["endpoint"] == "https://a.example"
        secret.update(SECRET_B)
        v2 = new_version(sub, v1)
        assert (v1, v2) == (v + 1, v + 2)
        assert sub.snapshot()["llm"]["endpoint"] == "https://b.example"


SCHEMA = """fields:
  - path: db
    type: map
    required: true
  - path: db.user
    type: string
    required: true
  - path: db.password
    type: string
    required: true
"""


def test_a_config_valid_only_once_both_sources_are_updated(run_publisher, segment, tmp_path):
    schema = tmp_path / "schema.yaml"
    schema.write_text(SCHEMA)
    cm = KubeletVolume(tmp_path / "cm", {"config.yaml": "db:\n  user: app\n  password: inline\n"})
    secret = KubeletVolume(tmp_path / "secret", {"other.yaml": "unrelated: 1\n"})
    run_publisher(cm.directory, secret.directory, extra=("--schema", str(schema)))
    with confcast.Subscriber(segment) as sub:
        good = sub.version
        errors = sub.info()["reload_errors_total"]
        # The password moves out of the ConfigMap before the Secret has it: rejected.
        cm.update({"config.yaml": "db:\n  user: app\n"})
        wait_until(lambda: sub.info()["reload_errors_total"] > errors, 10, "the half-updated config to be rejected")
        assert sub.version == good and sub.snapshot()["db"]["password"] == "inline"
        assert "db.password" in sub.info()["last_error"]
        secret.update({"other.yaml": "unrelated: 1\n", "password.yaml": "db:\n  password: from-secret\n"})
        new_version(sub, good)
        assert sub.snapshot()["db"] == {"user": "app", "password": "from-secret"}


def test_an_error_in_the_second_source_names_its_file_line_and_column(run_publisher, segment, tmp_path):
    cm = KubeletVolume(tmp_path / "cm", {"config.yaml": BASE})
    secret = KubeletVolume(tmp_path / "secret", {"creds.yaml": "llm:\n  endpoint: https://a.example\n"})
    run_publisher(cm.directory, secret.directory)
    with confcast.Subscriber(segment) as sub:
        good = sub.version
        errors = sub.info()["reload_errors_total"]
        secret.update({"creds.yaml": "# rotated\nllm:\n  max_retries: 99\n"})
        wait_until(lambda: sub.info()["reload_errors_total"] > errors, 10, "the bad secret to be rejected")
        assert sub.info()["last_error"].startswith(f"{secret.directory}/creds.yaml:3:16: llm.max_retries:")
        assert sub.version == good


def check(publisher_binary, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([publisher_binary, "--check", *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


def test_check_and_config_file_take_several_sources(publisher_binary, tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text(BASE)
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    b = b_dir / "override.yml"
    b.write_text("# override\nllm:\n  timeout_seconds: 0\n")
    result = check(publisher_binary, "--config", str(a), "--config", str(b_dir))
    assert result.returncode == 1
    assert result.stdout.startswith(f"{b}:3:20: llm.timeout_seconds:"), result.stdout

    b.write_text("llm:\n  timeout_seconds: 5\n")
    expected = combined_sha256([(str(a), a.read_bytes()), (str(b), b.read_bytes())])
    for env, args in (({}, ("--config", str(a), "--config", str(b_dir))),
                      ({"CONFIG_FILE": f"{a}:{b_dir}"}, ())):
        result = check(publisher_binary, *args, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip().endswith(f"valid (sha256 {expected})"), result.stdout
    # One plain file keeps the hash of its bytes.
    result = check(publisher_binary, "--config", str(a))
    assert result.stdout.strip() == f"{a}: valid (sha256 {hashlib.sha256(a.read_bytes()).hexdigest()})"


def test_max_config_bytes_counts_all_sources_together(publisher_binary, tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text(BASE)
    b = tmp_path / "b.yaml"
    b.write_text("llm:\n  model: " + "x" * 60 + "\n")
    limit = max(a.stat().st_size, b.stat().st_size) + 10
    assert a.stat().st_size + b.stat().st_size > limit
    for alone in (a, b):
        assert check(publisher_binary, "--config", str(alone), "--max-config-bytes", str(limit)).returncode == 0
    result = check(publisher_binary, "--config", str(a), "--config", str(b), "--max-config-bytes", str(limit))
    assert result.returncode == 1
    assert f"more than {limit} bytes in all" in result.stdout, result.stdout
    assert result.stdout.startswith(str(b)), result.stdout


def test_an_empty_directory_source_adds_nothing_but_no_file_at_all_is_an_error(publisher_binary, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    a = tmp_path / "a.yaml"
    a.write_text(BASE)
    assert check(publisher_binary, "--config", str(empty), "--config", str(a)).returncode == 0
    result = check(publisher_binary, "--config", str(empty))
    assert result.returncode == 1 and "no config file" in result.stdout, result.stdout
    missing = check(publisher_binary, "--config", str(a), "--config", str(tmp_path / "missing"))
    assert missing.returncode == 1 and str(tmp_path / "missing") in missing.stdout, missing.stdout
