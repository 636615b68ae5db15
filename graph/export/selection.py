"""Which part of the graph an evidence export contains.

By default, the evidence graph (graph/evidence.py): the members and what links two or more of
them. ``select`` is the ``--full`` export for whoever wants everything: the cluster node, its
member accounts, all the infrastructure they used (IPs with their networks and ASNs, payment
methods, devices, client fingerprints, e-mail domains, prompt templates), the operators it is
attributed or suggested to with their indicators, and every relationship among those nodes
(LINKED included). Shared values with more than ``degree_cap`` accounts are hubs (a carrier-NAT
address) and are left out, as in the UI. One hop of a real campaign is large (50,000 templates
one account sent), so ``select`` is never the default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from graph.evidence import EvidenceGraph, build_evidence
from graph.schema import INFRASTRUCTURE_RELS, Label, Rel
from graph.store import GraphStore, Node, NodeKey

__all__ = ["EvidenceGraph", "SelectionError", "cluster_ids_for", "evidence_for", "select"]

ALL = 10**9
OPERATOR_RELS = (Rel.ATTRIBUTED_TO, Rel.SUGGESTED_OPERATOR)


class SelectionError(ValueError):
    """The export names a cluster or operator that does not exist, or selects nothing."""


def cluster_ids_for(store: GraphStore, cluster_ids: Sequence[str] = (), operator_id: str | None = None) -> list[str]:
    """The clusters an export covers: those named; else the operator's (attributed or
    suggested); else every flagged cluster (every cluster when none is flagged)."""
    if cluster_ids:
        missing = [c for c in cluster_ids if store.get_node(Label.CLUSTER, c) is None]
        if missing:
            raise SelectionError(f"no cluster {', '.join(repr(m) for m in missing)}")
        return sorted(set(cluster_ids))
    if operator_id:
        if store.get_node(Label.OPERATOR, operator_id) is None:
            raise SelectionError(f"no operator {operator_id!r}")
        sub = store.neighbours([(Label.OPERATOR, operator_id)], list(OPERATOR_RELS), limit=ALL)
        found = sorted(n.key for n in sub.nodes if n.label == Label.CLUSTER)
        if not found:
            raise SelectionError(f"operator {operator_id!r} has no attributed or suggested cluster")
        return found
    clusters = list(store.iter_nodes(Label.CLUSTER))
    flagged = sorted(c.key for c in clusters if c.props.get("flagged") is True)
    chosen = flagged or sorted(c.key for c in clusters)
    if not chosen:
        raise SelectionError("the store has no clusters; run 'sybilscope detect' first")
    return chosen


def _refs(nodes: Iterable[Node], label: str) -> list[NodeKey]:
    return sorted(n.ref for n in nodes if n.label == label)


def select(
    store: GraphStore,
    cluster_ids: Sequence[str] = (),
    operator_id: str | None = None,
    degree_cap: int | None = 200,
) -> EvidenceGraph:
    """One hop of everything around the chosen clusters (the ``--full`` export; see the
    module docstring)."""
    chosen = cluster_ids_for(store, cluster_ids, operator_id)
    cluster_refs: list[NodeKey] = [(Label.CLUSTER.value, c) for c in chosen]
    around = store.neighbours(cluster_refs, [Rel.MEMBER_OF, *OPERATOR_RELS], limit=ALL)
    members = _refs(around.nodes, Label.ACCOUNT)
    operators = _refs(around.nodes, Label.OPERATOR)
    refs: set[NodeKey] = {*cluster_refs, *members, *operators}
    hubs: dict[NodeKey, int] = {}
    if members:
        infra = store.neighbours(members, list(INFRASTRUCTURE_RELS), limit=ALL, degree_cap=degree_cap)
        hubs.update(infra.hubs)
        refs.update(n.ref for n in infra.nodes)
        ips = _refs(infra.nodes, Label.IP)
        if ips:
            nets = store.neighbours(ips, [Rel.IN_NETWORK], limit=ALL)
            refs.update(nets.node_refs())
            networks = _refs(nets.nodes, Label.NETWORK)
            if networks:
                refs.update(store.neighbours(networks, [Rel.IN_ASN], limit=ALL).node_refs())
    if operators:
        refs.update(store.neighbours(operators, [Rel.HAS_INDICATOR], limit=ALL).node_refs())
    sub = store.subgraph(sorted(refs))
    rels = [r for r in sub.relationships if r.type != Rel.ABOUT]
    return EvidenceGraph(nodes=sub.nodes, relationships=rels, cluster_ids=chosen, hubs=hubs, full=True)


def evidence_for(
    store: GraphStore,
    cluster_ids: Sequence[str] = (),
    operator_id: str | None = None,
    *,
    full: bool = False,
    workspace: Path | None = None,
    degree_cap: int | None = 200,
    links_per_account: int = 10,
    phase: Callable[[str], None] | None = None,
) -> EvidenceGraph:
    """What an export of the chosen clusters (``cluster_ids_for``) writes: their evidence
    graph, or with ``full`` one hop of everything (``select``)."""
    chosen = cluster_ids_for(store, cluster_ids, operator_id)
    if full:
        return select(store, chosen, degree_cap=degree_cap)
    return build_evidence(store, chosen, workspace=workspace, degree_cap=degree_cap,
                          links_per_account=links_per_account, phase=phase)
