"""The evidence graph of a cluster (graph/evidence.py): exactly what links its members on the
hand-made world, hubs collapsed, uses aggregated, links capped; and bounded on a generated
world, where no node links fewer than two members."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from graph.evidence import (
    BILLING_PATTERN,
    HAS_HUB,
    HUB,
    MATCHES,
    VALUE_LABELS,
    EvidenceGraph,
    build_evidence,
    cap_links,
    links_per_member,
)
from graph.export.selection import evidence_for, select
from graph.schema import Label, Rel
from graph.settings import Settings
from graph.store import GraphStore, NodeKey, Relationship
from graph.stores.embedded import EmbeddedStore
from tests.worlds.evidence import HUB_IP, build_world

W0, W1 = "2025-04-22T10:00:00Z", "2025-05-30T00:00:00Z"


@pytest.fixture()
def world() -> EmbeddedStore:
    store = EmbeddedStore(None)
    build_world(store)
    return store


def _refs(graph: EvidenceGraph) -> set[NodeKey]:
    return {n.ref for n in graph.nodes}


def _edges(graph: EvidenceGraph) -> set[tuple[str, str, str]]:
    return {(r.start[1], r.type, r.end[1]) for r in graph.relationships}


def test_the_evidence_of_c1_is_exactly_what_links_two_members(world: EmbeddedStore) -> None:
    g = build_evidence(world, ["c-1"], degree_cap=50)
    members = {("Account", a) for a in ("acct-a1", "acct-a2", "acct-a3", "acct-a4")}
    assert _refs(g) == members | {
        ("Cluster", "c-1"), ("Operator", "op-alpha"),
        ("PaymentMethod", "pay-1"), ("IP", "203.0.113.7"), ("Network", "203.0.113.0/24"), ("Device", "dev-1"),
        ("ClientFingerprint", "ja3-deadbeef"), ("EmailDomain", "mailbox.test"), ("PromptTemplate", "tpl-cot-1"),
        (HUB, "IP"), ("Indicator", "ip:203.0.113.7"), ("Indicator", "card_bin:411111"), ("Indicator", "asn:64500"),
    }
    # used by one member only: tpl-hi (acct-a2), 192.0.2.1 (acct-a1), 198.51.100.9 (acct-a3); a hub: HUB_IP
    assert not _refs(g) & {("PromptTemplate", "tpl-hi"), ("IP", "192.0.2.1"), ("IP", "198.51.100.9"), ("IP", HUB_IP),
                           ("Network", "198.51.100.0/24"), ("ASN", "64500")}
    assert g.left_out == {"single-member IP": 2, "single-member PromptTemplate": 1}
    uses = {
        *((a, "PAID_WITH", "pay-1") for a in ("acct-a1", "acct-a2", "acct-a3")),
        *((a, "USED_IP", "203.0.113.7") for a in ("acct-a1", "acct-a2", "acct-a4")),
        ("acct-a1", "USED_DEVICE", "dev-1"), ("acct-a2", "USED_DEVICE", "dev-1"),
        *(((f"acct-a{i}", t, v) for i in range(1, 5) for t, v in (
            ("USED_CLIENT", "ja3-deadbeef"), ("HAS_EMAIL_DOMAIN", "mailbox.test"), ("SENT_TEMPLATE", "tpl-cot-1")))),
    }
    assert _edges(g) == uses | {(f"acct-a{i}", "MEMBER_OF", "c-1") for i in range(1, 5)} | {
        ("acct-a1", "LINKED", "acct-a2"), ("acct-a2", "LINKED", "acct-a3"),
        ("203.0.113.7", "IN_NETWORK", "203.0.113.0/24"),
        ("c-1", "ATTRIBUTED_TO", "op-alpha"), ("c-1", "SUGGESTED_OPERATOR", "op-alpha"), ("c-1", HAS_HUB, "IP"),
        *(("op-alpha", "HAS_INDICATOR", i) for i in ("ip:203.0.113.7", "card_bin:411111", "asn:64500")),
        ("ip:203.0.113.7", MATCHES, "203.0.113.7"), ("card_bin:411111", MATCHES, "pay-1"),
        ("asn:64500", MATCHES, "203.0.113.0/24"),
    }
    nodes = g.node_map()
    ip = nodes[("IP", "203.0.113.7")].props
    assert (ip["members"], ip["accounts"], ip["first_seen"], ip["last_seen"]) == (3, 4, W0, W1)
    assert nodes[("PromptTemplate", "tpl-cot-1")].props["members"] == 4
    assert nodes[("PromptTemplate", "tpl-cot-1")].props["accounts"] == 5  # acct-b1 sent it too
    assert nodes[("PromptTemplate", "tpl-cot-1")].props["capability"] == "reasoning"  # the stored properties kept
    assert nodes[("Network", "203.0.113.0/24")].props["members"] == 3
    assert nodes[("Network", "203.0.113.0/24")].props["folded"] is False
    hub = nodes[(HUB, "IP")].props
    assert (hub["hubs"], hub["members"], hub["accounts_max"], hub["values"]) == (1, 1, 56, [HUB_IP])
    assert g.hubs == {("IP", HUB_IP): 56}
    sent = {r.start[1]: r.props["count"] for r in g.relationships if r.type == Rel.SENT_TEMPLATE}
    assert sent == {"acct-a1": 10, "acct-a2": 20, "acct-a3": 30, "acct-a4": 40}
    assert all(n.props["members"] >= 2 for n in g.nodes if n.label in VALUE_LABELS)


def test_a_network_with_many_member_addresses_is_folded_into_one_use_per_account(world: EmbeddedStore) -> None:
    world.upsert_relationships(Rel.USED_IP, Label.ACCOUNT, Label.IP, [
        {"start": "acct-a1", "end": "203.0.113.8", "first_seen": "2025-04-01T00:00:00Z", "last_seen": "2025-06-10T00:00:00Z", "count": 5},
        {"start": "acct-a3", "end": "203.0.113.9", "first_seen": "2025-05-01T00:00:00Z", "last_seen": "2025-05-02T00:00:00Z", "count": 2},
    ])
    world.upsert_relationships(Rel.IN_NETWORK, Label.IP, Label.NETWORK, [
        {"start": "203.0.113.8", "end": "203.0.113.0/24"}, {"start": "203.0.113.9", "end": "203.0.113.0/24"}])
    g = build_evidence(world, ["c-1"], degree_cap=50, fold_ips=3)
    assert not any(n.label == Label.IP for n in g.nodes)
    net = g.node_map()[("Network", "203.0.113.0/24")].props
    assert (net["members"], net["member_ips"], net["folded"]) == (4, 3, True)
    uses = {r.start[1]: r.props for r in g.relationships if r.type == Rel.USED_IP}
    assert uses["acct-a1"] == {"count": 15, "ips": 2, "first_seen": "2025-04-01T00:00:00Z",
                               "last_seen": "2025-06-10T00:00:00Z", "signup": True}
    assert uses["acct-a3"] == {"count": 2, "ips": 1, "first_seen": "2025-05-01T00:00:00Z", "last_seen": "2025-05-02T00:00:00Z"}
    assert set(uses) == {"acct-a1", "acct-a2", "acct-a3", "acct-a4"}
    # unfolded, each member's unshared address in the shown network is one use of the network
    g = build_evidence(world, ["c-1"], degree_cap=50, fold_ips=5)
    assert ("IP", "203.0.113.7") in _refs(g) and ("IP", "203.0.113.8") not in _refs(g)
    to_net = {r.start[1]: r.props["ips"] for r in g.relationships if r.type == Rel.USED_IP and r.end[0] == "Network"}
    assert to_net == {"acct-a1": 1, "acct-a3": 1}


def test_cards_of_one_bin_and_billing_pattern_are_one_shared_value(world: EmbeddedStore) -> None:
    world.upsert_nodes(Label.PAYMENT_METHOD, [
        {"payment_id": p, "card_bin": "555555", "billing_country": "US", "billing_postal": "10001", "billing_name_hash": "nh"}
        for p in ("pay-4", "pay-5")])
    world.upsert_relationships(Rel.PAID_WITH, Label.ACCOUNT, Label.PAYMENT_METHOD, [
        {"start": "acct-a3", "end": "pay-4", "first_seen": "2025-04-23T00:00:00Z"},
        {"start": "acct-a4", "end": "pay-5", "first_seen": "2025-04-24T00:00:00Z"}])
    g = build_evidence(world, ["c-1"], degree_cap=50)
    ref = (BILLING_PATTERN, "555555|US|10001|nh")
    assert ref in _refs(g) and not _refs(g) & {("PaymentMethod", "pay-4"), ("PaymentMethod", "pay-5")}
    props = g.node_map()[ref].props
    assert (props["members"], props["instruments"], props["first_seen"]) == (2, 2, "2025-04-23T00:00:00Z")
    assert {(r.start[1], r.type) for r in g.relationships if r.end == ref} == {("acct-a3", "PAID_WITH"), ("acct-a4", "PAID_WITH")}


def test_links_are_capped_per_account_and_no_linked_member_is_left_alone(world: EmbeddedStore) -> None:
    g = build_evidence(world, ["c-1", "c-2"], degree_cap=50, links_per_account=1)
    links = {(r.start[1], r.end[1]) for r in g.relationships if r.type == Rel.LINKED}
    # strongest first while both ends have room: a1-a2 (0.9), b1-b2 (0.7); a3 keeps its strongest, a2-a3
    assert links == {("acct-a1", "acct-a2"), ("acct-b1", "acct-b2"), ("acct-a2", "acct-a3")}
    assert g.left_out["LINKED over the cap"] == 1
    reasons = json.loads(next(r for r in g.relationships if r.type == Rel.LINKED).props["reasons"])
    assert reasons[0]["entity"] == {"label": "PaymentMethod", "key": "pay-1"}
    every = build_evidence(world, ["c-1", "c-2"], degree_cap=50, links_per_account=10)
    assert {(r.start[1], r.end[1]) for r in every.relationships if r.type == Rel.LINKED} == links | {("acct-a3", "acct-b1")}


def test_cap_links_keeps_at_most_the_cap_per_account() -> None:
    def link(a: int, b: int, w: float) -> Relationship:
        return Relationship("LINKED", ("Account", f"a{a}"), ("Account", f"a{b}"), {"weight": w})

    star = [link(0, i, 1 - i / 100) for i in range(1, 30)] + [link(i, i + 1, 0.1) for i in range(1, 29)]
    kept = cap_links(star, 3)
    degree = Counter(e for r in kept for e in (r.start, r.end))
    assert degree[("Account", "a0")] <= 4 and max(degree.values()) <= 4
    assert all(degree[("Account", f"a{i}")] >= 1 for i in range(30))
    assert {(r.start[1], r.end[1]) for r in kept} >= {("a0", "a1"), ("a0", "a2"), ("a0", "a3")}


def test_a_big_cluster_keeps_fewer_links_per_member_within_the_budget(world: EmbeddedStore) -> None:
    every = build_evidence(world, ["c-1", "c-2"], degree_cap=50, links_per_account=10)
    budget = build_evidence(world, ["c-1", "c-2"], degree_cap=50, links_per_account=10, max_links=1)
    n_members = len(budget.members())
    one_each = build_evidence(world, ["c-1", "c-2"], degree_cap=50, links_per_account=1)
    links = {(r.start, r.end) for r in budget.relationships if r.type == Rel.LINKED}
    assert links == {(r.start, r.end) for r in one_each.relationships if r.type == Rel.LINKED}
    assert len(links) < len([r for r in every.relationships if r.type == Rel.LINKED])
    assert links_per_member(n_members, 10, 1) == 1 and links_per_member(n_members, 10, 10_000) == 10
    assert links_per_member(2_200, 10, 5_000) == 4 and links_per_member(0, 10, 5_000) == 10


def test_other_clusters_sharing_infrastructure_are_included(world: EmbeddedStore) -> None:
    world.upsert_relationships(Rel.SHARES_INFRASTRUCTURE, Label.CLUSTER, Label.CLUSTER,
                               [{"start": "c-1", "end": "c-3", "values": 1, "families": ["network"]}])
    g = build_evidence(world, ["c-1"], degree_cap=50)
    assert ("c-1", "SHARES_INFRASTRUCTURE", "c-3") in _edges(g) and ("Cluster", "c-3") in _refs(g)
    assert ("Account", "acct-c1") not in _refs(g)  # its members are not this cluster's


def test_both_stores_build_the_same_evidence_graph(store: GraphStore) -> None:
    build_world(store)
    reference = EmbeddedStore(None)
    build_world(reference)
    got, want = build_evidence(store, ["c-1", "c-2"], degree_cap=50), build_evidence(reference, ["c-1", "c-2"], degree_cap=50)
    assert [(n.ref, n.props) for n in got.nodes] == [(n.ref, n.props) for n in want.nodes]
    assert [(r.ref, r.props) for r in got.relationships] == [(r.ref, r.props) for r in want.relationships]
    assert (got.hubs, got.left_out) == (want.hubs, want.left_out)


def test_a_batch_that_reads_too_much_is_split(world: EmbeddedStore) -> None:
    whole = build_evidence(world, ["c-1", "c-2"], degree_cap=50)
    split = build_evidence(world, ["c-1", "c-2"], degree_cap=50, batch_size=7, read_limit=8)  # acct-a1 uses 8 values
    assert [n.ref for n in split.nodes] == [n.ref for n in whole.nodes]
    assert [r.ref for r in split.relationships] == [r.ref for r in whole.relationships]
    assert not split.truncated and not whole.truncated
    assert build_evidence(world, ["c-1"], degree_cap=50, read_limit=4).truncated  # one member alone is more: said


# ---- a generated world -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[EmbeddedStore, Path]:
    from graph.detection import run_detection
    from graph.workspace import embedded_dir
    from loaders.load import load_bundle
    from loaders.synthetic import generate

    root = tmp_path_factory.mktemp("generated")
    generate(root / "bundle", "tiny", 7)
    ws = root / "ws"
    settings = Settings({"workspace": str(ws), "hash_salt": "evidence-test"}, environ={})
    store = EmbeddedStore(embedded_dir(ws))
    load_bundle(root / "bundle", settings, store)
    run_detection(store, settings)
    return store, ws


def test_the_largest_generated_cluster_holds_only_what_links_two_members(generated: tuple[EmbeddedStore, Path]) -> None:
    store, ws = generated
    clusters = sorted(store.iter_nodes(Label.CLUSTER), key=lambda c: (-int(c.props.get("size") or 0), c.key))
    cid = clusters[0].key
    g = evidence_for(store, [cid], workspace=ws, degree_cap=200, links_per_account=10)
    full = select(store, [cid], degree_cap=200)
    members = set(g.members())
    assert len(members) == int(clusters[0].props["size"]) >= 10
    users: dict[NodeKey, set[NodeKey]] = defaultdict(set)
    for rel in g.relationships:
        if rel.start in members and rel.end[0] in VALUE_LABELS:
            users[rel.end].add(rel.start)
    for rel in g.relationships:  # a network's members include those of its addresses shown
        if rel.type == Rel.IN_NETWORK:
            users[rel.end] |= users[rel.start]
    values = [n for n in g.nodes if n.label in VALUE_LABELS]
    assert values, "the cluster shares something"
    for node in values:
        assert len(users[node.ref]) >= 2 and node.props["members"] == len(users[node.ref]), node.ref
    assert {n.label for n in g.nodes} <= {*VALUE_LABELS, "Account", "Cluster", "Operator", "Indicator", HUB}
    links = Counter(e for r in g.relationships if r.type == Rel.LINKED for e in (r.start, r.end))
    assert max(links.values(), default=0) <= 11
    # one use per (account, value), and the graph is a fraction of one hop of everything
    assert len({(r.start, r.type, r.end) for r in g.relationships}) == len(g.relationships)
    assert len(g.nodes) < len(full.nodes) and len(g.relationships) < len(full.relationships)
    assert len(g.relationships) <= len(members) * (10 + 2 + len(values))
