"""The investigation questions (graph/investigate/) on the hand-made fixture world."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph import cases
from graph.investigate import evidence, paths, search, sources, timeline, triage
from graph.schema import Label
from graph.store import GraphStore
from graph.stores.embedded import EmbeddedStore
from tests.worlds.ui import build_world, ring_ids


@pytest.fixture()
def world(store: GraphStore, tmp_path: Path) -> tuple[GraphStore, Path]:
    """The fixture world on each store kind (the Neo4j one is marked ``neo4j``)."""
    build_world(store, tmp_path, ring=4)
    return store, tmp_path


def test_triage_rows_rank_filter_and_sparkline(world: tuple[GraphStore, Path]) -> None:
    store, ws = world
    clusters = triage.load_clusters(store)
    activity = triage.daily_activity(ws, triage.membership(store))
    rows = triage.triage_rows(clusters, activity=activity)
    assert [r["cluster_id"] for r in rows] == ["c-ring", "c-benign"]
    top = rows[0]
    assert top["tokens"] == 6000 and top["span_days"] == 3.0
    assert top["top_indicators"].startswith("shared_payment +0.40")
    assert top["capabilities"] == "reasoning 70%, coding 30%"
    assert top["suggested"] == "Known Lab (0.80)"
    # 4 ring accounts, one exchange each on days 0, 1 and 2 of the shared day axis.
    assert top["activity"][:3] == [4, 4, 4] and sum(top["activity"]) == 12
    assert sum(rows[1]["activity"]) == 10
    assert [r["cluster_id"] for r in triage.triage_rows(clusters, min_score=0.5)] == ["c-ring"]
    assert [r["cluster_id"] for r in triage.triage_rows(clusters, signal="shared_ip")] == ["c-benign"]
    assert [r["cluster_id"] for r in triage.triage_rows(clusters, operator="op-known")] == ["c-ring"]
    assert [r["cluster_id"] for r in triage.triage_rows(clusters, sort_by="size", descending=False, flagged_first=False)] == ["c-benign", "c-ring"]
    # Flagged clusters lead the queue whatever it is sorted by.
    assert [r["cluster_id"] for r in triage.triage_rows(clusters, sort_by="size", descending=False)] == ["c-ring", "c-benign"]
    assert triage.activity_scale(rows) == 4 and triage.activity_scale([]) == 0
    store.upsert_nodes(Label.CLUSTER, [{"cluster_id": "c-old", "score": 0.99, "retired": True, "superseded_by": "c-ring"}])
    assert "c-old" not in [r["cluster_id"] for r in triage.triage_rows(triage.load_clusters(store))]
    assert triage.triage_rows(triage.load_clusters(store), include_retired=True, flagged_first=False)[0]["cluster_id"] == "c-old"
    cases.set_status(store, "c-ring", "in_progress", who="t")
    assert [r["cluster_id"] for r in triage.triage_rows(triage.load_clusters(store), statuses=["open"])] == ["c-benign"]


def test_attribution_shows_in_triage(world: tuple[GraphStore, Path]) -> None:
    store, _ = world
    cases.attribute(store, "c-ring", who="t", confidence=0.6, rationale="r", operator_name="Acme")
    [ring] = [c for c in triage.load_clusters(store) if c["cluster_id"] == "c-ring"]
    assert ring["attributed_operator"] == "op-acme" and ring["attributed_name"] == "Acme"
    assert ring["attributed_by"] == "t" and ring["attribution_rationale"] == "r" and ring["attributed_at"][:2] == "20"
    row = triage.triage_rows([ring])[0]
    assert row["operator"] == f"Acme (0.60) by t on {ring['attributed_at'][:10]}: r"
    long = {**ring, "attribution_rationale": "x" * 300}
    assert triage.attribution_text(long, width=50).endswith("x…") and len(triage.attribution_text(long, width=50).split(": ", 1)[1]) == 50
    assert triage.attribution_text({"attributed_operator": ""}) == ""


def test_pair_evidence_lists_reasons_shared_values_and_source_rows(world: tuple[GraphStore, Path]) -> None:
    store, ws = world
    ev = evidence.relationship_evidence(store, ws, ("Account", "r000"), "LINKED", ("Account", "r001"), hub_cap=5)
    assert ev["kind"] == "pair"
    assert ev["link"]["families"] == ["network", "payment", "prompt"]
    assert {r["family"] for r in ev["link"]["reasons"]} == {"network", "payment", "prompt"}
    flat = evidence.reason_rows(ev["link"]["reasons"])
    # The heaviest reason first: the shared card (0.9), then the IP (0.6), template, network.
    assert [r["entity"] for r in flat] == ["PaymentMethod:pm-ring", "IP:203.0.113.7", "PromptTemplate:t-cot", "Network:203.0.113.0/24"]
    assert flat[2]["examples"].startswith('["Think step')
    assert ev["verdict"]["case"] == "direct" and "weight 0.90" in ev["verdict"]["text"]
    assert "the strongest: shared_card PaymentMethod:pm-ring" in ev["verdict"]["text"]
    # Strongest shared value first, the hub last.
    assert [(s["label"], s["value"]) for s in ev["shared"]][0] == ("PaymentMethod", "pm-ring")
    assert ev["shared"][-1]["value"] == "100.64.0.1"
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
    unlinked = evidence.pair_evidence(store, ws, "r000", "s1", hub_cap=5)
    assert unlinked["link"] == {} and [s["value"] for s in unlinked["shared"]] == ["100.64.0.1"]
    assert unlinked["verdict"]["case"] == "shared"
    assert unlinked["verdict"]["text"].startswith("The detector did not link r000 and s1 directly, but they share 1 value: IP 100.64.0.1.")
    assert "1 of them is a hub" in unlinked["verdict"]["text"]
    # Values without staged rows get no (empty) section.
    assert all(unlinked["source_rows"].values()) and "IP:100.64.0.1" not in unlinked["source_rows"]
    store.upsert_nodes(Label.ACCOUNT, [{"account_id": "loner"}])
    alone = evidence.pair_evidence(store, ws, "r000", "loner")
    assert alone["verdict"]["case"] == "none" and alone["source_rows"] == {} and alone["examples"] == {}


def test_relationship_edge_evidence(world: tuple[GraphStore, Path]) -> None:
    store, ws = world
    ev = evidence.relationship_evidence(store, ws, ("Account", "r002"), "USED_IP", ("IP", "203.0.113.7"))
    assert ev["kind"] == "relationship" and ev["properties"]["count"] == 3
    assert [r["account_id"] for r in ev["source_rows"]] == ["r002"] * 3


def test_path_with_evidence(world: tuple[GraphStore, Path]) -> None:
    store, _ = world
    assert paths.unknown_accounts(store, ["r000", "ghost", "r003"]) == ["ghost"]
    path = paths.path_with_evidence(store, "r000", "r003")
    assert path is not None and len(path) == 2  # via the shared IP, card or template
    assert path[0]["from"] == "Account:r000" and path[-1]["to"] == "Account:r003"
    linked_only = paths.path_with_evidence(store, "r000", "r003", rel_types=["LINKED"])
    assert linked_only is not None and [h["relationship"] for h in linked_only] == ["LINKED"] * 3
    assert linked_only[0]["evidence"].startswith("shared_ip IP:203.0.113.7 (4 accounts, w 0.60); shared_network")
    assert paths.path_with_evidence(store, "r000", "s1", rel_types=["LINKED"]) is None


def test_timeline_bursts_onsets_and_model_switch(world: tuple[GraphStore, Path]) -> None:
    _, ws = world
    series = timeline.cluster_timeline(ws, ring_ids(4), "day", "model")
    assert [(r["t"][:10], r["group"], r["exchanges"]) for r in series] == [
        ("2025-04-22", "m-old", 4), ("2025-04-23", "m-old", 4), ("2025-04-24", "m-new", 4)]
    switches = timeline.model_switches(series)
    assert [(s["model"], s["first_bucket"][:10]) for s in switches] == [("m-old", "2025-04-22"), ("m-new", "2025-04-24")]
    hourly = timeline.cluster_timeline(ws, ring_ids(4) + ["s1"], "hour", "account_id")
    assert sum(r["exchanges"] for r in hourly) == 17
    on = timeline.onsets(ws, ring_ids(4))
    assert [o["account_id"] for o in on][:1] and all(o["models"] == "m-old -> m-new" for o in on)
    spiky = [{"t": str(i), "group": "g", "exchanges": 1} for i in range(9)] + [{"t": "9", "group": "g", "exchanges": 50}]
    assert [b["t"] for b in timeline.bursts(spiky)] == ["9"]
    with pytest.raises(ValueError):
        timeline.cluster_timeline(ws, ["r000"], "week", "model")


def test_without_staging_everything_is_empty(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "embedded")
    empty = tmp_path / "other"
    assert triage.daily_activity(empty, {"a": "c"}) == {}
    assert timeline.cluster_timeline(empty, ["a"]) == []
    assert sources.source_rows(empty, ["a"], Label.IP, "1.2.3.4") == []
    assert search.resolve(store, empty, "some prompt text").kind is None


def test_suppressed_hubs_report(tmp_path: Path) -> None:
    assert triage.suppressed_hubs(tmp_path) == []
    (tmp_path / "detection").mkdir()
    (tmp_path / "detection" / "hubs.json").write_text(
        '[{"family": "email", "label": "EmailDomain", "key": "gmail.com", "accounts": 9, "why": "webmail"},'
        ' {"family": "network", "label": "IP", "key": "100.64.0.1", "accounts": 60, "why": "carrier_nat"}]'
    )
    assert [h["key"] for h in triage.suppressed_hubs(tmp_path)] == ["100.64.0.1", "gmail.com"]
