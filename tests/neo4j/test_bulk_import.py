"""The bulk path end to end: import files through ``neo4j-admin database import full`` into a
local server of its own (a temporary workspace on a free port: the import stops and starts the
server, which the suite's shared server must never be), compared with the batched path."""

from __future__ import annotations

import csv
import re
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import neo4j_local
from app.neo4j_local.importer import LocalGraphImport
from graph import cypher
from graph.schema import Label, Rel
from graph.settings import Settings
from graph.store import GraphStore
from graph.stores import open_store
from graph.stores.neo4j_store import Neo4jStore
from loaders.graph_csv import ARRAY_DELIMITER, CsvGraphSink
from loaders.graph_import import BATCHED, BULK, replay
from loaders.load import load_bundle
from loaders.synthetic import generate
from tests.conftest import clear_store
from tests.unit.test_graph_csv import HOSTILE, _arrow

pytestmark = pytest.mark.neo4j

VOLATILE = {(Label.LOAD_RUN.value, "loaded_at")}


def _quiet(_text: str) -> None:
    pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings(workspace: Path, port: int, **extra: Any) -> Settings:
    return Settings({"workspace": str(workspace), "store": f"bolt://127.0.0.1:{port}", "neo4j_bolt_port": port,
                     "neo4j_heap": "1g", "neo4j_pagecache": "512m", "hash_salt": "bulk-import-test", **extra},
                    environ={})


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A local server of a temporary workspace, stopped at the end."""
    settings = _settings(tmp_path_factory.mktemp("bulk") / "ws", _free_port())
    neo4j_local.start(settings, echo=_quiet)
    try:
        yield settings
    finally:
        neo4j_local.stop(settings)


# Operators whose names, indicator values and sources hold every hard text (a line break only
# where it is not a node key: an indicator's value is part of its key), inside other text
# because the bundle reader trims each field (and quarantines an id with a control character).
CONTROL = r"[\x00-\x1f\x7f-\x9f]"
HOSTILE_OPERATORS = [
    {"operator_id": f"op-hostile-{i}", "name": f"op {text} end", "indicator_type": "device",
     "indicator_value": f"dev {re.sub(CONTROL, ' ', text)} end",
     "source": f"feed {text} end", "confidence": str(0.25 + i / 100)}
    for i, text in enumerate(t for t in HOSTILE if "\x00" not in t)
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small world, with the hostile operators added (its prompt templates carry line breaks)."""
    out = tmp_path_factory.mktemp("bundle") / "small"
    generate(out, "small", 7)
    with (out / "operators.csv").open("a", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(HOSTILE_OPERATORS[0]), quoting=csv.QUOTE_ALL)
        writer.writerows(HOSTILE_OPERATORS)
    return out


def _dump(store: GraphStore) -> tuple[dict[Any, Any], dict[Any, Any]]:
    nodes = {(n.label, n.key): {k: v for k, v in n.props.items() if (n.label, k) not in VOLATILE}
             for label in Label for n in store.iter_nodes(label)}
    rels = {r.ref: r.props for rel in Rel for r in store.iter_relationships(rel)}
    return nodes, rels


