"""Merges and splits refigure the clusters they touch as detection would, and detection keeps them.

On the hand-made detection world: after a merge or a split every touched cluster's figures
(size, volumes, dates, score, flag, indicators, …) are the sums, extremes and scores of its new
members, and a re-run of detection over the same data, which keeps the analyst's clusters,
writes exactly the same figures. The conflict case: new evidence tying a split account back
is reported and the split kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from graph import cases, decisions
from graph.detection import run_detection
from graph.refigure import Refigure, rebuild
from graph.schema import Label, Rel
from graph.settings import Settings
from graph.store import GraphStore
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir, figures_path
from tests.worlds.detection import WorldWriter, build_world, settings_for

FIGURES = ("size", "exchanges", "input_tokens", "output_tokens", "first_seen", "last_seen", "score", "flagged",
           "indicators", "capability_profile", "stability", "suggested_operator", "suggestion_confidence", "bridges",
           "families", "takeover_onset", "compromised_members")


@pytest.fixture
def detected(tmp_path: Path) -> tuple[EmbeddedStore, Settings, dict[str, str]]:
    """The detection world after one run: the store, its settings and account -> cluster."""
    store = EmbeddedStore(embedded_dir(tmp_path))
    build_world(store)
    settings = settings_for(tmp_path)
    run_detection(store, settings)
    return store, settings, _owner(store)


def _owner(store: GraphStore) -> dict[str, str]:
    return {r.start[1]: r.end[1] for r in store.iter_relationships(Rel.MEMBER_OF)}


def _members(store: GraphStore, cluster_id: str) -> list[str]:
    return sorted(a for a, c in _owner(store).items() if c == cluster_id)


def _figures(store: GraphStore, cluster_id: str) -> dict[str, Any]:
    node = store.get_node(Label.CLUSTER, cluster_id)
    assert node is not None
    return {k: node.props.get(k) for k in FIGURES}


def _indicator(figures: dict[str, Any], name: str) -> float:
    return next(float(i["value"]) for i in json.loads(figures["indicators"]) if i["name"] == name)


def _expected_volumes(store: GraphStore, members: list[str]) -> dict[str, Any]:
    """What the figures must add up to: the members' own volumes and dates."""
    props = [store.get_node(Label.ACCOUNT, a).props for a in members]  # type: ignore[union-attr]
    return {
        "size": len(members),
        "exchanges": sum(p["exchanges"] for p in props),
        "input_tokens": sum(p["input_tokens"] for p in props),
        "output_tokens": sum(p["output_tokens"] for p in props),
        "first_seen": min(p["first_seen"] for p in props),
        "last_seen": max(p["last_seen"] for p in props),
    }


def _check_consistent(store: GraphStore, cluster_id: str, threshold: float = 0.5) -> dict[str, Any]:
    figures = _figures(store, cluster_id)
    members = _members(store, cluster_id)
    assert {k: figures[k] for k in ("size", "exchanges", "input_tokens", "output_tokens", "first_seen", "last_seen")} \
        == _expected_volumes(store, members)
    assert _indicator(figures, "size") == len(members)
    assert figures["flagged"] == (figures["score"] >= threshold)
    assert abs(sum(i["contribution"] for i in json.loads(figures["indicators"])) - figures["score"]) < 1e-3
    return figures


def test_a_merge_refigures_both_clusters_as_detection_would(detected) -> None:  # noqa: ANN001
    store, settings, owner = detected
    op, family = owner["opa00"], owner["fam0"]
    before = _figures(store, op)
    event = cases.merge_clusters(store, op, family, who="ana", rationale="same operator", settings=settings)
    merged = _check_consistent(store, op)
    assert merged["size"] == 16 and merged["exchanges"] == before["exchanges"] + 4 * 8
    assert merged["score"] != before["score"] and merged["indicators"] != before["indicators"]
    assert {k: event.after[k] for k in ("size", "exchanges", "score", "flagged")} == \
        {k: merged[k] for k in ("size", "exchanges", "score", "flagged")}
    absorbed = _figures(store, family)
    assert (absorbed["size"], absorbed["exchanges"], absorbed["flagged"], absorbed["indicators"]) == (0, 0, False, "[]")
    # detection, re-run over the same data, keeps the merge and writes the same figures
    summary = run_detection(store, settings)
    assert _members(store, op) == sorted(a for a, c in owner.items() if c in (op, family))
    assert _figures(store, op) == merged
    assert [(d["action"], d["cluster_id"], d["absorbed"]) for d in summary["analyst_decisions"]["kept"]] == [("merge", op, family)]
    assert summary["analyst_decisions"]["conflicts"] == []


