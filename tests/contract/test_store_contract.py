"""The GraphStore contract, run against every store (embedded and Neo4j): behaviour must match."""

from __future__ import annotations

import json

import pytest

from graph.schema import SchemaError
from graph.store import GraphStore, Subgraph


def seed_small_world(store: GraphStore) -> None:
    """Three accounts; a1 and a2 share an IP, a2 and a3 share a card; a hub IP used by all."""
    with store.batch():
        store.upsert_nodes(
            "Account",
            [
                {"account_id": "a1", "country": "DE", "exchanges": 10},
                {"account_id": "a2", "country": "FR", "exchanges": 20},
                {"account_id": "a3", "country": "DE", "exchanges": 30},
            ],
        )
        store.upsert_relationships(
            "USED_IP",
            "Account",
            "IP",
            [
                {"start": "a1", "end": "10.0.0.1", "count": 3, "first_seen": "2025-04-22T00:00:00Z"},
                {"start": "a2", "end": "10.0.0.1", "count": 1},
                {"start": "a1", "end": "100.64.0.1"},
                {"start": "a2", "end": "100.64.0.1"},
                {"start": "a3", "end": "100.64.0.1"},
            ],
        )
        store.upsert_relationships(
            "PAID_WITH", "Account", "PaymentMethod", [{"start": "a2", "end": "pm1"}, {"start": "a3", "end": "pm1"}]
        )


def test_upsert_nodes_is_idempotent_and_updates_properties(store: GraphStore) -> None:
    store.upsert_nodes("Account", [{"account_id": "a1", "country": "DE", "exchanges": 1}])
    store.upsert_nodes("Account", [{"account_id": "a1", "exchanges": 5, "models": ["m1", "m2"]}])
    node = store.get_node("Account", "a1")
    assert node is not None
    assert node.props == {"country": "DE", "exchanges": 5, "models": ["m1", "m2"]}
    assert store.counts()["nodes"] == {"Account": 1}


def test_none_removes_a_property(store: GraphStore) -> None:
    store.upsert_nodes("Account", [{"account_id": "a1", "country": "DE", "status": "active"}])
    store.upsert_nodes("Account", [{"account_id": "a1", "status": None}])
    node = store.get_node("Account", "a1")
    assert node is not None and node.props == {"country": "DE"}


def test_missing_node_is_none(store: GraphStore) -> None:
    assert store.get_node("Account", "nobody") is None


def test_rows_without_key_and_unknown_labels_are_refused(store: GraphStore) -> None:
    with pytest.raises(SchemaError):
        store.upsert_nodes("Account", [{"country": "DE"}])
    with pytest.raises(SchemaError):
        store.upsert_nodes("Person`) DETACH DELETE n //", [{"account_id": "x"}])
    with pytest.raises(SchemaError):
        store.upsert_relationships("KNOWS", "Account", "Account", [{"start": "a", "end": "b"}])
    with pytest.raises(SchemaError):
        store.upsert_relationships("USED_IP", "Account", "Device", [{"start": "a", "end": "b"}])
    with pytest.raises(SchemaError):
        store.upsert_nodes("Account", [{"account_id": "a", "nested": {"x": 1}}])
    with pytest.raises(SchemaError):
        store.upsert_nodes("Account", [{"account_id": "a", "mixed": [1, "x"]}])
    assert store.counts()["nodes"] == {}


def test_values_that_look_like_cypher_are_stored_literally(store: GraphStore) -> None:
    hostile = "x'}) DETACH DELETE n RETURN n //`"
    store.upsert_nodes("Account", [{"account_id": hostile, "note": "$rows {a: 1}"}])
    node = store.get_node("Account", hostile)
    assert node is not None and node.props == {"note": "$rows {a: 1}"}
    assert store.find_nodes("Account", {"note": "$rows {a: 1}"})[0].key == hostile


