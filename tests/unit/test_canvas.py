"""The investigation canvas (app/canvas.py): the graph an investigator grows, on the
hand-made fixture world."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import canvas
from graph.investigate import evidence
from graph.schema import Label, Rel
from graph.store import GraphStore
from tests.worlds.ui import build_world, ring_ids


@pytest.fixture()
def world(store: GraphStore, tmp_path: Path) -> tuple[GraphStore, Path]:
    """The fixture world on each store kind (the Neo4j one is marked ``neo4j``)."""
    build_world(store, tmp_path, ring=4)
    return store, tmp_path


def test_cluster_view_expand_hides_hubs_and_remove(world: tuple[GraphStore, Path]) -> None:
    store, _ = world
    state = canvas.cluster_view(store, "c-ring", degree_cap=5)
    accounts = {n["key"] for n in state.nodes.values() if n["kind"] == "Account"}
    assert accounts == set(ring_ids(4))
    assert all(n["label"] == "AccountHigh" for n in state.nodes.values() if n["kind"] == "Account")
    assert sum(1 for e in state.edges.values() if e["label"] == "LINKED") == 3
    assert "Operator|op-known" in state.nodes
    added = canvas.expand(state, store, "Account|r000", degree_cap=5)
    # r000's own IP, card and template come in; the carrier NAT IP (6 accounts > cap 5) is a hub.
    assert {"IP|203.0.113.7", "PaymentMethod|pm-ring", "PromptTemplate|t-cot"} <= set(state.nodes)
    assert added >= 3
    assert state.hubs == {"IP|100.64.0.1": 6}
    assert state.nodes["IP|100.64.0.1"]["label"] == "Hub"
    # Elements never carry an edge whose end is missing (the component would fail).
    ids = {n["data"]["id"] for n in state.elements()["nodes"]}
    assert all(e["data"]["source"] in ids and e["data"]["target"] in ids for e in state.elements()["edges"])
    # Expanding the hub on demand shows its accounts, including the students.
    canvas.expand(state, store, "IP|100.64.0.1", degree_cap=5)
    assert "Account|s1" in state.nodes and "IP|100.64.0.1" not in state.hubs
    assert canvas.remove(state, ["Account|s1"]) == 1
    assert "Account|s1" not in state.nodes
    assert all("Account|s1" not in (e["source"], e["target"]) for e in state.edges.values())


def test_collapse_undoes_an_expansion(world: tuple[GraphStore, Path]) -> None:
    store, _ = world
    state = canvas.cluster_view(store, "c-ring", degree_cap=50)
    before = set(state.nodes)
    canvas.expand(state, store, "Account|r001", degree_cap=50)
    assert set(state.nodes) > before
    canvas.collapse(state, "Account|r001")
    # Shared values also reach r000/r002 only through r001 in this view, so all go again.
    assert set(state.nodes) == before


def test_large_cluster_opens_as_groups(store: GraphStore, tmp_path: Path) -> None:
    build_world(store, tmp_path, ring=12)
    ring = ring_ids(12)
    # Two device farms inside the ring; everything else is shared by all twelve.
    store.upsert_relationships(Rel.USED_DEVICE, Label.ACCOUNT, Label.DEVICE,
                               [{"start": a, "end": "d1" if i < 7 else "d2"} for i, a in enumerate(ring)])
    state = canvas.cluster_view(store, "c-ring", degree_cap=50, group_threshold=10, hub_cap=50)
    assert not any(n["kind"] == "Account" for n in state.nodes.values())
    # d1 has 7 users (over half of 12) so it is skipped; d2's five form a group, the rest wait.
    assert state.groups == {"Device:d2": ring[7:], "ungrouped": ring[:7]}
    assert set(state.nodes) >= {"Group|Device:d2", "Group|ungrouped"}
    canvas.expand(state, store, "Group|Device:d2", degree_cap=50)
    assert {n["key"] for n in state.nodes.values() if n["kind"] == "Account"} == set(ring[7:])
    assert sum(1 for e in state.edges.values() if e["label"] == "LINKED") == 4
    canvas.expand(state, store, "Group|ungrouped", degree_cap=50)
    assert {n["key"] for n in state.nodes.values() if n["kind"] == "Account"} == set(ring)
    # All 11 chain links, including r006-r007 across the two groups.
    assert sum(1 for e in state.edges.values() if e["label"] == "LINKED") == 11


def test_dense_clusters_show_each_accounts_strongest_links(store: GraphStore, tmp_path: Path) -> None:
    build_world(store, tmp_path, ring=10)
    ring = ring_ids(10)
    # Make the ring a complete graph: 45 links, r000's to everyone strongest.
    store.upsert_relationships(Rel.LINKED, Label.ACCOUNT, Label.ACCOUNT, [
        {"start": a, "end": b, "weight": 0.99 if a == "r000" else 0.5, "families": ["network"], "reasons": "[]"}
        for i, a in enumerate(ring) for b in ring[i + 1:]
    ])
    state = canvas.cluster_view(store, "c-ring", degree_cap=50)
    shown = [e for e in state.edges.values() if e["label"] == "LINKED"]
    assert len(shown) + state.hidden_links == 45 and state.hidden_links > 0
    # r000's nine strongest links all stay; every account keeps at least a few.
    assert sum(1 for e in shown if "Account|r000" in (e["source"], e["target"])) == 9
    degree = {a: sum(1 for e in shown if f"Account|{a}" in (e["source"], e["target"])) for a in ring}
    assert min(degree.values()) >= canvas.LINKS_PER_ACCOUNT


def test_edge_evidence_reads_the_edge_id(world: tuple[GraphStore, Path]) -> None:
    """An edge of the view asks graph.investigate about the two nodes and the type it names."""
    store, ws = world
    pair = canvas.edge_evidence(store, ws, "Account|r000>LINKED>Account|r001", hub_cap=5)
    assert pair["kind"] == "pair" and (pair["a"], pair["b"]) == ("r000", "r001")
    assert pair == evidence.relationship_evidence(store, ws, ("Account", "r000"), "LINKED", ("Account", "r001"), hub_cap=5)
    used = canvas.edge_evidence(store, ws, "Account|r002>USED_IP>IP|203.0.113.7")
    assert used["kind"] == "relationship" and used["start"] == ("Account", "r002") and used["end"] == ("IP", "203.0.113.7")
    assert [r["account_id"] for r in used["source_rows"]] == ["r002"] * 3
