"""One entry point for ``export graph``: select, optionally redact, write the chosen format.

Formats: ``graphml``, ``gexf``, ``json`` (node-link), ``stix`` (STIX 2.1 bundle), ``html``
(standalone pyvis page), ``csv``/``parquet`` (a directory of tables) and ``report`` (a
directory: report.md, report.html, every graph format above, and MANIFEST.sha256).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graph.export.graphfiles import write_gexf, write_graphml, write_json
from graph.export.html import write_html
from graph.export.manifest import write_manifest
from graph.export.redact import Redactor, redact_graph
from graph.export.report import write_report
from graph.export.selection import EvidenceGraph, select
from graph.export.stix import write_stix
from graph.export.tables import write_tables
from graph.store import GraphStore

GRAPH_FORMATS = ("graphml", "gexf", "json", "stix", "html", "csv", "parquet", "report")
REPORT_FILES = {
    "graphml": "graph.graphml",
    "gexf": "graph.gexf",
    "json": "graph.json",
    "stix": "stix-bundle.json",
    "html": "graph.html",
}


@dataclass
class ExportResult:
    format: str
    path: Path
    files: list[Path] = field(default_factory=list)
    clusters: list[str] = field(default_factory=list)
    nodes: int = 0
    relationships: int = 0
    redacted: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "format": self.format,
            "path": str(self.path),
            "files": [str(f) for f in self.files],
            "clusters": self.clusters,
            "nodes": self.nodes,
            "relationships": self.relationships,
            "redacted": self.redacted,
        }


def _write_one(graph: EvidenceGraph, fmt: str, path: Path) -> list[Path]:
    if fmt == "graphml":
        return [write_graphml(graph, path)]
    if fmt == "gexf":
        return [write_gexf(graph, path)]
    if fmt == "json":
        return [write_json(graph, path)]
    if fmt == "stix":
        return [write_stix(graph, path)]
    if fmt == "html":
        title = "Sybilscope evidence: " + ", ".join(graph.cluster_ids[:5])
        return [write_html(graph, path, heading=title)]
    if fmt in ("csv", "parquet"):
        return write_tables(graph, path, fmt)
    raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(GRAPH_FORMATS)}")


def export_graph(
    store: GraphStore,
    out: Path,
    fmt: str,
    *,
    cluster_ids: Sequence[str] = (),
    operator_id: str | None = None,
    redact: bool = False,
    workspace: Path | None = None,
    degree_cap: int | None = 200,
) -> ExportResult:
    """Export the evidence of the chosen clusters (see ``selection.cluster_ids_for``)."""
    if fmt not in GRAPH_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(GRAPH_FORMATS)}")
    raw = select(store, cluster_ids, operator_id, degree_cap=degree_cap)
    redactor = Redactor() if redact else None
    graph = redact_graph(raw, redactor) if redactor else raw
    if out.parent:
        out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "report":
        out.mkdir(parents=True, exist_ok=True)
        files = write_report(store, raw, workspace, out, redactor)
        for sub, name in REPORT_FILES.items():
            files += _write_one(graph, sub, out / name)
        files.append(write_manifest(out, files))
    else:
        files = _write_one(graph, fmt, out)
    return ExportResult(fmt, out, files, graph.cluster_ids, len(graph.nodes), len(graph.relationships), redact)
