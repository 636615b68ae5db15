"""The GraphStore contract, run against every store (embedded and Neo4j): behaviour must match."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from graph.schema import Label, Rel, SchemaError
from graph.store import GraphStore, StoreError, Subgraph


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


def test_relationship_chunks_write_every_chunk_and_check_each_row(store: GraphStore) -> None:
    """Detection's LINKED write: chunks made as they are consumed (a generator), all written;
    a bad row in a later chunk is refused with the schema error, after the chunks before it."""
    store.upsert_nodes("Account", [{"account_id": f"a{i}"} for i in range(30)])

    def chunks(bad_at: int | None = None) -> Any:
        for c in range(6):
            rows = [{"start": f"a{c * 5 + i}", "end": f"a{(c * 5 + i + 1) % 30}", "weight": 0.5} for i in range(5)]
            if c == bad_at:
                rows[2] = {"start": "a1", "end": ""}
            yield rows

    assert store.upsert_relationship_chunks("LINKED", "Account", "Account", chunks()) == 30
    assert store.counts()["relationships"] == {"LINKED": 30}
    store.delete_relationships("LINKED")
    with pytest.raises(SchemaError, match="without start or end key"):
        store.upsert_relationship_chunks("LINKED", "Account", "Account", chunks(bad_at=3))
    assert store.counts()["relationships"].get("LINKED", 0) == 15  # the three chunks before it
    with pytest.raises(SchemaError):
        store.upsert_relationship_chunks("NOT_A_TYPE", "Account", "Account", chunks())


def test_find_nodes_filters_sorts_and_limits(store: GraphStore) -> None:
    seed_small_world(store)
    found = store.find_nodes("Account", {"country": "DE"})
    assert [n.key for n in found] == ["a1", "a3"]
    assert [n.key for n in store.find_nodes("Account", limit=2)] == ["a1", "a2"]
    assert store.find_nodes("Account", {"country": "XX"}) == []


def test_iter_nodes_can_leave_out_a_key_prefix(store: GraphStore) -> None:
    store.upsert_nodes("PromptTemplate", [{"template_id": k, "capability": "chat"} for k in ("h:1a", "h:2b", "t-9", "th:x")])
    kept = sorted((n.key, n.props.get("capability")) for n in store.iter_nodes("PromptTemplate", skip_key_prefix="h:"))
    assert kept == [("t-9", "chat"), ("th:x", "chat")]
    assert len(list(store.iter_nodes("PromptTemplate"))) == 4


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


# ---- deleting single relationships ---------------------------------------------------------


def test_delete_relationship_refs_deletes_only_the_named_ones(store: GraphStore) -> None:
    seed_small_world(store)
    deleted = store.delete_relationship_refs(
        [
            (("Account", "a1"), "USED_IP", ("IP", "10.0.0.1")),
            (("Account", "a1"), "USED_IP", ("IP", "10.0.0.1")),  # named twice, deleted once
            (("Account", "a3"), "PAID_WITH", ("PaymentMethod", "pm1")),
            (("Account", "a1"), "PAID_WITH", ("PaymentMethod", "pm1")),  # never existed
        ]
    )
    assert deleted == 2
    assert store.counts() == {
        "nodes": {"Account": 3, "IP": 2, "PaymentMethod": 1},
        "relationships": {"PAID_WITH": 1, "USED_IP": 4},
    }
    assert sorted((r.start[1], r.end[1]) for r in store.iter_relationships("USED_IP")) == [
        ("a1", "100.64.0.1"), ("a2", "10.0.0.1"), ("a2", "100.64.0.1"), ("a3", "100.64.0.1"),
    ]
    assert [r.start[1] for r in store.iter_relationships("PAID_WITH")] == ["a2"]
    (rel,) = store.relationships_between([("Account", "a2"), ("IP", "10.0.0.1")])
    assert store.delete_relationship_refs([rel.ref]) == 1
    assert store.delete_relationship_refs([]) == 0


def test_delete_relationship_refs_checks_the_schema(store: GraphStore) -> None:
    seed_small_world(store)
    with pytest.raises(SchemaError):
        store.delete_relationship_refs([(("Account", "a1"), "KNOWS", ("Account", "a2"))])
    with pytest.raises(SchemaError):
        store.delete_relationship_refs([(("Account", "a1"), "USED_IP", ("Device", "10.0.0.1"))])
    with pytest.raises(SchemaError):
        store.delete_relationship_refs([(("Person`) DETACH DELETE n //", "a1"), "USED_IP", ("IP", "10.0.0.1"))])
    assert store.counts()["relationships"] == {"PAID_WITH": 2, "USED_IP": 5}


def test_values_the_graph_cannot_store_are_refused_on_every_store(store: GraphStore) -> None:
    for bad in (2**63, -(2**63) - 1, [1, 2**64], "\ud800", ["ok", "\udfff"]):
        with pytest.raises(SchemaError, match="cannot store"):
            store.upsert_nodes("Account", [{"account_id": "a1", "value": bad}])
    with pytest.raises(SchemaError, match="cannot store"):
        store.upsert_nodes("Account", [{"account_id": "bad\ud800key"}])
    with pytest.raises(SchemaError, match="cannot store"):
        store.upsert_relationships("USED_IP", "Account", "IP", [{"start": "a1", "end": "\udc00"}])
    store.upsert_nodes("Account", [{"account_id": "a1", "big": 2**63 - 1, "small": -(2**63), "text": "Zürich ✓"}])
    node = store.get_node("Account", "a1")
    assert node is not None and node.props == {"big": 2**63 - 1, "small": -(2**63), "text": "Zürich ✓"}
    assert store.counts()["nodes"] == {"Account": 1}


# ---- transactions: batch() --------------------------------------------------------------------


def another_handle(store: GraphStore) -> GraphStore:
    """A second, independent handle on the same data: what another process would see."""
    from graph.stores.embedded import EmbeddedStore
    from graph.stores.neo4j_store import Neo4jStore

    if isinstance(store, EmbeddedStore):
        return EmbeddedStore(store.directory)
    assert isinstance(store, Neo4jStore)
    return Neo4jStore(store.driver, store.database)


def everything(store: GraphStore) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every node and relationship with its properties, in a comparable order."""
    nodes = sorted(
        (n.label, n.key, json.dumps(n.props, sort_keys=True)) for label in Label for n in store.iter_nodes(label)
    )
    rels = sorted(
        (r.start, r.type, r.end, json.dumps(r.props, sort_keys=True)) for t in Rel for r in store.iter_relationships(t)
    )
    return nodes, rels


