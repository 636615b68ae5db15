"""The triage queue: every cluster with what an investigator ranks and filters it by.

Clusters come from the store with their JSON properties decoded and the analyst's attribution
beside the detector's suggestion; the queue filters and sorts them into display rows; the
activity sparkline is counted from staged exchanges in DuckDB; the hub values detection refused
as evidence come from ``detection/hubs.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from graph import staging
from graph.props import loads
from graph.schema import Label, Rel
from graph.store import GraphStore
from graph.workspace import hubs_path


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
                "attribution_rationale": str(att.props.get("rationale") or "") if att else "",
                "attributed_by": str(att.props.get("by") or "") if att else "",
                "attributed_at": str(att.props.get("at") or "") if att else "",
            }
        )
    return out


def attribution_text(cluster: dict[str, Any], width: int = 0) -> str:
    """An analyst's attribution in one line: ``Acme (0.85) by alice on 2025-06-01: rationale``
    (the rationale cut to ``width`` characters when given); empty when not attributed."""
    if not cluster.get("attributed_operator"):
        return ""
    rationale = cluster.get("attribution_rationale") or ""
    if width and len(rationale) > width:
        rationale = rationale[: width - 1].rstrip() + "…"
    who = f" by {cluster['attributed_by']}" if cluster.get("attributed_by") else ""
    when = f" on {cluster['attributed_at'][:10]}" if cluster.get("attributed_at") else ""
    head = f"{cluster['attributed_name']} ({float(cluster.get('attribution_confidence') or 0.0):.2f}){who}{when}"
    return f"{head}: {rationale}" if rationale else head


def indicator_names(cluster: dict[str, Any]) -> list[str]:
    """The names of a cluster's scored indicators (the signals it can be filtered by)."""
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
    try:
        a = datetime.fromisoformat(first.replace("Z", "+00:00"))
        b = datetime.fromisoformat(last.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return round((b - a).total_seconds() / 86400.0, 1)


def operator_choices(clusters: Iterable[dict[str, Any]]) -> list[str]:
    """Every operator a cluster is attributed or suggested to: the operator filter's options."""
    ops: set[str] = set()
    for c in clusters:
        ops.update(x for x in (c["attributed_operator"], c["suggested_operator"]) if x)
    return sorted(ops)


def signal_choices(clusters: Iterable[dict[str, Any]]) -> list[str]:
    """Every indicator name any cluster has: the signal filter's options."""
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
    flagged_first: bool = True,
    activity: dict[str, list[int]] | None = None,
) -> list[dict[str, Any]]:
    """The triage queue: clusters filtered by status, minimum score, operator (attributed or
    suggested), signal (an indicator name) and flag, sorted (flagged clusters first unless
    ``flagged_first`` is off), one display row each. Clusters a detection re-run retired
    (analyst decisions kept, no members) are left out unless asked."""
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
                "operator": attribution_text(c, width=160),
                "suggested": (
                    f"{c['suggested_name']} ({c['suggestion_confidence']:.2f})" if c["suggested_operator"] else ""
                ),
                "activity": (activity or {}).get(c["cluster_id"], []),
            }
        )
    rows.sort(key=lambda r: (r.get(sort_by) is None, r.get(sort_by)), reverse=descending)
    if flagged_first:
        rows.sort(key=lambda r: not r["flagged"])  # stable: the chosen order holds within each group
    return rows


def activity_scale(rows: Iterable[dict[str, Any]]) -> int:
    """The busiest day of any row's sparkline: one y-axis for all, so a tall line means a busy
    cluster rather than a cluster busy relative to itself."""
    return max((max(r["activity"]) for r in rows if r.get("activity")), default=0)


def membership(store: GraphStore) -> dict[str, str]:
    """account_id -> cluster_id for every member."""
    return {r.start[1]: r.end[1] for r in store.iter_relationships(Rel.MEMBER_OF)}


def daily_activity(workspace: Path, member_of: dict[str, str], days: int | None = None) -> dict[str, list[int]]:
    """Exchanges per day for each cluster (a sparkline), counted in DuckDB from staging.
    The lists are aligned on the days the clusters were active, oldest first."""
    if not member_of or not staging.has_table(workspace, "exchanges"):
        return {}
    import pyarrow as pa

    con = staging.connect(threads=staging.INTERACTIVE_THREADS)
    con.register("m", pa.table({"account_id": list(member_of), "cluster_id": list(member_of.values())}))
    rows = con.execute(
        """
        SELECT m.cluster_id, CAST(date_trunc('day', e.ts) AS DATE) AS d, count(*) AS n
        FROM read_parquet($glob) e JOIN m USING (account_id)
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        {"glob": staging.table_glob(workspace, "exchanges")},
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
    path = hubs_path(workspace)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return []
    rows = data if isinstance(data, list) else data.get("hubs", []) if isinstance(data, dict) else []
    return sorted((r for r in rows if isinstance(r, dict)), key=lambda r: -int(r.get("accounts") or 0))
