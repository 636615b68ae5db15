"""The investigation canvas: the graph an investigator grows on screen, as plain data.

A cluster opens as its **evidence graph** (graph/evidence.py ``build_evidence``, the graph
every export draws, so the canvas and the exports show the same thing): its members around
the shared values that tie them, hubs collapsed, each member's strongest links. Nodes carry
what the drawing needs, in the exports' conventions (graph/evidence_style.py): a position from
the exports' deterministic layout (graph/export/layout.py), a colour and shape by kind, a size
and label size by how many members use the value. Above ``group_threshold`` members, accounts
are folded into **groups**, each labelled with the value its accounts share and sized by how
many they are; a group opens into its accounts. A cluster big enough for the evidence graph
itself to be folded (the ``evidence_fold_members`` setting, graph/evidence_fold.py) arrives as
member groups (``MemberGroup``: members who share the same values) with their uses and the
links between them; such a group opens into its accounts read from the store.

The view then grows and shrinks as the investigator expands one relationship kind at a time,
collapses and removes nodes; ``visible`` filters it by link weight and time window without
changing it. Node and edge ids (``Label|key``, ``start>TYPE>end``) are the drawing
component's; the questions behind the panels beside the graph (evidence, search, timelines)
live in ``graph.investigate`` and are asked here only in terms of those ids.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.evidence import (
    BILLING_PATTERN,
    HAS_HUB,
    HUB,
    MEMBER_GROUP,
    VALUE_LABELS,
    EvidenceGraph,
    build_evidence,
)
from graph.evidence_style import (
    COLOURS,
    GROUP,
    KIND_NAMES,
    SHAPES,
    colour_of,
    edge_colour_of,
    label_font,
    node_size,
    view_scale,
)
from graph.export.layout import RING_GAP, evidence_layout
from graph.investigate.evidence import relationship_evidence
from graph.schema import RELATIONSHIPS, Label, Rel
from graph.store import GraphStore, Node, NodeKey, Relationship, Subgraph

# Relationships an investigator walks when expanding a node: everything but the analyst's own
# annotations (ABOUT), which the case panel shows instead.
EXPAND_RELS: tuple[str, ...] = tuple(r.value for r in Rel if r is not Rel.ABOUT)
GROUP_LABEL = GROUP
MEMBER_GROUP_LABEL = MEMBER_GROUP
"""A folded evidence graph's group of members (graph/evidence_fold.py): opens into its
accounts, read from the store (at most ``MEMBER_GROUP_OPEN``)."""
MEMBER_GROUP_OPEN = 1000
IN_GROUP = "IN_GROUP"
"""The drawn tie of an opened member group's account to its group (no stored relationship)."""
HUB_LABEL = HUB
GROUP_THRESHOLD = 300
LINKS_PER_ACCOUNT = 10
MAX_GROUPS = 60
MIN_GROUP = 3
UNGROUPED = "ungrouped"
# Nodes that are not in the store (summaries and groups): their evidence is their properties.
SYNTHETIC_LABELS = (HUB, BILLING_PATTERN, GROUP, MEMBER_GROUP)
# The edges drawn from a group to the values its accounts use, and between groups.
GROUP_EDGE_LIMIT = 4000
NEW_NODE_SPACING = 26.0
CROWDED_KIND = 300
"""A kind of value with more nodes than this on view starts hidden (the legend shows it again):
870 prompt templates two members each sent bury the dozen values the whole cluster shares."""


# ---- element ids and captions -------------------------------------------------------------------


def node_id(ref: NodeKey) -> str:
    """The element id of a node in the graph view: ``Label|key``."""
    return f"{ref[0]}|{ref[1]}"


def parse_node_id(text: str) -> NodeKey:
    """The node a ``Label|key`` element id names (keys may themselves contain ``|``)."""
    label, _, key = text.partition("|")
    return (label, key)


def edge_id(rel: Relationship) -> str:
    """The element id of a relationship in the graph view: ``start>TYPE>end``."""
    return f"{node_id(rel.start)}>{rel.type}>{node_id(rel.end)}"


def caption(node: Node) -> str:
    """A short display name for a node."""
    p = node.props
    if node.label == Label.OPERATOR:
        return str(p.get("name") or node.key)
    if node.label == Label.CLUSTER:
        return f"{node.key} ({p.get('size', '?')})"
    if node.label == HUB:
        n = p.get("hubs", "?")
        return f"{n} {node.key} hub{'' if n == 1 else 's'}"
    if node.label == MEMBER_GROUP:
        return f"{node.key} · {int(p.get('members') or 0):,} members"
    if node.label == BILLING_PATTERN:
        return f"BIN {p.get('card_bin') or node.key.split('|', 1)[0]} · {p.get('instruments', '?')} cards"
    if node.label == Label.PROMPT_TEMPLATE:
        return node.key[:12]
    return node.key if len(node.key) <= 24 else node.key[:21] + "…"