def test_relationships_merge_and_create_missing_end_nodes(store: GraphStore) -> None:
    store.upsert_nodes("Account", [{"account_id": "a1"}])
    rows = [{"start": "a1", "end": "10.0.0.1", "count": 1}]
    store.upsert_relationships("USED_IP", "Account", "IP", rows)
    store.upsert_relationships("USED_IP", "Account", "IP", [{"start": "a1", "end": "10.0.0.1", "count": 7}])
    counts = store.counts()
    assert counts == {"nodes": {"Account": 1, "IP": 1}, "relationships": {"USED_IP": 1}}
    (rel,) = list(store.iter_relationships("USED_IP"))
    assert rel.start == ("Account", "a1") and rel.end == ("IP", "10.0.0.1")
    assert rel.props == {"count": 7}


def test_find_nodes_filters_sorts_and_limits(store: GraphStore) -> None:
    seed_small_world(store)
    found = store.find_nodes("Account", {"country": "DE"})
    assert [n.key for n in found] == ["a1", "a3"]
    assert [n.key for n in store.find_nodes("Account", limit=2)] == ["a1", "a2"]
    assert store.find_nodes("Account", {"country": "XX"}) == []


def test_iterators_stream_everything(store: GraphStore) -> None:
    seed_small_world(store)
    assert sorted(n.key for n in store.iter_nodes("Account")) == ["a1", "a2", "a3"]
    assert sorted(n.props["exchanges"] for n in store.iter_nodes("Account")) == [10, 20, 30]
    rels = sorted((r.start[1], r.end[1]) for r in store.iter_relationships("USED_IP"))
    assert rels == [("a1", "10.0.0.1"), ("a1", "100.64.0.1"), ("a2", "10.0.0.1"), ("a2", "100.64.0.1"), ("a3", "100.64.0.1")]


def test_neighbours_filters_by_type_and_direction_is_ignored(store: GraphStore) -> None:
    seed_small_world(store)
    sub = store.neighbours([("IP", "10.0.0.1")], ["USED_IP"])
    assert [n.ref for n in sub.nodes] == [("Account", "a1"), ("Account", "a2"), ("IP", "10.0.0.1")]
    assert len(sub.relationships) == 2
    only_cards = store.neighbours([("Account", "a2")], ["PAID_WITH"])
    assert only_cards.node_refs() == {("Account", "a2"), ("PaymentMethod", "pm1")}
    assert {r.type for r in only_cards.relationships} == {"PAID_WITH"}
    every_type = store.neighbours([("Account", "a2")])
    assert every_type.node_refs() == {
        ("Account", "a2"),
        ("IP", "10.0.0.1"),
        ("IP", "100.64.0.1"),
        ("PaymentMethod", "pm1"),
    }


def test_neighbours_degree_cap_reports_hubs_instead_of_flooding(store: GraphStore) -> None:
    seed_small_world(store)
    sub = store.neighbours([("Account", "a1")], ["USED_IP"], degree_cap=2)
    assert sub.node_refs() == {("Account", "a1"), ("IP", "10.0.0.1")}
    assert sub.hubs == {("IP", "100.64.0.1"): 3}
    assert not sub.truncated


def test_neighbours_limit_truncates_in_key_order(store: GraphStore) -> None:
    seed_small_world(store)
    sub = store.neighbours([("IP", "100.64.0.1")], ["USED_IP"], limit=2)
    assert sub.truncated
    assert sub.node_refs() == {("IP", "100.64.0.1"), ("Account", "a1"), ("Account", "a2")}
    assert len(sub.relationships) == 2


def test_neighbours_of_unknown_node_is_empty(store: GraphStore) -> None:
    assert store.neighbours([("Account", "ghost")]) == Subgraph()


def test_subgraph_is_induced(store: GraphStore) -> None:
    seed_small_world(store)
    sub = store.subgraph([("Account", "a1"), ("Account", "a2"), ("IP", "10.0.0.1"), ("Account", "ghost")])
    assert [n.ref for n in sub.nodes] == [("Account", "a1"), ("Account", "a2"), ("IP", "10.0.0.1")]
    assert {(r.start[1], r.end[1]) for r in sub.relationships} == {("a1", "10.0.0.1"), ("a2", "10.0.0.1")}
    typed = store.subgraph([("Account", "a2"), ("PaymentMethod", "pm1"), ("IP", "10.0.0.1")], ["PAID_WITH"])
    assert [r.type for r in typed.relationships] == ["PAID_WITH"]