@pytest.mark.parametrize("feed", [list, _arrow], ids=["rows", "arrow"])
def test_hostile_text_and_every_type_survive_the_importer(local: Settings, tmp_path: Path, feed: Any) -> None:
    with open_store(local) as store:
        assert isinstance(store, Neo4jStore)
        sink = CsvGraphSink(tmp_path / "csv")
        sink.nodes(Label.PROMPT_TEMPLATE, feed([
            {"template_id": f"t{i}", "template": text, "example": text[::-1], "capability": "code", "cot": i % 2 == 1}
            for i, text in enumerate(HOSTILE)]))
        if feed is list:  # a key with a line break: that import reads multi-line fields
            sink.nodes(Label.DEVICE, [{"device_id": "dev\r\n1"}])
        sink.nodes(Label.ACCOUNT, [
            {"account_id": "a1", "exchanges": 2**62, "score": 0.1, "models": ["m 1", 'm"2'], "country": None},
            {"account_id": "a2", "exchanges": 2, "score": 1e-300, "models": [], "country": ""},
            {"account_id": "a3", "exchanges": 2.5, "score": 3.0, "models": [f"x{ARRAY_DELIMITER}y"]},
        ])
        sink.relationships(Rel.SENT_TEMPLATE, Label.ACCOUNT, Label.PROMPT_TEMPLATE, [
            {"start": "a1", "end": "t1", "count": 3, "first_seen": "2025-01-01T00:00:00Z"},
            {"start": "a1", "end": "t1", "count": 4, "first_seen": "2025-01-02T00:00:00Z"},
            {"start": "a9", "end": "t-new", "count": 1},
        ])
        plan = sink.finish()
        LocalGraphImport(local, store, echo=_quiet).run(plan)
        replay(store, plan)
        for i, text in enumerate(HOSTILE):
            node = store.get_node(Label.PROMPT_TEMPLATE, f"t{i}")
            assert node is not None
            assert node.props == {"template": text, "example": text[::-1],
                                  "capability": "code", "cot": i % 2 == 1}, repr(text)
        props = {k: store.get_node(Label.ACCOUNT, k).props for k in ("a1", "a2", "a3")}  # type: ignore[union-attr]
        assert props["a1"] == {"exchanges": 2**62, "score": 0.1, "models": ["m 1", 'm"2']}
        assert props["a2"] == {"exchanges": 2, "score": 1e-300, "models": [], "country": ""}
        assert props["a3"] == {"exchanges": 2.5, "score": 3.0, "models": [f"x{ARRAY_DELIMITER}y"]}
        sent = {r.ref: r.props for r in store.iter_relationships(Rel.SENT_TEMPLATE)}
        assert sent == {
            (("Account", "a1"), "SENT_TEMPLATE", ("PromptTemplate", "t1")): {"count": 4, "first_seen": "2025-01-02T00:00:00Z"},
            (("Account", "a9"), "SENT_TEMPLATE", ("PromptTemplate", "t-new")): {"count": 1},
        }
        assert store.get_node(Label.ACCOUNT, "a9") is not None
        assert (store.get_node(Label.DEVICE, "dev\r\n1") is not None) == (feed is list)
        assert not any(g.multiline for g in plan.nodes if g.name == "PromptTemplate")
        constraints = {r["name"] for r in store.driver.execute_query("SHOW CONSTRAINTS YIELD name", bookmark_manager_=None)[0]}
        indexes = {r["name"] for r in store.driver.execute_query("SHOW INDEXES YIELD name", bookmark_manager_=None)[0]}
        for statement in cypher.schema_statements():
            name = statement.split()[2]
            assert name in (constraints if "CONSTRAINT" in statement else indexes)
        clear_store(store)


def test_a_fresh_load_imports_the_graph_the_batched_path_writes(local: Settings, bundle: Path, tmp_path: Path) -> None:
    with open_store(local) as store:
        clear_store(store)
        first = load_bundle(bundle, local, store, importer=LocalGraphImport(local, store, echo=_quiet))
        assert first.graph_write is not None and first.graph_write.path == BULK
        data = first.to_json()
        assert data["graph_path"] == BULK
        assert data["graph_write"]["relationships"] == sum(
            n for name, n in first.graph.items() if name in {r.value for r in Rel})
        assert data["graph_write"]["imported"]["relationships"] > 0
        imported = _dump(store)
        assert {label for label, _ in imported[0]} >= {"Account", "IP", "PromptTemplate", "Device", "Operator"}
        # The world's text with line breaks (prompt templates, names, sources) is set after the import.
        assert data["graph_write"]["imported"]["replayed"] > len(HOSTILE_OPERATORS)
        assert any("\n" in str(props.get("template", "")) for (label, _), props in imported[0].items()
                   if label == "PromptTemplate")
        for op in HOSTILE_OPERATORS:
            assert imported[0][("Operator", op["operator_id"])] == {"name": op["name"]}
            indicator = f"device:{op['indicator_value']}"
            assert imported[0][("Indicator", indicator)] == {"type": "device", "value": op["indicator_value"]}
            ref = (("Operator", op["operator_id"]), "HAS_INDICATOR", ("Indicator", indicator))
            assert imported[1][ref] == {"source": op["source"], "confidence": float(op["confidence"])}

        second = load_bundle(bundle, local, store, importer=LocalGraphImport(local, store, echo=_quiet))
        assert second.graph_write is not None and second.graph_write.path == BATCHED
        assert second.to_json()["graph_write"]["batched_because"] == "the database already holds a graph"
        assert second.graph == first.graph
        assert _dump(store) == imported

        clear_store(store)
        batched_settings = _settings(tmp_path / "ws-batched", int(local["neo4j_bolt_port"]), neo4j_bulk_import="off")
        batched = load_bundle(bundle, batched_settings, store,
                              importer=LocalGraphImport(batched_settings, store, echo=_quiet))
        assert batched.graph_write is not None and batched.graph_write.path == BATCHED
        assert batched.graph_write.reason == "neo4j_bulk_import is off"
        assert batched.graph == first.graph
        batched_graph = _dump(store)
        assert store.counts() == {
            "nodes": dict(sorted(Counter(label for label, _ in batched_graph[0]).items())),
            "relationships": dict(sorted(Counter(rel for _, rel, _ in batched_graph[1]).items())),
        }
        assert batched_graph[0] == imported[0]
        assert batched_graph[1] == imported[1]