# ---- the graph an investigator grows ----------------------------------------------------------


@dataclass
class GraphState:
    """The nodes and edges on screen, with hubs and groups held back, as plain data that lives
    in the Streamlit session between reruns.

    ``folded``: the node data of accounts folded into groups (drawn when their group opens);
    ``folded_edges``: the edges those accounts have (to values, and LINKED)."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: dict[str, dict[str, Any]] = field(default_factory=dict)
    hubs: dict[str, int] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    folded: dict[str, dict[str, Any]] = field(default_factory=dict)
    folded_edges: dict[str, dict[str, Any]] = field(default_factory=dict)
    expanded: list[str] = field(default_factory=list)
    truncated: bool = False
    hidden_links: int = 0
    """LINKED edges left out of the view (each account keeps its strongest few)."""
    left_out: dict[str, int] = field(default_factory=dict)
    """What the evidence graph left out, by kind (single-member values, links over the cap)."""
    crowded_kinds: list[str] = field(default_factory=list)
    """Kinds of value drawn outside the rest and hidden at first (see ``crowded_kinds``)."""
    scale: float = 1.0
    version: int = 0
    """Bumped by changes made outside the graph widget, so the view is fitted anew."""

    def elements(self) -> dict[str, list[dict[str, Any]]]:
        """Every node and every edge whose two ends are on view."""
        return {
            "nodes": [{"data": d} for d in self.nodes.values()],
            "edges": [{"data": d} for d in self.edges.values() if d["source"] in self.nodes and d["target"] in self.nodes],
        }


def risk_of(node: Node, risky_accounts: set[str]) -> str:
    """A coarse risk class: flagged-cluster members and flagged clusters are high."""
    if node.label == Label.CLUSTER:
        return "high" if node.props.get("flagged") else "low"
    if node.label == Label.ACCOUNT:
        return "high" if node.key in risky_accounts else "low"
    return "info"


def _span_of(props: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    if props.get("first_seen"):
        out["first_seen"] = str(props["first_seen"])
    if props.get("last_seen") or props.get("first_seen"):
        out["last_seen"] = str(props.get("last_seen") or props["first_seen"])
    return out


def _node_data(node: Node, risky: set[str], *, most: int = 0, scale: float = 1.0) -> dict[str, Any]:
    """What the canvas draws and the panels read of one node."""
    members = int(node.props.get("members") or 0)
    # A value read from the store (an expansion) has no member count: drawn small and plain.
    measured = "members" in node.props or node.label in (Label.ACCOUNT, Label.CLUSTER, Label.OPERATOR, Label.INDICATOR, HUB)
    data: dict[str, Any] = {
        "id": node_id(node.ref), "label": node.label, "kind": node.label, "key": node.key, "name": caption(node),
        "risk": risk_of(node, risky), "members": members,
        "size": round(node_size(node.label, members, most, scale), 1) if measured else round(8.0 * scale, 1),
        "font": label_font(node.label, members, most, scale) if measured else int(12 * scale),
        "color": colour_of(node.label), "shape": SHAPES.get(node.label, "dot"),
        **_span_of(node.props),
    }
    if node.props.get("accounts") is not None:
        data["accounts"] = int(node.props["accounts"])
    if node.label in SYNTHETIC_LABELS:  # a member group's list of accounts is in ``GraphState.groups``
        data["props"] = {k: v for k, v in node.props.items()
                         if isinstance(v, str | int | float | bool | list) and k != "account_ids"}
    if node.label == MEMBER_GROUP:
        data["risk"] = "high"
    return data


_EDGE_NUMBERS = ("count", "members", "ips", "instruments", "links")
_WEIGHTED = (Rel.LINKED.value, Rel.SHARES_INFRASTRUCTURE.value)


def _edge_data(rel: Relationship) -> dict[str, Any]:
    """What the canvas draws and the panels read of one edge (a 1,000-account cluster has
    twenty thousand, so this is written for speed)."""
    props = rel.props
    source, target = f"{rel.start[0]}|{rel.start[1]}", f"{rel.end[0]}|{rel.end[1]}"
    data: dict[str, Any] = {"id": f"{source}>{rel.type}>{target}", "source": source, "target": target, "label": rel.type}
    first, last = props.get("first_seen"), props.get("last_seen")
    if first:
        data["first_seen"] = str(first)
    if last or first:
        data["last_seen"] = str(last or first)
    if rel.type in _WEIGHTED:
        families = props.get("families")
        data["weight"] = round(float(props.get("weight") or 0.0), 2)
        data["families"] = ",".join(families) if isinstance(families, list) else str(families or "")
    for prop in _EDGE_NUMBERS:
        value = props.get(prop)
        if value is not None and isinstance(value, int | float):
            data[prop] = value
    return data


def add_subgraph(state: GraphState, sub: Subgraph, risky: set[str]) -> int:
    """Merge a store answer into the view (nodes already on view keep their look); returns
    how many nodes were new."""
    new = 0
    for node in sub.nodes:
        nid = node_id(node.ref)
        if nid in state.folded:  # an account of a folded group: drawn as the first view drew it
            state.nodes[nid] = state.folded.pop(nid)
            new += 1
        elif nid not in state.nodes:
            new += 1
            state.nodes[nid] = _node_data(node, risky, scale=state.scale)
    for rel in sub.relationships:
        state.edges[edge_id(rel)] = _edge_data(rel)
    return new


def _add_hubs(state: GraphState, anchor: str, hubs: dict[NodeKey, int], via: str | None = None) -> None:
    """Hubs appear collapsed: one grey node tied to the node that reached them."""
    for ref, degree in hubs.items():
        hid = node_id(ref)
        if hid in state.nodes and state.nodes[hid]["label"] != HUB_LABEL:
            continue  # already on screen in full (e.g. a busy member account)
        state.hubs[hid] = degree
        state.nodes[hid] = {
            "id": hid, "label": HUB_LABEL, "kind": ref[0], "key": ref[1], "name": f"{ref[0]} {ref[1]} ({degree})",
            "risk": "hub", "members": 0, "size": round(12.0 * state.scale, 1), "font": int(12 * state.scale),
            "color": COLOURS[HUB], "shape": SHAPES[HUB],
        }
        eid = f"{anchor}>HUB>{hid}"
        state.edges[eid] = {"id": eid, "source": anchor, "target": hid, "label": "HUB", **({"via": via} if via else {})}


# ---- the first view: the evidence graph -------------------------------------------------------------


def value_groups(graph: EvidenceGraph, members: Sequence[NodeKey], *, max_groups: int = MAX_GROUPS,
                 min_group: int = MIN_GROUP) -> dict[NodeKey | None, list[str]]:
    """Fold members into groups by what they share: each member joins the most shared value
    it uses (of the evidence graph's values) that no earlier group took it for. A value more
    than half the members share says nothing about sub-groups (it stays a value node they all
    tie to) and is skipped; groups under ``min_group`` accounts and past ``max_groups`` go to
    one group of the rest (key ``None``)."""
    users: dict[NodeKey, set[NodeKey]] = defaultdict(set)
    member_set = set(members)
    for rel in graph.relationships:
        if rel.start in member_set and rel.end[0] not in (Label.ACCOUNT, Label.CLUSTER, HUB):
            users[rel.end].add(rel.start)
    remaining = set(members)
    groups: dict[NodeKey | None, list[str]] = {}
    for ref, accts in sorted(users.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if len(groups) >= max_groups or len(accts) * 2 > len(members):
            continue
        chosen = sorted(a[1] for a in accts & remaining)
        if len(chosen) < min_group:
            continue
        groups[ref] = chosen
        remaining -= {(Label.ACCOUNT.value, a) for a in chosen}
    if remaining:
        groups[None] = sorted(a[1] for a in remaining)
    return groups


def group_caption(shared: NodeKey | None, count: int) -> str:
    """A group's label: what its accounts share and how many they are."""
    if shared is None:
        return f"{count} other accounts"
    value = shared[1] if len(shared[1]) <= 22 else shared[1][:21] + "…"
    return f"{count} accounts · {KIND_NAMES.get(shared[0], shared[0])} {value}"


def crowded_kinds(graph: EvidenceGraph) -> list[str]:
    """The kinds of value with more than ``CROWDED_KIND`` nodes: drawn outside the rest, and
    hidden until the legend shows them."""
    counts = Counter(n.label for n in graph.nodes if n.label in VALUE_LABELS)
    return sorted(k for k, c in counts.items() if c > CROWDED_KIND)


def canvas_layout(graph: EvidenceGraph, crowded: Sequence[str], fold: bool) -> tuple[dict[NodeKey, tuple[float, float]], float, float]:
    """Positions for the canvas: the exports' layout (graph/export/layout.py) of the graph
    without the crowded kinds, which go on rings outside it, most shared first. Folded into
    groups, the operators, indicators and hubs come in to just outside the groups' rings
    (the accounts' rings they were placed beyond are not drawn). Returns the positions, the
    radius of the values and the radius of what is drawn at first."""
    core = EvidenceGraph(nodes=[n for n in graph.nodes if n.label not in crowded],
                         relationships=[r for r in graph.relationships if r.start[0] not in crowded and r.end[0] not in crowded],
                         cluster_ids=graph.cluster_ids)
    layout = evidence_layout(core)
    positions = dict(layout.positions)
    outer = {n.ref for n in core.nodes if n.label in (Label.OPERATOR, Label.INDICATOR, HUB)
             or (n.label == Label.CLUSTER and n.ref[1] not in graph.cluster_ids)}
    values_radius = max((math.hypot(*positions[n.ref]) for n in core.nodes
                         if n.label not in (Label.ACCOUNT, Label.CLUSTER) and n.ref not in outer and n.ref in positions), default=0.0)
    radius = layout.radius
    if fold:  # moved in, each ring of them (graph/export/layout.py) kept apart from the next
        radius = values_radius + RING_GAP * 5
        inner = min((math.hypot(*positions[ref]) for ref in outer), default=radius)
        for ref in outer:
            x, y = positions[ref]
            r = math.hypot(x, y) or 1.0
            moved = radius + r - inner
            positions[ref] = (x * moved / r, y * moved / r)
        radius = max([radius, *(math.hypot(*positions[ref]) for ref in outer)])
    extra = sorted((n for n in graph.nodes if n.label in crowded), key=lambda n: (-int(n.props.get("members") or 0), n.ref))
    ring, placed = layout.radius + RING_GAP * 2, 0
    while placed < len(extra):
        capacity = max(1, int(2 * math.pi * ring / NEW_NODE_SPACING))
        for i, node in enumerate(extra[placed:placed + capacity]):
            a = 2 * math.pi * i / capacity
            positions[node.ref] = (ring * math.cos(a), ring * math.sin(a))
        placed += capacity
        ring += RING_GAP
    return positions, values_radius, radius


def evidence_state(graph: EvidenceGraph, *, group_threshold: int = GROUP_THRESHOLD) -> GraphState:
    """The canvas of an evidence graph (see the module docstring)."""
    state = GraphState(left_out=dict(graph.left_out))
    state.hidden_links = graph.left_out.get("LINKED over the cap", 0)
    members = graph.members()
    risky = {m[1] for m in members}
    most = max((int(n.props.get("members") or 0) for n in graph.nodes if n.label not in (Label.ACCOUNT, Label.CLUSTER)), default=0)
    fold = len(members) > group_threshold
    groups = value_groups(graph, members) if fold else {}
    state.crowded_kinds = crowded_kinds(graph)
    positions, values_radius, radius = canvas_layout(graph, state.crowded_kinds, fold)
    # Folded, the accounts' rings are not drawn: labels are scaled for the picture that is.
    state.scale = view_scale(radius)
    most_group = max((int(n.props.get("members") or 0) for n in graph.nodes if n.label == MEMBER_GROUP), default=0)
    for node in graph.nodes:
        data = _node_data(node, risky, most=most_group if node.label == MEMBER_GROUP else most, scale=state.scale)
        x, y = positions.get(node.ref, (0.0, 0.0))
        data["x"], data["y"] = round(x, 1), round(y, 1)
        (state.folded if fold and node.label == Label.ACCOUNT else state.nodes)[data["id"]] = data
    for rel in graph.relationships:
        if rel.type == Rel.MEMBER_OF and fold:
            continue  # a thousand spokes to the cluster say nothing the groups do not
        data = _edge_data(rel)
        folded = data["source"] in state.folded or data["target"] in state.folded
        (state.folded_edges if folded else state.edges)[data["id"]] = data
    if fold:
        _place_groups(state, groups, positions, values_radius, len(members))
        refresh_group_edges(state)
    for node in graph.nodes:  # a folded graph's groups: their accounts open from the store
        if node.label == MEMBER_GROUP:
            state.groups[node.key] = [str(a) for a in node.props.get("account_ids") or []]
    for hub, degree in graph.hubs.items():
        state.hubs[node_id(hub)] = degree
    return state


def open_member_group(state: GraphState, store: GraphStore, element: str, limit: int = MEMBER_GROUP_OPEN) -> int:
    """A folded evidence graph's member group opens into its accounts (the first ``limit``),
    read from the store with the links among them, around the group, each tied to it; the
    group stays, with its uses and links. Returns the number of accounts added."""
    key = parse_node_id(element)[1]
    accts = state.groups.get(key, [])
    refs: list[NodeKey] = [(Label.ACCOUNT.value, a) for a in accts[:limit]]
    state.truncated = state.truncated or len(accts) > limit
    before = set(state.nodes)
    add_subgraph(state, store.subgraph(refs, [Rel.LINKED.value]) if refs else Subgraph(), set(accts))
    for ref in refs:
        aid = node_id(ref)
        if aid in state.nodes:
            eid = f"{aid}>{IN_GROUP}>{element}"
            state.edges[eid] = {"id": eid, "source": aid, "target": element, "label": IN_GROUP, "synthetic": True}
    new = [n for n in state.nodes if n not in before]
    place_around(state, element, new)
    return len(new)


def _place_groups(state: GraphState, groups: Mapping[NodeKey | None, list[str]],
                  positions: Mapping[NodeKey, tuple[float, float]], values_radius: float, total: int) -> None:
    """One node per group, just outside the values, at the angle of the value its accounts
    share (the rest at the top), sized by how many accounts it holds."""
    radius = values_radius + RING_GAP * 2
    biggest = max((len(a) for a in groups.values()), default=1)
    for i, (shared, accts) in enumerate(groups.items()):
        name = f"{shared[0]}:{shared[1]}" if shared else UNGROUPED
        gid = f"{GROUP_LABEL}|{name}"
        state.groups[name] = accts
        vx, vy = positions.get(shared, (0.0, -1.0)) if shared else (0.0, -1.0)
        angle = math.atan2(vy, vx)
        r = radius + RING_GAP * 0.9 * (i % 3)
        state.nodes[gid] = {
            "id": gid, "label": GROUP_LABEL, "kind": GROUP_LABEL, "key": name, "name": group_caption(shared, len(accts)),
            "risk": "high", "members": len(accts), "shares": node_id(shared) if shared else "",
            "size": round(node_size(GROUP_LABEL, len(accts), biggest, state.scale), 1),
            "font": max(label_font(GROUP_LABEL, len(accts), biggest, state.scale), int(11 * state.scale)),
            "color": COLOURS[GROUP_LABEL], "shape": SHAPES[GROUP_LABEL],
            "x": round(r * math.cos(angle), 1), "y": round(r * math.sin(angle), 1),
            "props": {"accounts": len(accts), "shares": f"{shared[0]} {shared[1]}" if shared else "nothing one value ties them by"},
        }


def _group_of(state: GraphState) -> dict[str, str]:
    """The group node of each folded account."""
    return {node_id((Label.ACCOUNT.value, a)): f"{GROUP_LABEL}|{name}"
            for name, accts in state.groups.items() for a in accts
            if f"{GROUP_LABEL}|{name}" in state.nodes and node_id((Label.ACCOUNT.value, a)) in state.folded}


def refresh_group_edges(state: GraphState, limit: int = GROUP_EDGE_LIMIT) -> None:
    """The edges of the groups still folded, from their accounts' edges: to each value on view,
    how many of the group's accounts use it (``count``, and their time span); between groups
    (or to an open account), the strongest link (``weight``) and how many links (``count``).
    The most used are kept, at most ``limit``."""
    for eid in [e for e, d in state.edges.items() if d.get("group_edge")]:
        del state.edges[eid]
    group_of = _group_of(state)
    agg: dict[tuple[str, str, str], dict[str, Any]] = {}
    for d in state.folded_edges.values():
        a = group_of.get(d["source"], d["source"] if d["source"] in state.nodes else None)
        b = group_of.get(d["target"], d["target"] if d["target"] in state.nodes else None)
        if a is None or b is None or a == b or d["label"] == Rel.MEMBER_OF:
            continue
        if d["label"] == Rel.LINKED and b < a:
            a, b = b, a
        key = (a, d["label"], b)
        e = agg.setdefault(key, {"id": f"{a}>{d['label']}>{b}", "source": a, "target": b, "label": d["label"],
                                 "count": 0, "group_edge": True})
        e["count"] += 1
        if "weight" in d:
            e["weight"] = max(float(e.get("weight") or 0.0), float(d["weight"]))
        for k, pick in (("first_seen", min), ("last_seen", max)):
            if d.get(k):
                e[k] = pick(e[k], d[k]) if e.get(k) else d[k]
    for e in sorted(agg.values(), key=lambda e: -e["count"])[:limit]:
        state.edges[e["id"]] = e


def cluster_view(
    store: GraphStore,
    cluster_id: str,
    *,
    degree_cap: int,
    workspace: Path | None = None,
    links_per_account: int = LINKS_PER_ACCOUNT,
    group_threshold: int = GROUP_THRESHOLD,
    hub_cap: int | None = None,
    fold_members: int | None = None,
) -> GraphState:
    """The first view of a cluster: its evidence graph (``build_evidence`` with the UI's
    degree cap; folded into member groups above ``fold_members``, default the
    ``evidence_fold_members`` setting), its accounts folded into groups above
    ``group_threshold`` members. ``hub_cap`` is accepted for callers of the older view and
    unused: hubs are the degree cap's."""
    del hub_cap
    graph = build_evidence(store, [cluster_id], workspace=workspace, degree_cap=degree_cap, links_per_account=links_per_account,
                           fold_members=fold_members)
    return evidence_state(graph, group_threshold=group_threshold)


def nodes_view(store: GraphStore, refs: Sequence[NodeKey]) -> GraphState:
    """A graph of the given nodes (a saved query's result) and the relationships among them,
    on a circle, to expand and inspect like a cluster."""
    state = GraphState()
    add_subgraph(state, store.subgraph(list(refs)), risky=set())
    ids = sorted(state.nodes)
    radius = max(60.0, len(ids) * NEW_NODE_SPACING / (2 * math.pi))
    for i, nid in enumerate(ids):
        a = 2 * math.pi * i / max(1, len(ids))
        state.nodes[nid]["x"], state.nodes[nid]["y"] = round(radius * math.cos(a), 1), round(radius * math.sin(a), 1)
    return state


# ---- growing it --------------------------------------------------------------------------------


def expand_kinds(element: str) -> list[str]:
    """The relationship kinds a node can be expanded by (its label's, from the schema); the
    first is what a double-click expands by until the investigator picks another."""
    label = parse_node_id(element)[0]
    if label in (GROUP_LABEL, MEMBER_GROUP_LABEL):
        return ["members"]
    if label in SYNTHETIC_LABELS:
        return []
    # In the schema's order: the uses of shared values first, as detection weighs them.
    kinds = {spec.type.value for spec in RELATIONSHIPS if spec.type is not Rel.ABOUT and label in (spec.start, spec.end)}
    return [r.value for r in Rel if r.value in kinds]


def place_around(state: GraphState, anchor: str, new: Sequence[str]) -> None:
    """Positions for nodes new to the view, on rings around the node that reached them (a
    node that has a position already keeps it)."""
    ax, ay = state.nodes.get(anchor, {}).get("x", 0.0), state.nodes.get(anchor, {}).get("y", 0.0)
    todo = [n for n in new if "x" not in state.nodes[n]]
    ring, radius, placed = 0, 80.0, 0
    while placed < len(todo):
        capacity = max(6, int(2 * math.pi * radius / NEW_NODE_SPACING))
        for i in range(min(capacity, len(todo) - placed)):
            a = 2 * math.pi * i / capacity + ring * 0.3
            node = state.nodes[todo[placed]]
            node["x"], node["y"] = round(ax + radius * math.cos(a), 1), round(ay + radius * math.sin(a), 1)
            placed += 1
        ring += 1
        radius += NEW_NODE_SPACING * 1.6


def open_group(state: GraphState, element: str, limit: int = 10**6) -> int:
    """A group opens into its accounts, with their edges to what is on view; the groups still
    folded are joined to them instead. Returns the number of accounts added."""
    name = element.split("|", 1)[1]
    accts = state.groups.get(name, [])[:limit]
    added = 0
    for a in accts:
        aid = node_id((Label.ACCOUNT.value, a))
        data = state.folded.pop(aid, None)
        if data is not None:
            state.nodes[aid] = data
            added += 1
    state.truncated = state.truncated or len(state.groups.get(name, [])) > limit
    state.nodes.pop(element, None)
    for eid, d in list(state.folded_edges.items()):
        if d["source"] in state.nodes and d["target"] in state.nodes:
            state.edges[eid] = state.folded_edges.pop(eid)
    refresh_group_edges(state)
    return added


def expand(
    state: GraphState,
    store: GraphStore,
    element: str,
    *,
    degree_cap: int,
    kind: str | None = None,
    limit: int = 200,
    risky: set[str] | None = None,
) -> int:
    """Expand one node in place by one relationship kind (``kind``; None: every kind): a group
    opens into its accounts, a hub shows up to ``limit`` of its neighbours, any other node its
    neighbours by that kind with hubs held back. Returns the number of nodes added."""
    risky = risky if risky is not None else {n["key"] for n in state.nodes.values() if n.get("risk") == "high"}
    if element.startswith(GROUP_LABEL + "|"):
        added = open_group(state, element, limit=max(limit, 10**6))
        if element not in state.expanded:
            state.expanded.append(element)
        return added
    if parse_node_id(element)[0] == MEMBER_GROUP_LABEL:
        added = open_member_group(state, store, element)
        if element not in state.expanded:
            state.expanded.append(element)
        return added
    if parse_node_id(element)[0] in SYNTHETIC_LABELS:
        return 0
    before = set(state.nodes)
    ref = parse_node_id(element)
    is_hub = element in state.hubs and state.nodes.get(element, {}).get("label") == HUB_LABEL
    rels = [kind] if kind else list(EXPAND_RELS)
    sub = store.neighbours([ref], rels, limit=limit if is_hub else max(limit, degree_cap), degree_cap=None if is_hub else degree_cap)
    add_subgraph(state, sub, risky)
    if is_hub:
        state.nodes[element]["label"] = ref[0]
        state.nodes[element]["color"] = colour_of(ref[0])
        state.nodes[element]["shape"] = SHAPES.get(ref[0], "dot")
        state.hubs.pop(element, None)
    _add_hubs(state, element, sub.hubs, via=kind)
    state.truncated = state.truncated or sub.truncated
    new = [n for n in state.nodes if n not in before]
    place_around(state, element, new)
    if element not in state.expanded:
        state.expanded.append(element)
    return len(new)


def remove(state: GraphState, elements: Iterable[str]) -> int:
    """Take nodes off the view (and edges left dangling); returns how many went."""
    gone = 0
    for nid in elements:
        if state.nodes.pop(nid, None) is not None:
            gone += 1
    state.edges = {k: e for k, e in state.edges.items() if e["source"] in state.nodes and e["target"] in state.nodes}
    state.expanded = [e for e in state.expanded if e in state.nodes]
    return gone


def collapse(state: GraphState, element: str) -> int:
    """Undo an expansion: remove the neighbours whose only tie to the view is ``element``."""
    touching: dict[str, set[str]] = {}
    for e in state.edges.values():
        touching.setdefault(e["source"], set()).add(e["target"])
        touching.setdefault(e["target"], set()).add(e["source"])
    doomed = [n for n in touching.get(element, set()) if n != element and touching.get(n, set()) <= {element}]
    if element in state.expanded:
        state.expanded.remove(element)
    return remove(state, doomed)


# ---- what is drawn: filters, selection, pickers ------------------------------------------------


@dataclass(frozen=True)
class ViewFilter:
    """What the canvas shows of the view: links at least ``min_weight`` strong, and values,
    uses and links whose time span overlaps ``window`` (ISO dates, inclusive; None: all)."""

    min_weight: float = 0.0
    window: tuple[str, str] | None = None


def _in_window(item: Mapping[str, Any], window: tuple[str, str] | None) -> bool:
    """Whether an element's time span overlaps the window (an element without one always does)."""
    if window is None or not item.get("first_seen"):
        return True
    first, last = str(item["first_seen"])[:10], str(item.get("last_seen") or item["first_seen"])[:10]
    return last >= window[0] and first <= window[1]


def visible(state: GraphState, view: ViewFilter = ViewFilter()) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The nodes and edges drawn under a filter: a link (``weight``) weaker than the minimum
    goes; a value or use outside the time window goes; an edge goes with either end.
    Accounts, clusters and operators always stay."""
    nodes = {nid: d for nid, d in state.nodes.items()
             if d.get("kind") in (Label.ACCOUNT, Label.CLUSTER, Label.OPERATOR) or _in_window(d, view.window)}
    edges = [e for e in state.edges.values()
             if e["source"] in nodes and e["target"] in nodes
             and not (e["label"] == Rel.LINKED and float(e.get("weight") or 0.0) < view.min_weight)
             and _in_window(e, view.window)]
    return list(nodes.values()), edges


def time_span(state: GraphState) -> tuple[str, str] | None:
    """The first and last day any element on view (or folded) was seen, for the time filter."""
    days = [str(d[k])[:10] for items in (state.nodes, state.edges, state.folded_edges) for d in items.values()
            for k in ("first_seen", "last_seen") if d.get(k)]
    return (min(days), max(days)) if days else None


def weight_range(state: GraphState) -> tuple[float, float]:
    """The weakest and strongest link on view (0, 1 when there is none)."""
    weights = [float(e.get("weight") or 0.0) for e in state.edges.values() if e["label"] == Rel.LINKED]
    return (min(weights), max(weights)) if weights else (0.0, 1.0)


def selected_accounts(state: GraphState, node: str | None, edge: str | None) -> list[str]:
    """The accounts the canvas selection names: a selected account; a selected link's two ends
    (or an account's use's account)."""
    if edge and edge.count(">") >= 2:
        start, _, end = edge.split(">", 2)
        return [parse_node_id(n)[1] for n in (start, end) if parse_node_id(n)[0] == Label.ACCOUNT]
    if node and parse_node_id(node)[0] == Label.ACCOUNT:
        return [parse_node_id(node)[1]]
    return []


def pair_candidates(state: GraphState, account: str) -> list[str]:
    """The accounts to compare ``account`` with: those it is linked to on view (strongest first),
    then those sharing a value with it on view (folded accounts included)."""
    aid = node_id((Label.ACCOUNT.value, account))
    edges = [*state.edges.values(), *state.folded_edges.values()]
    linked = sorted(((float(e.get("weight") or 0.0), e["target"] if e["source"] == aid else e["source"]) for e in edges
                    if e["label"] == Rel.LINKED and aid in (e["source"], e["target"])), key=lambda t: (-t[0], t[1]))
    values = {e["target"] for e in edges if e["source"] == aid and e["label"] != Rel.LINKED}
    sharing = Counter(e["source"] for e in edges if e["target"] in values and e["source"] != aid and e["label"] != Rel.LINKED)
    order = [n for _, n in linked] + [n for n, _ in sorted(sharing.items(), key=lambda kv: (-kv[1], kv[0]))]
    out: list[str] = []
    for n in order:
        ref = parse_node_id(n)
        if ref[0] == Label.ACCOUNT and ref[1] not in out and ref[1] != account:
            out.append(ref[1])
    return out


def pick_order(state: GraphState, selected: str | None = None) -> list[str]:
    """The nodes on view in the order a picker lists them: the selection, then groups and
    values by how many members they tie, then the rest by name."""
    rank = {GROUP_LABEL: 0, MEMBER_GROUP_LABEL: 0, Label.CLUSTER.value: 2, Label.ACCOUNT.value: 3}
    order = sorted(state.nodes, key=lambda n: (n != selected, rank.get(str(state.nodes[n].get("kind")), 1),
                                               -int(state.nodes[n].get("members") or 0), str(state.nodes[n].get("name"))))
    return order


def edges_of(state: GraphState, node: str) -> list[str]:
    """The edges on view touching ``node``: its links strongest first, then the rest."""
    touching = [e for e in state.edges.values() if node in (e["source"], e["target"])
                and e["source"] in state.nodes and e["target"] in state.nodes]
    return [e["id"] for e in sorted(touching, key=lambda e: (e["label"] != Rel.LINKED, -float(e.get("weight") or 0.0),
                                                             -int(e.get("count") or 0), e["id"]))]


def edge_caption(state: GraphState, edge: str) -> str:
    """``a —TYPE→ b`` with the weight or count, for a picker."""
    e = state.edges[edge]
    names = [state.nodes.get(n, {}).get("name", n) for n in (e["source"], e["target"])]
    extra = f" ({e['weight']:.2f})" if e.get("weight") is not None else (f" ({e['count']:,})" if e.get("count") else "")
    return f"{names[0]} —{e['label']}→ {names[1]}{extra}"


def legend(nodes: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """``[kind, name, colour, shape, count]`` per node kind drawn, most first."""
    counts = Counter(str(n["label"] if n.get("label") == HUB_LABEL else n["kind"]) for n in nodes)
    return [[k, KIND_NAMES.get(k, k), colour_of(k), SHAPES.get(k, "dot"), c] for k, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def canvas_data(state: GraphState, view: ViewFilter = ViewFilter(), selected: str | None = None) -> dict[str, Any]:
    """What the drawing component receives: the nodes and edges under the filter with their
    look, the legend, the selection, and a ``fit`` token that changes when the view should be
    fitted to the window again."""
    nodes, edges = visible(state, view)
    crowded = len(edges) > 1500
    out_nodes = [{"id": n["id"], "label": n.get("name", n["id"]), "x": n.get("x"), "y": n.get("y"), "size": n.get("size", 8),
                  "font": n.get("font", 12), "color": n.get("color", colour_of(str(n.get("kind")))),
                  "shape": n.get("shape", "dot"), "kind": n["label"] if n.get("label") == HUB_LABEL else n.get("kind"),
                  "members": n.get("members", 0)} for n in nodes]
    out_edges = []
    for e in edges:
        weight = e.get("weight")
        width = (0.3 + 1.5 * float(weight) if crowded else 1 + 4 * float(weight)) if weight is not None else \
            (min(6.0, 0.8 + math.log1p(float(e.get("count", 0)))) if e.get("group_edge") else 0.6)
        out_edges.append({"id": e["id"], "from": e["source"], "to": e["target"], "type": e["label"], "width": round(width, 2),
                          "color": edge_colour_of(e["label"]), "weight": weight, "count": e.get("count")})
    types = Counter(e["type"] for e in out_edges)
    return {
        "hidden_kinds": list(state.crowded_kinds),
        "nodes": out_nodes, "edges": out_edges, "legend": legend(nodes),
        "edge_legend": [[t, edge_colour_of(t), c] for t, c in sorted(types.items())],
        "selected": selected if selected in state.nodes else None, "fit": state.version,
    }


# ---- evidence for an element --------------------------------------------------------------------


def edge_evidence(store: GraphStore, workspace: Path, edge: str, *, hub_cap: int | None = None) -> dict[str, Any]:
    """Evidence for one edge of the view (``start>TYPE>end``): a LINKED edge gives the pair's
    evidence; an account-to-entity edge gives the relationship and its source rows."""
    start_text, rel_type, end_text = edge.split(">", 2)
    return relationship_evidence(store, workspace, parse_node_id(start_text), rel_type, parse_node_id(end_text), hub_cap=hub_cap)


def is_store_edge(state: GraphState, edge: str) -> bool:
    """Whether an edge of the view is a stored relationship (not a group's aggregate, a hub's
    tie or an evidence summary), so the store can give its evidence."""
    d = state.edges.get(edge) or {}
    if not d or d.get("group_edge") or d.get("synthetic") or d["label"] in ("HUB", HAS_HUB, "MATCHES", IN_GROUP):
        return False
    return all(parse_node_id(n)[0] not in SYNTHETIC_LABELS for n in (d["source"], d["target"]))