def test_a_split_refigures_the_parent_and_the_new_cluster_as_detection_would(detected) -> None:  # noqa: ANN001
    store, settings, owner = detected
    op = owner["opa00"]
    moved = ["opa00", "opa01", "opa02"]
    event = cases.split_accounts(store, op, moved, who="ana", rationale="another card later", settings=settings)
    new = event.after["new_cluster"]
    assert event.after["moved"] == moved and len(event.after["kept"]) == 9
    assert event.after["ties"]["strong_pairs"] > 0 and "payment" in event.after["ties"]["families"]
    parent, split_off = _check_consistent(store, op), _check_consistent(store, new)
    assert split_off["exchanges"] == 3 * 400 and split_off["first_seen"] == "2025-04-22T00:00:00Z"
    assert split_off["score"] > 0 and split_off["bridges"] == 3  # all three keep strong links to the parent
    assert parent["size"] == 9 and parent["exchanges"] == 9 * 400
    node = store.get_node(Label.CLUSTER, new)
    assert node is not None and node.props["split_from"] == op and node.props["status"] == "open"
    summary = run_detection(store, settings)
    assert _members(store, new) == moved and _members(store, op) == sorted(a for a, c in owner.items() if c == op and a not in moved)
    assert _figures(store, op) == parent and _figures(store, new) == split_off
    assert [(d["action"], d["cluster_id"], d["split_from"]) for d in summary["analyst_decisions"]["kept"]] == [("split", new, op)]
    assert summary["analyst_decisions"]["conflicts"] == []  # nothing new ties them back


def test_the_saved_context_and_one_rebuilt_from_the_store_give_the_same_figures(detected) -> None:  # noqa: ANN001
    store, settings, owner = detected
    op, family, uni = owner["opa00"], owner["fam0"], owner["uni00"]
    memberships = {
        op: sorted(a for a, c in owner.items() if c in (op, family)),
        uni: sorted(a for a, c in owner.items() if c == uni)[2:],
        "c-new": sorted(a for a, c in owner.items() if c == uni)[:2],
    }
    accounts = [a for m in memberships.values() for a in m]
    saved = Refigure.of(store, settings, [op, family, uni], accounts)
    assert saved.source == "saved"
    rebuilt = Refigure(store, rebuild(store, settings), "rebuilt")
    assert saved.changes(memberships) == rebuilt.changes(memberships)
    # the context of another run is not used, nor a missing one
    store.upsert_nodes(Label.CLUSTER, [{"cluster_id": op, "detected_at": "2000-01-01T00:00:00Z"}])
    assert Refigure.of(store, settings, [op], accounts).source == "rebuilt"
    assert Refigure.of(store, settings, [uni], accounts).source == "saved"
    figures_path(settings.workspace).write_bytes(b"not a figure context")
    assert Refigure.of(store, settings, [uni], accounts).source == "rebuilt"
    figures_path(settings.workspace).unlink()
    assert Refigure.of(store, settings, [uni], accounts).source == "rebuilt"


def test_a_saved_context_whose_tables_point_past_its_accounts_is_refused(detected) -> None:  # noqa: ANN001
    import numpy as np

    from graph import saved_context

    store, settings, owner = detected
    path = figures_path(settings.workspace)
    assert saved_context.load(settings.workspace) is not None
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["pair_b"] = arrays["pair_b"].copy()
    arrays["pair_b"][0] = len(owner) + 5  # an account the file does not have
    with path.open("wb") as out:
        np.savez(out, **arrays)
    assert saved_context.load(settings.workspace) is None
    uni = owner["uni00"]
    assert Refigure.of(store, settings, [uni], [a for a, c in owner.items() if c == uni]).source == "rebuilt"


