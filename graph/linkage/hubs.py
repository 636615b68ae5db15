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
from typing import Any

import numpy as np

from graph.linkage.evidence import Evidence, Hub, Reason, pair_of, rarity
from graph.linkage.uses import NO_TIME, Use, UseTable
from graph.props import epoch

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


WeightsOf = Callable[["UseTable", np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(table, rows of account a, rows of account b, value positions, value sizes) -> the weights
``reason_for`` would give those pairs, computed column-wise."""


def rarities(n: np.ndarray) -> np.ndarray:
    """``rarity`` of every entry of ``n``."""
    return np.where(n <= 4, 1.0, 2.0 / np.sqrt(np.maximum(n, 1)))


def volume_factors(count_a: np.ndarray, count_b: np.ndarray, full: int = 5) -> np.ndarray:
    """``volume_factor`` column-wise."""
    return np.minimum(1.0, np.maximum(1, np.minimum(count_a, count_b)) / full)


def link_shared_values(
    evidence: Evidence,
    *,
    family: str,
    label: str,
    values: Mapping[str, Mapping[str, Use]],
    cap: int,
    reason_for: ReasonFactory,
    weights_of: WeightsOf,
    hub_rule: Callable[[str], str | None] | None = None,
    min_accounts: int = 2,
    link_synchronised: bool = False,
) -> int:
    """For each value shared by ``min_accounts``..``cap`` accounts and not a hub by
    ``hub_rule``, link every pair of its users with weight ``weights_of`` (reasons built by
    ``reason_for(key, a, b, users, n)`` when read); report the hubs. With ``link_synchronised``
    (infrastructure values), an over-cap value whose users moved onto it together is linked
    instead (see the module doc). Returns the number of pair reasons added.

    The pairs of all values of one size are made at once with NumPy: at the seed scale a
    million values shared by a handful of accounts each give tens of millions of pairs."""
    table = UseTable.from_mapping(values)
    sizes = table.sizes()
    start = table_start(table) if link_synchronised else None
    eligible: list[int] = []
    added = 0
    candidates = np.flatnonzero(sizes >= min_accounts).tolist()
    for pos in candidates:
        key, n = table.values_sorted[pos], int(sizes[pos])
        why = hub_rule(key) if hub_rule else None
        if why is None and over_cap(n, cap):
            if link_synchronised:
                users = table.users_at(pos)
                if synchronised(users, start):
                    added += _link_synchronised(evidence, key, users, cap, reason_for)
                    continue
            why = "over_cap"
        if why is not None:
            evidence.suppress(Hub(family, label, key, n, why))
            continue
        eligible.append(pos)
    positions = np.asarray(eligible, dtype=np.int64)
    deferred = evidence.defer_shared_values(family, label, table, positions, weights_of, reason_for)
    if deferred is not None:  # another engine makes these values' pairs (graph/engine)
        return added + deferred
    for n in np.unique(sizes[positions]).tolist() if positions.size else []:
        group = positions[sizes[positions] == n]
        upper_i, upper_j = np.triu_indices(n, 1)
        starts = table.offsets[group][:, None]
        rows_a, rows_b = (starts + upper_i).ravel().astype(np.int32), (starts + upper_j).ravel().astype(np.int32)
        key_pos = np.repeat(group, upper_i.size).astype(np.int32)
        size = np.full(rows_a.size, n, dtype=np.int64)
        weights = weights_of(table, rows_a, rows_b, key_pos, size)
        added += evidence.add_columns(
            family, table.names, table.account[rows_a], table.account[rows_b], weights,
            _row_reason(table, rows_a, rows_b, key_pos, int(n), reason_for),
            value_of=(label, table.values_sorted, key_pos),
        )
    return added


def _row_reason(table: UseTable, rows_a: np.ndarray, rows_b: np.ndarray, key_pos: np.ndarray, n: int,
                reason_for: ReasonFactory) -> Callable[[int], Reason]:
    def make(i: int) -> Reason:
        ra, rb = int(rows_a[i]), int(rows_b[i])
        a, b = table.names[int(table.account[ra])], table.names[int(table.account[rb])]
        reason = reason_for(table.values_sorted[int(key_pos[i])], a, b, {a: table.use(ra), b: table.use(rb)}, n)
        if reason is None:  # weights_of gave a weight where reason_for gives none: a bug
            raise ValueError(f"no reason for a weighted pair of {table.values_sorted[int(key_pos[i])]}")
        return reason

    return make


def table_start(table: UseTable) -> float | None:
    """``data_start`` of a table."""
    known = table.first[table.first != NO_TIME]
    return float(known.min()) if known.size else None


def shared_weights(base: float) -> WeightsOf:
    """Weights of ``shared_reason(..., base)``: ``base * rarity(n)``."""

    def weights(table: UseTable, rows_a: np.ndarray, rows_b: np.ndarray, key_pos: np.ndarray, n: np.ndarray) -> np.ndarray:
        return base * rarities(n)

    return weights


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
