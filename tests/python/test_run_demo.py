"""examples/run-demo, the quick start's main job, run as a user runs it: it brings the build up to
date, starts the publisher on the bundled example config and credentials (two sources, as a
ConfigMap and a Secret) and the demo under gunicorn with 4 workers; the steps it prints (read a
value, edit the config, see the API key redacted, rotate it, break the config) behave as it says.

The test points it at the build tree under test (BUILD=...) and at copies of the bundled files, so
that it builds nothing new and never edits the repository's files."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from cc_helpers import (DEMO_DIR, REPO, DemoServer, analyze, free_port, remove_segment, request, unique_segment,
                        wait_until)


def build_dir(publisher_binary: str) -> Path:
    return Path(publisher_binary).parents[1]


def ctl(build: Path, segment: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(build / "subscriber" / "ctl" / "confcastctl"), "--segment", segment, *args],
                          capture_output=True, text=True, timeout=30)


def test_the_quick_start_demo_serves_reloads_and_keeps_the_last_good_config(publisher_binary, tmp_path):
    build = build_dir(publisher_binary)
    segment = unique_segment()
    config = tmp_path / "config.yaml"
    shutil.copyfile(DEMO_DIR / "config.yaml", config)
    credentials = tmp_path / "credentials.yaml"
    shutil.copyfile(DEMO_DIR / "credentials.yaml", credentials)
    metrics_port = free_port()
    server = DemoServer(segment, tmp_path / "run-demo.log", command=[str(REPO / "examples" / "run-demo")])
    server.env.update({"PORT": str(server.port), "SEGMENT": segment, "CONFIG": str(config), "BUILD": str(build),
                       "CREDENTIALS": str(credentials),
                       "PUBLISHER_ARGS": f"--metrics-address 127.0.0.1:{metrics_port} --debounce-ms 50"})
    try:
        server.start()
        server.wait_serving(timeout=300)  # bringing the tree up to date may compile
        log = server.log_path.read_text()
        assert f"confcast demo: publisher + 4 gunicorn workers on http://127.0.0.1:{server.port}" in log

        answers = server.all_worker_answers(lambda: analyze(server.port))
        assert {a.json()["model"] for a in answers.values()} == {"gpt-4o"}
        assert ctl(build, segment, "get", "llm.model").stdout == "gpt-4o\n"

        # The printed steps: edit the config, and every worker serves the new value.
        config.write_text(re.sub(r"model: \S+", "model: gpt-4.1", config.read_text(), count=1))
        wait_until(lambda: ctl(build, segment, "get", "llm.model").stdout == "gpt-4.1\n", 15,
                   "the edited model to be published")
        answers = server.all_worker_answers(lambda: analyze(server.port))
        assert {a.json()["model"] for a in answers.values()} == {"gpt-4.1"}

        # The key from the second source reaches the workers, and no output shows it.
        assert ctl(build, segment, "get", "llm.api_key").stdout == "<secret>\n"
        assert ctl(build, segment, "get", "--show-secrets", "llm.api_key").stdout == "sk-demo-not-a-real-key\n"
        configs = server.all_worker_answers(lambda: request(server.port, "GET", "/config"))
        assert {a.json()["config"]["llm"]["api_key"] for a in configs.values()} == {"<secret>"}
        credentials.write_text(credentials.read_text().replace("sk-demo-not-a-real-key", "sk-demo-rotated"))
        wait_until(lambda: ctl(build, segment, "get", "--show-secrets", "llm.api_key").stdout == "sk-demo-rotated\n",
                   15, "the rotated key to be published")
        assert "sk-demo" not in ctl(build, segment, "dump").stdout

        # Break it: the old value stays, and status says why, with the file and position.
        with open(config, "a") as broken:
            broken.write("llm: [\n")
        wait_until(lambda: str(config) in ctl(build, segment, "status").stdout, 15, "status to name the bad file")
        assert ctl(build, segment, "get", "llm.model").stdout == "gpt-4.1\n"
        assert {a.json()["model"] for a in server.all_worker_answers(lambda: analyze(server.port)).values()} == {
            "gpt-4.1"}

        assert server.stop() == 0
    finally:
        server.stop()
        remove_segment(segment)
