"""Network evidence: shared IPs weighted by rarity and time, shared-egress kinds suppressed."""

from __future__ import annotations

from graph.linkage.evidence import Evidence, pair_of, rarity
from graph.linkage.facts import Facts, Use
from graph.linkage.network import link_network, time_overlap
from graph.schema import Label


def _facts(ip_users: dict[str, dict[str, Use]], kinds: dict[str, str]) -> Facts:
    facts = Facts()
    facts.uses[Label.IP.value] = ip_users
    facts.entities[Label.IP.value] = {ip: {"kind": k} for ip, k in kinds.items()}
    return facts


def _use(first: str = "2025-04-22T00:00:00Z", last: str = "2025-05-01T00:00:00Z", count: int = 5) -> Use:
    return Use(count=count, first=first, last=last)


def test_shared_proxy_ip_links_with_reason_details() -> None:
    facts = _facts({"73.8.0.1": {"a": _use(), "b": _use(count=7)}}, {"73.8.0.1": "proxy"})
    ev = Evidence()
    link_network(ev, facts, cap=50)
    reasons = ev.reasons(pair_of("a", "b"))
    assert len(reasons) == 1
    r = reasons[0].to_json()
    assert r["family"] == "network" and r["kind"] == "shared_ip"
    assert r["entity"] == {"label": "IP", "key": "73.8.0.1"}
    assert r["accounts"] == 2 and r["counts"] == [5, 7]
    assert r["first_seen"] == "2025-04-22T00:00:00Z" and r["last_seen"] == "2025-05-01T00:00:00Z"
    assert ev.weight(pair_of("a", "b")) > 0.5


def test_rarity_lowers_weight_of_widely_shared_ips() -> None:
    small = _facts({"1.1.1.1": {x: _use() for x in "ab"}}, {"1.1.1.1": "residential"})
    big = _facts({"1.1.1.1": {x: _use() for x in "abcdefghijklmnop"}}, {"1.1.1.1": "residential"})
    ev_small, ev_big = Evidence(), Evidence()
    link_network(ev_small, small, cap=50)
    link_network(ev_big, big, cap=50)
    assert ev_big.weight(("a", "b")) < ev_small.weight(("a", "b"))
    assert rarity(2) == 1.0 and rarity(100) < rarity(16) < rarity(5)


def test_shared_egress_kinds_are_suppressed_and_reported() -> None:
    users = {x: _use() for x in "abc"}
    for kind, why in (("education", "education_egress"), ("vpn", "vpn_exit"), ("mobile", "carrier_nat"), ("corporate", "corporate_egress")):
        ev = Evidence()
        added = link_network(ev, _facts({"9.9.9.9": dict(users)}, {"9.9.9.9": kind}), cap=50)
        assert added == 0 and len(ev) == 0
        assert [(h.key, h.why, h.accounts) for h in ev.hubs] == [("9.9.9.9", why, 3)]


def test_values_over_the_cap_are_hubs_generating_no_pairs() -> None:
    users = {f"acc{i:03d}": _use() for i in range(60)}
    ev = Evidence()
    assert link_network(ev, _facts({"5.5.5.5": users}, {"5.5.5.5": "hosting"}), cap=50) == 0
    assert len(ev) == 0 and ev.hubs[0].why == "over_cap" and ev.hubs[0].accounts == 60


def test_time_apart_weakens_a_shared_ip() -> None:
    early = _use("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z")
    late = _use("2025-03-01T00:00:00Z", "2025-03-02T00:00:00Z")
    assert time_overlap(_use(), _use()) == 1.0
    assert time_overlap(early, late) < 0.5
    near = _facts({"1.2.3.4": {"a": _use(), "b": _use()}}, {"1.2.3.4": "residential"})
    far = _facts({"1.2.3.4": {"a": early, "b": late}}, {"1.2.3.4": "residential"})
    ev_near, ev_far = Evidence(), Evidence()
    link_network(ev_near, near, cap=50)
    link_network(ev_far, far, cap=50)
    assert ev_far.weight(("a", "b")) < ev_near.weight(("a", "b"))


def test_ip_without_kind_takes_its_networks_kind() -> None:
    facts = _facts({"37.152.0.5": {"a": _use(), "b": _use()}}, {})
    facts.entities[Label.IP.value] = {"37.152.0.5": {"network": "37.152.0.0/26"}}
    facts.entities[Label.NETWORK.value] = {"37.152.0.0/26": {"kind": "mobile"}}
    ev = Evidence()
    link_network(ev, facts, cap=50)
    assert len(ev) == 0 and ev.hubs[0].why == "carrier_nat"
