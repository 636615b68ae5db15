"""How a set of accounts behaved over time: exchanges and tokens per hour or day and per model,
capability, account or IP; each account's onset; and, from such a series, the bursts and the
moments a new model first appears.

A fleet run by one operator starts together, bursts together and switches model together;
these series make that visible. They are aggregated in DuckDB from the staged exchanges.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graph import staging


def cluster_timeline(workspace: Path, accounts: Sequence[str], bucket: str = "day", by: str = "model") -> list[dict[str, Any]]:
    """Exchanges and tokens per time bucket (hour or day) and per group (model, capability,
    account or IP), aggregated in DuckDB from staging."""
    if bucket not in ("hour", "day"):
        raise ValueError("bucket must be hour or day")
    if by not in ("model", "capability", "account_id", "ip"):
        raise ValueError("unknown grouping")
    if not accounts or not staging.has_table(workspace, "exchanges"):
        return []
    con = staging.connect(threads=staging.INTERACTIVE_THREADS)
    glob = staging.table_glob(workspace, "exchanges")
    if by not in staging.glob_columns(con, glob):
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
    if not accounts or not staging.has_table(workspace, "exchanges"):
        return []
    con = staging.connect(threads=staging.INTERACTIVE_THREADS)
    rows = con.execute(
        """
        WITH e AS (SELECT account_id, ts, model FROM read_parquet($g) WHERE account_id = ANY($a)),
        firsts AS (SELECT account_id, model, min(ts) AS f FROM e GROUP BY 1, 2)
        SELECT e.account_id, min(e.ts), max(e.ts), count(*),
               (SELECT string_agg(coalesce(model, '?'), ' -> ' ORDER BY f) FROM firsts WHERE firsts.account_id = e.account_id)
        FROM e GROUP BY e.account_id ORDER BY 2
        """,
        {"g": staging.table_glob(workspace, "exchanges"), "a": list(accounts)},
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
