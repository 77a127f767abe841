"""A real Prometheus server (Debian's /usr/bin/prometheus) scrapes the publisher every
second and answers holmesgpt_config_reload_total through its HTTP API, before and
after a reload. The server runs on loopback with a generated config and a
temporary TSDB directory, and is killed at teardown."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from .obs_support import BASE_CONFIG, ctl, free_port, wait_until, write_atomic

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
TIMEOUT = 60  # a cold Prometheus on 2 busy cores takes a few seconds to start


class PrometheusServer:
    def __init__(self, directory, target_port: int):
        self.port = free_port()
        self.config = directory / "prometheus.yml"
        self.config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: confcast-publisher\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target_port}']\n")
        self.log_path = directory / "prometheus.log"
        self.args = [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={directory / 'tsdb'}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
                     "--storage.tsdb.retention.time=1h",
                     "--query.lookback-delta=10s"]
        self.process: subprocess.Popen | None = None

    def start(self) -> "PrometheusServer":
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def query(self, expression: str) -> list:
        """The result vector of an instant query, [] while Prometheus is not up yet."""
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.process.returncode}:\n{self.log_text()}")
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                answer = json.load(response)
        except OSError:
            return []
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def wait_value(self, expression: str, value: float) -> dict:
        def sample():
            result = self.query(expression)
            return result[0] if len(result) == 1 and float(result[0]["value"][1]) == value else None
        try:
            return wait_until(sample, TIMEOUT, f"Prometheus to answer {expression} == {value:g}", interval=0.2)
        except AssertionError as error:
            raise AssertionError(f"{error}; last answer: {self.query(expression)}\n{self.log_text()}") from None


@pytest.fixture
def prometheus_binary() -> str:
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.fail(f"prometheus not found at {PROMETHEUS}: install Debian's prometheus package", pytrace=False)
    return PROMETHEUS


def test_a_real_prometheus_scrapes_the_reload_counter(prometheus_binary, start_publisher, config_file, ctl_binary,
                                                       segment, tmp_path):
    publisher = start_publisher()
    server = PrometheusServer(tmp_path, publisher.metrics_port).start()
    try:
        first = server.wait_value("holmesgpt_config_reload_total", 1)
        assert first["metric"]["job"] == "confcast-publisher", first
        assert first["metric"]["instance"] == f"127.0.0.1:{publisher.metrics_port}", first
        assert float(server.query('up{job="confcast-publisher"}')[0]["value"][1]) == 1

        write_atomic(config_file, BASE_CONFIG.replace("gpt-4o", "gpt-4.1"))
        assert ctl(ctl_binary, segment, "wait", "--after", "1", "--timeout", "15").returncode == 0
        server.wait_value("holmesgpt_config_reload_total", 2)
        server.wait_value("confcast_config_version", 2)
        server.wait_value('confcast_config_reload_errors_by_reason_total{reason="parse"}', 0)
    finally:
        server.stop()


def test_the_example_scrape_config_is_valid():
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.access(promtool, os.X_OK):
        pytest.fail(f"promtool not found at {promtool}: install Debian's prometheus package", pytrace=False)
    example = Path(__file__).resolve().parents[2] / "deploy" / "prometheus-scrape.yaml"
    result = subprocess.run([promtool, "check", "config", str(example)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"
