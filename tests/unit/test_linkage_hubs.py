"""Hub suppression: over-cap values are hubs unless a tight group moved onto them together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from graph.linkage.device import link_device
from graph.linkage.evidence import Evidence, pair_of
from graph.linkage.facts import Facts, Use
from graph.linkage.hubs import synchronised
from graph.linkage.network import link_network
from graph.schema import Label

DATA_START = datetime(2024, 6, 1, tzinfo=UTC)
ONSET = datetime(2025, 5, 2, 3, tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _use(first: datetime, count: int = 40) -> Use:
    return Use(count=count, first=_iso(first), last=_iso(datetime(2025, 6, 5, tzinfo=UTC)))


def _accounts(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(n)]


def _relay_users(n: int, step_minutes: int = 17) -> dict[str, Use]:
    """Old accounts all switched onto the relay within a day of the operator's onset."""
    return {a: _use(ONSET + timedelta(minutes=step_minutes * i)) for i, a in enumerate(_accounts("r", n))}


def _nat_users(n: int) -> dict[str, Use]:
    """Strangers arriving on a shared address one by one over the year."""
    return {a: _use(DATA_START + timedelta(days=5 * i + 1), count=3 + i % 7) for i, a in enumerate(_accounts("h", n))}


def _network_facts(ips: dict[str, dict[str, Use]]) -> Facts:
    facts = Facts()
    facts.uses[Label.IP.value] = ips
    facts.entities[Label.IP.value] = {ip: {} for ip in ips}  # not in ip_intel: no kind
    return facts


def test_relay_shared_by_a_synchronised_group_of_old_accounts_is_linked() -> None:
    # an early user pins the data start; 60 accounts then move onto the relay in one day
    facts = _network_facts({"5.188.10.1": _relay_users(60), "9.9.9.9": {"early": _use(DATA_START)}})
    ev = Evidence()
    added = link_network(ev, facts, cap=50)
    assert added > 0 and not [h for h in ev.hubs if h.key == "5.188.10.1"]
    reason = ev.reasons(pair_of("r000", "r001"))[0].to_json()
    assert reason["kind"] == "shared_ip" and reason["accounts"] == 60 and reason["synchronised"] is True
    # every member is reachable: the relay's users form one connected group
    linked = {a for p in ev.pairs() for a in p}
    assert linked == set(_accounts("r", 60))


def test_carrier_nat_like_address_shared_by_as_many_diverse_accounts_is_a_hub() -> None:
    facts = _network_facts({"37.152.9.1": _nat_users(60)})
    ev = Evidence()
    assert link_network(ev, facts, cap=50) == 0
    assert [(h.key, h.why, h.accounts) for h in ev.hubs] == [("37.152.9.1", "over_cap", 60)]


def test_a_known_shared_egress_kind_stays_suppressed_even_when_synchronised() -> None:
    facts = _network_facts({"37.152.0.1": _relay_users(60), "9.9.9.9": {"early": _use(DATA_START)}})
    facts.entities[Label.IP.value]["37.152.0.1"] = {"kind": "mobile"}
    ev = Evidence()
    link_network(ev, facts, cap=50)
    assert ("37.152.0.1", "carrier_nat") in {(h.key, h.why) for h in ev.hubs}
    assert ev.pairs() == []


def test_first_uses_bunched_at_the_start_of_the_data_are_not_a_synchronised_group() -> None:
    # everyone active before the data window shows a first use on its first day (censoring)
    users = {a: _use(DATA_START + timedelta(minutes=i)) for i, a in enumerate(_accounts("b", 60))}
    assert not synchronised(users, datetime.timestamp(DATA_START))
    ev = Evidence()
    assert link_network(ev, _network_facts({"73.8.0.1": users}), cap=50) == 0


def test_synchronised_group_is_linked_in_a_linear_number_of_pairs() -> None:
    facts = _network_facts({"5.188.10.1": _relay_users(400, step_minutes=2), "9.9.9.9": {"early": _use(DATA_START)}})
    ev = Evidence()
    added = link_network(ev, facts, cap=10)
    assert 0 < added <= 400 * 10 * 2  # IP and its network, each at most cap pairs a member


def test_shared_relay_device_of_a_synchronised_group_is_linked_but_a_popular_one_is_not() -> None:
    facts = Facts()
    facts.uses[Label.DEVICE.value] = {
        "dev_relay": _relay_users(60), "dev_popular": _nat_users(60), "dev_early": {"early": _use(DATA_START)},
    }
    ev = Evidence()
    link_device(ev, facts, cap=50)
    assert ev.family_scores(pair_of("r000", "r059")).get("device", 0) > 0.2
    assert ev.family_scores(pair_of("h000", "h059")) == {}
    assert ("dev_popular", "over_cap") in {(h.key, h.why) for h in ev.hubs}
