"""``export clusters``: every cluster with its members, for scripts and evaluation.

CSV columns are exactly ``cluster_id,account_id,score,flagged,operator_id`` (the CLI contract):
one row per member, ``flagged`` as ``true``/``false``, ``operator_id`` the analyst's confirmed
operator (ATTRIBUTED_TO), else the detector's suggestion (SUGGESTED_OPERATOR), else empty.
JSON holds the same per cluster, with the members as a list and where the operator came from.
Identifiers follow the graph files' rules (graph/export/text.py): CSV cells hold no NUL and no
lone surrogate, JSON is strict UTF-8; an identifier changed so carries the digest of the
original, as in the graph files.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from graph.export.text import clean_key, clean_value, csv_text, utf8_text
from graph.schema import Label, Rel
from graph.store import GraphStore

CSV_COLUMNS = ("cluster_id", "account_id", "score", "flagged", "operator_id")
FORMATS = ("csv", "json")


def _strongest(rels: list[tuple[str, float]]) -> str | None:
    """The operator of highest confidence (ties: smallest id) among (operator, confidence)."""
    return min(rels, key=lambda r: (-r[1], r[0]))[0] if rels else None


def cluster_table(store: GraphStore) -> list[dict[str, Any]]:
    """One record per cluster: id, score, flagged, operator and its source, sorted members."""
    members: dict[str, list[str]] = defaultdict(list)
    for rel in store.iter_relationships(Rel.MEMBER_OF):
        members[rel.end[1]].append(rel.start[1])
    operators: dict[str, dict[str, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for rel_type in (Rel.ATTRIBUTED_TO, Rel.SUGGESTED_OPERATOR):
        for rel in store.iter_relationships(rel_type):
            conf = rel.props.get("confidence")
            operators[rel.start[1]][rel_type.value].append(
                (rel.end[1], float(conf) if isinstance(conf, int | float) else 0.0)
            )
    out = []
    for cluster in sorted(store.iter_nodes(Label.CLUSTER), key=lambda c: c.key):
        ops = operators.get(cluster.key, {})
        confirmed = _strongest(ops.get(Rel.ATTRIBUTED_TO.value, []))
        suggested = _strongest(ops.get(Rel.SUGGESTED_OPERATOR.value, []))
        score = cluster.props.get("score")
        out.append(
            {
                "cluster_id": cluster.key,
                "score": float(score) if isinstance(score, int | float) else 0.0,
                "flagged": cluster.props.get("flagged") is True,
                "operator_id": confirmed or suggested or "",
                "operator_source": "confirmed" if confirmed else "suggested" if suggested else "",
                "status": cluster.props.get("status") or "",
                "members": sorted(members.get(cluster.key, [])),
            }
        )
    return out


def write_clusters(store: GraphStore, path: Path, fmt: str = "csv") -> int:
    """Write the cluster table; returns the number of rows (CSV) or clusters (JSON)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    table = cluster_table(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        clean = [{**clean_value(c, utf8_text), "cluster_id": clean_key(c["cluster_id"], utf8_text),
                  "members": [clean_key(m, utf8_text) for m in c["members"]]} for c in table]
        path.write_bytes(json.dumps({"clusters": clean}, indent=1, ensure_ascii=False).encode("utf-8"))
        return len(table)
    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for c in table:
            for account in c["members"]:
                writer.writerow([clean_key(c["cluster_id"], csv_text), clean_key(account, csv_text), repr(c["score"]),
                                 "true" if c["flagged"] else "false", clean_key(c["operator_id"], csv_text)])
                rows += 1
    return rows
