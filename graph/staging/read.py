"""Reading the staging area as the graph writer aggregates it: every bundle's rows in one view,
an exchange staged by several bundles counted once, and the template uses detection reads.

The graph writer (loaders) and detection (graph) build their views with these same functions,
so detection's template uses read straight from staging are exactly the ones the writer
aggregates (it writes as SENT_TEMPLATE only those of templates two accounts share, and not those
of hub templates, which stay here: loaders/graph_write.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.private_files import private_dir
from graph.staging.db import connect, sql_list, sql_str
from graph.staging.layout import WITHHELD_PREFIX, staged_files
from graph.staging.pending import require_finished_load
from graph.workspace import bundles_path, scratch_dir, templates_path

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

DETECT_DUCKDB_MEMORY = "3GB"

# A withheld prompt's hash ('h:…') is a template only when two accounts or more sent it:
# filled-in prompts hash apart, and millions of one-off hashes would only be noise.
SENT_TEMPLATES = f"""
    WITH s AS (SELECT account_id, template_id, count(*) AS n, min(ts) AS f, max(ts) AS l
               FROM ex WHERE template_id IS NOT NULL GROUP BY ALL)
    SELECT * FROM s WHERE NOT starts_with(template_id, {sql_str(WITHHELD_PREFIX)}) OR template_id IN (
        SELECT template_id FROM s WHERE starts_with(template_id, {sql_str(WITHHELD_PREFIX)}) GROUP BY 1 HAVING count(*) >= 2)"""  # noqa: S608 - constant


def read_bundles(workspace: Path) -> list[dict[str, Any]]:
    """The bundles recorded in ``staging/bundles.json`` (empty when none)."""
    path = bundles_path(workspace)
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return list(data.get("bundles", []))


def create_bundles_table(con: duckdb.DuckDBPyConnection, bundles: list[dict[str, Any]]) -> None:
    """The temp table ``bundles`` (bundle_id, seq): each bundle's load order, which decides
    whose version of a row wins."""
    con.execute("CREATE TEMP TABLE bundles (bundle_id VARCHAR, seq BIGINT)")
    if bundles:
        con.executemany("INSERT INTO bundles VALUES (?, ?)", [(b["bundle_id"], b.get("seq", 0)) for b in bundles])


def create_staged_view(con: duckdb.DuckDBPyConnection, workspace: Path, table: str) -> bool:
    """A view ``<table>_all`` over every staged bundle's rows with the bundle's load order
    (``_seq``, from the ``bundles`` table); False when nothing of ``table`` is staged."""
    files = staged_files(workspace, table)
    if not files:
        return False
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {table}_all AS SELECT s.*, b.seq AS _seq "  # noqa: S608 - fixed names
        f"FROM read_parquet({sql_list(files)}, union_by_name = true) s LEFT JOIN bundles b ON b.bundle_id = s._bundle"
    )
    return True


def create_exchange_view(con: duckdb.DuckDBPyConnection, n_bundles: int) -> None:
    """The view ``ex``: staged exchanges, an id staged by several bundles counted once (the
    earlier bundle's row)."""
    if n_bundles > 1:
        # ids staged by several bundles (usually few), computed once for every query on ex
        con.execute(
            "CREATE TEMP TABLE multi AS SELECT exchange_id, min(_seq) AS first_seq FROM exchanges_all "
            "GROUP BY 1 HAVING count(*) > 1"
        )
        con.execute(
            "CREATE TEMP VIEW ex AS SELECT e.* FROM exchanges_all e LEFT JOIN multi m USING (exchange_id) "
            "WHERE m.first_seq IS NULL OR e._seq = m.first_seq"
        )
    else:
        con.execute("CREATE TEMP VIEW ex AS SELECT * FROM exchanges_all")


def read_template_uses(workspace: Path) -> Any:
    """Every (account, template) use the graph writer aggregates, straight from staging, as an
    Arrow table (a superset of the SENT_TEMPLATE relationships it writes: single-sender and hub
    templates' uses stay in staging) (template_id, account_id, count, first, last; times in whole epoch seconds),
    sorted by template then account; None when no exchanges are staged (or not by the loader:
    without its columns). Detection reads the tens of millions of (account, template) uses
    this way instead of through the store. Raises LoadIncomplete when the last load did not
    finish writing the graph: staging then holds uses of accounts the graph may lack."""
    require_finished_load(workspace)
    files = staged_files(workspace, "exchanges")
    if not files:
        return None
    with connect() as probe:
        columns = {r[0] for r in probe.execute(
            f"DESCRIBE SELECT * FROM read_parquet({sql_list(files)}, union_by_name = true)"  # noqa: S608 - file list
        ).fetchall()}
    if not {"_bundle", "account_id", "template_id", "ts"} <= columns:
        return None
    tmp = private_dir(scratch_dir(workspace, "detect"))
    # the rows come back to Python as Arrow; DuckDB spills rather than hold a second copy
    con = connect(temp_directory=tmp / "duckdb", preserve_insertion_order=False, memory_limit=DETECT_DUCKDB_MEMORY)
    try:
        bundles = read_bundles(workspace)
        create_bundles_table(con, bundles)
        create_staged_view(con, workspace, "exchanges")
        create_exchange_view(con, len(bundles))
        return con.sql(
            f"""SELECT template_id, account_id, n AS count, CAST(floor(epoch(f)) AS BIGINT) AS first,
                       CAST(floor(epoch(l)) AS BIGINT) AS last
                FROM ({SENT_TEMPLATES}) ORDER BY template_id, account_id"""  # noqa: S608 - fixed text
        ).to_arrow_table()
    finally:
        con.close()


def read_template_table(workspace: Path) -> pa.Table | None:
    """Every normalised template's properties (template_id, template, example cut as the graph
    writer cuts it, capability, cot) from templates.parquet as one Arrow table sorted by id: the
    graph holds only the templates two accounts share, and detection profiles every template an
    account sent. None without the file."""
    path = templates_path(workspace)
    if not path.exists():
        return None
    with connect() as con:
        return con.sql(
            "SELECT template_id, template, left(example, 2000) AS example, capability, cot "
            "FROM read_parquet($p) ORDER BY template_id",
            params={"p": str(path)},
        ).to_arrow_table()


def glob_columns(con: duckdb.DuckDBPyConnection, glob: str) -> list[str]:
    """The column names of the staged files matching ``glob``: files of older bundles may lack
    columns that newer loaders add, so readers ask before they select."""
    return [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet($g)", {"g": glob}).fetchall()]
