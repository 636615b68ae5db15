"""The investigation canvas (app/canvas.py): the graph an investigator grows, on the
hand-made fixture world."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import canvas
from graph.evidence import build_evidence
from graph.evidence_style import colour_of
from graph.investigate import evidence
from graph.schema import Label, Rel
from graph.store import GraphStore
from tests.worlds.ui import build_world, ring_ids


@pytest.fixture()
def world(store: GraphStore, tmp_path: Path) -> tuple[GraphStore, Path]:
    """The fixture world on each store kind (the Neo4j one is marked ``neo4j``)."""
    build_world(store, tmp_path, ring=4)
    return store, tmp_path


def test_cluster_view_is_the_evidence_graph_and_expands_one_kind(world: tuple[GraphStore, Path]) -> None:
    store, ws = world
    state = canvas.cluster_view(store, "c-ring", degree_cap=5, workspace=ws)
    graph = build_evidence(store, ["c-ring"], workspace=ws, degree_cap=5)
    # The first view is the evidence graph the exports draw: the same nodes, the same edges.
    assert set(state.nodes) == {canvas.node_id(n.ref) for n in graph.nodes}
    assert set(state.edges) == {canvas.edge_id(r) for r in graph.relationships}
    accounts = {n["key"] for n in state.nodes.values() if n["kind"] == "Account"}
    assert accounts == set(ring_ids(4))
    # The values the ring shares are on view from the start; the carrier NAT (6 accounts > 5) is a hub summary.
    assert {"IP|203.0.113.7", "PaymentMethod|pm-ring", "PromptTemplate|t-cot"} <= set(state.nodes)
    assert "IP|100.64.0.1" not in state.nodes and state.nodes["Hub|IP"]["props"]["hubs"] == 1
    assert state.hubs == {"IP|100.64.0.1": 6}
    assert sum(1 for e in state.edges.values() if e["label"] == "LINKED") == 3
    # Every node has a position, a colour by kind and a size; values by how many members use them.
    assert all("x" in n and n["color"] == colour_of(n["kind"]) for n in state.nodes.values())
    assert state.nodes["PaymentMethod|pm-ring"]["members"] == 4
    # Expanding one kind adds only that kind: r000's IPs, the hub IP held back collapsed.
    before_nodes, before_edges = set(state.nodes), set(state.edges)
    canvas.remove(state, ["IP|203.0.113.7"])
    canvas.expand(state, store, "Account|r000", degree_cap=5, kind="USED_IP")
    new_edges = [state.edges[e] for e in set(state.edges) - before_edges]
    assert new_edges and {e["label"] for e in new_edges} <= {"USED_IP", "HUB"}
    assert {state.nodes[n]["kind"] for n in set(state.nodes) - before_nodes} == {"IP"}
    assert "IP|203.0.113.7" in state.nodes and state.nodes["IP|100.64.0.1"]["label"] == "Hub"
    assert all("x" in state.nodes[n] for n in state.nodes)  # new nodes placed around r000
    ids = {n["data"]["id"] for n in state.elements()["nodes"]}
    assert all(e["data"]["source"] in ids and e["data"]["target"] in ids for e in state.elements()["edges"])
    # Expanding the hub on demand shows its accounts, including the students.
    canvas.expand(state, store, "IP|100.64.0.1", degree_cap=5, kind="USED_IP")
    assert "Account|s1" in state.nodes and "IP|100.64.0.1" not in state.hubs
    assert canvas.remove(state, ["Account|s1"]) == 1
    assert "Account|s1" not in state.nodes
    assert all("Account|s1" not in (e["source"], e["target"]) for e in state.edges.values())


def test_expand_kinds_come_from_the_schema() -> None:
    assert canvas.expand_kinds("IP|1.2.3.4") == ["USED_IP", "IN_NETWORK"]
    assert "LINKED" in canvas.expand_kinds("Account|a") and "ABOUT" not in canvas.expand_kinds("Account|a")
    assert canvas.expand_kinds("Group|IP:1.2.3.4") == ["members"]
    assert canvas.expand_kinds("Hub|IP") == [] and canvas.expand_kinds("BillingPattern|x") == []


def test_collapse_undoes_an_expansion(world: tuple[GraphStore, Path]) -> None:
    store, ws = world
    state = canvas.cluster_view(store, "c-ring", degree_cap=50, workspace=ws)
    canvas.remove(state, ["PromptTemplate|t-cot"])
    before = set(state.nodes)
    canvas.expand(state, store, "Account|r001", degree_cap=50, kind="SENT_TEMPLATE")
    assert set(state.nodes) == before | {"PromptTemplate|t-cot"}
    canvas.collapse(state, "Account|r001")
    # t-cot reaches the view only through r001 now, so it goes again.
    assert set(state.nodes) == before


def test_large_cluster_opens_as_groups_named_by_what_they_share(store: GraphStore, tmp_path: Path) -> None:
    build_world(store, tmp_path, ring=12)
    ring = ring_ids(12)
    # Two device farms inside the ring; everything else is shared by all twelve.
    store.upsert_nodes(Label.DEVICE, [{"device_id": "d1"}, {"device_id": "d2"}])
    store.upsert_relationships(Rel.USED_DEVICE, Label.ACCOUNT, Label.DEVICE,
                               [{"start": a, "end": "d1" if i < 7 else "d2"} for i, a in enumerate(ring)])
    state = canvas.cluster_view(store, "c-ring", degree_cap=50, workspace=tmp_path, group_threshold=10)
    assert not any(n["kind"] == "Account" for n in state.nodes.values())
    # d1 has 7 users (over half of 12) so it stays a value they tie to; d2's five form a group, the rest wait.
    assert state.groups == {"Device:d2": ring[7:], "ungrouped": ring[:7]}
    group = state.nodes["Group|Device:d2"]
    assert group["name"] == "5 accounts · device d2" and state.nodes["Group|ungrouped"]["name"] == "7 other accounts"
    assert state.nodes["Group|ungrouped"]["size"] > group["size"]  # sized by count
    # A group's edges say how many of its accounts use each value, and how strongly it links to other groups.
    assert state.edges["Group|Device:d2>USED_DEVICE>Device|d2"]["count"] == 5
    assert "Group|Device:d2>USED_DEVICE>Device|d1" not in state.edges and state.edges["Group|ungrouped>USED_DEVICE>Device|d1"]["count"] == 7
    [between] = [e for e in state.edges.values() if e["label"] == "LINKED"]
    assert {between["source"], between["target"]} == {"Group|Device:d2", "Group|ungrouped"} and between["count"] == 1
    canvas.expand(state, store, "Group|Device:d2", degree_cap=50)
    assert {n["key"] for n in state.nodes.values() if n["kind"] == "Account"} == set(ring[7:])
    assert "Group|Device:d2" not in state.nodes
    # Its four inner links, and the r006-r007 link now drawn to the group still folded.
    assert sum(1 for e in state.edges.values() if e["label"] == "LINKED" and not e.get("group_edge")) == 4
    assert any(e.get("group_edge") and e["label"] == "LINKED" for e in state.edges.values())
    canvas.expand(state, store, "Group|ungrouped", degree_cap=50)
    assert {n["key"] for n in state.nodes.values() if n["kind"] == "Account"} == set(ring)
    # All 11 chain links, including r006-r007 across the two groups; no group edge is left.
    assert sum(1 for e in state.edges.values() if e["label"] == "LINKED") == 11
    assert not any(e.get("group_edge") for e in state.edges.values())


def test_filters_by_link_weight_and_time_window(world: tuple[GraphStore, Path]) -> None:
    store, ws = world
    state = canvas.cluster_view(store, "c-ring", degree_cap=5, workspace=ws)
    state.edges["Account|r000>LINKED>Account|r001"]["weight"] = 0.3
    nodes, edges = canvas.visible(state)
    assert len(edges) == len(state.edges)
    _, strong = canvas.visible(state, canvas.ViewFilter(min_weight=0.5))
    assert {e["id"] for e in edges} - {e["id"] for e in strong} == {"Account|r000>LINKED>Account|r001"}
    # The ring's IP was used 2025-04-22..25: a window after that hides it and its uses, not the accounts.
    assert canvas.time_span(state) == ("2025-04-22", "2025-04-25")
    later_nodes, later_edges = canvas.visible(state, canvas.ViewFilter(window=("2025-04-26", "2025-05-30")))
    kept = {n["id"] for n in later_nodes}
    assert "IP|203.0.113.7" not in kept and "Account|r000" in kept
    assert not any("IP|203.0.113.7" in (e["source"], e["target"]) for e in later_edges)
    during = {n["id"] for n in canvas.visible(state, canvas.ViewFilter(window=("2025-04-20", "2025-04-22")))[0]}
    assert "IP|203.0.113.7" in during
    data = canvas.canvas_data(state, canvas.ViewFilter(min_weight=0.5), selected="Account|r000")
    assert len(data["edges"]) == len(strong) and data["selected"] == "Account|r000"
    assert {row[0] for row in data["legend"]} >= {"Account", "IP", "PaymentMethod", "Hub"}


def test_selection_drives_the_pair_pickers(world: tuple[GraphStore, Path]) -> None:
    store, ws = world
    state = canvas.cluster_view(store, "c-ring", degree_cap=5, workspace=ws)
    assert canvas.selected_accounts(state, "Account|r001", None) == ["r001"]
    assert canvas.selected_accounts(state, None, "Account|r000>LINKED>Account|r001") == ["r000", "r001"]
    assert canvas.selected_accounts(state, "IP|203.0.113.7", None) == []
    # r001 is linked to r000 and r002 (the chain), and shares values with r003 too.
    assert canvas.pair_candidates(state, "r001")[:2] in (["r000", "r002"], ["r002", "r000"])
    assert set(canvas.pair_candidates(state, "r001")) == {"r000", "r002", "r003"}
    assert canvas.pick_order(state, "Account|r002")[0] == "Account|r002"
    assert [">LINKED>" in e for e in canvas.edges_of(state, "Account|r001")][:3] == [True, True, False]


def test_edge_evidence_reads_the_edge_id(world: tuple[GraphStore, Path]) -> None:
    """An edge of the view asks graph.investigate about the two nodes and the type it names."""
    store, ws = world
    pair = canvas.edge_evidence(store, ws, "Account|r000>LINKED>Account|r001", hub_cap=5)
    assert pair["kind"] == "pair" and (pair["a"], pair["b"]) == ("r000", "r001")
    assert pair == evidence.relationship_evidence(store, ws, ("Account", "r000"), "LINKED", ("Account", "r001"), hub_cap=5)
    used = canvas.edge_evidence(store, ws, "Account|r002>USED_IP>IP|203.0.113.7")
    assert used["kind"] == "relationship" and used["start"] == ("Account", "r002") and used["end"] == ("IP", "203.0.113.7")
    assert [r["account_id"] for r in used["source_rows"]] == ["r002"] * 3
