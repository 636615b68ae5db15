"""Hub suppression: shared values that say nothing about who runs an account.

Two rules. A value on infrastructure known to be shared by strangers (carrier NAT, university
and corporate egress, VPN exits, Tor) is never evidence, however few accounts were seen on it.
Any value shared by more than ``hub_max_accounts`` accounts is a hub whatever it is (a default
SDK fingerprint, a webmail domain, a one-line prompt): it generates no pairs, which is also
what keeps pair generation linear in practice. Every suppressed value is reported.

Except one kind of over-cap value: infrastructure (an IP, a network, a device) that a *tight,
synchronised group* moved onto together. Strangers behind a popular address arrive on it one by
one over months; an operator's relay or proxy is put to use by all its accounts in a burst (the
reseller's stolen accounts, switched to its relay on one day). When at least ``SYNC_SHARE`` of
a value's users first used it within ``SYNC_WINDOW_S`` of each other (and that window is not
the start of the data, where everyone's first use is censored), the value is linked as if it
were at the cap (``rarity(cap)``), each member to its ``cap`` nearest in first-use order, which
keeps the pair count linear; the reasons say ``synchronised: true``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from graph.linkage.evidence import Evidence, Hub, Reason, pair_of, rarity
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


SYNC_WINDOW_S = 3 * 86400
SYNC_SHARE = 0.8


def over_cap(n: int, cap: int) -> bool:
    return n > cap


def epoch(ts: str) -> float | None:
    """Seconds since 1970 of an ISO-8601 time, or None when missing or unparseable."""
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def data_start(values: Mapping[str, Mapping[str, Use]]) -> float | None:
    """The earliest first use of any value: before it nothing was observed."""
    firsts = [t for users in values.values() for u in users.values() if (t := epoch(u.first)) is not None]
    return min(firsts) if firsts else None


def synchronised(users: Mapping[str, Use], start: float | None, window: float = SYNC_WINDOW_S,
                 share: float = SYNC_SHARE) -> bool:
    """Whether at least ``share`` of the users first used the value within ``window`` seconds
    of each other, that window lying after the first ``window`` of the data (``start``): a
    group moved onto it together, not strangers arriving over time."""
    times = sorted(t for u in users.values() if (t := epoch(u.first)) is not None)
    if len(times) < max(2, share * len(users)):
        return False
    need = max(2, int(share * len(users) + 0.999999))
    for i in range(len(times) - need + 1):
        if times[i + need - 1] - times[i] <= window and (start is None or times[i] > start + window):
            return True
    return False


def _ordered_ring(users: Mapping[str, Use], neighbours: int) -> list[tuple[str, str]]:
    """Pairs linking each user to its next ``neighbours`` in first-use order (all pairs when
    there are few users): linear in the group size, and close arrivals meet."""
    order = sorted(users, key=lambda a: (users[a].first, a))
    n = len(order)
    if n <= 2 * neighbours + 1:
        return [pair_of(x, y) for i, x in enumerate(order) for y in order[i + 1 :]]
    return sorted({pair_of(x, order[(i + step) % n]) for i, x in enumerate(order) for step in range(1, neighbours + 1)})


def _link_synchronised(evidence: Evidence, key: str, users: Mapping[str, Use], cap: int,
                       reason_for: ReasonFactory) -> int:
    """Link a synchronised over-cap group as if the value had ``cap`` users."""
    added = 0
    n = len(users)
    for a, b in _ordered_ring(users, cap):
        reason = reason_for(key, a, b, users, cap)
        if reason is not None:
            evidence.add(a, b, replace(reason, accounts=n, detail={**reason.detail, "synchronised": True}))
            added += 1
    return added


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
    link_synchronised: bool = False,
) -> int:
    """For each value shared by ``min_accounts``..``cap`` accounts and not a hub by
    ``hub_rule``, add ``reason_for(key, a, b, users, n)`` for every pair of its users; report the
    hubs. With ``link_synchronised`` (infrastructure values), an over-cap value whose users
    moved onto it together is linked instead (see the module doc). Returns the number of pair
    reasons added."""
    added = 0
    start = data_start(values) if link_synchronised else None
    for key in sorted(values):
        users = values[key]
        n = len(users)
        if n < min_accounts:
            continue
        why = hub_rule(key) if hub_rule else None
        if why is None and over_cap(n, cap):
            if link_synchronised and synchronised(users, start):
                added += _link_synchronised(evidence, key, users, cap, reason_for)
                continue
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
