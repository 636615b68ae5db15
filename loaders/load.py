"""Loading an input bundle: stage and check everything, then write the graph.

``load_bundle`` is the public entry point (the ``load`` command calls it). Order, so that a
faulty bundle never touches the store and a killed load converges when run again:

1. ``Stager`` discovers the files, checks names and headers, streams and checks every row into
   a temporary staging directory (``BundleError`` on any file-level fault: nothing committed);
2. the staged files replace this bundle's previous ones (write, then rename);
3. ``GraphWriter`` recomputes every aggregate from all staged bundles and MERGEs it (or, into
   an empty local Neo4j database, hands the rows to Neo4j's importer: loaders/graph_import.py,
   the report's ``graph_path`` says which ran); only then is the load finished (step 2 marks the graph pending, see ``loaders.stage``), so a
   graph write that fails midway (a full disk, a lost connection) leaves a staging area that
   detection refuses with a message to run the load again, never a silent half-state.

Before step 1 the workspace is checked to hold hashes this load can match (same scheme, same
key), and its staging area, quarantine and salt are narrowed to owner-only modes. A workspace
lock keeps two loads into one workspace from interleaving.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from graph.private_files import PRIVATE_FILE, private_dir, secure_tree
from graph.settings import Settings
from graph.staging import finish_graph
from graph.store import GraphStore
from graph.workspace import load_lock_path, quarantine_dir, stage_tmp_dirs, staging_dir
from loaders.enrich import load_salt
from loaders.errors import BundleError, LoadIncomplete
from loaders.graph_import import MODES as BULK_MODES
from loaders.graph_import import GraphImporter, GraphWrite, write_graph
from loaders.progress import LoadProgress, RichProgress
from loaders.reader import ReadLimits
from loaders.stage import Stager, check_hash_scheme

__all__ = ["BundleError", "LoadReport", "load_bundle"]


@dataclass
class LoadReport:
    """What a load did: counts per table and per file, ignored files, where faults went."""

    bundle_id: str
    tables: dict[str, dict[str, int]]
    files: dict[str, dict[str, Any]]
    ignored_files: list[str]
    quarantine_path: str
    seconds: dict[str, float] = field(default_factory=dict)
    graph: dict[str, int] = field(default_factory=dict)
    graph_write: GraphWrite | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``--report-json`` document (cli.md); keys beyond the contract's are additions."""
        return {
            "tables": self.tables,
            "ignored_files": self.ignored_files,
            "quarantine_path": self.quarantine_path,
            "bundle_id": self.bundle_id,
            "files": self.files,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "graph": self.graph,
            **({"graph_path": self.graph_write.path, "graph_write": self.graph_write.to_json()}
               if self.graph_write else {}),
        }


def load_bundle(bundle_dir: Path, settings: Settings, store: GraphStore, *, progress: bool | LoadProgress = False,
                importer: GraphImporter | None = None) -> LoadReport:
    """Load ``bundle_dir`` into the staging area of the settings' workspace and into ``store``.
    ``progress``: True draws rich bars on stderr, a ``LoadProgress`` hears every step.
    ``importer`` (the local Neo4j's, from the app) lets a load into an empty database take the
    bulk path (setting ``neo4j_bulk_import``). Raises BundleError (store and staging untouched)
    on a file-level fault."""
    workspace = settings.workspace
    salt = load_salt(str(settings["hash_salt"] or ""), workspace)
    private_dir(staging_dir(workspace))
    limits = ReadLimits(max_line_bytes=int(settings["max_line_bytes"]),
                        max_decompressed_bytes=int(settings["max_decompressed_bytes"]))
    bulk_mode = str(settings["neo4j_bulk_import"]).strip().lower()
    if bulk_mode not in BULK_MODES:
        raise ValueError(f"neo4j_bulk_import (SYBILSCOPE_NEO4J_BULK_IMPORT) must be one of "
                         f"{', '.join(BULK_MODES)}, not {bulk_mode!r}")
    hub_senders = int(settings["graph_template_hub_senders"])
    if hub_senders < 0:
        raise ValueError(f"graph_template_hub_senders (SYBILSCOPE_GRAPH_TEMPLATE_HUB_SENDERS) must be at least 0, "
                         f"not {hub_senders}")
    sink: LoadProgress = progress if isinstance(progress, LoadProgress) else RichProgress() if progress else LoadProgress()
    try:
        with FileLock(str(load_lock_path(workspace)), mode=PRIVATE_FILE):
            return _load_locked(Path(bundle_dir), workspace, salt, store, sink, limits,
                                importer, bulk_mode, hub_senders)
    finally:
        sink.close()


def _load_locked(bundle: Path, workspace: Path, salt: str, store: GraphStore, sink: LoadProgress,
                 limits: ReadLimits, importer: GraphImporter | None, bulk_mode: str,
                 template_hub_senders: int) -> LoadReport:
    started = time.perf_counter()
    # Under the lock no other load runs: temporary directories left here were killed loads'.
    for stale in stage_tmp_dirs(workspace):
        shutil.rmtree(stale, ignore_errors=True)
    check_hash_scheme(workspace, salt)
    # workspaces of earlier versions: 0644 staging and quarantine files
    secure_tree(staging_dir(workspace))
    secure_tree(quarantine_dir(workspace))
    stager = Stager(bundle, workspace, salt, sink, limits)
    try:
        result = stager.stage()
    except BaseException:
        shutil.rmtree(stager.tmp, ignore_errors=True)
        raise
    staged = time.perf_counter()
    sink.phase("committing staging")
    stager.commit()
    committed = time.perf_counter()
    try:
        graph = write_graph(workspace, store, sink.phase, importer=importer, mode=bulk_mode,
                            template_hub_senders=template_hub_senders)
    except Exception as exc:
        raise LoadIncomplete(
            f"writing the graph failed ({' '.join(str(exc).split()) or type(exc).__name__}); {bundle} is staged but "
            "the graph holds only part of it, and detection refuses to run until the load is run again"
        ) from exc
    finish_graph(workspace)
    done = time.perf_counter()
    seconds = dict(result.seconds)
    seconds.update(staging=staged - started, commit=committed - staged, graph=done - committed, total=done - started)
    report = LoadReport(
        bundle_id=result.bundle_id,
        tables=result.tables(),
        files={rel: {"table": c.table, **c.as_dict(), "extra_columns": c.extra_columns}
               for rel, c in sorted(result.files.items())},
        ignored_files=sorted(result.ignored),
        quarantine_path=result.quarantine_path,
        seconds=seconds,
        graph=graph.counts,
        graph_write=graph,
    )
    sink.summary(report.tables, result.seconds)
    sink.note(graph.summary())
    return report