def test_merge_and_split_without_a_detection_run_rebuild_the_context(tmp_path: Path) -> None:
    """Clusters detection never figured (none saved): the figures still come from the data."""
    store = EmbeddedStore(None)
    build_world(store)
    op = [f"opa{i:02d}" for i in range(12)]
    with store.batch():
        store.upsert_nodes(Label.CLUSTER, [{"cluster_id": "c-op", "size": 12, "exchanges": 1, "score": 0.0, "status": "open"},
                                           {"cluster_id": "c-fam", "size": 4, "status": "open"}])
        store.upsert_relationships(Rel.MEMBER_OF, Label.ACCOUNT, Label.CLUSTER,
                                   [{"start": a, "end": "c-op"} for a in op] + [{"start": f"fam{i}", "end": "c-fam"} for i in range(4)])
    settings = settings_for(tmp_path / "none")
    cases.split_accounts(store, "c-op", op[:4], who="ana", rationale="x", new_cluster_id="c-part", settings=settings)
    assert _check_consistent(store, "c-part")["exchanges"] == 4 * 400
    cases.merge_clusters(store, "c-op", "c-fam", who="ana", rationale="x", settings=settings)
    assert _check_consistent(store, "c-op")["size"] == 12


def _ring_world(store: GraphStore, device_between: tuple[str, str] | None = None) -> None:
    """Five accounts on one card (nothing else shared) among twenty strangers; optionally a
    device two of the five share (new evidence)."""
    w = WorldWriter()
    w.node(Label.PAYMENT_METHOD, payment_id="pm-k", card_bin="400000")
    for i in range(5):
        w.account(f"k{i}", created="2025-01-01T00:00:00Z", first="2025-01-02T00:00:00Z", last="2025-03-01T00:00:00Z",
                  exchanges=50, domain=f"k{i}.example", webmail=False, ips=(f"10.1.{i}.1",), payment="pm-k")
    for i in range(20):
        w.account(f"x{i:02d}", created="2024-01-01T00:00:00Z", first=f"2024-02-{1 + i:02d}T00:00:00Z",
                  last="2025-03-01T00:00:00Z", exchanges=10, domain=f"x{i}.example", webmail=False, ips=(f"10.2.{i}.1",))
    if device_between:
        for a in device_between:
            w.rel(Rel.USED_DEVICE, Label.ACCOUNT, Label.DEVICE, a, "dev-new", first_seen="2025-03-01T00:00:00Z")
    w.write(store)


def test_new_evidence_against_a_split_is_reported_and_the_split_kept(tmp_path: Path) -> None:
    store = EmbeddedStore(embedded_dir(tmp_path))
    _ring_world(store)
    settings = settings_for(tmp_path)
    run_detection(store, settings)
    ring = _owner(store)["k0"]
    assert _members(store, ring) == ["k0", "k1", "k2", "k3", "k4"]
    event = cases.split_accounts(store, ring, ["k4"], who="ana", rationale="k4 is the card's owner", new_cluster_id="c-k4",
                                 settings=settings)
    assert event.after["ties"] == {"strong_pairs": 4, "max_weight": pytest.approx(0.8050, abs=1e-3),
                                   "families": {"payment": pytest.approx(0.8050, abs=1e-3)}}
    assert run_detection(store, settings)["analyst_decisions"]["conflicts"] == []
    # a new load: k4 and k0 turn out to share a device
    _ring_world(store, device_between=("k0", "k4"))
    summary = run_detection(store, settings)
    assert _members(store, "c-k4") == ["k4"] and _members(store, ring) == ["k0", "k1", "k2", "k3"]
    (conflict,) = summary["analyst_decisions"]["conflicts"]
    assert conflict["event_id"] == event.event_id and conflict["reason"] == "new_evidence" and conflict["kept"] is True
    assert (conflict["cluster_id"], conflict["split_from"], conflict["new_families"]) == ("c-k4", ring, ["device"])
    assert [d["event_id"] for d in summary["analyst_decisions"]["kept"]] == [event.event_id]
    member_of = {r.start[1]: r.props for r in store.iter_relationships(Rel.MEMBER_OF)}
    assert member_of["k4"]["bridge"] is True  # its strong links into the parent stay visible


