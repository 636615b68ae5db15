"""The staging area as this package reads it: where staged rows live, the one DuckDB
connection factory, and which staged column backs each graph label.

Every read of staged Parquet in ``graph.investigate`` goes through here, so the place rows are
found and the way DuckDB is opened are decided once.
"""

from __future__ import annotations

import duckdb

from graph.schema import Label
from loaders.staging import has_table, table_glob, templates_path

__all__ = ["SOURCE_OF", "columns", "connect", "has_table", "table_glob", "templates_path"]

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


def connect() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection for one question; two threads, because the UI
    shares its machine with the store and other sessions."""
    return duckdb.connect(config={"threads": 2})


def columns(con: duckdb.DuckDBPyConnection, glob: str) -> list[str]:
    """The column names of the staged files matching ``glob`` (tables differ by bundle)."""
    return [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet($g)", {"g": glob}).fetchall()]
