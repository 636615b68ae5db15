"""A deterministic layout of an evidence graph, for the report's picture and the HTML graph.

Rings around the cluster: the clusters in the centre; the shared values on the inner rings,
most used first (so the strongest evidence sits next to the cluster), grouped by kind; the
member accounts on the outer rings, each placed at the mean angle of the values it uses (so
accounts that share values sit together, near them), spread over the rings in that angular
order (a folded graph's member groups where its accounts would be, further apart); operators,
indicators, hubs and other clusters outside them all, from the top, a caption apart (on more
rings when there are many, as around a proxy network's busiest customer). No randomness and no
iteration: the same graph always gets the same picture, in time linear in its size (a force
layout of 3,000 nodes takes longer than the whole export may).
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from graph.evidence import HUB, MEMBER_GROUP, EvidenceGraph
from graph.evidence_style import view_scale
from graph.schema import Label
from graph.store import Node, NodeKey

CENTRE_LABELS = (Label.CLUSTER.value,)
OUTER_LABELS = (Label.OPERATOR.value, Label.INDICATOR.value, HUB)
VALUE_SPACING = 64.0
MEMBER_SPACING = 22.0
GROUP_SPACING = 60.0
"""Between the member groups of a folded graph (drawn where its accounts would be, larger)."""
RING_GAP = 56.0
FIRST_RING = 170.0
OUTER_LABEL_PX = 150.0
"""How far apart two outer nodes sit on their ring, and two rings, at 1:1: a cluster id's
caption in the 15 px font evidence_style.label_font gives clusters, operators and hubs."""
OUTER_CLEARANCE_PX = 48.0
"""Between the members' outer ring and the first ring of outer nodes, at 1:1: the largest
outer node (a cluster's star) and its caption."""

KIND_ORDER = ("PaymentMethod", "BillingPattern", "Device", "ClientFingerprint", "IP", "Network", "ASN",
              "EmailDomain", "PromptTemplate", "Hub")


@dataclass(frozen=True)
class Layout:
    positions: dict[NodeKey, tuple[float, float]]
    radius: float

    def box(self) -> tuple[float, float, float, float]:
        """(min x, min y, width, height) of every position."""
        if not self.positions:
            return (-1.0, -1.0, 2.0, 2.0)
        xs = [p[0] for p in self.positions.values()]
        ys = [p[1] for p in self.positions.values()]
        return (min(xs), min(ys), max(xs) - min(xs) or 1.0, max(ys) - min(ys) or 1.0)


def _rings(n: int, start: float, spacing: float) -> list[tuple[float, int]]:
    """(radius, capacity) of the rings that hold ``n`` items ``spacing`` apart, from ``start``."""
    rings: list[tuple[float, int]] = []
    radius, left = start, n
    while left > 0:
        capacity = max(1, int(2 * math.pi * radius / spacing))
        rings.append((radius, capacity))
        left -= capacity
        radius += RING_GAP
    return rings


def _stable_angle(key: str) -> float:
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 * 2 * math.pi


def _place_in_order(items: Sequence[NodeKey], start: float, spacing: float, angles: dict[NodeKey, float] | None = None
                    ) -> tuple[dict[NodeKey, tuple[float, float]], float]:
    """``items`` on rings from ``start``: in the given order, or by ``angles`` (each item near
    its angle; slots of every ring interleaved by angle, so the order survives)."""
    rings = _rings(len(items), start, spacing)
    slots = sorted(
        ((2 * math.pi * i / cap + (0.5 * math.pi / cap if r % 2 else 0.0)) % (2 * math.pi), radius)
        for r, (radius, cap) in enumerate(rings) for i in range(cap)
    )
    ordered = sorted(items, key=lambda ref: (angles[ref], ref)) if angles is not None else list(items)
    out: dict[NodeKey, tuple[float, float]] = {}
    if not ordered:
        return out, start
    shift = 0
    if angles is not None:  # turn the slots so the first item sits at its own angle
        first = angles[ordered[0]]
        shift = min(range(len(slots)), key=lambda i: abs(slots[i][0] - first))
    step = len(slots) / len(ordered)
    for i, ref in enumerate(ordered):
        angle, radius = slots[(shift + int(i * step)) % len(slots)]
        out[ref] = (radius * math.cos(angle), radius * math.sin(angle))
    return out, rings[-1][0]


def _value_order(node: Node) -> tuple[int, int, str]:
    kind = KIND_ORDER.index(node.label) if node.label in KIND_ORDER else len(KIND_ORDER)
    return (kind, -int(node.props.get("members") or 0), node.key)


def evidence_layout(graph: EvidenceGraph) -> Layout:
    """Positions for every node of ``graph`` (see the module docstring)."""
    nodes = graph.node_map()
    chosen = {(Label.CLUSTER.value, c) for c in graph.cluster_ids}
    centre = sorted(r for r in nodes if r in chosen) or sorted(r for r in nodes if r[0] in CENTRE_LABELS)[:1]
    accounts = sorted(r for r in nodes if r[0] in (Label.ACCOUNT, MEMBER_GROUP))
    outer = sorted(r for r in nodes if (r[0] in OUTER_LABELS or r[0] in CENTRE_LABELS) and r not in centre)
    values = sorted((n for r, n in nodes.items() if r not in centre and r not in outer and r[0] not in (Label.ACCOUNT, MEMBER_GROUP)),
                    key=_value_order)
    positions: dict[NodeKey, tuple[float, float]] = {}
    if len(centre) == 1:
        positions[centre[0]] = (0.0, 0.0)
    else:
        ring = max(60.0, len(centre) * 40 / (2 * math.pi))
        for i, ref in enumerate(centre):
            a = 2 * math.pi * i / len(centre)
            positions[ref] = (ring * math.cos(a), ring * math.sin(a))
    placed, last = _place_in_order([v.ref for v in values], FIRST_RING, VALUE_SPACING)
    positions.update(placed)
    value_angle = {ref: math.atan2(y, x) for ref, (x, y) in placed.items()}
    neighbours: dict[NodeKey, list[NodeKey]] = defaultdict(list)
    for rel in graph.relationships:
        neighbours[rel.start].append(rel.end)
        neighbours[rel.end].append(rel.start)
    members_of = {v.ref: int(v.props.get("members") or 0) for v in values}
    angles: dict[NodeKey, float] = {}
    for ref in accounts:  # beside the most specific value it uses: those who share it sit together
        specific = sorted((members_of[v], v) for v in neighbours[ref] if v in value_angle)
        if specific:
            angles[ref] = value_angle[specific[0][1]] % (2 * math.pi)
    for ref in accounts:  # accounts with no value of their own go near the accounts they link to
        if ref not in angles:
            near = [angles[a] for a in neighbours[ref] if a in angles]
            angles[ref] = (sum(near) / len(near)) if near else _stable_angle(ref[1])
    start = (last if values else FIRST_RING * 0.5) + RING_GAP * 2
    spacing = GROUP_SPACING if any(r[0] == MEMBER_GROUP for r in accounts) else MEMBER_SPACING
    placed, last = _place_in_order(accounts, start, spacing, angles)
    positions.update(placed)
    radius = (last if accounts else start) + RING_GAP * 2
    placed, radius = _place_outer(outer, radius)
    positions.update(placed)
    return Layout(positions, radius)


def _place_outer(refs: Sequence[NodeKey], radius: float) -> tuple[dict[NodeKey, tuple[float, float]], float]:
    """Positions outside everything else for ``refs`` (operators, indicators, hubs, other
    clusters), and the radius of the outermost ring. They start at the top and spread to both
    sides, as far apart as the HTML view needs to keep their captions from touching; what one
    ring cannot hold goes on the next, a caption's width further out, because a cluster that
    shares a proxy network with fifty others would otherwise stack fifty captions into one smear.
    Operators, indicators and hubs come first, so they sit at the top.

    >>> pos, r = _place_outer([("Indicator", "asn:1"), ("Operator", "op-a")], 400.0)
    >>> [round(v) for v in pos[("Operator", "op-a")]], [round(v) for v in pos[("Indicator", "asn:1")]], r
    ([0, -448], [153, -421], 448.0)
    """
    scale = view_scale(radius)
    step = OUTER_LABEL_PX * scale
    radius += OUTER_CLEARANCE_PX * scale
    ordered = sorted(refs, key=lambda ref: (ref[0] not in OUTER_LABELS, OUTER_LABELS.index(ref[0]) if ref[0] in OUTER_LABELS else 0, ref))
    out: dict[NodeKey, tuple[float, float]] = {}
    while ordered:
        fits = max(1, int(2 * math.pi * radius / step))
        now, ordered = ordered[:fits], ordered[fits:]
        gap = 2 * math.pi / fits
        for i, ref in enumerate(now):  # 0 at the top, then right, left, right, ...
            a = -math.pi / 2 + gap * ((i + 1) // 2) * (1 if i % 2 else -1)
            out[ref] = (radius * math.cos(a), radius * math.sin(a))
        if ordered:
            radius += step
    return out, radius
