"""Analyst writes (graph/cases.py): each changes the graph and leaves one audit event."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graph import cases
from graph.schema import Label, Rel
from graph.store import GraphStore, StoreError
from graph.stores.embedded import EmbeddedStore
from tests.worlds.ui import build_world, ring_ids


@pytest.fixture()
def world(store: GraphStore, tmp_path: Path) -> GraphStore:
    """The fixture world on each store kind (the Neo4j one is marked ``neo4j``)."""
    build_world(store, tmp_path, ring=4)
    return store


def _attributions(store: GraphStore, cluster_id: str) -> list[tuple[str, dict]]:
    return [(r.end[1], r.props) for r in store.iter_relationships(Rel.ATTRIBUTED_TO) if r.start[1] == cluster_id]


def test_attribute_to_new_operator_records_rel_and_audit(world: GraphStore) -> None:
    event = cases.attribute(world, "c-ring", who="alice", confidence=0.75, rationale="shared card and template", operator_name="Acme Lab")
    assert world.get_node(Label.OPERATOR, "op-acme-lab") is not None
    [(op, props)] = _attributions(world, "c-ring")
    assert op == "op-acme-lab"
    assert props["confidence"] == 0.75 and props["rationale"] == "shared card and template" and props["by"] == "alice"
    assert props["at"].endswith("Z")
    trail = cases.audit_trail(world)
    assert [e.event_id for e in trail] == [event.event_id]
    assert trail[0].action == "attribute" and trail[0].target == "Cluster:c-ring"
    assert trail[0].after["operator_id"] == "op-acme-lab" and trail[0].before == {}
    about = world.neighbours([(Label.AUDIT_EVENT, event.event_id)], [Rel.ABOUT])
    assert (Label.CLUSTER.value, "c-ring") in about.node_refs()


def test_reattribution_replaces_the_previous_operator_and_keeps_history(world: GraphStore) -> None:
    cases.attribute(world, "c-ring", who="alice", confidence=0.5, rationale="first look", operator_name="Acme Lab")
    cases.add_note(world, (Label.CLUSTER.value, "c-ring"), "check the card", who="alice")
    cases.attribute(world, "c-ring", who="bob", confidence=0.9, rationale="operator indicators match", operator_id="op-known")
    assert [op for op, _ in _attributions(world, "c-ring")] == ["op-known"]
    latest = cases.audit_trail(world, action="attribute")[0]
    assert latest.before["operator_id"] == "op-acme-lab" and latest.after["operator_id"] == "op-known"
    # Only the old ATTRIBUTED_TO went: members, suggestion, notes and audit links stay.
    assert cases.members(world, "c-ring") == ring_ids(4)
    assert any(r.start[1] == "c-ring" for r in world.iter_relationships(Rel.SUGGESTED_OPERATOR))
    assert [n["text"] for n in cases.notes_about(world, (Label.CLUSTER.value, "c-ring"))] == ["check the card"]
    about = world.neighbours([(Label.CLUSTER.value, "c-ring")], [Rel.ABOUT], limit=100)
    assert sum(1 for n in about.nodes if n.label == Label.AUDIT_EVENT) == 3


def test_attribute_refuses_bad_input(world: GraphStore) -> None:
    with pytest.raises(cases.CaseError):
        cases.attribute(world, "c-ring", who="a", confidence=1.5, rationale="x", operator_id="op-known")
    with pytest.raises(cases.CaseError):
        cases.attribute(world, "c-ring", who="a", confidence=0.5, rationale="  ", operator_id="op-known")
    with pytest.raises(cases.CaseError):
        cases.attribute(world, "nope", who="a", confidence=0.5, rationale="x", operator_id="op-known")
    with pytest.raises(cases.CaseError):
        cases.attribute(world, "c-ring", who="a", confidence=0.5, rationale="x", operator_id="op-missing")
    assert cases.audit_trail(world) == []


def test_confirm_suggestion_uses_suggested_operator(world: GraphStore) -> None:
    cases.confirm_suggestion(world, "c-ring", who="alice")
    [(op, props)] = _attributions(world, "c-ring")
    assert op == "op-known" and props["confidence"] == pytest.approx(0.8)
    assert props["rationale"] == "confirmed the detector's suggestion (1 matching operator indicators: pm-ring)"
    with pytest.raises(cases.CaseError):
        cases.confirm_suggestion(world, "c-benign", who="alice")


def test_status_transitions(world: GraphStore) -> None:
    with pytest.raises(cases.CaseError, match="cannot move"):
        cases.set_status(world, "c-ring", "confirmed", who="alice")
    cases.set_status(world, "c-ring", "in_progress", who="alice")
    cases.set_status(world, "c-ring", "confirmed", who="bob", reason="ban wave 3")
    node = world.get_node(Label.CLUSTER, "c-ring")
    assert node is not None and node.props["status"] == "confirmed"
    events = cases.audit_trail(world, action="status")
    assert [(e.before["status"], e.after["status"]) for e in events] == [("in_progress", "confirmed"), ("open", "in_progress")]
    assert events[0].after["reason"] == "ban wave 3"
    assert [e.who for e in cases.audit_trail(world, who="bob")] == ["bob"]


def test_merge_moves_members_and_marks_the_other(world: GraphStore) -> None:
    cases.merge_clusters(world, "c-ring", "c-benign", who="alice", rationale="same proxy later")
    assert cases.members(world, "c-ring") == sorted(ring_ids(4) + ["s1", "s2"])
    assert cases.members(world, "c-benign") == []
    other = world.get_node(Label.CLUSTER, "c-benign")
    assert other is not None and other.props["status"] == "merged" and other.props["merged_into"] == "c-ring"
    kept = world.get_node(Label.CLUSTER, "c-ring")
    assert kept is not None and kept.props["size"] == 6
    assert {e.action for e in cases.audit_trail(world)} == {"merge", "merged_into"}
    with pytest.raises(cases.CaseError):
        cases.merge_clusters(world, "c-ring", "c-ring", who="alice", rationale="x")


def test_split_moves_accounts_to_a_new_cluster(world: GraphStore) -> None:
    cases.split_accounts(world, "c-ring", ["r002", "r003"], who="alice", rationale="different card later", new_cluster_id="c-new")
    assert cases.members(world, "c-ring") == ["r000", "r001"]
    assert cases.members(world, "c-new") == ["r002", "r003"]
    new = world.get_node(Label.CLUSTER, "c-new")
    assert new is not None and new.props["split_from"] == "c-ring" and new.props["status"] == "open"
    with pytest.raises(cases.CaseError):
        cases.split_accounts(world, "c-ring", ["s1"], who="alice", rationale="x")
    with pytest.raises(cases.CaseError):
        cases.split_accounts(world, "c-ring", ["r000", "r001"], who="alice", rationale="x")


def test_audit_filters_and_persistence(world: GraphStore, tmp_path: Path) -> None:
    cases.add_note(world, (Label.ACCOUNT.value, "r000"), "first seen in the April wave", who="carol")
    cases.set_status(world, "c-benign", "in_progress", who="dave")
    # On the embedded store, a fresh instance reads what the first persisted.
    reopened = EmbeddedStore(tmp_path / "embedded") if isinstance(world, EmbeddedStore) else world
    trail = cases.audit_trail(reopened)
    assert len(trail) == 2 and trail[0].at >= trail[1].at
    assert [e.target for e in cases.audit_trail(reopened, target="Account:")] == ["Account:r000"]
    assert cases.audit_trail(reopened, since="2999-01-01") == []
    assert len(cases.audit_trail(reopened, until="2999-01-01")) == 2
    today = trail[0].at[:10]
    assert len(cases.audit_trail(reopened, since=today, until=today)) == 2
    assert len(cases.audit_trail(reopened, limit=1)) == 1


class FailOnAudit:
    """Stands in for the store's node-write hook: every write goes through, except the audit
    event, which fails as a lost connection would. The audit event is an action's last write,
    so by then the action has already deleted and rewritten relationships."""

    def __init__(self, real: Callable[..., int]) -> None:
        self.real = real
        self.refused = 0

    def __call__(self, label: str, key: str, rows: list[dict[str, Any]]) -> int:
        if label == Label.AUDIT_EVENT:
            self.refused += 1
            raise ConnectionError("connection reset by peer")
        return self.real(label, key, rows)


def _cluster_state(store: GraphStore) -> dict[str, Any]:
    """What an analyst action may change about the two clusters, comparable before and after."""
    rels = sorted(
        (r.start, r.type, r.end, sorted(r.props.items()))
        for cid in ("c-ring", "c-benign")
        for r in store.neighbours([(Label.CLUSTER.value, cid)], limit=1000).relationships
    )
    nodes = {cid: store.get_node(Label.CLUSTER, cid) for cid in ("c-ring", "c-benign")}
    return {
        "rels": rels,
        "props": {cid: sorted(n.props.items()) if n else None for cid, n in nodes.items()},
        "audit": sorted(e.event_id for e in cases.audit_trail(store)),
    }


def test_a_reattribution_that_fails_midway_keeps_members_and_the_previous_attribution(
    world: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases.attribute(world, "c-ring", who="alice", confidence=0.5, rationale="first look", operator_name="Acme Lab")
    before = _cluster_state(world)
    failing = FailOnAudit(world._upsert_nodes)
    monkeypatch.setattr(world, "_upsert_nodes", failing)
    with pytest.raises(StoreError, match="connection reset"):
        cases.attribute(world, "c-ring", who="bob", confidence=0.9, rationale="indicators match", operator_id="op-known")
    monkeypatch.undo()
    assert failing.refused == 1
    assert _cluster_state(world) == before
    [(op, props)] = _attributions(world, "c-ring")
    assert op == "op-acme-lab" and props["rationale"] == "first look" and props["by"] == "alice"
    assert cases.members(world, "c-ring") == ring_ids(4)
    node = world.get_node(Label.CLUSTER, "c-ring")
    assert node is not None and node.props["attributed_operator"] == "op-acme-lab"
    # and the same action, retried once the store is back, goes through as a whole
    cases.attribute(world, "c-ring", who="bob", confidence=0.9, rationale="indicators match", operator_id="op-known")
    assert [op for op, _ in _attributions(world, "c-ring")] == ["op-known"]
    assert cases.members(world, "c-ring") == ring_ids(4)


@pytest.mark.parametrize("action", ["merge", "split"])
def test_a_merge_or_split_that_fails_midway_changes_nothing(
    world: GraphStore, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    cases.attribute(world, "c-benign", who="alice", confidence=0.3, rationale="students?", operator_name="Uni Lab")
    before = _cluster_state(world)
    monkeypatch.setattr(world, "_upsert_nodes", FailOnAudit(world._upsert_nodes))
    with pytest.raises(StoreError):
        if action == "merge":
            cases.merge_clusters(world, "c-ring", "c-benign", who="bob", rationale="same proxy")
        else:
            cases.split_accounts(world, "c-ring", ["r000"], who="bob", rationale="odd one", new_cluster_id="c-new")
    monkeypatch.undo()
    assert _cluster_state(world) == before
    assert world.get_node(Label.CLUSTER, "c-new") is None
    assert cases.members(world, "c-ring") == ring_ids(4) and cases.members(world, "c-benign") == ["s1", "s2"]


def test_merge_deletes_only_the_merged_clusters_member_and_operator_links(world: GraphStore) -> None:
    cases.attribute(world, "c-benign", who="alice", confidence=0.3, rationale="students?", operator_name="Uni Lab")
    cases.add_note(world, (Label.CLUSTER.value, "c-benign"), "two students", who="alice")
    cases.merge_clusters(world, "c-ring", "c-benign", who="bob", rationale="same proxy")
    left = world.neighbours([(Label.CLUSTER.value, "c-benign")], limit=100).relationships
    assert {r.type for r in left} == {Rel.ABOUT.value}
    assert sum(1 for r in left if r.start[0] == Label.NOTE) == 1
    assert world.get_node(Label.OPERATOR, "op-uni-lab") is not None  # the operator stays
    assert any(r.start[1] == "c-ring" for r in world.iter_relationships(Rel.SUGGESTED_OPERATOR))
