"""How two accounts connect: a shortest path through shared infrastructure and detector links,
each hop with the evidence that makes it a hop.

An investigator asking "is this account tied to that ring?" needs the chain and, at every step,
why it holds (the detector's reasons, or how often and when the value was used).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graph.investigate.evidence import reason_summary
from graph.props import loads
from graph.schema import INFRASTRUCTURE_RELS, Label, Rel
from graph.store import GraphStore

# Shared infrastructure, detector links, and IP-to-network (so two IPs of one network connect).
PATH_RELS: tuple[str, ...] = tuple(r.value for r in (*INFRASTRUCTURE_RELS, Rel.LINKED, Rel.IN_NETWORK))


def unknown_accounts(store: GraphStore, accounts: Sequence[str]) -> list[str]:
    """The accounts of ``accounts`` the graph does not hold: a path question about one of them
    has no answer, and "no path" would wrongly suggest the two are unrelated."""
    return [a for a in accounts if store.get_node(Label.ACCOUNT, a) is None]


def path_with_evidence(
    store: GraphStore, a: str, b: str, *, max_hops: int = 6, rel_types: Sequence[str] = PATH_RELS
) -> list[dict[str, Any]] | None:
    """A shortest path between two accounts, one row per hop with the relationship's
    evidence (LINKED reasons, or counts and first/last seen of shared-infrastructure use).
    None when no path exists within ``max_hops``."""
    sub = store.shortest_path((Label.ACCOUNT.value, a), (Label.ACCOUNT.value, b), list(rel_types), max_hops)
    if sub is None:
        return None
    hops = []
    for i, rel in enumerate(sub.relationships):
        frm, to = sub.nodes[i], sub.nodes[i + 1]
        props = dict(rel.props)
        if rel.type == Rel.LINKED:
            reasons = loads(props.pop("reasons", None), [])
            evidence = "; ".join(reason_summary(r) for r in (reasons if isinstance(reasons, list) else [reasons]))
        else:
            evidence = ", ".join(f"{k}={props[k]}" for k in ("count", "first_seen", "last_seen", "signup") if k in props)
        hops.append(
            {"hop": i + 1, "from": f"{frm.label}:{frm.key}", "relationship": rel.type, "to": f"{to.label}:{to.key}",
             "weight": props.get("weight"), "evidence": evidence[:500]}
        )
    return hops
