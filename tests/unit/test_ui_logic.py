"""The UI's computations (app/ui_logic.py) on the hand-made fixture world."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import ui_logic
from graph import cases
from graph.schema import Label, Rel
from graph.store import GraphStore
from graph.stores.embedded import EmbeddedStore
from tests.ui_world import build_world, ring_ids


@pytest.fixture()
def world(store: GraphStore, tmp_path: Path) -> tuple[GraphStore, Path]:
    """The fixture world on each store kind (the Neo4j one is marked ``neo4j``)."""
    build_world(store, tmp_path, ring=4)
    return store, tmp_path


def test_triage_rows_rank_filter_and_sparkline(world: tuple[GraphStore, Path]) -> None:
    store, ws = world
    clusters = ui_logic.load_clusters(store)
    activity = ui_logic.daily_activity(ws, ui_logic.membership(store))
    rows = ui_logic.triage_rows(clusters, activity=activity)
    assert [r["cluster_id"] for r in rows] == ["c-ring", "c-benign"]
    top = rows[0]
    assert top["tokens"] == 6000 and top["span_days"] == 3.0
    assert top["top_indicators"].startswith("shared_payment +0.40")
    assert top["capabilities"] == "reasoning 70%, coding 30%"
    assert top["suggested"] == "Known Lab (0.80)"
    # 4 ring accounts, one exchange each on days 0, 1 and 2 of the shared day axis.
    assert top["activity"][:3] == [4, 4, 4] and sum(top["activity"]) == 12
    assert sum(rows[1]["activity"]) == 10
    assert [r["cluster_id"] for r in ui_logic.triage_rows(clusters, min_score=0.5)] == ["c-ring"]
    assert [r["cluster_id"] for r in ui_logic.triage_rows(clusters, signal="shared_ip")] == ["c-benign"]
    assert [r["cluster_id"] for r in ui_logic.triage_rows(clusters, operator="op-known")] == ["c-ring"]
    assert [r["cluster_id"] for r in ui_logic.triage_rows(clusters, sort_by="size", descending=False)] == ["c-benign", "c-ring"]
    store.upsert_nodes(Label.CLUSTER, [{"cluster_id": "c-old", "score": 0.99, "retired": True, "superseded_by": "c-ring"}])
    assert "c-old" not in [r["cluster_id"] for r in ui_logic.triage_rows(ui_logic.load_clusters(store))]
    assert ui_logic.triage_rows(ui_logic.load_clusters(store), include_retired=True)[0]["cluster_id"] == "c-old"
    cases.set_status(store, "c-ring", "in_progress", who="t")
    assert [r["cluster_id"] for r in ui_logic.triage_rows(ui_logic.load_clusters(store), statuses=["open"])] == ["c-benign"]


def test_attribution_shows_in_triage(world: tuple[GraphStore, Path]) -> None:
    store, _ = world
    cases.attribute(store, "c-ring", who="t", confidence=0.6, rationale="r", operator_name="Acme")
    [ring] = [c for c in ui_logic.load_clusters(store) if c["cluster_id"] == "c-ring"]
    assert ring["attributed_operator"] == "op-acme" and ring["attributed_name"] == "Acme"
    assert ui_logic.triage_rows([ring])[0]["operator"] == "Acme"


def test_cluster_view_expand_hides_hubs_and_remove(world: tuple[GraphStore, Path]) -> None:
    store, _ = world
    state = ui_logic.cluster_view(store, "c-ring", degree_cap=5)
    accounts = {n["key"] for n in state.nodes.values() if n["kind"] == "Account"}
    assert accounts == set(ring_ids(4))
    assert all(n["label"] == "AccountHigh" for n in state.nodes.values() if n["kind"] == "Account")
    assert sum(1 for e in state.edges.values() if e["label"] == "LINKED") == 3
    assert "Operator|op-known" in state.nodes
    added = ui_logic.expand(state, store, "Account|r000", degree_cap=5)
    # r000's own IP, card and template come in; the carrier NAT IP (6 accounts > cap 5) is a hub.
    assert {"IP|203.0.113.7", "PaymentMethod|pm-ring", "PromptTemplate|t-cot"} <= set(state.nodes)
    assert added >= 3
    assert state.hubs == {"IP|100.64.0.1": 6}
    assert state.nodes["IP|100.64.0.1"]["label"] == "Hub"
    # Elements never carry an edge whose end is missing (the component would fail).
    ids = {n["data"]["id"] for n in state.elements()["nodes"]}
    assert all(e["data"]["source"] in ids and e["data"]["target"] in ids for e in state.elements()["edges"])
    # Expanding the hub on demand shows its accounts, including the students.
    ui_logic.expand(state, store, "IP|100.64.0.1", degree_cap=5)
    assert "Account|s1" in state.nodes and "IP|100.64.0.1" not in state.hubs
    assert ui_logic.remove(state, ["Account|s1"]) == 1
    assert "Account|s1" not in state.nodes
    assert all("Account|s1" not in (e["source"], e["target"]) for e in state.edges.values())


def test_collapse_undoes_an_expansion(world: tuple[GraphStore, Path]) -> None:
    store, _ = world
    state = ui_logic.cluster_view(store, "c-ring", degree_cap=50)
    before = set(state.nodes)
    ui_logic.expand(state, store, "Account|r001", degree_cap=50)
    assert set(state.nodes) > before
    ui_logic.collapse(state, "Account|r001")
    # Shared values also reach r000/r002 only through r001 in this view, so all go again.
    assert set(state.nodes) == before


def test_large_cluster_opens_as_groups(store: GraphStore, tmp_path: Path) -> None:
    build_world(store, tmp_path, ring=12)
    ring = ring_ids(12)
    # Two device farms inside the ring; everything else is shared by all twelve.
    store.upsert_relationships(Rel.USED_DEVICE, Label.ACCOUNT, Label.DEVICE,
                               [{"start": a, "end": "d1" if i < 7 else "d2"} for i, a in enumerate(ring)])
    state = ui_logic.cluster_view(store, "c-ring", degree_cap=50, group_threshold=10, hub_cap=50)
    assert not any(n["kind"] == "Account" for n in state.nodes.values())
    # d1 has 7 users (over half of 12) so it is skipped; d2's five form a group, the rest wait.
    assert state.groups == {"Device:d2": ring[7:], "ungrouped": ring[:7]}
    assert set(state.nodes) >= {"Group|Device:d2", "Group|ungrouped"}
    ui_logic.expand(state, store, "Group|Device:d2", degree_cap=50)
    assert {n["key"] for n in state.nodes.values() if n["kind"] == "Account"} == set(ring[7:])
    assert sum(1 for e in state.edges.values() if e["label"] == "LINKED") == 4
    ui_logic.expand(state, store, "Group|ungrouped", degree_cap=50)
    assert {n["key"] for n in state.nodes.values() if n["kind"] == "Account"} == set(ring)
    # All 11 chain links, including r006-r007 across the two groups.
    assert sum(1 for e in state.edges.values() if e["label"] == "LINKED") == 11


def test_pair_evidence_lists_reasons_shared_values_and_source_rows(world: tuple[GraphStore, Path]) -> None:
    store, ws = world
    ev = ui_logic.edge_evidence(store, ws, "Account|r000>LINKED>Account|r001", hub_cap=5)
    assert ev["kind"] == "pair"
    assert ev["link"]["families"] == ["network", "payment", "prompt"]
    assert {r["family"] for r in ev["link"]["reasons"]} == {"network", "payment", "prompt"}
    flat = ui_logic.reason_rows(ev["link"]["reasons"])
    assert flat[0]["entity"] == "IP:203.0.113.7" and flat[3]["examples"].startswith('["Think step')
    # The network named only by a reason (not shared directly) gets its source rows too.
    assert len(ev["source_rows"]["Network:203.0.113.0/24"]) == 6
    shared = {(s["label"], s["value"]): s for s in ev["shared"]}
    assert set(shared) == {("IP", "203.0.113.7"), ("IP", "100.64.0.1"), ("PaymentMethod", "pm-ring"), ("PromptTemplate", "t-cot")}
    assert shared[("IP", "100.64.0.1")]["hub"] is True and shared[("IP", "203.0.113.7")]["hub"] is False
    assert shared[("IP", "203.0.113.7")]["first_seen"] == "2025-04-22T10:00:00Z"
    assert ev["examples"]["t-cot"].startswith("Think step by step")
    ip_rows = ev["source_rows"]["IP:203.0.113.7"]
    assert len(ip_rows) == 6 and {r["account_id"] for r in ip_rows} == {"r000", "r001"}
    assert all(r["_file"] == "exchanges.csv" and isinstance(r["_row"], int) for r in ip_rows)
    pay_rows = ev["source_rows"]["PaymentMethod:pm-ring"]
    assert [r["_row"] for r in pay_rows] == [1, 2] and pay_rows[0]["_file"] == "payments.csv"
    unlinked = ui_logic.pair_evidence(store, ws, "r000", "s1")
    assert unlinked["link"] == {} and [s["value"] for s in unlinked["shared"]] == ["100.64.0.1"]


def test_relationship_edge_evidence(world: tuple[GraphStore, Path]) -> None:
    store, ws = world
    ev = ui_logic.edge_evidence(store, ws, "Account|r002>USED_IP>IP|203.0.113.7")
    assert ev["kind"] == "relationship" and ev["properties"]["count"] == 3
    assert [r["account_id"] for r in ev["source_rows"]] == ["r002"] * 3


def test_search_kinds(world: tuple[GraphStore, Path]) -> None:
    store, ws = world
    assert ui_logic.guess_kind("203.0.113.7") == "ip"
    assert ui_logic.guess_kind("203.0.113.0/24") == "network"
    assert ui_logic.guess_kind("411111") == "card_bin"
    assert ui_logic.guess_kind("bob@mailinator.com") == "email_domain"
    assert ui_logic.guess_kind("chain of thought") == "prompt"
    assert [h["key"] for h in ui_logic.search(store, ws, "r001")] == ["r001"]
    ip = ui_logic.search(store, ws, "203.0.113.7")
    assert ip[0]["label"] == "IP" and ip[0]["connections"] == 5  # 4 accounts + its network
    assert [h["key"] for h in ui_logic.search(store, ws, "203.0.113.0/24")] == ["203.0.113.0/24"]
    assert [h["key"] for h in ui_logic.search(store, ws, "hydra", "network")] == ["203.0.113.0/24"]
    assert [h["key"] for h in ui_logic.search(store, ws, "411111")] == ["pm-ring"]
    assert [h["key"] for h in ui_logic.search(store, ws, "h-s2", "email_hash")] == ["s2"]
    prompt = ui_logic.search(store, ws, "CHAIN OF THOUGHT")
    assert [h["key"] for h in prompt] == ["t-cot"] and prompt[0]["connections"] == 4
    assert ui_logic.search(store, ws, "nothing like this", "prompt") == []
    assert ui_logic.search(store, ws, "") == []


def test_path_with_evidence(world: tuple[GraphStore, Path]) -> None:
    store, _ = world
    path = ui_logic.path_with_evidence(store, "r000", "r003")
    assert path is not None and len(path) == 2  # via the shared IP, card or template
    assert path[0]["from"] == "Account:r000" and path[-1]["to"] == "Account:r003"
    linked_only = ui_logic.path_with_evidence(store, "r000", "r003", rel_types=["LINKED"])
    assert linked_only is not None and [h["relationship"] for h in linked_only] == ["LINKED"] * 3
    assert linked_only[0]["evidence"].startswith("shared_ip IP:203.0.113.7 (4 accounts, w 0.60); shared_network")
    assert ui_logic.path_with_evidence(store, "r000", "s1", rel_types=["LINKED"]) is None


def test_timeline_bursts_onsets_and_model_switch(world: tuple[GraphStore, Path]) -> None:
    _, ws = world
    series = ui_logic.cluster_timeline(ws, ring_ids(4), "day", "model")
    assert [(r["t"][:10], r["group"], r["exchanges"]) for r in series] == [
        ("2025-04-22", "m-old", 4), ("2025-04-23", "m-old", 4), ("2025-04-24", "m-new", 4)]
    switches = ui_logic.model_switches(series)
    assert [(s["model"], s["first_bucket"][:10]) for s in switches] == [("m-old", "2025-04-22"), ("m-new", "2025-04-24")]
    hourly = ui_logic.cluster_timeline(ws, ring_ids(4) + ["s1"], "hour", "account_id")
    assert sum(r["exchanges"] for r in hourly) == 17
    on = ui_logic.onsets(ws, ring_ids(4))
    assert [o["account_id"] for o in on][:1] and all(o["models"] == "m-old -> m-new" for o in on)
    spiky = [{"t": str(i), "group": "g", "exchanges": 1} for i in range(9)] + [{"t": "9", "group": "g", "exchanges": 50}]
    assert [b["t"] for b in ui_logic.bursts(spiky)] == ["9"]
    with pytest.raises(ValueError):
        ui_logic.cluster_timeline(ws, ["r000"], "week", "model")


def test_without_staging_everything_is_empty(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "embedded")
    empty = tmp_path / "other"
    assert ui_logic.daily_activity(empty, {"a": "c"}) == {}
    assert ui_logic.cluster_timeline(empty, ["a"]) == []
    assert ui_logic.source_rows(empty, ["a"], Label.IP, "1.2.3.4") == []
    assert ui_logic.search(store, empty, "some prompt text") == []


def test_dense_clusters_show_each_accounts_strongest_links(store: GraphStore, tmp_path: Path) -> None:
    build_world(store, tmp_path, ring=10)
    ring = ring_ids(10)
    # Make the ring a complete graph: 45 links, r000's to everyone strongest.
    store.upsert_relationships(Rel.LINKED, Label.ACCOUNT, Label.ACCOUNT, [
        {"start": a, "end": b, "weight": 0.99 if a == "r000" else 0.5, "families": ["network"], "reasons": "[]"}
        for i, a in enumerate(ring) for b in ring[i + 1:]
    ])
    state = ui_logic.cluster_view(store, "c-ring", degree_cap=50)
    shown = [e for e in state.edges.values() if e["label"] == "LINKED"]
    assert len(shown) + state.hidden_links == 45 and state.hidden_links > 0
    # r000's nine strongest links all stay; every account keeps at least a few.
    assert sum(1 for e in shown if "Account|r000" in (e["source"], e["target"])) == 9
    degree = {a: sum(1 for e in shown if f"Account|{a}" in (e["source"], e["target"])) for a in ring}
    assert min(degree.values()) >= ui_logic.LINKS_PER_ACCOUNT


def test_suppressed_hubs_report(tmp_path: Path) -> None:
    assert ui_logic.suppressed_hubs(tmp_path) == []
    (tmp_path / "detection").mkdir()
    (tmp_path / "detection" / "hubs.json").write_text(
        '[{"family": "email", "label": "EmailDomain", "key": "gmail.com", "accounts": 9, "why": "webmail"},'
        ' {"family": "network", "label": "IP", "key": "100.64.0.1", "accounts": 60, "why": "carrier_nat"}]'
    )
    assert [h["key"] for h in ui_logic.suppressed_hubs(tmp_path)] == ["100.64.0.1", "gmail.com"]
