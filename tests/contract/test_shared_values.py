"""``GraphStore.shared_values`` and ``users_among`` on every store: what two accounts both
use, as reading both neighbourhoods and the values' degrees gives it, and which accounts reach
each of some values."""

from __future__ import annotations

from graph.schema import INFRASTRUCTURE_RELS, Label, Rel
from graph.store import GraphStore, SharedValue

TYPES = [r.value for r in INFRASTRUCTURE_RELS]


def seed(store: GraphStore) -> None:
    with store.batch():
        store.upsert_relationships(Rel.USED_IP, Label.ACCOUNT, Label.IP, [
            {"start": "a1", "end": "10.0.0.1", "count": 3, "first_seen": "2025-01-01T00:00:00Z"},
            {"start": "a2", "end": "10.0.0.1", "count": 1, "last_seen": "2025-02-01T00:00:00Z"},
            {"start": "a3", "end": "10.0.0.1"},
            {"start": "a1", "end": "10.0.0.2"},
            {"start": "a2", "end": "10.0.0.3"},
        ])
        store.upsert_relationships(Rel.USED_DEVICE, Label.ACCOUNT, Label.DEVICE, [
            {"start": "a1", "end": "d1", "count": 2}, {"start": "a2", "end": "d1"},
        ])
        store.upsert_relationships(Rel.IN_NETWORK, Label.IP, Label.NETWORK, [{"start": "10.0.0.1", "end": "10.0.0.0/24"}])
        store.upsert_relationships(Rel.LINKED, Label.ACCOUNT, Label.ACCOUNT, [{"start": "a1", "end": "a2", "weight": 0.9}])


def from_neighbourhoods(store: GraphStore, a: str, b: str, types: list[str]) -> list[SharedValue]:
    sides = []
    for x in (a, b):
        sub = store.neighbours([(Label.ACCOUNT.value, x)], types, limit=10**9)
        sides.append({(r.end if r.start[1] == x else r.start): r for r in sub.relationships})
    common = sorted(set(sides[0]) & set(sides[1]))
    degrees = store.degrees(common, types)
    return [SharedValue(ref, sides[0][ref].type, sides[0][ref].props, sides[1][ref].props, degrees[ref]) for ref in common]


def test_shared_values_are_what_both_neighbourhoods_have_in_common(store: GraphStore) -> None:
    seed(store)
    a1, a2 = (Label.ACCOUNT.value, "a1"), (Label.ACCOUNT.value, "a2")
    got = store.shared_values(a1, a2, TYPES)
    assert got == from_neighbourhoods(store, "a1", "a2", TYPES)
    assert [(v.ref, v.type, v.degree) for v in got] == [
        ((Label.DEVICE.value, "d1"), Rel.USED_DEVICE.value, 2), ((Label.IP.value, "10.0.0.1"), Rel.USED_IP.value, 3)]
    assert got[1].a_props == {"count": 3, "first_seen": "2025-01-01T00:00:00Z"}
    assert got[1].b_props == {"count": 1, "last_seen": "2025-02-01T00:00:00Z"}
    only_ips = store.shared_values(a1, a2, [Rel.USED_IP.value])
    assert only_ips == from_neighbourhoods(store, "a1", "a2", [Rel.USED_IP.value]) and len(only_ips) == 1
    assert store.shared_values(a1, (Label.ACCOUNT.value, "a3"), TYPES) == from_neighbourhoods(store, "a1", "a3", TYPES)
    assert store.shared_values(a1, (Label.ACCOUNT.value, "nobody"), TYPES) == []


def test_users_among_names_which_accounts_reach_each_value(store: GraphStore) -> None:
    seed(store)
    ip1, ip2, dev = (Label.IP.value, "10.0.0.1"), (Label.IP.value, "10.0.0.2"), (Label.DEVICE.value, "d1")
    got = store.users_among([ip1, ip2, dev, (Label.IP.value, "192.0.2.9")], ["a1", "a3", "nobody"], TYPES)
    assert got == {dev: ["a1"], ip1: ["a1", "a3"], ip2: ["a1"]}
    assert store.users_among([ip1, dev], ["a1", "a2"], [Rel.USED_DEVICE.value]) == {dev: ["a1", "a2"]}
    assert store.users_among([], ["a1"], TYPES) == {} and store.users_among([ip1], [], TYPES) == {}
