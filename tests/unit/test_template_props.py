"""The templates' properties held column-wise (graph.linkage.template_props): the same answers
as one dict per template, without a Python object per withheld template."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from graph.linkage.facts import read_facts
from graph.linkage.template_props import TemplateProps
from graph.scoring import account_profiles
from graph.settings import Settings
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir
from loaders.load import load_bundle
from tests.worlds.bundles import write_bundle

HOSTILE = "fix\x00 this \u202egnirts\\ud800 <*>"


def _table() -> pa.Table:
    return pa.table({
        "template_id": ["t1", "t2", "t3"],
        "template": [HOSTILE, "prove that <*>", None],
        "example": ["fix\x00 this \u202egnirts\\ud800 now", "Prove that 7 is prime", "hello there"],
        "capability": ["coding", None, "math"],
        "cot": [False, True, None],
    })


def test_rows_read_back_as_the_dicts_they_replace() -> None:
    props = TemplateProps(_table(), {"t9": {"template": "graph only", "capability": "agentic"}, "t1": {"template": "stale"}})
    assert props["t1"] == {"template": HOSTILE, "example": "fix\x00 this \u202egnirts\\ud800 now", "capability": "coding", "cot": False}
    assert props["t2"]["capability"] == "other" and props["t2"]["cot"] is True
    assert props["t3"]["template"] is None and props["t3"]["cot"] is False
    assert props["t9"]["template"] == "graph only"  # a graph node staging lacks; staging wins for t1
    assert props.get("h:abc") == {"hashed": True} and "h:abc" in props
    assert props.get("nope") is None and "nope" not in props
    with pytest.raises(KeyError):
        props["nope"]
    assert list(props) == ["t1", "t2", "t3", "t9"] and len(props) == 4


def test_profile_columns_and_containing_match_a_scan_of_every_dict() -> None:
    props = TemplateProps(_table(), {"t9": {"template": "GRAPH only", "capability": "agentic", "cot": True}})
    keys = ["t3", "h:zz", "t9", "t1", "t2"]
    names, capability, cot, read = props.profile_columns(keys)
    assert [names[c] for c in capability.tolist()] == ["math", "other", "agentic", "coding", "other"]
    assert cot.tolist() == [False, False, True, False, True]
    assert read.tolist() == [True, False, True, True, True]
    for needle in ("PROVE", "graph", "\u202egnirts", "nothing like it"):
        scan = {k for k in props if needle.lower() in f"{props[k].get('template') or ''}\n{props[k].get('example') or ''}".lower()}
        assert props.containing(needle) == scan


def test_read_facts_keeps_no_dict_for_withheld_templates(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "bundle", {
        "accounts.csv": "account_id,created_at\na1,2025-01-01T00:00:00Z\na2,2025-01-01T00:00:00Z\n",
        "exchanges.jsonl": "\n".join([
            '{"exchange_id": "e1", "account_id": "a1", "ts": "2025-04-22T10:00:00Z", "prompt_hash": "aaa"}',
            '{"exchange_id": "e2", "account_id": "a2", "ts": "2025-04-22T10:00:00Z", "prompt_hash": "aaa"}',
            '{"exchange_id": "e3", "account_id": "a1", "ts": "2025-04-22T10:00:00Z", "prompt": "is 7 a prime number?"}',
            '{"exchange_id": "e4", "account_id": "a2", "ts": "2025-04-22T10:00:00Z", "prompt": "is 7 a prime number?"}',
        ]) + "\n",
    })
    ws = tmp_path / "ws"
    store = EmbeddedStore(embedded_dir(ws))
    load_bundle(bundle, Settings({"workspace": str(ws), "hash_salt": "pepper"}, environ={}), store)
    facts = read_facts(store, ws)
    templates = facts.entities["PromptTemplate"]
    assert isinstance(templates, TemplateProps)
    assert "h:aaa" in {n.key for n in store.iter_nodes("PromptTemplate")}  # the graph holds the shared hash
    assert "h:aaa" not in list(templates) and templates["h:aaa"] == {"hashed": True}
    readable = [k for k in templates if not k.startswith("h:")]
    assert len(readable) == 1 and templates[readable[0]]["capability"] == "math"
    profiles = account_profiles(facts)
    # the withheld prompt counts for nothing in the capability mix; the readable one as math
    assert profiles["a1"].capabilities == {"math": 1} and profiles["a2"].capabilities == {"math": 1}
