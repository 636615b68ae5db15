"""The folded evidence graph (graph/evidence_fold.py): members grouped by what they share, on
the hand-made evidence world (exact groups, uses, links), on a generated cluster (the number
of groups stays bounded), through every export with hostile text (read back strictly), under
redaction, and on the UI's cluster canvas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
import pytest
import stix2

from app import canvas
from graph.evidence import MEMBER_GROUP, EvidenceGraph, build_evidence
from graph.evidence_fold import fold_evidence
from graph.export.manifest import verify_manifest
from graph.export.redact import Redactor, redact_graph
from graph.export.run import export_graph
from graph.schema import Label, Rel
from graph.stores.embedded import EmbeddedStore
from tests.unit.test_export_budget import _big_cluster
from tests.unit.test_export_text import _check_every_format
from tests.worlds.evidence import (
    HOSTILE_PROMPT,
    LONE_SURROGATE_PROMPT,
    LONG_PASTE,
    add_lone_surrogates,
    build_world,
    write_staging,
)


@pytest.fixture()
def world() -> EmbeddedStore:
    store = EmbeddedStore(None)
    build_world(store)
    return store


def _groups(graph: EvidenceGraph) -> dict[str, dict[str, Any]]:
    return {n.key: n.props for n in graph.nodes if n.label == MEMBER_GROUP}


def _folded(world: EmbeddedStore, **kw: Any) -> EvidenceGraph:
    """c-1 folded with groups of any size (the hand-made cluster has four members)."""
    plain = build_evidence(world, ["c-1"], degree_cap=50, fold_members=0)
    return fold_evidence(plain, min_group=1, all_links=world.relationships_between(plain.members(), ["LINKED"]), **kw)


def test_members_with_the_same_shared_values_form_one_group(world: EmbeddedStore) -> None:
    g = _folded(world)
    assert g.folded and g.fold["members"] == 4 and g.fold["groups"] == 3 and g.fold["values_set_aside"] == 0
    assert not any(n.label == Label.ACCOUNT for n in g.nodes) and g.members() == [] and g.member_count() == 4
    groups = _groups(g)
    # a1 and a2 share card, address and device; a3 the card only; a4 the address only
    assert {k: p["account_ids"] for k, p in groups.items()} == {
        "g001": ["acct-a1", "acct-a2"], "g002": ["acct-a3"], "g003": ["acct-a4"]}
    assert groups["g001"]["members"] == 2 and groups["g001"]["links_inside"] == 1 and groups["g001"]["weight_inside"] == 0.9
    assert groups["g001"]["created_from"] == "2025-04-22T10:00:00Z" and groups["g002"]["bridges"] == 1  # a3 is a bridge
    uses = {(r.start[1], r.type, r.end[1]): r.props for r in g.relationships if r.start[0] == MEMBER_GROUP}
    assert uses[("g001", "PAID_WITH", "pay-1")]["members"] == 2 and uses[("g002", "PAID_WITH", "pay-1")]["members"] == 1
    assert uses[("g001", "USED_IP", "203.0.113.7")] == {"members": 2, "count": 20, "first_seen": "2025-04-22T10:00:00Z",
                                                       "last_seen": "2025-05-30T00:00:00Z"}
    assert uses[("g001", "SENT_TEMPLATE", "tpl-cot-1")]["count"] == 30
    assert uses[("g001", "MEMBER_OF", "c-1")]["members"] == 2
    assert uses[("g001", "LINKED", "g002")] == {"links": 1, "weight": 0.8, "weight_mean": 0.8, "families": ["payment"]}
    # what is not a member stays as it was: values, hubs, operators, indicators
    assert {n.ref for n in g.unfolded.nodes if n.label != Label.ACCOUNT} <= {n.ref for n in g.nodes}  # type: ignore[union-attr]
    assert {r.type for r in g.relationships} >= {"HAS_HUB", "MATCHES", "ATTRIBUTED_TO", "IN_NETWORK", "HAS_INDICATOR"}
    assert "4 members folded into 3 groups by the shared values they use" in g.fold_note()
    assert g.left_out["member accounts folded into groups"] == 4
    # the unfolded graph is the one build_evidence gives without folding
    plain = build_evidence(world, ["c-1"], degree_cap=50, fold_members=0)
    assert g.unfolded is not None and g.unfolded.size() == plain.size() and not plain.folded


def test_too_many_groups_set_the_least_telling_values_aside(world: EmbeddedStore) -> None:
    g = _folded(world, max_groups=2)
    assert {k: p["account_ids"] for k, p in _groups(g).items()} == {"g001": ["acct-a1", "acct-a2", "acct-a3"], "g002": ["acct-a4"]}
    assert g.fold["values_set_aside"] == 2 and "(IP, Device)" in g.fold["signature"]
    # the groups' uses still say how many of their members use each value
    uses = {(r.start[1], r.end[1]): r.props["members"] for r in g.relationships if r.start[0] == MEMBER_GROUP}
    assert uses[("g001", "dev-1")] == 2 and uses[("g001", "pay-1")] == 3


@pytest.mark.parametrize("members,cap", [(600, 20), (3_000, 50)])
def test_the_number_of_groups_stays_bounded_and_every_member_is_in_one(members: int, cap: int) -> None:
    store = EmbeddedStore(None)
    accounts = _big_cluster(store, members)
    g = build_evidence(store, ["hydra"], degree_cap=20_000, fold_members=100, fold_groups=cap)
    groups = _groups(g)
    assert 1 < len(groups) <= cap
    listed = [a for p in groups.values() for a in p["account_ids"]]
    assert sorted(listed) == accounts and sum(p["members"] for p in groups.values()) == members
    linked = [r for r in g.relationships if r.type == Rel.LINKED]
    assert sum(r.props["links"] for r in linked) + sum(p["links_inside"] for p in groups.values()) == members


def test_members_few_others_share_values_with_form_one_group_of_the_rest(world: EmbeddedStore) -> None:
    # groups of at least 3 (MIN_GROUP): a1, a2 share more with each other, but with the address
    # and the device set aside, a1-a3 form one of the card; a4 is left over, alone (at most
    # REST_SHARE of the members, or MIN_GROUP, are)
    g = build_evidence(world, ["c-1"], degree_cap=50, fold_members=3)
    assert g.fold["groups"] == 2 and g.fold["values_set_aside"] == 2
    groups = _groups(g)
    assert groups["g001"]["account_ids"] == ["acct-a1", "acct-a2", "acct-a3"] and "rest" not in groups["g001"]
    assert groups["g001"]["shared_values"] == 4  # the card, the fingerprint, the e-mail domain, the template
    assert groups["g002"]["rest"] is True and groups["g002"]["account_ids"] == ["acct-a4"]
    plain = build_evidence(world, ["c-1"], degree_cap=50, fold_members=0)
    rest = fold_evidence(plain, max_groups=5, min_group=3, rest_share=1.0)
    assert _groups(rest) == {"g001": {**_groups(rest)["g001"], "rest": True}}  # with no bound on the rest: all four
    assert _groups(rest)["g001"]["shared_values"] == 3


def test_fold_is_a_no_op_on_membership_when_nothing_is_shared() -> None:
    store = EmbeddedStore(None)
    build_world(store)
    g = fold_evidence(build_evidence(store, ["c-3"], degree_cap=50, fold_members=0), max_groups=5)
    assert _groups(g) == {"g001": _groups(g)["g001"]} and _groups(g)["g001"]["account_ids"] == ["acct-c1"]


def test_a_redacted_folded_graph_hashes_its_member_lists_and_keeps_no_raw_graph(world: EmbeddedStore) -> None:
    g = build_evidence(world, ["c-1"], degree_cap=50, fold_members=3)
    red = redact_graph(g, Redactor(salt=b"s" * 32))
    assert red.unfolded is None and red.folded
    ids = [a for n in red.nodes if n.label == MEMBER_GROUP for a in n.props["account_ids"]]
    assert len(ids) == 4 and all(a.startswith("h-") for a in ids)
    assert not any("acct-a" in str(v) for n in red.nodes for v in n.props.values())


def test_folded_exports_of_hostile_text_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYBILSCOPE_EVIDENCE_FOLD_MEMBERS", "2")
    ws = tmp_path / "ws"
    store = EmbeddedStore(ws / "embedded")
    build_world(store)
    add_lone_surrogates(store)
    write_staging(ws)
    got = _check_every_format(store, ws, tmp_path / "out", {HOSTILE_PROMPT, LONG_PASTE, LONE_SURROGATE_PROMPT})
    graphml = got["graphml"]
    assert "members folded into" in graphml.graph["folded"] and not any(n.startswith("Account:") for n in graphml.nodes)
    listed = {a for _n, d in graphml.nodes(data=True) if d.get("kind") == MEMBER_GROUP for a in d["account_ids"].split(";")}
    assert {"acct-a1", "acct-a4", "acct-b1"} <= listed
    assert got["json"]["graph"]["fold"]["members"] == 7
    assert "members folded into" in got["md"]
    members_csv = (tmp_path / "out" / "report" / "members.csv").read_text(encoding="utf-8")
    assert all(a in members_csv for a in ("acct-a1", "acct-a4", "acct-b3"))
    assert "group_members" in got["tables"]["csv"] and len(got["tables"]["csv"]["group_members"]) == 7
    gexf = nx.read_gexf(export_graph(store, tmp_path / "g.gexf", "gexf", degree_cap=50).path)
    assert any(d.get("kind") == MEMBER_GROUP for _n, d in gexf.nodes(data=True))
    stix = export_graph(store, tmp_path / "s.json", "stix", redact=True, degree_cap=50).path
    bundle = stix2.parse(stix.read_bytes().decode("utf-8"), allow_custom=False)
    assert sum(1 for o in bundle.objects if o.type == "user-account") == 7
    assert any("member group" in str(getattr(o, "name", "")) for o in bundle.objects)
    assert verify_manifest(tmp_path / "out" / "redacted") == []


def test_the_canvas_draws_a_folded_graph_and_opens_a_group(world: EmbeddedStore) -> None:
    state = canvas.evidence_state(_folded(world))
    kinds = {n["kind"] for n in state.nodes.values()}
    assert MEMBER_GROUP in kinds and Label.ACCOUNT not in kinds
    group = state.nodes[f"{MEMBER_GROUP}|g001"]
    assert group["name"] == "g001 · 2 members" and group["members"] == 2 and "account_ids" not in group["props"]
    assert state.groups["g001"] == ["acct-a1", "acct-a2"] and canvas.expand_kinds(group["id"]) == ["members"]
    assert canvas.cluster_view(world, "c-1", degree_cap=50, fold_members=3).groups == {
        "g001": ["acct-a1", "acct-a2", "acct-a3"], "g002": ["acct-a4"]}  # what the UI builds
    data = canvas.canvas_data(state)
    assert any(k[0] == MEMBER_GROUP for k in data["legend"])
    linked = [e for e in state.edges.values() if e["label"] == "LINKED"]
    assert linked and linked[0]["links"] == 1
    assert not canvas.is_store_edge(state, linked[0]["id"])
    added = canvas.expand(state, world, group["id"], degree_cap=50)
    assert added == 2 and {"Account|acct-a1", "Account|acct-a2"} <= set(state.nodes)
    assert any(e["label"] == "LINKED" and e["source"] == "Account|acct-a1" for e in state.edges.values())
    assert all("x" in state.nodes[n] for n in ("Account|acct-a1", "Account|acct-a2"))
