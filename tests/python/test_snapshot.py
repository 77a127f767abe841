"""confcast.Snapshot: an immutable Mapping of one version with dotted-path access.
Built directly here (no segment needed) and through a real subscriber."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Mapping

import pytest

import confcast

CONFIG = {
    "llm": {"model": "gpt-4o", "temperature": 0.5, "max_retries": 3, "endpoint": None},
    "toolsets": {"kubernetes/core": {"enabled": True, "config": {"namespaces": ["default", {"name": "x"}]}}},
    "log_level": "INFO",
}


@pytest.fixture
def snap() -> confcast.Snapshot:
    return confcast.Snapshot(CONFIG, 7, "ab" * 32)


def test_is_a_mapping_with_version_and_sha256(snap):
    assert isinstance(snap, Mapping)
    assert snap.version == 7 and snap.sha256 == "ab" * 32
    assert set(snap) == {"llm", "toolsets", "log_level"} and len(snap) == 3
    assert "llm" in snap and "nope" not in snap
    assert snap["llm"]["model"] == "gpt-4o"
    assert snap.to_dict() == CONFIG
    assert snap == confcast.Snapshot(CONFIG, 7, "ab" * 32)  # Mapping equality (lists are tuples inside)


def test_dotted_paths_including_list_indices(snap):
    assert snap.get("llm.model") == "gpt-4o"
    assert snap.get("llm.endpoint", "default") is None  # present and null is not missing
    assert snap.get("llm.nope", "default") == "default"
    assert snap.get("toolsets.kubernetes/core.config.namespaces.0") == "default"
    assert snap.get("toolsets.kubernetes/core.config.namespaces.1.name") == "x"
    assert snap.get("toolsets.kubernetes/core.config.namespaces.2") is None
    assert snap.require("llm.max_retries") == 3
    with pytest.raises(confcast.KeyNotFound):
        snap.require("llm.nope")


def test_missing_top_level_key_raises_key_not_found(snap):
    with pytest.raises(KeyError):
        snap["nope"]
    with pytest.raises(confcast.KeyNotFound):
        snap["nope"]


def test_refuses_every_kind_of_change(snap):
    with pytest.raises(TypeError):
        snap["llm"] = {}
    with pytest.raises(TypeError):
        del snap["llm"]
    with pytest.raises(TypeError):
        snap.version = 8
    with pytest.raises(TypeError):
        snap.anything = 1
    with pytest.raises(TypeError):
        snap["llm"]["model"] = "other"
    with pytest.raises(TypeError):
        snap["toolsets"]["kubernetes/core"]["config"]["namespaces"][0] = "other"
    with pytest.raises(AttributeError):
        snap["toolsets"]["kubernetes/core"]["config"]["namespaces"].append("other")
    assert isinstance(snap.get("toolsets.kubernetes/core.config.namespaces"), tuple)


def test_is_not_affected_by_changes_to_its_source():
    source = copy.deepcopy(CONFIG)
    snap = confcast.Snapshot(source, 1, "")
    source["llm"]["model"] = "changed"
    source["toolsets"]["kubernetes/core"]["config"]["namespaces"].append("new")
    assert snap.get("llm.model") == "gpt-4o"
    assert len(snap.get("toolsets.kubernetes/core.config.namespaces")) == 2


def test_to_dict_is_a_plain_mutable_copy(snap):
    plain = snap.to_dict()
    assert plain == CONFIG and type(plain["toolsets"]["kubernetes/core"]["config"]["namespaces"]) is list
    plain["llm"]["model"] = "mine"
    assert snap["llm"]["model"] == "gpt-4o"


def test_copies_and_pickles(snap):
    assert copy.copy(snap) is snap and copy.deepcopy(snap) is snap
    clone = pickle.loads(pickle.dumps(snap))
    assert clone == snap and clone.version == 7 and clone.sha256 == snap.sha256


def test_snapshot_from_the_segment_is_frozen_all_the_way_down(subscriber):
    snap = subscriber.snapshot()
    assert isinstance(snap, confcast.Snapshot)
    with pytest.raises(TypeError):
        snap["llm"]["model"] = "x"
    with pytest.raises(TypeError):
        snap["toolsets"]["kubernetes/core"]["enabled"] = False
    assert snap["toolsets"]["kubernetes/core"]["config"]["namespaces"] == ("default", "monitoring", "kube-system")
    # the defaults of the built-in schema are applied by the publisher
    assert snap.get("llm.timeout_seconds") == 60


def test_maps_are_read_only_dicts(snap):
    """A snapshot's maps are dicts that refuse every change: code written for the plain dicts the
    HolmesGPT API handed out (isinstance, json.dumps) works, and nobody can change what every
    reader of the version shares."""
    llm = snap["llm"]
    assert isinstance(llm, dict) and isinstance(snap["toolsets"]["kubernetes/core"], dict)
    assert json.loads(json.dumps(snap)) == CONFIG  # lists come back as lists from JSON
    assert snap.get("llm") is llm and snap.get("toolsets.kubernetes/core") is snap["toolsets"]["kubernetes/core"]
    refused = [lambda: llm.__setitem__("model", "x"), lambda: llm.__delitem__("model"), llm.clear, llm.popitem,
               lambda: llm.pop("model"), lambda: llm.setdefault("new", 1), lambda: llm.update(model="x")]
    for change in refused:
        with pytest.raises(TypeError):
            change()
    with pytest.raises(TypeError):
        llm |= {"model": "x"}
    llm.__init__({"model": "x"})  # what dict.__init__ would refill in place
    assert llm == CONFIG["llm"]
    plain = llm.copy()
    assert type(plain) is dict and plain == CONFIG["llm"]
    plain["model"] = "mine"
    assert llm["model"] == "gpt-4o"
    assert copy.copy(llm) is llm and copy.deepcopy(llm) is llm
    clone = pickle.loads(pickle.dumps(llm))
    assert type(clone) is type(llm) and clone == llm
    with pytest.raises(TypeError):
        clone["model"] = "x"
