"""``GraphStore.ip_uses`` on every store: the address uses the store aggregates equal those
folded from the raw relationships, on a world with a folded network, an unfolded one known
only through IN_NETWORK, a network one member uses, a hub address and addresses outside any
network."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from graph.schema import Label, Rel
from graph.store import AddressUses, GraphStore, IpUses, NetworkUses, fold_uses, use_span

FOLDED, UNFOLDED, ALONE, CGNAT = "10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24", "100.64.0.0/10"
HUB = "100.64.0.1"
MEMBERS = ["a1", "a2", "a3", "a4"]


def seed(store: GraphStore) -> None:
    with store.batch():
        store.upsert_nodes(Label.IP, [
            *({"ip": f"10.1.0.{i}", "network": FOLDED} for i in range(1, 5)),
            {"ip": "10.3.0.1", "network": ALONE},
            {"ip": HUB, "network": CGNAT},
            {"ip": "10.2.0.1"}, {"ip": "10.2.0.2"}, {"ip": "192.0.2.1"}, {"ip": "192.0.2.2"},
        ])
        store.upsert_relationships(Rel.IN_NETWORK, Label.IP, Label.NETWORK, [
            {"start": "10.2.0.1", "end": UNFOLDED}, {"start": "10.2.0.2", "end": UNFOLDED},
        ])
        uses: list[dict[str, Any]] = [
            # the folded network: four addresses, 10.1.0.2 shared by a1 and a2
            {"start": "a1", "end": "10.1.0.1", "count": 3, "first_seen": "2025-01-02T00:00:00Z", "last_seen": "2025-01-05T00:00:00Z"},
            {"start": "a1", "end": "10.1.0.2", "count": 2, "first_seen": "2025-01-01T00:00:00Z", "signup": True},
            {"start": "a2", "end": "10.1.0.2", "count": 1, "first_seen": "2025-02-01T00:00:00Z", "last_seen": "2025-02-03T00:00:00Z"},
            {"start": "a2", "end": "10.1.0.3"},
            {"start": "a3", "end": "10.1.0.4", "count": 7, "first_seen": "2025-03-01T00:00:00Z", "last_seen": "2025-03-09T00:00:00Z"},
            # the unfolded network (IN_NETWORK only): 10.2.0.1 shared, 10.2.0.2 a3's alone
            {"start": "a1", "end": "10.2.0.1", "count": 4, "first_seen": "2025-04-01T00:00:00Z", "last_seen": "2025-04-02T00:00:00Z"},
            {"start": "a2", "end": "10.2.0.1", "count": 5, "first_seen": "2025-04-03T00:00:00Z", "signup": False},
            {"start": "a3", "end": "10.2.0.2", "count": 1, "first_seen": "2025-05-01T00:00:00Z", "last_seen": "2025-05-02T00:00:00Z"},
            # one member's network
            {"start": "a4", "end": "10.3.0.1", "count": 9},
            # outside any network: 192.0.2.1 shared, 192.0.2.2 a4's alone
            {"start": "a3", "end": "192.0.2.1", "count": 2, "first_seen": "2025-06-01T00:00:00Z"},
            {"start": "a4", "end": "192.0.2.1", "count": 3, "first_seen": "2025-06-02T00:00:00Z", "last_seen": "2025-06-04T00:00:00Z"},
            {"start": "a4", "end": "192.0.2.2", "count": 1},
            # a hub: two members and three other accounts
            *({"start": a, "end": HUB, "count": 1} for a in ("a1", "a2", "x1", "x2", "x3")),
            # an address of the folded network only a non-member used
            {"start": "x1", "end": "10.1.0.9", "count": 1},
        ]
        store.upsert_relationships(Rel.USED_IP, Label.ACCOUNT, Label.IP, uses)


def folded_from_raw(store: GraphStore, accounts: list[str], degree_cap: int | None, fold_ips: int,
                    hubs: tuple[str, ...] = (), watch: tuple[str, ...] = ()) -> IpUses:
    """What ``ip_uses`` must return, folded here from every raw relationship of the store."""
    raw = [r for r in store.iter_relationships(Rel.USED_IP)]
    degree: dict[str, int] = defaultdict(int)
    for r in raw:
        degree[r.end[1]] += 1
    own = {n.key: str(n.props["network"]) for n in store.iter_nodes(Label.IP) if n.props.get("network")}
    via: dict[str, list[str]] = defaultdict(list)
    for r in store.iter_relationships(Rel.IN_NETWORK):
        via[r.start[1]].append(r.end[1])
    by_ip: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in raw:
        if r.start[1] in accounts:
            by_ip[r.end[1]][r.start[1]] = r.props
    out = IpUses()
    groups: dict[str, list[str]] = defaultdict(list)
    users: set[str] = set()
    for ip, uses in by_ip.items():
        network = own.get(ip) or min(via.get(ip, []), default="")
        if ip in watch and network:
            out.networks_of[ip] = network
        if degree_cap is not None and (degree[ip] > degree_cap or ip in hubs):
            out.hubs[ip] = degree[ip]
            users |= set(uses)
        else:
            groups[network].append(ip)
    for network, ips in sorted(groups.items()):
        members = {a for ip in ips for a in by_ip[ip]}
        shared = [ip for ip in ips if len(by_ip[ip]) >= 2]
        folded = bool(network) and len(ips) >= fold_ips
        first, last = use_span(u for ip in ips for u in by_ip[ip].values())
        summary = NetworkUses(network, len(ips), len(members), len(shared), first, last, folded)
        shown = [] if folded else sorted(shared)
        out.addresses += [AddressUses(ip, network, degree[ip], dict(by_ip[ip])) for ip in shown]
        if network and len(members) >= 2:
            rest: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for ip in ips:
                if ip not in shown:
                    for a, u in by_ip[ip].items():
                        rest[a].append(u)
            summary.uses = {a: fold_uses(u) for a, u in rest.items()}
        out.networks.append(summary)
    out.addresses.sort(key=lambda a: a.address)
    out.hub_users = sorted(users)
    return out


def test_the_store_aggregates_address_uses_as_folding_the_raw_relationships_does(store: GraphStore) -> None:
    seed(store)
    watch = ("10.2.0.2", HUB, "8.8.8.8")
    got = store.ip_uses(MEMBERS, degree_cap=3, fold_ips=3, watch=watch)
    assert got == folded_from_raw(store, MEMBERS, 3, 3, watch=watch)
    nets = {n.network: n for n in got.networks}
    assert sorted(nets) == ["", FOLDED, UNFOLDED, ALONE]
    folded = nets[FOLDED]
    assert (folded.addresses, folded.members, folded.shared, folded.folded) == (4, 3, 1, True)
    assert (folded.first_seen, folded.last_seen) == ("2025-01-01T00:00:00Z", "2025-03-09T00:00:00Z")
    assert folded.uses == {
        "a1": {"ips": 2, "count": 5, "first_seen": "2025-01-01T00:00:00Z", "last_seen": "2025-01-05T00:00:00Z", "signup": True},
        "a2": {"ips": 2, "count": 1, "first_seen": "2025-02-01T00:00:00Z", "last_seen": "2025-02-03T00:00:00Z"},
        "a3": {"ips": 1, "count": 7, "first_seen": "2025-03-01T00:00:00Z", "last_seen": "2025-03-09T00:00:00Z"},
    }
    unfolded = nets[UNFOLDED]  # its network is only known through IN_NETWORK
    assert (unfolded.addresses, unfolded.members, unfolded.shared, unfolded.folded) == (2, 3, 1, False)
    assert unfolded.uses == {"a3": {"ips": 1, "count": 1, "first_seen": "2025-05-01T00:00:00Z", "last_seen": "2025-05-02T00:00:00Z"}}
    assert (nets[ALONE].members, nets[ALONE].uses) == (1, {})
    assert (nets[""].addresses, nets[""].shared, nets[""].uses) == (2, 1, {})
    assert [(a.address, a.network, a.accounts, sorted(a.uses)) for a in got.addresses] == [
        ("10.2.0.1", UNFOLDED, 2, ["a1", "a2"]), ("192.0.2.1", "", 2, ["a3", "a4"])]
    assert got.addresses[0].uses["a2"] == {"count": 5, "first_seen": "2025-04-03T00:00:00Z", "signup": False}
    assert (got.hubs, got.hub_users) == ({HUB: 5}, ["a1", "a2"])
    assert got.networks_of == {"10.2.0.2": UNFOLDED, HUB: CGNAT}


def test_named_hubs_no_cap_and_other_folds_also_match_the_raw_relationships(store: GraphStore) -> None:
    seed(store)
    for accounts, cap, fold, hubs in ((MEMBERS, 3, 3, ("192.0.2.1",)), (MEMBERS, None, 3, (HUB,)),
                                      (MEMBERS, 10, 5, ()), (["a1", "a2"], 1, 1, ()), (["a3", "nobody"], 3, 2, ())):
        got = store.ip_uses(accounts, degree_cap=cap, fold_ips=fold, hubs=hubs)
        assert got == folded_from_raw(store, accounts, cap, fold, hubs), (accounts, cap, fold, hubs)
    named = store.ip_uses(MEMBERS, degree_cap=3, fold_ips=3, hubs=("192.0.2.1",))
    assert named.hubs == {HUB: 5, "192.0.2.1": 2}
    assert store.ip_uses(MEMBERS, degree_cap=None, fold_ips=3, hubs=(HUB,)).hubs == {}
    assert store.ip_uses([], degree_cap=3, fold_ips=3) == IpUses()
