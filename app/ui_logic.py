"""What the investigation UI computes, as plain functions the tests call without Streamlit.

The views only lay results out; every query behind them is here: the triage table, the graph
state an investigator grows by expanding nodes, the evidence behind a link, search, paths with
per-hop evidence, and activity timelines. Graph questions go to the ``GraphStore``; questions
about raw rows (timelines, the source rows behind a link) go to the staging Parquet through
DuckDB, aggregated there so only small results come back.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from graph.schema import INFRASTRUCTURE_RELS, Label, Rel, key_of
from graph.staging import has_table, table_glob, templates_path
from graph.store import GraphStore, Node, NodeKey, Relationship, Subgraph

ALL = 10**9
# Relationships an investigator walks when expanding a node: everything but the analyst's own
# annotations (ABOUT), which the case panel shows instead.
EXPAND_RELS: tuple[str, ...] = tuple(r.value for r in Rel if r is not Rel.ABOUT)
PATH_RELS: tuple[str, ...] = tuple(r.value for r in (*INFRASTRUCTURE_RELS, Rel.LINKED, Rel.IN_NETWORK))
GROUP_LABEL = "Group"
HUB_LABEL = "Hub"
GROUP_THRESHOLD = 300


# ---- small parsing helpers ------------------------------------------------------------------


def loads(raw: Any, default: Any) -> Any:
    """Parse a JSON property, tolerating values already decoded or missing."""
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return default


def node_id(ref: NodeKey) -> str:
    """The element id of a node in the graph view: ``Label|key``."""
    return f"{ref[0]}|{ref[1]}"


def parse_node_id(text: str) -> NodeKey:
    label, _, key = text.partition("|")
    return (label, key)


def edge_id(rel: Relationship) -> str:
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


# ---- triage ---------------------------------------------------------------------------------


def load_clusters(store: GraphStore) -> list[dict[str, Any]]:
    """Every cluster as a flat dict with its JSON properties decoded and the analyst's
    attribution (operator id) beside the detector's suggestion."""
    attributed = {r.start[1]: r for r in store.iter_relationships(Rel.ATTRIBUTED_TO)}
    operators = {n.key: str(n.props.get("name") or n.key) for n in store.iter_nodes(Label.OPERATOR)}
    out = []
    for node in store.iter_nodes(Label.CLUSTER):
        p = node.props
        indicators = loads(p.get("indicators"), [])
        att = attributed.get(node.key)
        suggested = str(p.get("suggested_operator") or "")
        out.append(
            {
                "cluster_id": node.key,
                "score": float(p.get("score") or 0.0),
                "flagged": bool(p.get("flagged", False)),
                "size": int(p.get("size") or 0),
                "exchanges": int(p.get("exchanges") or 0),
                "input_tokens": int(p.get("input_tokens") or 0),
                "output_tokens": int(p.get("output_tokens") or 0),
                "first_seen": str(p.get("first_seen") or ""),
                "last_seen": str(p.get("last_seen") or ""),
                "status": str(p.get("status") or "open"),
                "indicators": indicators if isinstance(indicators, list) else [],
                "capability_profile": loads(p.get("capability_profile"), {}),
                "stability": loads(p.get("stability"), {}),
                "suggested_operator": suggested,
                "suggested_name": operators.get(suggested, suggested),
                "suggestion_confidence": float(p.get("suggestion_confidence") or 0.0),
                "retired": bool(p.get("retired", False)),
                "superseded_by": str(p.get("superseded_by") or p.get("merged_into") or ""),
                "attributed_operator": att.end[1] if att else "",
                "attributed_name": operators.get(att.end[1], att.end[1]) if att else "",
                "attribution_confidence": float(att.props.get("confidence") or 0.0) if att else 0.0,
            }
        )
    return out


def indicator_names(cluster: dict[str, Any]) -> list[str]:
    return [str(i.get("name")) for i in cluster["indicators"] if isinstance(i, dict) and i.get("name")]


