"""Hub suppression: shared values that say nothing about who runs an account.

Two rules. A value on infrastructure known to be shared by strangers (carrier NAT, university
and corporate egress, VPN exits, Tor) is never evidence, however few accounts were seen on it.
Any value shared by more than ``hub_max_accounts`` accounts is a hub whatever it is (a default
SDK fingerprint, a webmail domain, a one-line prompt): it generates no pairs, which is also
what keeps pair generation linear in practice. Every suppressed value is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graph.linkage.evidence import Evidence, Hub, Reason, rarity
from graph.linkage.facts import Use

# ip_intel kinds whose addresses are shared by unrelated people by design.
SHARED_EGRESS_KINDS: dict[str, str] = {
    "mobile": "carrier_nat",
    "education": "education_egress",
    "corporate": "corporate_egress",
    "vpn": "vpn_exit",
    "tor": "tor_exit",
}


def egress_hub(props: Mapping[str, Any]) -> str | None:
    """The hub rule an IP or network falls under by its kind, if any."""
    kind = str(props.get("kind") or "").lower()
    return SHARED_EGRESS_KINDS.get(kind)


def over_cap(n: int, cap: int) -> bool:
    return n > cap


ReasonFactory = Callable[[str, str, str, Mapping[str, Use], int], Reason | None]
"""(value key, account a, account b, the value's users, how many) -> a reason or None."""


def link_shared_values(
    evidence: Evidence,
    *,
    family: str,
    label: str,
    values: Mapping[str, Mapping[str, Use]],
    cap: int,
    reason_for: ReasonFactory,
    hub_rule: Callable[[str], str | None] | None = None,
    min_accounts: int = 2,
) -> int:
    """For each value shared by ``min_accounts``..``cap`` accounts and not a hub by
    ``hub_rule``, add ``reason_for(key, a, b, users, n)`` for every pair of its users; report the
    hubs. Returns the number of pair reasons added."""
    added = 0
    for key in sorted(values):
        users = values[key]
        n = len(users)
        if n < min_accounts:
            continue
        why = hub_rule(key) if hub_rule else None
        if why is None and over_cap(n, cap):
            why = "over_cap"
        if why is not None:
            evidence.suppress(Hub(family, label, key, n, why))
            continue
        added += evidence.add_group(list(users), _bind(reason_for, key, users, n))
    return added


def _bind(
    reason_for: ReasonFactory, key: str, users: Mapping[str, Use], n: int
) -> Callable[[str, str], Reason | None]:
    def make(a: str, b: str) -> Reason | None:
        return reason_for(key, a, b, users, n)

    return make


def shared_reason(family: str, kind: str, label: str, base: float) -> ReasonFactory:
    """A reason factory for values whose weight is ``base * rarity(n)``, with both sides'
    counts and the first/last times in the detail."""

    def make(key: str, a: str, b: str, users: Mapping[str, Use], n: int) -> Reason:
        ua, ub = users[a], users[b]
        firsts = [t for t in (ua.first, ub.first) if t]
        lasts = [t for t in (ua.last, ub.last) if t]
        info: dict[str, Any] = {"counts": [ua.count, ub.count]}
        if firsts:
            info["first_seen"] = min(firsts)
        if lasts:
            info["last_seen"] = max(lasts)
        return Reason(family, kind, label, key, n, base * rarity(n), info)

    return make
