"""A fresh database for this workspace's local server, written by Neo4j's own importer.

``sybilscope load`` into an empty local database does not MERGE row by row: the graph writer's
rows become import files (loaders/graph_csv.py) and :class:`LocalGraphImport` stops the server,
runs ``neo4j-admin database import full`` (``org.neo4j.cli.AdminTool`` with the import command
of ``neo4j-import-tool``, both among the Community jars the launcher gathers) on its data
directory, starts it again and recreates the store's constraints and indexes. Anything else
(a remote server, another workspace's server, a database that holds data) is refused with the
reason, and the load takes the batched path.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from app.neo4j_local.errors import LocalNeo4jError
from app.neo4j_local.jars import gather_jars
from app.neo4j_local.launch import jvm_args
from app.neo4j_local.logs import key_line, log_tail
from app.neo4j_local.paths import bolt_port, server_home
from app.neo4j_local.server import start, status, stop
from app.neo4j_local.tools import find_java
from graph.settings import Settings
from graph.store import GraphStore
from loaders.graph_csv import ImportPlan

ADMIN_TOOL = "org.neo4j.cli.AdminTool"
IMPORT_LOG = "import.log"
IMPORT_REPORT = "import.report"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# The launcher serves the default database only.
LOCAL_DATABASE = "neo4j"
MIN_READ_BUFFER = 4 << 20
# The importer's own figure, after its JVM has started: "IMPORT DONE in 1m 2s 345ms."
_DONE_RE = re.compile(r"IMPORT DONE in ((?:\d+(?:ms|h|m|s)\s*)+)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def import_command(settings: Settings, lib: Path, java: str, plan: ImportPlan) -> list[str]:
    """The importer's command line; file names are relative to ``plan.directory`` (its working
    directory), so no path can be taken for the importer's regular expressions or separators."""
    home = server_home(settings)
    heap = [a for a in jvm_args(settings, home) if a.startswith(("-Xm", "-Djava.io.tmpdir", "-Dfile.encoding"))]
    longest = max((g.longest for g in [*plan.nodes, *plan.relationships]), default=0)
    multiline = any(g.multiline for g in [*plan.nodes, *plan.relationships])
    cmd = [
        java, *heap, "-XX:-UsePerfData", "-cp", str(lib / "*"), ADMIN_TOOL,
        "database", "import", "full",
        "--overwrite-destination=true", "--id-type=string", "--delimiter=,", '--quote="',
        "--array-delimiter=U+001F", "--bad-tolerance=0", "--normalize-types=true", "--verbose",
        f"--threads={import_threads()}",
        f"--max-off-heap-memory={str(settings['neo4j_pagecache']).strip()}",
        f"--read-buffer-size={max(MIN_READ_BUFFER, 4 * longest + 1024)}",
        f"--report-file={home / 'logs' / IMPORT_REPORT}",
    ]  # fmt: skip
    cmd += [f"--nodes={g.name}={g.header.name},{g.data.name}" for g in plan.nodes]
    cmd += [f"--relationships={g.name}={g.header.name},{g.data.name}" for g in plan.relationships]
    if multiline:
        # Only a node key with a line break gets here (text with one is set after the import):
        # v1, for every file, which parses on one thread; the v2 chunker (a list of files) fails
        # on 5.26 with "found CR outside a text cell" on multi-line text that holds no CR at all.
        cmd.append("--multiline-fields=true")
    else:
        cmd.append("--multiline-fields=false")
    cmd.append(LOCAL_DATABASE)
    return cmd


def import_threads() -> int:
    """The importer's worker threads: every processor this process may use (the server is
    stopped while it runs)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def reported_seconds(log_text: str) -> float | None:
    """The seconds the importer reports for its own work (its JVM's start not included)."""
    found = _DONE_RE.findall(log_text)
    if not found:
        return None
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in re.findall(r"(\d+)(ms|h|m|s)", found[-1]))