def test_reconcile_lets_new_accounts_join_an_analyst_cluster_but_not_swallow_another() -> None:
    placements = decisions.Placements(cluster_of={"a1": "K", "a2": "K", "a3": "K", "b1": "N"})
    previous = {"K": frozenset({"a1", "a2", "a3"}), "X": frozenset({"x1", "x2", "x3", "x4"}), "N": frozenset({"b1"})}
    found = [["a1", "a2", "new1", "new2"], ["a3", "x1", "x2", "x3", "x4"], ["b1", "b2"]]
    clusters, fixed = decisions.reconcile(found, placements, previous, {})
    by_id = {fixed.get(i, ""): members for i, members in enumerate(clusters)}
    # new accounts follow the analyst's cluster they were found with; the old cluster X that
    # took in a3 stays apart (a3 goes to K); b2 follows N
    assert by_id["K"] == ["a1", "a2", "a3", "new1", "new2"]
    assert by_id["N"] == ["b1", "b2"]
    assert by_id[""] == ["x1", "x2", "x3", "x4"]


def test_reconcile_divides_a_found_cluster_holding_two_analyst_clusters_by_links() -> None:
    """P and N were split apart; detection still finds them as one, with newcomers: each
    newcomer goes where its links pull (q2 only through q1), an unlinked one to the larger."""
    placements = decisions.Placements(cluster_of={"p1": "P", "p2": "P", "p3": "P", "n1": "N"})
    weights = {("n1", "q1"): 0.9, ("p1", "q1"): 0.2, ("q1", "q2"): 0.8, ("p2", "q3"): 0.5, ("n1", "p1"): 0.9}
    found = [["n1", "p1", "p2", "p3", "q1", "q2", "q3", "q4"]]
    clusters, fixed = decisions.reconcile(found, placements, {}, weights)
    by_id = {fixed[i]: members for i, members in enumerate(clusters)}
    assert by_id == {"P": ["p1", "p2", "p3", "q3", "q4"], "N": ["n1", "q1", "q2"]}
    assert decisions.cannot_links(weights, placements) == [("n1", "p1")]
    assert decisions.cannot_links(weights, decisions.Placements()) == []


def test_a_split_recorded_before_kept_accounts_were_uses_the_parents_members(tmp_path: Path) -> None:
    store = EmbeddedStore(None)
    with store.batch():
        store.upsert_nodes(Label.AUDIT_EVENT, [
            {"event_id": "e1", "at": "2025-01-01T00:00:00.000000Z", "who": "ana", "action": "split", "target": "Cluster:P",
             "before": json.dumps({"size": 3}), "after": json.dumps({"size": 2, "new_cluster": "N", "moved": ["c"]})},
            {"event_id": "e2", "at": "2025-01-02T00:00:00.000000Z", "who": "ana", "action": "note", "target": "Cluster:P",
             "before": "{}", "after": "{}"},
        ])
    placements = decisions.read(store, {"P": frozenset({"a", "b"})}, {"a", "b", "c"})
    assert placements.cluster_of == {"a": "P", "b": "P", "c": "N"}
    (decision,) = placements.decisions
    assert (decision.action, decision.cluster_id, decision.other_id, decision.stayed) == ("split", "N", "P", frozenset({"a", "b"}))


def _scenario_world(root: Path) -> tuple[EmbeddedStore, Settings]:
    """The tiny generated world with the shared-proxy and takeover scenarios, detected once."""
    from loaders.load import load_bundle
    from loaders.synthetic import generate

    generate(root / "bundle", "tiny", 1, scenarios="shared-proxy,takeover", corpus="sample", allow_sample_fallback=True)
    settings = Settings({"workspace": str(root / "ws")}, environ={})
    store = EmbeddedStore(embedded_dir(root / "ws"))
    load_bundle(root / "bundle", settings, store)
    run_detection(store, settings)
    return store, settings


