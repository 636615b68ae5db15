"""Network evidence: shared IP addresses, networks (CIDR) and autonomous systems.

Weight falls with how many accounts share the value (``rarity``) and with the time between the
two accounts' use of it: the same address a month apart is more likely a reassigned home line
than one operator; and with the lighter user's volume on a shared address (a stranger who used
a residential-proxy exit once is not the operator that drives hundreds of requests through it). Proxy and hosting addresses weigh more than residential ones (an operator's
infrastructure); shared-egress kinds are hubs (see ``hubs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from graph.linkage.evidence import Evidence, Reason, rarity, volume_factor
from graph.linkage.facts import Facts, Use
from graph.linkage.hubs import egress_hub, epoch, link_shared_values, rarities, volume_factors
from graph.linkage.uses import NO_TIME, UseTable
from graph.schema import Label

FAMILY = "network"
KIND_BASE = {"proxy": 0.7, "hosting": 0.7, "tor": 0.7}
IP_BASE = 0.5
NETWORK_BASE = 0.25
ASN_BASE = 0.1
OVERLAP_FADE_DAYS = 30.0
OVERLAP_FLOOR = 0.3


def time_overlap(a: Use, b: Use) -> float:
    """1 when the two uses' [first, last] intervals overlap (or times are unknown), fading
    linearly to ``OVERLAP_FLOOR`` as the gap between them grows to ``OVERLAP_FADE_DAYS``."""
    a0, a1, b0, b1 = epoch(a.first), epoch(a.last), epoch(b.first), epoch(b.last)
    if a0 is None or a1 is None or b0 is None or b1 is None:
        return 1.0
    gap = max(b0 - a1, a0 - b1, 0.0) / 86400.0
    return max(OVERLAP_FLOOR, 1.0 - gap / OVERLAP_FADE_DAYS)


def time_overlaps(table: UseTable, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """``time_overlap`` of every (row a, row b) pair of ``table``."""
    a0, a1, b0, b1 = table.first[rows_a], table.last[rows_a], table.first[rows_b], table.last[rows_b]
    unknown = (a0 == NO_TIME) | (a1 == NO_TIME) | (b0 == NO_TIME) | (b1 == NO_TIME)
    gap = np.maximum(np.maximum(b0 - a1, a0 - b1), 0) / 86400.0
    return np.where(unknown, 1.0, np.maximum(OVERLAP_FLOOR, 1.0 - gap / OVERLAP_FADE_DAYS))


def network_props(facts: Facts, label: str, key: str) -> dict[str, Any]:
    """An IP's or network's intel; an IP without a kind of its own takes its network's."""
    props = facts.props(label, key)
    if label == Label.IP.value and not props.get("kind") and props.get("network"):
        return facts.props(Label.NETWORK.value, str(props["network"])) or props
    return props


def _base(facts: Facts, label: str, key: str) -> float:
    kind = str(network_props(facts, label, key).get("kind") or "").lower()
    if label == Label.IP.value:
        return KIND_BASE.get(kind, IP_BASE)
    if label == Label.NETWORK.value:
        return NETWORK_BASE * (1.4 if kind in KIND_BASE else 1.0)
    return ASN_BASE


def link_network(evidence: Evidence, facts: Facts, cap: int) -> int:
    """Add shared-IP, shared-network and shared-ASN reasons; returns pair reasons added."""
    added = 0
    base_cache: dict[str, tuple[UseTable, np.ndarray]] = {}  # per label: its table's value bases
    for label, kind in (
        (Label.IP.value, "shared_ip"),
        (Label.NETWORK.value, "shared_network"),
        (Label.ASN.value, "shared_asn"),
    ):

        def rule(key: str, _label: str = label) -> str | None:
            return egress_hub(network_props(facts, _label, key))

        def make(
            key: str, a: str, b: str, users: Mapping[str, Use], n: int, _label: str = label, _kind: str = kind
        ) -> Reason:
            ua, ub = users[a], users[b]
            overlap = time_overlap(ua, ub)
            detail: dict[str, Any] = {"counts": [ua.count, ub.count], "time_overlap": round(overlap, 3)}
            firsts = [t for t in (ua.first, ub.first) if t]
            if firsts:
                detail["first_seen"], detail["last_seen"] = min(firsts), max(ua.last, ub.last)
            weight = _base(facts, _label, key) * rarity(n) * overlap
            if _label == Label.IP.value:
                weight *= volume_factor(ua.count, ub.count)
            return Reason(FAMILY, _kind, _label, key, n, weight, detail)

        def weights(table: UseTable, rows_a: np.ndarray, rows_b: np.ndarray, key_pos: np.ndarray, n: np.ndarray,
                    _label: str = label) -> np.ndarray:
            cached = base_cache.get(_label)
            if cached is None or cached[0] is not table:
                cached = base_cache[_label] = (table, np.asarray([_base(facts, _label, k) for k in table.values_sorted]))
            out = cached[1][key_pos] * rarities(n) * time_overlaps(table, rows_a, rows_b)
            if _label == Label.IP.value:
                out = out * volume_factors(table.count[rows_a], table.count[rows_b])
            return out

        added += link_shared_values(
            evidence, family=FAMILY, label=label, values=facts.table(label), cap=cap, reason_for=make, weights_of=weights,
            hub_rule=rule, link_synchronised=label != Label.ASN.value,
        )
    return added