def import_full(settings: Settings, plan: ImportPlan, *, echo: Callable[[str], None] = print) -> tuple[float, float | None]:
    """Run the importer into the (stopped) server's data directory; the seconds it took, and
    the seconds it reports for its own work. Raises LocalNeo4jError with the importer's telling
    line when it fails."""
    home = server_home(settings)
    for sub in ("data", "logs", "tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    lib = gather_jars(settings, echo=echo)
    java = find_java()
    conf = home / "tmp" / "import-conf"
    conf.mkdir(parents=True, exist_ok=True)
    # The launcher's layout: databases and transaction logs under HOME/data.
    (conf / "neo4j.conf").write_text(
        f"server.directories.data={home / 'data'}\nserver.directories.logs={home / 'logs'}\n", encoding="utf-8"
    )
    cmd = import_command(settings, lib, java, plan)
    log = home / "logs" / IMPORT_LOG
    env = {**os.environ, "NEO4J_HOME": str(home), "NEO4J_CONF": str(conf)}
    offset = log.stat().st_size if log.is_file() else 0
    started = time.monotonic()
    with open(log, "ab") as out:
        out.write(f"\n=== {datetime.now(UTC).isoformat(timespec='seconds')} import: {' '.join(cmd)}\n".encode())
        out.flush()
        rc = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=str(plan.directory),
            env=env, check=False,
        ).returncode  # fmt: skip
    took = time.monotonic() - started
    tail = log_tail(log, offset)
    if rc != 0:
        raise LocalNeo4jError(
            f"neo4j-admin database import failed (exit {rc}): {key_line(tail)} (log: {log})", log_tail=tail
        )
    return took, reported_seconds(tail)


def drop_database_files(settings: Settings) -> None:
    """Remove the default database's store and transaction files (the server is stopped)."""
    data = server_home(settings) / "data"
    for path in (data / "databases" / LOCAL_DATABASE, data / "transactions" / LOCAL_DATABASE):
        shutil.rmtree(path, ignore_errors=True)


def local_refusal(settings: Settings, store: GraphStore) -> str | None:
    """Why the store is not this workspace's running local server (None when it is)."""
    from graph.stores.neo4j_store import Neo4jStore

    if not isinstance(store, Neo4jStore):
        return f"the store is {store.name}, not Neo4j"
    uri = urlparse(str(settings["store"]))
    if uri.hostname not in LOCAL_HOSTS:
        return f"{settings['store']} is not the local server"
    if str(settings["neo4j_database"]) != LOCAL_DATABASE:
        return f"database {settings['neo4j_database']!r} is not the local server's {LOCAL_DATABASE!r}"
    current = status(settings)
    if not current.running:
        return f"no local server of workspace {settings.workspace} is running"
    if urlparse(current.bolt_uri).port != (uri.port or 7687):
        return f"{settings['store']} is not the local server of workspace {settings.workspace} ({current.bolt_uri})"
    return None


def server_settings(settings: Settings) -> Settings:
    """``settings`` with ``neo4j_bolt_port`` the port of the store's URI: the import restarts
    the server there, where the store (and whoever else) reaches it, whatever
    SYBILSCOPE_NEO4J_BOLT_PORT says in this shell."""
    port = urlparse(str(settings["store"])).port or 7687
    return settings if bolt_port(settings) == port else settings.replaced(neo4j_bolt_port=port)


class LocalGraphImport:
    """Imports a plan into this workspace's local server (the loader's ``GraphImporter``)."""

    def __init__(self, settings: Settings, store: GraphStore, *, echo: Callable[[str], None] = print) -> None:
        self.settings = server_settings(settings) if settings.is_neo4j else settings
        self.store = store
        self.echo = echo

    def refusal(self) -> str | None:
        return local_refusal(self.settings, self.store)

    def run(self, plan: ImportPlan) -> dict[str, float]:
        """Stop the server, import, start it again on the new database, recreate the schema.
        The server is started again whatever happened; the seconds of each step."""
        from graph.stores.neo4j_store import Neo4jStore

        timing: dict[str, float] = {}
        began = time.monotonic()
        stop(self.settings)
        timing["stop"] = time.monotonic() - began
        try:
            timing["import"], reported = import_full(self.settings, plan, echo=self.echo)
            if reported is not None:
                timing["importer_reported"] = reported
        except BaseException:
            # The database was empty and a failed import leaves unusable store files: the
            # server starts on a new empty one, and the load can be run again.
            drop_database_files(self.settings)
            start(self.settings, echo=self.echo)
            raise
        began = time.monotonic()
        start(self.settings, echo=self.echo)
        timing["start"] = time.monotonic() - began
        began = time.monotonic()
        if isinstance(self.store, Neo4jStore):
            self.store.forget_bookmarks()
            self.store.ensure_schema()
        timing["schema"] = time.monotonic() - began
        return timing