def write_some_and_delete_some(store: GraphStore) -> None:
    """Inside a batch: new nodes and relationships, changed properties, deletions of a node,
    of single relationships and of a whole type."""
    store.upsert_nodes("Account", [{"account_id": "a4", "country": "IT"}, {"account_id": "a1", "country": "XX"}])
    store.upsert_relationships("USED_IP", "Account", "IP", [{"start": "a4", "end": "10.0.0.9"}, {"start": "a1", "end": "10.0.0.1", "count": 99}])
    store.delete_nodes([("Account", "a3")])
    store.delete_relationship_refs([(("Account", "a2"), "USED_IP", ("IP", "10.0.0.1"))])
    store.delete_relationships("PAID_WITH")


class FlakyWrite:
    """Stands in for a store hook: writes the first half of its rows for real, then fails as a
    server that went away would, so part of the call really is in the store."""

    def __init__(self, real: Callable[..., int]) -> None:
        self.real = real
        self.calls = 0

    def __call__(self, *args: Any) -> int:
        self.calls += 1
        *head, rows = args
        self.real(*head, rows[: len(rows) // 2])
        raise ConnectionError("connection reset by peer")


def test_reads_inside_a_batch_see_its_writes(store: GraphStore) -> None:
    seed_small_world(store)
    with store.batch():
        store.upsert_nodes("Account", [{"account_id": "a4", "country": "DE"}])
        node = store.get_node("Account", "a4")
        assert node is not None and node.props == {"country": "DE"}
        assert [n.key for n in store.find_nodes("Account", {"country": "DE"})] == ["a1", "a3", "a4"]
        store.upsert_relationships("USED_IP", "Account", "IP", [{"start": "a4", "end": "10.0.0.1", "count": 2}])
        assert store.degrees([("IP", "10.0.0.1")]) == {("IP", "10.0.0.1"): 3}
        assert ("Account", "a4") in store.neighbours([("IP", "10.0.0.1")]).node_refs()
        store.delete_relationship_refs([(("Account", "a1"), "USED_IP", ("IP", "10.0.0.1"))])
        assert store.subgraph([("Account", "a1"), ("IP", "10.0.0.1")]).relationships == []
        store.delete_nodes([("Account", "a2")])
        assert store.get_node("Account", "a2") is None
        assert sorted(n.key for n in store.iter_nodes("Account")) == ["a1", "a3", "a4"]
        assert store.counts()["relationships"] == {"PAID_WITH": 1, "USED_IP": 3}
    assert sorted(n.key for n in another_handle(store).iter_nodes("Account")) == ["a1", "a3", "a4"]


def test_a_batch_is_invisible_to_others_until_it_commits(store: GraphStore) -> None:
    seed_small_world(store)
    other = another_handle(store)
    with store.batch():
        store.upsert_nodes("Account", [{"account_id": "a4"}])
        store.delete_relationship_refs([(("Account", "a2"), "PAID_WITH", ("PaymentMethod", "pm1"))])
        assert other.get_node("Account", "a4") is None
        assert other.counts()["relationships"]["PAID_WITH"] == 2
    assert other.get_node("Account", "a4") is not None
    assert other.counts()["relationships"]["PAID_WITH"] == 1


def test_a_batch_that_raises_midway_leaves_nothing_behind(store: GraphStore) -> None:
    seed_small_world(store)
    before = everything(store)
    with pytest.raises(RuntimeError, match="analyst closed the tab"), store.batch():
        write_some_and_delete_some(store)
        raise RuntimeError("analyst closed the tab")
    assert everything(store) == before
    assert everything(another_handle(store)) == before


@pytest.mark.parametrize("bad", [{"nested": 1}, 2**64, "lone \ud800 surrogate"], ids=["map", "int65", "surrogate"])
def test_a_value_the_store_refuses_midway_rolls_the_batch_back(store: GraphStore, bad: Any) -> None:
    seed_small_world(store)
    before = everything(store)
    rows = [{"account_id": "a5", "ok": 1}, {"account_id": "a6", "value": bad}]
    with pytest.raises(SchemaError), store.batch():
        write_some_and_delete_some(store)
        store.upsert_nodes("Account", iter(rows))
    assert everything(store) == before
    assert everything(another_handle(store)) == before


def test_a_store_failure_midway_through_a_write_rolls_the_batch_back(
    store: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_small_world(store)
    before = everything(store)
    flaky = FlakyWrite(store._upsert_relationships)
    with pytest.raises(StoreError, match="upsert_relationships failed: connection reset"), store.batch():
        write_some_and_delete_some(store)
        monkeypatch.setattr(store, "_upsert_relationships", flaky)
        store.upsert_relationships("USED_DEVICE", "Account", "Device", [{"start": "a1", "end": f"d{i}"} for i in range(10)])
    assert flaky.calls == 1
    assert everything(store) == before
    assert everything(another_handle(store)) == before


def test_a_failure_caught_inside_the_batch_still_rolls_it_back(
    store: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed operation may have written part of its rows, so swallowing its error must not
    let the rest commit: the batch rolls back and says so at its exit."""
    seed_small_world(store)
    before = everything(store)
    monkeypatch.setattr(store, "_upsert_nodes", FlakyWrite(store._upsert_nodes))
    with pytest.raises(StoreError, match="rolled back"), store.batch():
        store.delete_nodes([("Account", "a1")])
        with contextlib.suppress(StoreError):
            store.upsert_nodes("Account", [{"account_id": f"n{i}"} for i in range(4)])
        store.upsert_relationships("USED_DEVICE", "Account", "Device", [{"start": "a2", "end": "d1"}])
    monkeypatch.undo()
    assert everything(store) == before
    assert everything(another_handle(store)) == before


def test_nested_batches_join_the_outer_one(store: GraphStore) -> None:
    seed_small_world(store)
    before = everything(store)
    other = another_handle(store)
    with pytest.raises(RuntimeError), store.batch():
        store.upsert_nodes("Account", [{"account_id": "outer"}])
        with store.batch():
            store.upsert_nodes("Account", [{"account_id": "inner"}])
        assert other.get_node("Account", "inner") is None  # the inner exit committed nothing
        raise RuntimeError("fails after the inner batch")
    assert everything(store) == before
    # an inner failure the outer block catches still rolls the whole transaction back
    with pytest.raises(StoreError, match="rolled back"), store.batch():
        store.upsert_nodes("Account", [{"account_id": "outer"}])
        with contextlib.suppress(ValueError), store.batch():
            store.upsert_nodes("Account", [{"account_id": "inner"}])
            raise ValueError("inner gives up")
    assert everything(store) == before
    with store.batch():
        store.upsert_nodes("Account", [{"account_id": "outer"}])
        with store.batch():
            store.upsert_nodes("Account", [{"account_id": "inner"}])
    assert {"inner", "outer"} <= {n.key for n in other.iter_nodes("Account")}


def test_a_store_stays_usable_after_a_rolled_back_batch(store: GraphStore) -> None:
    seed_small_world(store)
    with pytest.raises(RuntimeError), store.batch():
        store.upsert_nodes("Account", [{"account_id": "lost"}])
        raise RuntimeError("boom")
    store.upsert_nodes("Account", [{"account_id": "plain"}])
    with store.batch():
        store.upsert_nodes("Account", [{"account_id": "batched"}])
    assert sorted(n.key for n in another_handle(store).iter_nodes("Account")) == ["a1", "a2", "a3", "batched", "plain"]


# ---- bulk() -----------------------------------------------------------------------------------


def bulk_load(store: GraphStore, fail_after_accounts: bool = False) -> None:
    with store.bulk():
        store.upsert_nodes("Account", [{"account_id": f"b{i}", "i": i} for i in range(50)])
        assert len(store.find_nodes("Account")) == 50  # reads see what was written so far
        if fail_after_accounts:
            raise RuntimeError("loader killed")
        store.upsert_relationships("USED_IP", "Account", "IP", [{"start": f"b{i}", "end": f"10.1.0.{i % 5}"} for i in range(50)])


def test_an_interrupted_bulk_write_is_finished_by_running_it_again(store: GraphStore) -> None:
    with pytest.raises(RuntimeError):
        bulk_load(store, fail_after_accounts=True)
    bulk_load(store)
    assert store.counts() == {"nodes": {"Account": 50, "IP": 5}, "relationships": {"USED_IP": 50}}
    bulk_load(store)  # idempotent
    assert everything(another_handle(store)) == everything(store)
    assert store.counts() == {"nodes": {"Account": 50, "IP": 5}, "relationships": {"USED_IP": 50}}


def test_bulk_and_batch_do_not_mix(store: GraphStore) -> None:
    with store.bulk():
        store.upsert_nodes("Account", [{"account_id": "loaded"}])
        with pytest.raises(StoreError, match="batch cannot open inside a bulk"), store.batch():
            pass
        with store.bulk():  # bulk writes nest
            store.upsert_nodes("Account", [{"account_id": "nested"}])
    with store.batch():
        store.upsert_nodes("Account", [{"account_id": "decided"}])
        with pytest.raises(StoreError, match="bulk cannot open inside a batch"), store.bulk():
            pass
    assert sorted(n.key for n in another_handle(store).iter_nodes("Account")) == ["decided", "loaded", "nested"]


def test_another_threads_write_is_not_caught_in_an_open_batch(store: GraphStore) -> None:
    """A transaction belongs to the thread that opened it: another thread's write (another
    analyst's session in the shared UI process) survives this batch rolling back."""
    errors: list[BaseException] = []

    def other_analyst() -> None:
        try:
            store.upsert_nodes("Account", [{"account_id": "theirs"}])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=other_analyst)
    with pytest.raises(RuntimeError), store.batch():
        store.upsert_nodes("Account", [{"account_id": "mine"}])
        thread.start()
        raise RuntimeError("my action fails")
    thread.join()
    assert errors == []
    assert [n.key for n in another_handle(store).iter_nodes("Account")] == ["theirs"]
