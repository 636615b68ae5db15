"""The investigation canvas: the graph an investigator grows on screen, as plain data.

The cluster page draws a ``GraphState``: the nodes and edges on view, the hubs held back and
the infrastructure groups a large cluster opens as. It starts as a cluster's first view (or a
saved query's nodes) and grows and shrinks as the investigator expands, collapses and removes
nodes. Node and edge ids (``Label|key``, ``start>TYPE>end``) are the drawing component's; the
questions behind the panels beside the graph (evidence, search, timelines) live in
``graph.investigate`` and are asked here only in terms of those ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.investigate.evidence import relationship_evidence
from graph.schema import INFRASTRUCTURE_RELS, Label, Rel
from graph.store import GraphStore, Node, NodeKey, Relationship, Subgraph

# The first view and a group's grouping want every member, and the store API takes a limit.
ALL = 10**9
# Relationships an investigator walks when expanding a node: everything but the analyst's own
# annotations (ABOUT), which the case panel shows instead.
EXPAND_RELS: tuple[str, ...] = tuple(r.value for r in Rel if r is not Rel.ABOUT)
GROUP_LABEL = "Group"
HUB_LABEL = "Hub"
GROUP_THRESHOLD = 300


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
    if node.label == Label.PROMPT_TEMPLATE:
        return node.key[:12]
    return node.key if len(node.key) <= 24 else node.key[:21] + "…"


# ---- the graph an investigator grows ----------------------------------------------------------


@dataclass
class GraphState:
    """The nodes and edges on screen, with hubs and groups held back, as plain data that lives
    in the Streamlit session between reruns."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: dict[str, dict[str, Any]] = field(default_factory=dict)
    hubs: dict[str, int] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    expanded: list[str] = field(default_factory=list)
    truncated: bool = False
    hidden_links: int = 0
    """LINKED edges left out of a dense view (each account keeps its strongest few)."""
    version: int = 0
    """Bumped by changes made outside the graph widget, so the view remounts and lays out anew."""

    def elements(self) -> dict[str, list[dict[str, Any]]]:
        """The cytoscape elements for ``st_link_analysis``."""
        return {
            "nodes": [{"data": d} for d in self.nodes.values()],
            "edges": [{"data": d} for d in self.edges.values() if d["source"] in self.nodes and d["target"] in self.nodes],
        }


def risk_of(node: Node, risky_accounts: set[str]) -> str:
    """A coarse risk class for styling: flagged-cluster members and flagged clusters are high."""
    if node.label == Label.CLUSTER:
        return "high" if node.props.get("flagged") else "low"
    if node.label == Label.ACCOUNT:
        return "high" if node.key in risky_accounts else "low"
    return "info"


def _node_data(node: Node, risky: set[str]) -> dict[str, Any]:
    risk = risk_of(node, risky)
    label = node.label
    if label == Label.ACCOUNT and risk == "high":
        label = "AccountHigh"
    return {"id": node_id(node.ref), "label": label, "kind": node.label, "key": node.key, "name": caption(node), "risk": risk}


def _edge_data(rel: Relationship) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": edge_id(rel),
        "source": node_id(rel.start),
        "target": node_id(rel.end),
        "label": rel.type,
    }
    if rel.type == Rel.LINKED:
        data["weight"] = round(float(rel.props.get("weight") or 0.0), 2)
        data["families"] = ",".join(rel.props.get("families") or [])
    return data


def add_subgraph(state: GraphState, sub: Subgraph, risky: set[str]) -> int:
    """Merge a store answer into the view; returns how many nodes were new."""
    new = 0
    for node in sub.nodes:
        nid = node_id(node.ref)
        if nid not in state.nodes:
            new += 1
        state.nodes[nid] = _node_data(node, risky)
    for rel in sub.relationships:
        state.edges[edge_id(rel)] = _edge_data(rel)
    return new


