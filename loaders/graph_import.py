"""Which way the graph is written: Neo4j's importer into a fresh database, or batched MERGEs.

``write_graph`` takes the bulk path when the setting ``neo4j_bulk_import`` is ``auto``, the
load was given a ``GraphImporter`` (the app's, for this workspace's local server) that does not
refuse, and the store holds nothing: the graph writer's rows go to import files
(loaders/graph_csv.py), the importer loads them with the server stopped, and the rows a MERGE
treats differently from an import (repeats, values CSV cannot carry, text with a line break,
which would cost the importer its parallel parsing) are MERGEd afterwards.
Otherwise (an incremental load, a remote server, the setting ``off``) the rows are MERGEd in
batches. ``GraphWrite`` says which path ran, why, and with what figures.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from graph.private_files import private_dir
from graph.schema import Label
from graph.store import GraphStore
from graph.workspace import scratch_dir
from loaders.graph_csv import CsvGraphSink, ImportPlan
from loaders.graph_sink import StoreSink
from loaders.graph_write import GraphWriter

BULK = "bulk-import"
BATCHED = "batched"
MODES = ("auto", "off")
_LABELS = frozenset(label.value for label in Label)


class GraphImporter(Protocol):
    """Loads import files into the store's database (stopping and starting its server)."""

    def refusal(self) -> str | None:
        """Why the store cannot take an import (None when it can)."""
        ...

    def run(self, plan: ImportPlan) -> dict[str, float]:
        """Import ``plan`` into the store's database; seconds per step."""
        ...


@dataclass
class GraphWrite:
    """What the graph write did: the path, its figures, and why the bulk path was not taken."""

    path: str
    counts: dict[str, int]
    seconds: float
    reason: str = ""
    steps: dict[str, float] = field(default_factory=dict)
    imported: dict[str, int] = field(default_factory=dict)

    @property
    def nodes(self) -> int:
        return sum(n for name, n in self.counts.items() if name in _LABELS)

    @property
    def relationships(self) -> int:
        return sum(n for name, n in self.counts.items() if name not in _LABELS)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "nodes": self.nodes,
            "relationships": self.relationships,
            "seconds": round(self.seconds, 3),
            "relationships_per_s": round(self.relationships / self.seconds) if self.seconds > 0 else None,
        }
        if self.reason:
            out["batched_because"] = self.reason
        if self.steps:
            out["steps"] = {k: round(v, 3) for k, v in self.steps.items()}
        if self.imported:
            out["imported"] = self.imported
            secs = self.steps.get("import", 0.0)
            rels = self.imported.get("relationships", 0)
            out["import_relationships_per_s"] = round(rels / secs) if secs > 0 else None
            own = self.steps.get("importer_reported", 0.0)
            if own > 0:  # the importer's own figure, without its JVM's start
                out["importer_reported_relationships_per_s"] = round(rels / own)
        return out

    def summary(self) -> str:
        """One line for the load's summary."""
        rate = f"{self.relationships / self.seconds:,.0f} rel/s" if self.seconds > 0 else "-"
        why = f" ({self.reason})" if self.reason else ""
        return (f"graph: {self.path}{why}: {self.nodes:,} nodes, {self.relationships:,} relationships "
                f"in {self.seconds:.1f} s, {rate}")


def bulk_refusal(store: GraphStore, importer: GraphImporter | None, mode: str) -> str | None:
    """Why this write must take the batched path (None when the bulk path may run)."""
    if mode not in MODES:
        raise ValueError(f"neo4j_bulk_import must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "off":
        return "neo4j_bulk_import is off"
    if importer is None:
        return f"the {store.name} store takes no import"
    reason = importer.refusal()
    if reason:
        return reason
    if not is_empty(store):
        return "the database already holds a graph"
    return None


def is_empty(store: GraphStore) -> bool:
    """The store holds no node and no relationship of the schema."""
    counts = store.counts()
    return not counts["nodes"] and not counts["relationships"]


def write_graph(workspace: Path, store: GraphStore, phase: Callable[[str], None], *,
                importer: GraphImporter | None = None, mode: str = "auto",
                template_hub_senders: int | None = None) -> GraphWrite:
    """Write the graph from staging by the bulk path when it may run, else batched; both
    paths take the same rows (``template_hub_senders``: see ``GraphWriter``)."""
    started = time.perf_counter()
    reason = bulk_refusal(store, importer, mode)
    if reason is None and importer is not None:
        return _bulk(workspace, store, importer, phase, started, template_hub_senders)
    counts = GraphWriter(workspace, store, phase, template_hub_senders).write()
    return GraphWrite(BATCHED, counts, time.perf_counter() - started, reason or "")


def _bulk(workspace: Path, store: GraphStore, importer: GraphImporter, phase: Callable[[str], None],
          started: float, template_hub_senders: int | None) -> GraphWrite:
    directory = private_dir(scratch_dir(workspace, "graph-import"))
    shutil.rmtree(directory, ignore_errors=True)
    sink = CsvGraphSink(private_dir(directory))
    try:
        counts = GraphWriter(workspace, sink, phase, template_hub_senders).write()
        plan = sink.finish()
        written = time.perf_counter()
        # "rows": the graph writer's queries; "files": writing them into import files.
        steps = {"rows": written - started - sink.writing_seconds, "files": sink.writing_seconds}
        if not is_empty(store):  # written to meanwhile (the UI, another tool): the import would wipe it
            counts = GraphWriter(workspace, store, phase, template_hub_senders).write()
            return GraphWrite(BATCHED, counts, time.perf_counter() - started,
                              "the database was written to while the import files were made", steps)
        phase(f"importing {plan.node_count:,} nodes and {plan.relationship_count:,} relationships")
        steps.update(importer.run(plan))
        began = time.perf_counter()
        replay(store, plan)
        steps["replay"] = time.perf_counter() - began
    finally:
        sink.close()
        shutil.rmtree(directory, ignore_errors=True)
    imported = {"nodes": plan.node_count, "relationships": plan.relationship_count, "replayed": plan.replay_count}
    return GraphWrite(BULK, counts, time.perf_counter() - started, "", steps, imported)


def replay(store: GraphStore, plan: ImportPlan) -> None:
    """Write through the store (MERGE) the rows the import could not give their batched-path outcome."""
    sink = StoreSink(store)
    with sink.session():
        for label, rows in plan.replay_nodes:
            sink.nodes(label, rows)
        for rel, start, end, rel_rows in plan.replay_relationships:
            sink.relationships(rel, start, end, rel_rows)