def test_shortest_path_over_chosen_types(store: GraphStore) -> None:
    seed_small_world(store)
    path = store.shortest_path(("Account", "a1"), ("Account", "a3"), ["USED_IP", "PAID_WITH"])
    assert path is not None
    assert path.nodes[0].ref == ("Account", "a1") and path.nodes[-1].ref == ("Account", "a3")
    assert len(path.relationships) == 2  # via the hub IP 100.64.0.1
    assert path.nodes[1].ref == ("IP", "100.64.0.1")
    card_only = store.shortest_path(("Account", "a1"), ("Account", "a3"), ["PAID_WITH"])
    assert card_only is None
    four_hops = store.shortest_path(("Account", "a1"), ("Account", "a3"), ["PAID_WITH", "USED_IP"], max_hops=1)
    assert four_hops is None


def test_shortest_path_avoiding_hub_goes_the_long_way(store: GraphStore) -> None:
    seed_small_world(store)
    store.delete_nodes([("IP", "100.64.0.1")])
    path = store.shortest_path(("Account", "a1"), ("Account", "a3"), ["USED_IP", "PAID_WITH"])
    assert path is not None
    assert [n.ref for n in path.nodes] == [
        ("Account", "a1"),
        ("IP", "10.0.0.1"),
        ("Account", "a2"),
        ("PaymentMethod", "pm1"),
        ("Account", "a3"),
    ]
    assert [r.type for r in path.relationships] == ["USED_IP", "USED_IP", "PAID_WITH", "PAID_WITH"]


def test_path_to_self_and_to_missing(store: GraphStore) -> None:
    seed_small_world(store)
    self_path = store.shortest_path(("Account", "a1"), ("Account", "a1"))
    assert self_path is not None and [n.key for n in self_path.nodes] == ["a1"]
    assert store.shortest_path(("Account", "a1"), ("Account", "ghost")) is None


def test_degrees(store: GraphStore) -> None:
    seed_small_world(store)
    assert store.degrees([("IP", "100.64.0.1"), ("Account", "a2"), ("Account", "ghost")]) == {
        ("IP", "100.64.0.1"): 3,
        ("Account", "a2"): 3,
    }
    assert store.degrees([("Account", "a2")], ["PAID_WITH"]) == {("Account", "a2"): 1}


def test_counts_and_deletes(store: GraphStore) -> None:
    seed_small_world(store)
    assert store.counts() == {
        "nodes": {"Account": 3, "IP": 2, "PaymentMethod": 1},
        "relationships": {"PAID_WITH": 2, "USED_IP": 5},
    }
    assert store.delete_relationships("PAID_WITH") == 2
    assert store.delete_label("IP") == 2
    assert store.counts() == {"nodes": {"Account": 3, "PaymentMethod": 1}, "relationships": {}}
    assert store.delete_nodes([("Account", "a1"), ("Account", "ghost")]) == 1
    assert store.counts()["nodes"] == {"Account": 2, "PaymentMethod": 1}


def test_json_string_properties_round_trip(store: GraphStore) -> None:
    reasons = [{"family": "payment", "entity": ["PaymentMethod", "pm1"], "accounts": 2}]
    store.upsert_relationships(
        "LINKED", "Account", "Account", [{"start": "a1", "end": "a2", "weight": 0.75, "reasons": json.dumps(reasons), "families": ["payment"]}]
    )
    (rel,) = list(store.iter_relationships("LINKED"))
    assert json.loads(rel.props["reasons"]) == reasons
    assert rel.props["weight"] == 0.75 and rel.props["families"] == ["payment"]


def test_large_batches_are_chunked_and_complete(store: GraphStore) -> None:
    n = 3_000
    with store.batch():
        store.upsert_nodes("Account", ({"account_id": f"acc{i:05d}", "i": i} for i in range(n)))
        store.upsert_relationships(
            "USED_DEVICE", "Account", "Device", ({"start": f"acc{i:05d}", "end": f"dev{i % 100}"} for i in range(n))
        )
    counts = store.counts()
    assert counts["nodes"] == {"Account": n, "Device": 100}
    assert counts["relationships"] == {"USED_DEVICE": n}
    assert store.degrees([("Device", "dev7")]) == {("Device", "dev7"): n // 100}