def _everything(store: GraphStore) -> tuple[dict[str, Any], list[Any], list[Any]]:
    """Every current cluster's figures, every MEMBER_OF with its flags, every SHARES_INFRASTRUCTURE."""
    figures = {n.key: {k: n.props.get(k) for k in FIGURES} for n in store.iter_nodes(Label.CLUSTER) if n.props.get("size")}
    members = sorted((r.start[1], r.end[1], r.props.get("bridge"), r.props.get("compromised"), r.props.get("onset"))
                     for r in store.iter_relationships(Rel.MEMBER_OF))
    shared = sorted((r.start[1], r.end[1], json.dumps(r.props, sort_keys=True)) for r in store.iter_relationships(Rel.SHARES_INFRASTRUCTURE))
    return figures, members, shared


def test_merge_and_split_refigure_takeover_campaigns_and_shared_infrastructure(tmp_path: Path) -> None:
    from graph import separation
    from graph.figures import ProviderPairs
    from graph.linkage import link_accounts, read_facts

    store, settings = _scenario_world(tmp_path)
    owner = _owner(store)
    # the SHARES_INFRASTRUCTURE detection wrote, and the relations of every provider pair, are separation's
    facts = read_facts(store, settings.workspace)
    evidence = link_accounts(facts, int(settings["hub_max_accounts"]), keep_floor=0.0)
    expected = separation.infrastructure_relations(owner, evidence, facts)
    assert ProviderPairs.from_evidence(evidence, facts, owner).relations(owner) == expected
    written = [{"start": r.start[1], "end": r.end[1], **r.props} for r in store.iter_relationships(Rel.SHARES_INFRASTRUCTURE)]
    assert written == expected and len(written) == 1
    left, right = written[0]["start"], written[0]["end"]
    swarm = _members(store, right)
    member_of = {r.start[1]: r.props for r in store.iter_relationships(Rel.MEMBER_OF)}
    campaign = max({c for a, c in owner.items() if member_of[a]["compromised"]}, key=lambda c: len(_members(store, c)))
    compromised = _members(store, campaign)
    assert len(compromised) == 5 and all(member_of[a]["compromised"] for a in compromised)

    # split two accounts off the campaign: three still changed together, two are no campaign
    event = cases.split_accounts(store, campaign, compromised[:2], who="ana", rationale="two were sold on", settings=settings)
    new = event.after["new_cluster"]
    parent, split_off = _figures(store, campaign), _figures(store, new)
    onsets = {a: member_of[a]["onset"] for a in compromised}
    assert parent["compromised_members"] == 3 and parent["takeover_onset"] == min(onsets[a] for a in compromised[2:])
    assert split_off["compromised_members"] == 0 and split_off["takeover_onset"] == ""
    assert "synchronised_takeover" not in {i["name"] for i in json.loads(split_off["indicators"])}
    assert "synchronised_takeover" in {i["name"] for i in json.loads(parent["indicators"])}
    after = {r.start[1]: r.props for r in store.iter_relationships(Rel.MEMBER_OF)}
    assert [after[a]["compromised"] for a in compromised] == [False, False, True, True, True]

    # merge the two clusters sharing provider infrastructure: their relation goes with them
    cases.merge_clusters(store, left, right, who="ana", rationale="one swarm by day and night", settings=settings)
    assert list(store.iter_relationships(Rel.SHARES_INFRASTRUCTURE)) == []
    # split the day swarm off again: the relation comes back, between the new cluster and the kept one
    again = cases.split_accounts(store, left, swarm, who="bo", rationale="day and night are two crews", settings=settings)
    (back,) = [{"ends": {r.start[1], r.end[1]}, **r.props} for r in store.iter_relationships(Rel.SHARES_INFRASTRUCTURE)]
    assert back["ends"] == {left, again.after["new_cluster"]}
    assert (back["weight"], back["accounts"], back["values"]) == (written[0]["weight"], written[0]["accounts"], written[0]["values"])

    # detection, re-run, keeps both decisions and writes exactly what they wrote
    decided = _everything(store)
    summary = run_detection(store, settings)
    assert _everything(store) == decided
    assert [(d["action"], d["cluster_id"]) for d in summary["analyst_decisions"]["kept"]] == [
        ("split", new), ("merge", left), ("split", again.after["new_cluster"])]
    assert summary["shared_infrastructure"] == len(decided[2])
