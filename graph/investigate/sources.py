"""The input rows behind an evidence claim: the staged records (with their ``_file``/``_row``
provenance) in which some accounts used one value, and the example prompt of a template.

An investigator who reads "these accounts share IP x" must be able to see the very rows of the
bundle that say so. They are read from the staging Parquet with DuckDB; each table is scanned
once per question, however many values are asked about.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graph import staging
from graph.schema import primary_source

# The columns an investigator reads in a source row, per staged table (provenance first).
_SOURCE_COLUMNS: dict[str, str] = {
    "exchanges": "_file, _row, exchange_id, account_id, ts, ip, model, template_id, input_tokens, output_tokens",
    "payments": "_file, _row, account_id, payment_id, card_bin, card_last4, billing_country, first_seen",
    "devices": "_file, _row, account_id, device_id, first_seen, last_seen",
    "accounts": "_file, _row, account_id, created_at, email_domain, email_shape, signup_ip, country, verification",
}


class SourceReader:
    """Reads the staged rows of a few accounts: each table is scanned once (the accounts' rows
    copied into a temp table), then every value's rows come from that small copy."""

    def __init__(self, workspace: Path, accounts: Sequence[str]) -> None:
        self.workspace = workspace
        self.accounts = list(accounts)
        self.con = staging.connect(threads=staging.INTERACTIVE_THREADS)
        self.columns: dict[str, set[str] | None] = {}

    def _load(self, table: str) -> set[str] | None:
        if table not in self.columns:
            if not staging.has_table(self.workspace, table):
                self.columns[table] = None
            else:
                glob = staging.table_glob(self.workspace, table)
                # The temp table's name is one of the fixed staging table names.
                self.con.execute(
                    f"CREATE TEMP TABLE src_{table} AS SELECT * FROM read_parquet($g) WHERE account_id = ANY($a)",  # noqa: S608
                    {"g": glob, "a": self.accounts},
                )
                self.columns[table] = set(staging.glob_columns(self.con, glob))
        return self.columns[table]

    def rows(self, label: str, value: str, limit: int = 50) -> list[dict[str, Any]]:
        """The staged input rows (with ``_file``/``_row``) in which these accounts used this
        value: the records an evidence claim rests on. Empty when nothing is staged."""
        source = primary_source(label)
        if source is None:
            return []
        table, column = source
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
    path = staging.templates_path(workspace)
    if not template_ids or not path.exists():
        return {}
    con = staging.connect(threads=staging.INTERACTIVE_THREADS)
    rows = con.execute(
        "SELECT template_id, example FROM read_parquet($p) WHERE template_id = ANY($ids)",
        {"p": str(path), "ids": list(template_ids)},
    ).fetchall()
    con.close()
    return {str(t): str(e or "") for t, e in rows}
