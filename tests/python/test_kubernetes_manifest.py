"""deploy/kubernetes/holmesgpt-api.yaml, run as far as one host can: its ConfigMap and Secret are
laid out as the kubelet mounts them, and the publisher runs with the sidecar's own command line
(the mount paths moved into a scratch directory). The manifest's sources must merge into a valid
config whose API key is published and redacted, the mounts must match the command, and only the
publisher may mount the Secret."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from cc_helpers import REPO, KubeletVolume, Publisher, remove_segment, unique_segment
from confcast_pytest_support import ctl_binary

import confcast

MANIFEST = REPO / "deploy" / "kubernetes" / "holmesgpt-api.yaml"


def documents() -> dict[str, dict]:
    with open(MANIFEST) as f:
        return {doc["kind"]: doc for doc in yaml.safe_load_all(f) if doc}


def test_the_manifest_sources_merge_into_one_valid_config_with_a_redacted_key(publisher_binary, tmp_path):
    docs = documents()
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    sidecar = next(c for c in pod["initContainers"] if c["name"] == "confcast-publisher")
    api = next(c for c in pod["containers"] if c["name"] == "api")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}

    command = sidecar["command"]
    assert command[0] == "confcast-publisher"
    sources = [command[i + 1] for i, arg in enumerate(command) if arg == "--config"]
    assert len(sources) == 2, command
    # Each --config is a mounted volume: the ConfigMap, then the Secret (later sources win).
    kinds = []
    for source in sources:
        volume = volumes[mounts[source]]
        kinds.append("ConfigMap" if "configMap" in volume else "Secret")
    assert kinds == ["ConfigMap", "Secret"]
    secret_volume = next(name for name, v in volumes.items() if "secret" in v)
    assert secret_volume not in {m["name"] for m in api["volumeMounts"]}, "only the publisher mounts the Secret"

    # The kubelet's layout of both volumes, from the manifest's own data.
    config_data = docs["ConfigMap"]["data"]
    secret_data = docs["Secret"]["stringData"]
    layout = {sources[0]: KubeletVolume(tmp_path / "configmap", config_data),
              sources[1]: KubeletVolume(tmp_path / "secret", secret_data)}
    args = [str(layout[arg].directory) if arg in layout else arg for arg in command[1:]]
    segment = unique_segment()
    args[args.index("--segment") + 1] = segment
    args[args.index("--metrics-address") + 1] = "none"
    check = subprocess.run([publisher_binary, "--check", *args], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr

    proc = Publisher(publisher_binary, layout[sources[0]].directory, segment, tmp_path / "publisher.log",
                     "--config", str(layout[sources[1]].directory))
    try:
        proc.start().wait_published()
        with confcast.Subscriber(segment) as sub:
            snap = sub.snapshot()
            expected_key = yaml.safe_load(next(iter(secret_data.values())))["llm"]["api_key"]
            assert snap["llm"]["api_key"] == expected_key
            assert snap["toolsets"]["kubernetes/core"]["enabled"] is True  # from the second ConfigMap key
            assert snap.redacted()["llm"]["api_key"] == "<secret>"
        dump = subprocess.run([ctl_binary(), "--segment", segment, "dump"], capture_output=True, text=True,
                              timeout=30)
        assert dump.returncode == 0 and expected_key not in dump.stdout, dump
        assert expected_key not in proc.log_bytes().decode()
    finally:
        proc.stop()
        remove_segment(segment)


def test_the_ledger_mount_is_beside_the_segment_the_workers_read():
    pod = documents()["Deployment"]["spec"]["template"]["spec"]
    sidecar = next(c for c in pod["initContainers"] if c["name"] == "confcast-publisher")
    api = next(c for c in pod["containers"] if c["name"] == "api")
    segment = sidecar["command"][sidecar["command"].index("--segment") + 1]
    env = {e["name"]: e.get("value") for e in api.get("env", [])}
    assert env["CONFCAST_SEGMENT"] == segment
    ledger = next(m for m in api["volumeMounts"] if m["mountPath"].endswith(".confcast-ledger"))
    assert ledger["mountPath"] == segment + ".confcast-ledger" and not ledger.get("readOnly", False)
    segment_dir = next(m for m in api["volumeMounts"] if m["mountPath"] == str(Path(segment).parent))
    assert segment_dir["readOnly"] is True
