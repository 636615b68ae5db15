"""The one way Sybilscope opens DuckDB, and the SQL literals its queries splice in.

Every connection (over the staging area, or scratch work such as vectorised hashing) comes
from ``connect``, so DuckDB's configuration is decided here and nowhere else, the way a Splink
backend owns its one connection: the time zone is always UTC (staged timestamps are UTC and
nothing may shift them to the machine's zone); threads, memory limit, spill directory and
insertion order are options a caller picks for its job, DuckDB's defaults otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

TIMEZONE = "UTC"
# Interactive reads (UI, investigation) share two cores with the store and other sessions.
INTERACTIVE_THREADS = 2


def sql_str(text: str) -> str:
    """A SQL string literal, quotes doubled: for our own paths and ids in statements that take
    no parameters (COPY, CREATE VIEW, read_parquet file lists)."""
    return "'" + text.replace("'", "''") + "'"


def sql_list(paths: Iterable[Path | str]) -> str:
    """A SQL list literal of paths, for ``read_parquet([...])``."""
    return "[" + ", ".join(sql_str(str(p)) for p in paths) + "]"


MEMORY_SHARE = 0.25  # of the machine's memory, for a connection not given a limit


def default_memory_limit(share: float = MEMORY_SHARE) -> str:
    """DuckDB's memory limit for a connection not given one: ``share`` of physical memory.
    DuckDB's own default is 80 %, and detection's process holds its pairs and clusters beside
    the queries (and a local Neo4j may run too): at the seed scale a per-account aggregate
    over 39M exchanges took the machine's memory with it instead of spilling.

    >>> default_memory_limit(0.25).endswith("MB")
    True
    """
    import os

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(256, int(total * share) >> 20)}MB"


def default_spill_directory() -> Path:
    """Where a connection not given a ``temp_directory`` spills: a directory of this user's
    only under the system temp directory (DuckDB's own default is ``.tmp`` in the working
    directory, wherever the command was started)."""
    import os
    import tempfile

    path = Path(tempfile.gettempdir()) / f"sybilscope-duckdb-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_uid != os.getuid():  # someone else made it first: spill elsewhere
        return Path(tempfile.mkdtemp(prefix="sybilscope-duckdb-"))
    return path


def connect(
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    temp_directory: Path | None = None,
    preserve_insertion_order: bool = True,
) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection, configured the project's one way.

    ``threads`` caps DuckDB's worker threads (readers that share the machine with a UI or a
    store), ``memory_limit`` (DuckDB's syntax, e.g. ``'3GB'``; default ``default_memory_limit()``)
    makes a big query spill rather than hold its result twice, ``temp_directory`` is where it spills, and
    ``preserve_insertion_order=False`` lets a big COPY or aggregate run without keeping row
    order. The caller closes the connection (it is also a context manager)."""
    config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": default_memory_limit()}
    if threads is not None:
        config["threads"] = threads
    if memory_limit is not None:
        config["memory_limit"] = memory_limit
    config["temp_directory"] = str(temp_directory if temp_directory is not None else default_spill_directory())
    if not preserve_insertion_order:
        config["preserve_insertion_order"] = False
    import duckdb  # here, so that importing the staging layout stays light

    con = duckdb.connect(config=config)
    # TimeZone belongs to the ICU extension, which is loaded only once the connection exists.
    con.execute(f"SET TimeZone = {sql_str(TIMEZONE)}")
    return con
