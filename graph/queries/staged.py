"""Staged answers of the saved queries that pivot from one value, for the values the graph
does not hold.

The graph holds the values that link two accounts or more; an IP, a client or a template one
account used stays in the staged rows. ``accounts_on_ip``, ``accounts_by_client_fingerprint``
and ``accounts_sending_template`` asked about such a value would find no node, so when the
graph gives them no row they are answered here from staging, with the same columns (the run's
engine then says ``staging``). The other built-ins ask about what is shared (devices or cards
several accounts use, networks and ASNs with their IPs) and answer from the graph alone.
A hub template (more senders than ``graph_template_hub_senders``) is a node without its uses, or
with only the uses written before it became one: ``STAGED_WHEN`` sends ``accounts_sending_template``
to staging whenever the node says ``uses_staged``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from graph import staging
from graph.schema import Label
from graph.store import GraphStore

ISO = "'%Y-%m-%dT%H:%M:%SZ'"


def _relation(workspace: Path, table: str) -> str | None:
    files = staging.staged_files(workspace, table)
    return f"read_parquet({staging.sql_list(files)}, union_by_name = true)" if files else None


def _columns(con: Any, relation: str) -> set[str]:
    return {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}  # noqa: S608 - our file list


def _exchange_uses(workspace: Path, column: str, value: str) -> dict[str, tuple[Any, Any, int]]:
    """account -> (first, last, exchanges) of the staged exchanges whose ``column`` is ``value``."""
    relation = _relation(workspace, "exchanges")
    if relation is None:
        return {}
    with staging.connect(threads=staging.INTERACTIVE_THREADS) as con:
        if not {column, "account_id", "exchange_id", "ts"} <= _columns(con, relation):
            return {}
        # The column is one of the fixed names below, never input.
        rows = con.execute(
            f'SELECT account_id, strftime(min(ts), {ISO}), strftime(max(ts), {ISO}), count(DISTINCT exchange_id) '  # noqa: S608
            f'FROM {relation} WHERE "{column}" = $v GROUP BY 1',
            {"v": value},
        ).fetchall()
    return {str(a): (f, last, int(n)) for a, f, last, n in rows}


def accounts_on_ip(workspace: Path, ip: str) -> list[dict[str, Any]]:
    """``accounts_on_ip`` from staging: the exchanges made from the IP and the sign-ups."""
    uses = _exchange_uses(workspace, "ip", ip)
    signups: dict[str, Any] = {}
    relation = _relation(workspace, "accounts")
    if relation is not None:
        with staging.connect(threads=staging.INTERACTIVE_THREADS) as con:
            if {"signup_ip", "account_id", "created_at"} <= _columns(con, relation):
                signups = {str(a): t for a, t in con.execute(
                    f"SELECT account_id, strftime(min(created_at), {ISO}) FROM {relation} WHERE signup_ip = $v GROUP BY 1",  # noqa: S608
                    {"v": ip},
                ).fetchall()}
    rows = []
    for account in sorted(set(uses) | set(signups)):
        first, last, n = uses.get(account, (None, None, 0))
        signed = signups.get(account)
        times = [t for t in (first, last, signed) if t]
        rows.append({"account_id": account, "first_seen": min(times) if times else None,
                     "last_seen": max(times) if times else None, "count": n, "signup": account in signups})
    return rows


def accounts_by_client_fingerprint(workspace: Path, fingerprint: str) -> list[dict[str, Any]]:
    """``accounts_by_client_fingerprint`` from staging."""
    uses = _exchange_uses(workspace, "client_fingerprint", fingerprint)
    return [{"account_id": a, "first_seen": f, "last_seen": last, "count": n} for a, (f, last, n) in sorted(uses.items())]


def accounts_sending_template(workspace: Path, template_id: str) -> list[dict[str, Any]]:
    """``accounts_sending_template`` from staging (the busiest sender first)."""
    uses = _exchange_uses(workspace, "template_id", template_id)
    rows = [{"account_id": a, "count": n, "first_seen": f, "last_seen": last} for a, (f, last, n) in uses.items()]
    return sorted(rows, key=lambda r: (-r["count"], r["account_id"]))


STAGED_TWINS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "accounts_on_ip": accounts_on_ip,
    "accounts_by_client_fingerprint": accounts_by_client_fingerprint,
    "accounts_sending_template": accounts_sending_template,
}


def template_uses_staged(store: GraphStore, params: Mapping[str, Any]) -> bool:
    """The template's node says its senders are in staging (graph/investigate/search.USES_STAGED)."""
    node = store.get_node(Label.PROMPT_TEMPLATE, str(params.get("template_id") or ""))
    return node is not None and node.props.get("uses_staged") is True


# The pivots the staged twin answers even when the graph gave rows: those rows may be only part.
STAGED_WHEN: dict[str, Callable[[GraphStore, Mapping[str, Any]], bool]] = {
    "accounts_sending_template": template_uses_staged,
}