def _add_hubs(state: GraphState, anchor: str, hubs: dict[NodeKey, int]) -> None:
    """Hubs appear collapsed: one grey node tied to the node that reached them."""
    for ref, degree in hubs.items():
        hid = node_id(ref)
        if hid in state.nodes and state.nodes[hid]["label"] != HUB_LABEL:
            continue  # already on screen in full (e.g. a busy member account)
        state.hubs[hid] = degree
        state.nodes[hid] = {
            "id": hid, "label": HUB_LABEL, "kind": ref[0], "key": ref[1],
            "name": f"{ref[0]} {ref[1]} ({degree})", "risk": "hub",
        }
        state.edges[f"{anchor}>HUB>{hid}"] = {"id": f"{anchor}>HUB>{hid}", "source": anchor, "target": hid, "label": "HUB"}


LINKS_PER_ACCOUNT = 6


def strongest_links(sub: Subgraph, state: GraphState, per_account: int = LINKS_PER_ACCOUNT) -> Subgraph:
    """Keep, of the LINKED edges in ``sub``, each account's ``per_account`` strongest (an edge
    stays if it is among the strongest of either end): a 200-account ring is nearly a complete
    graph, and 20,000 edges hide the structure (and stall the browser). The rest are counted
    in ``state.hidden_links``; the evidence of any pair is still one click away."""
    links = sorted((r for r in sub.relationships if r.type == Rel.LINKED), key=lambda r: -float(r.props.get("weight") or 0.0))
    kept_per: Counter[NodeKey] = Counter()
    kept: list[Relationship] = []
    for rel in links:
        if kept_per[rel.start] < per_account or kept_per[rel.end] < per_account:
            kept.append(rel)
            kept_per[rel.start] += 1
            kept_per[rel.end] += 1
    state.hidden_links += len(links) - len(kept)
    others = [r for r in sub.relationships if r.type != Rel.LINKED]
    return Subgraph(nodes=sub.nodes, relationships=others + kept, truncated=sub.truncated, hubs=sub.hubs)