def top_indicators(cluster: dict[str, Any], n: int = 3) -> str:
    """``name +contribution`` of the strongest indicators, for one table cell."""
    items = [i for i in cluster["indicators"] if isinstance(i, dict)]
    items.sort(key=lambda i: -float(i.get("contribution") or 0.0))
    return ", ".join(f"{i.get('name')} +{float(i.get('contribution') or 0.0):.2f}" for i in items[:n])


def capability_text(profile: Any, n: int = 3) -> str:
    """The top shares of a capability profile (``{"coding": 0.5, …}``) as text."""
    if not isinstance(profile, dict):
        return ""
    pairs = [(k, float(v)) for k, v in profile.items() if isinstance(v, int | float)]
    pairs.sort(key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.0%}" for k, v in pairs[:n])


def span_days(first: str, last: str) -> float:
    """Days between two ISO timestamps (0 when either is missing)."""
    from datetime import datetime

    try:
        a = datetime.fromisoformat(first.replace("Z", "+00:00"))
        b = datetime.fromisoformat(last.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return round((b - a).total_seconds() / 86400.0, 1)


def operator_choices(clusters: Iterable[dict[str, Any]]) -> list[str]:
    ops: set[str] = set()
    for c in clusters:
        ops.update(x for x in (c["attributed_operator"], c["suggested_operator"]) if x)
    return sorted(ops)


def signal_choices(clusters: Iterable[dict[str, Any]]) -> list[str]:
    return sorted({name for c in clusters for name in indicator_names(c)})


def triage_rows(
    clusters: Sequence[dict[str, Any]],
    *,
    statuses: Sequence[str] | None = None,
    min_score: float = 0.0,
    operator: str | None = None,
    signal: str | None = None,
    flagged_only: bool = False,
    include_retired: bool = False,
    sort_by: str = "score",
    descending: bool = True,
    activity: dict[str, list[int]] | None = None,
) -> list[dict[str, Any]]:
    """The triage queue: clusters filtered by status, minimum score, operator (attributed or
    suggested), signal (an indicator name) and flag, sorted, one display row each. Clusters a
    detection re-run retired (analyst decisions kept, no members) are left out unless asked."""
    rows = []
    for c in clusters:
        if c["retired"] and not include_retired:
            continue
        if statuses and c["status"] not in statuses:
            continue
        if c["score"] < min_score or (flagged_only and not c["flagged"]):
            continue
        if operator and operator not in (c["attributed_operator"], c["suggested_operator"]):
            continue
        if signal and signal not in indicator_names(c):
            continue
        rows.append(
            {
                "cluster_id": c["cluster_id"],
                "score": round(c["score"], 3),
                "flagged": c["flagged"],
                "status": c["status"],
                "size": c["size"],
                "exchanges": c["exchanges"],
                "tokens": c["input_tokens"] + c["output_tokens"],
                "first_seen": c["first_seen"][:10],
                "last_seen": c["last_seen"][:10],
                "span_days": span_days(c["first_seen"], c["last_seen"]),
                "top_indicators": top_indicators(c),
                "capabilities": capability_text(c["capability_profile"]),
                "operator": c["attributed_name"] or "",
                "suggested": (
                    f"{c['suggested_name']} ({c['suggestion_confidence']:.2f})" if c["suggested_operator"] else ""
                ),
                "activity": (activity or {}).get(c["cluster_id"], []),
            }
        )
    rows.sort(key=lambda r: (r.get(sort_by) is None, r.get(sort_by)), reverse=descending)
    return rows


def membership(store: GraphStore) -> dict[str, str]:
    """account_id -> cluster_id for every member."""
    return {r.start[1]: r.end[1] for r in store.iter_relationships(Rel.MEMBER_OF)}


def _con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(config={"threads": 2})


def daily_activity(workspace: Path, member_of: dict[str, str], days: int | None = None) -> dict[str, list[int]]:
    """Exchanges per day for each cluster (a sparkline), counted in DuckDB from staging.
    The lists are aligned on the days the clusters were active, oldest first."""
    if not member_of or not has_table(workspace, "exchanges"):
        return {}
    import pyarrow as pa

    con = _con()
    con.register("m", pa.table({"account_id": list(member_of), "cluster_id": list(member_of.values())}))
    rows = con.execute(
        """
        SELECT m.cluster_id, CAST(date_trunc('day', e.ts) AS DATE) AS d, count(*) AS n
        FROM read_parquet($glob) e JOIN m USING (account_id)
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        {"glob": table_glob(workspace, "exchanges")},
    ).fetchall()
    con.close()
    all_days = sorted({d for _, d, _ in rows})
    if days:
        all_days = all_days[-days:]
    index = {d: i for i, d in enumerate(all_days)}
    out: dict[str, list[int]] = {}
    for cid, d, n in rows:
        if d in index:
            out.setdefault(cid, [0] * len(all_days))[index[d]] = int(n)
    return out


def suppressed_hubs(workspace: Path) -> list[dict[str, Any]]:
    """The shared values detection refused as evidence (``detection/hubs.json``): carrier NAT,
    webmail, over-cap values, with why and how many accounts share each. Empty if absent."""
    path = workspace / "detection" / "hubs.json"
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return []
    rows = data if isinstance(data, list) else data.get("hubs", []) if isinstance(data, dict) else []
    return sorted((r for r in rows if isinstance(r, dict)), key=lambda r: -int(r.get("accounts") or 0))


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


# ---- evidence ---------------------------------------------------------------------------------


def node_details(store: GraphStore, ref: NodeKey) -> dict[str, Any]:
    """A node's properties (JSON decoded) and its relationship counts by type."""
    node = store.get_node(*ref)
    if node is None:
        return {}
    sub = store.neighbours([ref], limit=ALL)
    counts = Counter(r.type for r in sub.relationships)
    props = {k: loads(v, v) if k in {"indicators", "capability_profile", "stability", "reasons"} else v for k, v in node.props.items()}
    return {"label": ref[0], "key": ref[1], "properties": props, "relationships": dict(sorted(counts.items()))}


def shared_entities(store: GraphStore, a: str, b: str, hub_cap: int | None = None) -> list[dict[str, Any]]:
    """Infrastructure both accounts use (the raw facts behind a link), with each side's
    relationship properties and how many accounts use the value overall."""
    types = [r.value for r in INFRASTRUCTURE_RELS]
    subs = {x: store.neighbours([(Label.ACCOUNT.value, x)], types, limit=ALL) for x in (a, b)}
    by_side: dict[str, dict[NodeKey, Relationship]] = {}
    for x, sub in subs.items():
        by_side[x] = {(r.end if r.start[1] == x else r.start): r for r in sub.relationships}
    common = sorted(set(by_side[a]) & set(by_side[b]))
    degrees = store.degrees(common, types) if common else {}
    out = []
    for ref in common:
        ra, rb = by_side[a][ref], by_side[b][ref]
        out.append(
            {
                "label": ref[0], "value": ref[1], "relationship": ra.type,
                "accounts_using": degrees.get(ref, 0),
                "hub": hub_cap is not None and degrees.get(ref, 0) > hub_cap,
                "a_count": ra.props.get("count"), "b_count": rb.props.get("count"),
                "first_seen": min(str(x) for x in (ra.props.get("first_seen"), rb.props.get("first_seen")) if x) if (ra.props.get("first_seen") or rb.props.get("first_seen")) else "",
                "last_seen": max(str(x) for x in (ra.props.get("last_seen"), rb.props.get("last_seen")) if x) if (ra.props.get("last_seen") or rb.props.get("last_seen")) else "",
            }
        )
    return out


def link_reasons(store: GraphStore, a: str, b: str) -> dict[str, Any]:
    """The detector's LINKED edge between two accounts (either direction): weight, families
    and every reason it recorded; empty when the detector did not link them."""
    sub = store.subgraph([(Label.ACCOUNT.value, a), (Label.ACCOUNT.value, b)], [Rel.LINKED])
    for rel in sub.relationships:
        reasons = loads(rel.props.get("reasons"), [])
        return {
            "weight": rel.props.get("weight"),
            "families": list(rel.props.get("families") or []),
            "reasons": reasons if isinstance(reasons, list) else [reasons],
        }
    return {}


def reason_summary(reason: Any) -> str:
    """One reason as a short phrase: ``shared_ip IP:203.0.113.7 (4 accounts, w 0.60)``."""
    if not isinstance(reason, dict):
        return str(reason)
    entity = reason.get("entity")
    what = f"{entity.get('label')}:{entity.get('key')}" if isinstance(entity, dict) else str(reason.get("value", ""))
    extra = []
    if reason.get("accounts") is not None:
        extra.append(f"{reason['accounts']} accounts")
    if reason.get("weight") is not None:
        extra.append(f"w {float(reason['weight']):.2f}")
    kind = reason.get("kind") or reason.get("family") or "reason"
    return f"{kind} {what}" + (f" ({', '.join(extra)})" if extra else "")


def reason_rows(reasons: Iterable[Any]) -> list[dict[str, Any]]:
    """Reasons as flat table rows: the shared entity as ``Label:key``, nested details as JSON."""
    out = []
    for reason in reasons:
        if not isinstance(reason, dict):
            out.append({"reason": str(reason)})
            continue
        row: dict[str, Any] = {}
        for k, v in reason.items():
            if k == "entity" and isinstance(v, dict):
                row["entity"] = f"{v.get('label')}:{v.get('key')}"
            elif isinstance(v, dict | list):
                row[k] = json.dumps(v, default=str)[:300]
            else:
                row[k] = v
        out.append(row)
    return out


# Which staged table and column hold the rows behind an account's use of an entity.
SOURCE_OF: dict[str, tuple[str, str]] = {
    Label.IP: ("exchanges", "ip"),
    Label.NETWORK: ("exchanges", "network"),
    Label.CLIENT_FINGERPRINT: ("exchanges", "client_fingerprint"),
    Label.PROMPT_TEMPLATE: ("exchanges", "template_id"),
    Label.PAYMENT_METHOD: ("payments", "payment_id"),
    Label.DEVICE: ("devices", "device_id"),
    Label.EMAIL_DOMAIN: ("accounts", "email_domain"),
}
_SOURCE_COLUMNS: dict[str, str] = {
    "exchanges": "_file, _row, exchange_id, account_id, ts, ip, model, template_id, input_tokens, output_tokens",
    "payments": "_file, _row, account_id, payment_id, card_bin, card_last4, billing_country, first_seen",
    "devices": "_file, _row, account_id, device_id, first_seen, last_seen",
    "accounts": "_file, _row, account_id, created_at, email_domain, email_shape, signup_ip, country, verification",
}


def _columns(con: duckdb.DuckDBPyConnection, glob: str) -> list[str]:
    return [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet($g)", {"g": glob}).fetchall()]


class SourceReader:
    """Reads the staged rows of a few accounts: each table is scanned once (the accounts' rows
    copied into a temp table), then every value's rows come from that small copy."""

    def __init__(self, workspace: Path, accounts: Sequence[str]) -> None:
        self.workspace = workspace
        self.accounts = list(accounts)
        self.con = _con()
        self.columns: dict[str, set[str] | None] = {}

    def _load(self, table: str) -> set[str] | None:
        if table not in self.columns:
            if not has_table(self.workspace, table):
                self.columns[table] = None
            else:
                glob = table_glob(self.workspace, table)
                # The temp table's name is one of the fixed staging table names.
                self.con.execute(
                    f"CREATE TEMP TABLE src_{table} AS SELECT * FROM read_parquet($g) WHERE account_id = ANY($a)",  # noqa: S608
                    {"g": glob, "a": self.accounts},
                )
                self.columns[table] = set(_columns(self.con, glob))
        return self.columns[table]

    def rows(self, label: str, value: str, limit: int = 50) -> list[dict[str, Any]]:
        """The staged input rows (with ``_file``/``_row``) in which these accounts used this
        value: the records an evidence claim rests on. Empty when nothing is staged."""
        if label not in SOURCE_OF:
            return []
        table, column = SOURCE_OF[label]
        present = self._load(table)
        if not present or column not in present:
            return []
        wanted = [c.strip() for c in _SOURCE_COLUMNS[table].split(",")]
        cols = ", ".join(f'"{c}"' for c in wanted if c in present)
        order = "ts" if "ts" in present else "_row"
        # Column names come from the fixed tables above, never from user input.
        sql = f'SELECT {cols} FROM src_{table} WHERE "{column}" = $v ORDER BY "{order}", _file, _row LIMIT $n'  # noqa: S608
        cur = self.con.execute(sql, {"v": value, "n": limit})
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        return [{k: (str(v) if k in {"ts", "first_seen", "last_seen", "created_at"} and v is not None else v) for k, v in r.items()} for r in rows]

    def close(self) -> None:
        self.con.close()


def source_rows(
    workspace: Path, accounts: Sequence[str], label: str, value: str, limit: int = 50
) -> list[dict[str, Any]]:
    """The staged rows in which ``accounts`` used one value (see SourceReader.rows)."""
    reader = SourceReader(workspace, accounts)
    try:
        return reader.rows(label, value, limit)
    finally:
        reader.close()


def template_examples(workspace: Path, template_ids: Sequence[str]) -> dict[str, str]:
    """One example prompt per template, from templates.parquet."""
    path = templates_path(workspace)
    if not template_ids or not path.exists():
        return {}
    con = _con()
    rows = con.execute(
        "SELECT template_id, example FROM read_parquet($p) WHERE template_id = ANY($ids)",
        {"p": str(path), "ids": list(template_ids)},
    ).fetchall()
    con.close()
    return {str(t): str(e or "") for t, e in rows}


def pair_evidence(store: GraphStore, workspace: Path, a: str, b: str, *, hub_cap: int | None = None, rows_per_value: int = 20) -> dict[str, Any]:
    """Everything that ties two accounts: the detector's reasons, the infrastructure they
    share (with counts, first/last seen), example prompts of shared templates and the source
    rows behind each shared value."""
    shared = shared_entities(store, a, b, hub_cap)
    link = link_reasons(store, a, b)
    values = [(s["label"], s["value"]) for s in shared]
    for reason in link.get("reasons", []):
        entity = reason.get("entity") if isinstance(reason, dict) else None
        if isinstance(entity, dict) and (entity.get("label"), entity.get("key")) not in values:
            values.append((str(entity.get("label")), str(entity.get("key"))))
    templates = [v for lab, v in values if lab == Label.PROMPT_TEMPLATE]
    reader = SourceReader(workspace, [a, b])
    try:
        rows = {f"{lab}:{v}": reader.rows(lab, v, rows_per_value) for lab, v in values}
    finally:
        reader.close()
    return {
        "a": a,
        "b": b,
        "link": link,
        "shared": shared,
        "examples": template_examples(workspace, templates),
        "source_rows": rows,
    }


def edge_evidence(store: GraphStore, workspace: Path, edge: str, *, hub_cap: int | None = None) -> dict[str, Any]:
    """Evidence for one edge of the view: a LINKED edge gives the pair's evidence; an
    account-to-entity edge gives the relationship and its source rows."""
    start_text, rel_type, end_text = edge.split(">", 2)
    start, end = parse_node_id(start_text), parse_node_id(end_text)
    if rel_type == Rel.LINKED:
        return {"kind": "pair", **pair_evidence(store, workspace, start[1], end[1], hub_cap=hub_cap)}
    sub = store.subgraph([start, end])
    rels = [r.props for r in sub.relationships if r.type == rel_type]
    acct, other = (start, end) if start[0] == Label.ACCOUNT else (end, start)
    rows = source_rows(workspace, [acct[1]], other[0], other[1]) if acct[0] == Label.ACCOUNT else []
    return {"kind": "relationship", "type": rel_type, "start": start, "end": end, "properties": rels[0] if rels else {}, "source_rows": rows}


# ---- search and paths ---------------------------------------------------------------------------

SEARCH_KINDS = ("auto", "account", "ip", "network", "payment", "card_bin", "email_domain", "email_hash", "device", "prompt")


def guess_kind(text: str) -> str:
    """What a search string most likely is."""
    t = text.strip()
    if "/" in t:
        try:
            ipaddress.ip_network(t, strict=False)
            return "network"
        except ValueError:
            pass
    try:
        ipaddress.ip_address(t)
        return "ip"
    except ValueError:
        pass
    if t.isdigit() and 6 <= len(t) <= 8:
        return "card_bin"
    if "@" in t or ("." in t and " " not in t and not t.replace(".", "").isdigit()):
        return "email_domain"
    if " " in t:
        return "prompt"
    return "account"


def search(store: GraphStore, workspace: Path, text: str, kind: str = "auto", limit: int = 50) -> list[dict[str, Any]]:
    """Nodes matching ``text`` as the given kind, as rows {label, key, detail}."""
    t = text.strip()
    if not t:
        return []
    kind = guess_kind(t) if kind == "auto" else kind
    found: list[Node] = []
    if kind == "account":
        node = store.get_node(Label.ACCOUNT, t)
        found = [node] if node else []
        if not found:
            found = store.find_nodes(Label.ACCOUNT, {"org_id": t}, limit=limit)
    elif kind == "ip":
        try:
            t = str(ipaddress.ip_address(t))
        except ValueError:
            return []
        node = store.get_node(Label.IP, t)
        found = [node] if node else []
    elif kind == "network":
        node = store.get_node(Label.NETWORK, t)
        found = [node] if node else []
        if not found:
            found = store.find_nodes(Label.NETWORK, {"provider": t}, limit=limit)
    elif kind == "payment":
        node = store.get_node(Label.PAYMENT_METHOD, t)
        found = [node] if node else []
    elif kind == "card_bin":
        found = store.find_nodes(Label.PAYMENT_METHOD, {"card_bin": t}, limit=limit)
    elif kind == "email_domain":
        domain = t.split("@")[-1].lower()
        node = store.get_node(Label.EMAIL_DOMAIN, domain)
        found = [node] if node else []
    elif kind == "email_hash":
        found = store.find_nodes(Label.ACCOUNT, {"email_hash": t}, limit=limit)
    elif kind == "device":
        node = store.get_node(Label.DEVICE, t)
        found = [node] if node else []
    elif kind == "prompt":
        return search_templates(store, workspace, t, limit)
    degrees = store.degrees([n.ref for n in found]) if found else {}
    return [{"label": n.label, "key": n.key, "connections": degrees.get(n.ref, 0), "detail": _detail(n)} for n in found]


def _detail(node: Node) -> str:
    keep = {k: v for k, v in node.props.items() if k not in {"reasons", "indicators", "capability_profile", "stability", "minhash"}}
    text = ", ".join(f"{k}={v}" for k, v in sorted(keep.items()))
    return text[:200]


def search_templates(store: GraphStore, workspace: Path, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """Prompt templates whose normalised text or example contains ``text`` (case-insensitive),
    with how many accounts sent each."""
    path = templates_path(workspace)
    if not path.exists():
        return []
    con = _con()
    rows = con.execute(
        "SELECT template_id, template, capability FROM read_parquet($p) "
        "WHERE template ILIKE $q OR example ILIKE $q ORDER BY template_id LIMIT $n",
        {"p": str(path), "q": f"%{text}%", "n": limit},
    ).fetchall()
    con.close()
    refs = [(Label.PROMPT_TEMPLATE.value, str(r[0])) for r in rows]
    degrees = store.degrees(refs, [Rel.SENT_TEMPLATE]) if refs else {}
    return [
        {"label": Label.PROMPT_TEMPLATE.value, "key": str(tid), "connections": degrees.get((Label.PROMPT_TEMPLATE.value, str(tid)), 0), "detail": f"[{cap}] {str(tpl)[:160]}"}
        for tid, tpl, cap in rows
    ]


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


# ---- timelines ----------------------------------------------------------------------------------


def cluster_timeline(workspace: Path, accounts: Sequence[str], bucket: str = "day", by: str = "model") -> list[dict[str, Any]]:
    """Exchanges and tokens per time bucket (hour or day) and per group (model, capability,
    or account), aggregated in DuckDB from staging."""
    if bucket not in ("hour", "day"):
        raise ValueError("bucket must be hour or day")
    if by not in ("model", "capability", "account_id", "ip"):
        raise ValueError("unknown grouping")
    if not accounts or not has_table(workspace, "exchanges"):
        return []
    con = _con()
    glob = table_glob(workspace, "exchanges")
    if by not in _columns(con, glob):
        con.close()
        return []
    # bucket and by are checked against fixed lists above.
    sql = (
        f"SELECT date_trunc('{bucket}', ts) AS t, coalesce(CAST(\"{by}\" AS VARCHAR), '?') AS grp, count(*) AS exchanges, "  # noqa: S608
        "sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) AS tokens "
        "FROM read_parquet($g) WHERE account_id = ANY($a) GROUP BY 1, 2 ORDER BY 1, 2"
    )
    rows = con.execute(sql, {"g": glob, "a": list(accounts)}).fetchall()
    con.close()
    return [{"t": str(t), "group": str(g), "exchanges": int(n), "tokens": int(tok or 0)} for t, g, n, tok in rows]


def onsets(workspace: Path, accounts: Sequence[str]) -> list[dict[str, Any]]:
    """Per account: first and last activity, exchanges, and the models used in order of
    first use (a synchronised onset or a fleet-wide model switch shows up here)."""
    if not accounts or not has_table(workspace, "exchanges"):
        return []
    con = _con()
    rows = con.execute(
        """
        WITH e AS (SELECT account_id, ts, model FROM read_parquet($g) WHERE account_id = ANY($a)),
        firsts AS (SELECT account_id, model, min(ts) AS f FROM e GROUP BY 1, 2)
        SELECT e.account_id, min(e.ts), max(e.ts), count(*),
               (SELECT string_agg(coalesce(model, '?'), ' -> ' ORDER BY f) FROM firsts WHERE firsts.account_id = e.account_id)
        FROM e GROUP BY e.account_id ORDER BY 2
        """,
        {"g": table_glob(workspace, "exchanges"), "a": list(accounts)},
    ).fetchall()
    con.close()
    return [{"account_id": a, "first": str(f), "last": str(last), "exchanges": int(n), "models": str(m or "")} for a, f, last, n, m in rows]


def bursts(series: Sequence[dict[str, Any]], factor: float = 3.0) -> list[dict[str, Any]]:
    """Buckets whose total exchanges exceed ``factor`` times the median bucket: the bursts."""
    totals: Counter[str] = Counter()
    for row in series:
        totals[row["t"]] += row["exchanges"]
    if not totals:
        return []
    values = sorted(totals.values())
    median = values[len(values) // 2]
    return [{"t": t, "exchanges": n, "x_median": round(n / median, 1) if median else None} for t, n in sorted(totals.items()) if median and n > factor * median]


def model_switches(series: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """When each model first appears in a by-model series, with its share of that bucket."""
    seen: dict[str, dict[str, Any]] = {}
    totals: Counter[str] = Counter()
    for row in series:
        totals[row["t"]] += row["exchanges"]
    for row in series:
        if row["group"] not in seen:
            seen[row["group"]] = {"model": row["group"], "first_bucket": row["t"], "share_then": round(row["exchanges"] / totals[row["t"]], 2)}
    return sorted(seen.values(), key=lambda r: r["first_bucket"])


def key_label(label: str) -> str:
    """The key property of a label (re-exported for views)."""
    return key_of(label)
