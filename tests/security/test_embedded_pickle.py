"""A pickle planted in a workspace never runs: the store refuses it and points at ``sybilscope
migrate``; migrate itself admits only graph classes, and converts a real old workspace exactly."""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from graph.stores.embedded import GRAPH_FILE, LEGACY_FILE, EmbeddedStore, LegacyGraphFile
from graph.workspace import embedded_dir
from tests.security.helpers import run, same


class Payload:
    """What an attacker plants: unpickling it runs a shell command (here: creating a marker)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def plant(directory: Path, name: str, marker: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(pickle.dumps(Payload(marker)))
    return path


def test_the_payload_does_run_when_unpickled(tmp_path: Path) -> None:
    """The planted file below is a real exploit: unpickling it creates the marker."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Payload(marker)))  # the test's own payload, to prove it works
    assert marker.exists()


def test_stats_in_someone_elses_directory_refuses_a_planted_pickle(tmp_path: Path) -> None:
    their_dir, marker = tmp_path / "their-checkout", tmp_path / "pwned"
    planted = plant(embedded_dir(their_dir / ".sybilscope"), LEGACY_FILE, marker)
    result = run("stats", cwd=their_dir)  # the default workspace: ./.sybilscope
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(planted) in lines[0] and "sybilscope migrate --workspace" in lines[0]
    assert "Traceback" not in result.stderr
    assert not marker.exists()
    assert planted.exists() and not (planted.parent / GRAPH_FILE).exists()


def test_a_pickle_under_the_new_name_is_refused_as_not_a_graph_file(tmp_path: Path) -> None:
    ws, marker = tmp_path / "ws", tmp_path / "pwned"
    plant(embedded_dir(ws), GRAPH_FILE, marker)
    result = run("stats", "--workspace", str(ws))
    assert result.returncode != 0
    assert "is not a readable embedded graph" in result.stderr
    assert not marker.exists()


def test_the_store_itself_never_unpickles(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    directory = tmp_path / "embedded"
    plant(directory, LEGACY_FILE, marker)
    with pytest.raises(LegacyGraphFile, match="sybilscope migrate"):
        EmbeddedStore(directory)
    assert not marker.exists()


def test_migrate_refuses_a_planted_payload_even_with_yes(tmp_path: Path) -> None:
    ws, marker = tmp_path / "ws", tmp_path / "pwned"
    planted = plant(embedded_dir(ws), LEGACY_FILE, marker)
    result = run("migrate", "--workspace", str(ws), "--yes")
    assert result.returncode != 0
    assert "posix.system" in result.stderr and "refused, not loaded" in result.stderr
    assert not marker.exists()
    assert planted.exists() and not (planted.parent / GRAPH_FILE).exists()


def test_migrate_refuses_a_pickle_other_users_can_write(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    legacy = embedded_dir(ws) / LEGACY_FILE
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(pickle.dumps(nx.MultiDiGraph()))
    legacy.chmod(0o666)
    result = run("migrate", "--workspace", str(ws), "--yes")
    assert result.returncode != 0
    assert str(legacy) in result.stderr and "chmod go-w" in result.stderr
    assert legacy.exists() and not (legacy.parent / GRAPH_FILE).exists()


# ---- a real old workspace ------------------------------------------------------------------------


def old_store_graph() -> nx.MultiDiGraph:
    """A graph as the old store held it: written through the contract and the store's hooks
    (values the contract now refuses included), its views used so networkx cached them."""
    store = EmbeddedStore(None)
    store.upsert_nodes("Account", [
        {"account_id": "a1", "country": "DE", "exchanges": 10, "score": 0.1, "big": 2**63 - 1,
         "flagged": True, "models": ["m1", "m2"], "nan": math.nan, "neg_zero": -0.0, "counts": [1, 2],
         "flags": [True, False], "scores": [0.5, math.inf], "empty": []},
        {"account_id": "a2", "note": "NUL\x00 bell\x07 esc\x1b[31m\n\r\t \u2028 \ufeff Zürich ✓ \U0001f600"},
    ])
    store.upsert_relationships("USED_IP", "Account", "IP", [
        {"start": "a1", "end": "10.0.0.1", "count": 3, "first_seen": "2025-04-22T00:00:00Z"},
        {"start": "a2", "end": "10.0.0.1"},
    ])
    store.upsert_relationships("PAID_WITH", "Account", "PaymentMethod", [{"start": "a1", "end": "pm1"}])
    store._upsert_nodes("Account", "account_id", [
        {"key": "acct-\x00nul-\ud800", "props": {"note\udfff": "lone \ud800 and pair \ud83d\ude00", "huge": 2**80}}])
    store._upsert_relationships("USED_IP", "Account", "IP", [
        {"start": "acct-\x00nul-\ud800", "end": "10.0.0.1", "props": {"tuple": (1, 2)}}])
    store.counts(), store.find_nodes("Account"), list(store.iter_relationships("USED_IP"))
    graph = store.graph
    graph.adj, graph.succ, graph.pred, graph.in_edges, graph.out_edges, graph.degree  # noqa: B018
    return graph


def expected_props(props: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in props.items()}


def test_migrate_converts_a_real_old_workspace_exactly(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    directory = embedded_dir(ws)
    directory.mkdir(parents=True)
    original = old_store_graph()
    with open(directory / LEGACY_FILE, "wb") as fh:  # as the old store wrote it
        pickle.dump(original, fh, protocol=pickle.HIGHEST_PROTOCOL)

    declined = run("migrate", "--workspace", str(ws), stdin="n\n")
    assert declined.returncode != 0
    assert "unpickle" in declined.stdout and "code" in declined.stdout
    assert (directory / LEGACY_FILE).exists() and not (directory / GRAPH_FILE).exists()

    result = run("migrate", "--workspace", str(ws), stdin="y\n")
    assert result.returncode == 0, result.stderr
    assert "migrated 5 nodes and 4 relationships" in result.stdout
    assert not (directory / LEGACY_FILE).exists()
    assert (directory / f"{LEGACY_FILE}.migrated").exists()

    migrated = EmbeddedStore(directory).graph
    assert set(migrated.nodes) == set(original.nodes)
    for node, props in original.nodes(data=True):
        assert same(migrated.nodes[node], expected_props(props)), node
    assert set(migrated.edges(keys=True)) == set(original.edges(keys=True))
    for u, v, k, props in original.edges(keys=True, data=True):
        assert same(migrated.edges[u, v, k], expected_props(props)), (u, v, k)
    assert migrated.graph == {}  # nothing but nodes, relationships and properties came over

    again = run("migrate", "--workspace", str(ws), "--yes")
    assert again.returncode == 0 and "nothing to migrate" in again.stdout
    stats = run("stats", "--json", "--workspace", str(ws))
    assert stats.returncode == 0, stats.stderr
    assert '"USED_IP": 3' in stats.stdout


def test_migrate_refuses_a_pickle_that_is_no_store_graph(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    directory = embedded_dir(ws)
    directory.mkdir(parents=True)
    graph = nx.MultiDiGraph()
    graph.add_node(("Account", "a1"), nested={"a": 1})
    (directory / LEGACY_FILE).write_bytes(pickle.dumps(graph))
    result = run("migrate", "--workspace", str(ws), "--yes")
    assert result.returncode != 0
    assert "not a graph the store wrote" in result.stderr and "'nested'" in result.stderr
    assert (directory / LEGACY_FILE).exists() and not (directory / GRAPH_FILE).exists()