def infrastructure_groups(
    store: GraphStore, accounts: Sequence[str], hub_cap: int
) -> dict[str, list[str]]:
    """Group accounts by shared infrastructure: each account joins the largest shared value
    (IP, card, device, …) it uses, so a 2,000-account cluster opens as a few dozen groups.
    A value that more than half the accounts share says nothing about sub-groups and is
    skipped; accounts left over go to one ``ungrouped`` group."""
    refs = [(Label.ACCOUNT.value, a) for a in accounts]
    sub = store.neighbours(refs, [r.value for r in INFRASTRUCTURE_RELS], limit=ALL, degree_cap=hub_cap)
    users: dict[NodeKey, set[str]] = {}
    for rel in sub.relationships:
        acct, other = (rel.start, rel.end) if rel.start[0] == Label.ACCOUNT else (rel.end, rel.start)
        users.setdefault(other, set()).add(acct[1])
    remaining = set(accounts)
    groups: dict[str, list[str]] = {}
    for ref, accts in sorted(users.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if len(accts) * 2 > len(accounts):
            continue
        chosen = sorted(accts & remaining)
        if len(chosen) < 2:
            continue
        groups[f"{ref[0]}:{ref[1]}"] = chosen
        remaining -= set(chosen)
    if remaining:
        groups["ungrouped"] = sorted(remaining)
    return groups


def nodes_view(store: GraphStore, refs: Sequence[NodeKey]) -> GraphState:
    """A graph of the given nodes (a saved query's result) and the relationships among them,
    to expand and inspect like a cluster."""
    state = GraphState()
    add_subgraph(state, store.subgraph(list(refs)), risky=set())
    return state


def cluster_view(
    store: GraphStore,
    cluster_id: str,
    *,
    degree_cap: int,
    group_threshold: int = GROUP_THRESHOLD,
    hub_cap: int = 50,
) -> GraphState:
    """The first view of a cluster: the cluster node, its members and the LINKED edges among
    them; above ``group_threshold`` members, one node per infrastructure group instead."""
    state = GraphState()
    cref = (Label.CLUSTER.value, cluster_id)
    sub = store.neighbours([cref], [Rel.MEMBER_OF, Rel.SUGGESTED_OPERATOR, Rel.ATTRIBUTED_TO], limit=ALL)
    accounts = sorted(n.key for n in sub.nodes if n.label == Label.ACCOUNT)
    risky = set(accounts)
    state.nodes[node_id(cref)] = _node_data(next(n for n in sub.nodes if n.ref == cref), risky) if sub.nodes else {}
    for node in sub.nodes:
        if node.label == Label.OPERATOR:
            add_subgraph(state, Subgraph(nodes=[node], relationships=[r for r in sub.relationships if node.ref in (r.start, r.end)]), risky)
    if len(accounts) <= group_threshold:
        add_subgraph(state, sub, risky)
        links = store.subgraph([(Label.ACCOUNT.value, a) for a in accounts], [Rel.LINKED])
        add_subgraph(state, strongest_links(links, state), risky)
        return state
    state.groups = infrastructure_groups(store, accounts, hub_cap)
    for name, accts in state.groups.items():
        gid = f"{GROUP_LABEL}|{name}"
        state.nodes[gid] = {"id": gid, "label": GROUP_LABEL, "kind": GROUP_LABEL, "key": name, "name": f"{name} ({len(accts)})", "risk": "high"}
        state.edges[f"{gid}>MEMBER_OF>{node_id(cref)}"] = {"id": f"{gid}>MEMBER_OF>{node_id(cref)}", "source": gid, "target": node_id(cref), "label": "MEMBER_OF"}
    return state


def expand(
    state: GraphState,
    store: GraphStore,
    element: str,
    *,
    degree_cap: int,
    limit: int = 200,
    risky: set[str] | None = None,
) -> int:
    """Expand one node in place: a group opens into its accounts (with their LINKED edges), a
    hub shows up to ``limit`` of its neighbours, any other node its neighbours with hubs held
    back. Returns the number of nodes added."""
    risky = risky if risky is not None else {n["key"] for n in state.nodes.values() if n.get("risk") == "high"}
    before = len(state.nodes)
    if element.startswith(GROUP_LABEL + "|"):
        name = element.split("|", 1)[1]
        accts = state.groups.get(name, [])[:limit]
        on_view = [parse_node_id(n) for n, d in state.nodes.items() if d.get("kind") == Label.ACCOUNT]
        # Links to accounts already open (from other groups) are drawn too.
        refs = [(Label.ACCOUNT.value, a) for a in accts] + on_view
        sub = store.subgraph(refs, [Rel.LINKED])
        risky |= set(accts)
        add_subgraph(state, strongest_links(sub, state), risky)
        for a in accts:
            eid = f"{node_id((Label.ACCOUNT.value, a))}>IN_GROUP>{element}"
            state.edges[eid] = {"id": eid, "source": node_id((Label.ACCOUNT.value, a)), "target": element, "label": "IN_GROUP"}
        state.truncated = state.truncated or len(state.groups.get(name, [])) > limit
    else:
        ref = parse_node_id(element)
        is_hub = element in state.hubs
        sub = store.neighbours([ref], list(EXPAND_RELS), limit=limit if is_hub else max(limit, degree_cap), degree_cap=None if is_hub else degree_cap)
        add_subgraph(state, sub, risky)
        if is_hub:
            state.nodes[element]["label"] = ref[0]
            state.hubs.pop(element, None)
        _add_hubs(state, element, sub.hubs)
        state.truncated = state.truncated or sub.truncated
    if element not in state.expanded:
        state.expanded.append(element)
    return len(state.nodes) - before


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


# ---- evidence for an element --------------------------------------------------------------------


def edge_evidence(store: GraphStore, workspace: Path, edge: str, *, hub_cap: int | None = None) -> dict[str, Any]:
    """Evidence for one edge of the view (``start>TYPE>end``): a LINKED edge gives the pair's
    evidence; an account-to-entity edge gives the relationship and its source rows."""
    start_text, rel_type, end_text = edge.split(">", 2)
    return relationship_evidence(store, workspace, parse_node_id(start_text), rel_type, parse_node_id(end_text), hub_cap=hub_cap)