def test_hub_templates_take_the_same_shape_on_both_paths(local: Settings, bundle: Path, tmp_path: Path) -> None:
    """A template over ``graph_template_hub_senders`` is imported as its node with its counts and
    no SENT_TEMPLATE, as the batched path writes it."""
    port = int(local["neo4j_bolt_port"])
    hubby = _settings(local.workspace, port, graph_template_hub_senders=5)
    with open_store(hubby) as store:
        clear_store(store)
        first = load_bundle(bundle, hubby, store, importer=LocalGraphImport(hubby, store, echo=_quiet))
        assert first.graph_write is not None and first.graph_write.path == BULK
        imported = _dump(store)
        staged = {key for (label, key), props in imported[0].items()
                  if label == Label.PROMPT_TEMPLATE.value and props.get("uses_staged") is True}
        assert staged and all(int(imported[0][(Label.PROMPT_TEMPLATE.value, k)]["accounts"]) > 5 for k in staged)
        assert not [ref for ref in imported[1] if ref[1] == Rel.SENT_TEMPLATE.value and ref[2][1] in staged]
        clear_store(store)
        batched_settings = _settings(tmp_path / "ws-batched", port, neo4j_bulk_import="off", graph_template_hub_senders=5)
        batched = load_bundle(bundle, batched_settings, store)
        assert batched.graph_write is not None and batched.graph_write.path == BATCHED
        assert _dump(store) == imported
        clear_store(store)


def test_another_workspace_server_or_a_remote_one_is_refused(local: Settings, tmp_path: Path) -> None:
    with open_store(local) as store:
        other = _settings(tmp_path / "other", int(local["neo4j_bolt_port"]))
        assert "no local server of workspace" in (LocalGraphImport(other, store).refusal() or "")
        remote = Settings({"workspace": str(local.workspace), "store": "bolt://db.example.org:7687",
                           "neo4j_bolt_port": local["neo4j_bolt_port"]}, environ={})
        assert "is not the local server" in (LocalGraphImport(remote, store).refusal() or "")
        assert LocalGraphImport(local, store).refusal() is None


def test_the_local_server_is_found_by_the_store_uri_whatever_the_port_setting(local: Settings) -> None:
    """`sybilscope load --store bolt://127.0.0.1:PORT` into a workspace's server started on
    PORT takes the bulk path even when SYBILSCOPE_NEO4J_BOLT_PORT is not set in the load's
    shell; the import then restarts the server on PORT, not on the default port."""
    port = int(local["neo4j_bolt_port"])
    unset = Settings({"workspace": str(local.workspace), "store": f"bolt://127.0.0.1:{port}"}, environ={})
    assert int(unset["neo4j_bolt_port"]) != port
    with open_store(local) as store:
        importer = LocalGraphImport(unset, store)
        assert importer.refusal() is None
        assert int(importer.settings["neo4j_bolt_port"]) == port
        assert importer.settings.workspace == local.workspace
    elsewhere = Settings({"workspace": str(local.workspace), "store": f"bolt://127.0.0.1:{port + 1}"}, environ={})
    with open_store(local) as store:
        assert "is not the local server" in (LocalGraphImport(elsewhere, store).refusal() or "")
