"""One entry point for ``export graph``: build the evidence graph, optionally redact, write the
chosen format.

Formats: ``graphml``, ``gexf``, ``json`` (node-link), ``stix`` (STIX 2.1 bundle), ``html``
(standalone graph page), ``csv``/``parquet`` (a directory of tables) and ``report`` (a
directory: report.md, report.html, the pictures and full tables beside them, graph.html and,
within the report's size budget, graph.json (``REPORT_FILES``, ``size.REPORT_BUDGET``), and
MANIFEST.sha256).

What is written is the evidence graph of the chosen clusters (graph/evidence.py), folded into
member groups above the ``evidence_fold_members`` setting (graph/evidence_fold.py; the
report's tables still list every member and its strongest links); ``full``
writes one hop of everything around them instead (graph/export/selection.py ``select``) and
says first, through ``phase``, how large that is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graph.export.graphfiles import write_gexf, write_graphml, write_json
from graph.export.html import write_html
from graph.export.manifest import write_manifest
from graph.export.redact import Redactor, redact_graph
from graph.export.report import write_report
from graph.export.selection import EvidenceGraph, evidence_for
from graph.export.size import (
    REPORT_BUDGET,
    describe_size,
    estimate_bytes,
    human_bytes,
    report_with_json,
)
from graph.export.stix import write_stix
from graph.export.tables import write_tables
from graph.settings import Settings
from graph.store import GraphStore

GRAPH_FORMATS = ("graphml", "gexf", "json", "stix", "html", "csv", "parquet", "report")
REPORT_FILES = {"json": "graph.json", "html": "graph.html"}
"""The graph files written beside the report: the whole evidence graph in one machine format
and the interactive page. GraphML, GEXF and STIX are exports of their own (``--format``): a
1,000-account cluster's ten thousand links with their reasons are megabytes in each format."""
Phase = Callable[[str], None]


@dataclass
class ExportResult:
    format: str
    path: Path
    files: list[Path] = field(default_factory=list)
    clusters: list[str] = field(default_factory=list)
    nodes: int = 0
    relationships: int = 0
    redacted: bool = False
    full: bool = False
    folded: str = ""
    """What the folded graph is (``EvidenceGraph.fold_note``), or "" when it is not folded."""

    def to_json(self) -> dict[str, object]:
        return {
            "format": self.format,
            "path": str(self.path),
            "files": [str(f) for f in self.files],
            "clusters": self.clusters,
            "nodes": self.nodes,
            "relationships": self.relationships,
            "redacted": self.redacted,
            "full": self.full,
            "folded": self.folded,
        }


def _heading(graph: EvidenceGraph) -> str:
    shown = ", ".join(graph.cluster_ids[:5]) + (f" and {len(graph.cluster_ids) - 5} more" if len(graph.cluster_ids) > 5 else "")
    return "Sybilscope evidence: " + shown


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
        return [write_html(graph, path, heading=_heading(graph))]
    if fmt in ("csv", "parquet"):
        return write_tables(graph, path, fmt)
    raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(GRAPH_FORMATS)}")


def write_export(
    store: GraphStore, raw: EvidenceGraph, out: Path, fmt: str, *, redact: bool = False,
    workspace: Path | None = None, phase: Phase | None = None,
) -> tuple[list[Path], EvidenceGraph]:
    """Write an evidence graph already built (``evidence_for``) as ``fmt``: the files written
    and the graph they hold (redacted, when asked)."""
    say = phase or (lambda _text: None)
    if fmt not in GRAPH_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(GRAPH_FORMATS)}")
    redactor = Redactor(store=store) if redact else None
    if redactor:
        say("redacting identifiers and free text")
    graph = redact_graph(raw, redactor) if redactor else raw
    if out.parent:
        out.parent.mkdir(parents=True, exist_ok=True)
    if fmt != "report":
        say(f"writing {fmt}")
        return _write_one(graph, fmt, out), graph
    out.mkdir(parents=True, exist_ok=True)
    say("writing the report and its tables")
    with_json = report_with_json(graph)
    files = write_report(store, raw, workspace, out, redactor,
                         json_size=None if with_json else human_bytes(estimate_bytes(graph, "json")))
    for sub, name in REPORT_FILES.items():
        if sub == "json" and not with_json:
            say(f"leaving {name} out: the report would exceed its {human_bytes(REPORT_BUDGET)} budget")
            continue
        say(f"writing {name}")
        files += _write_one(graph, sub, out / name)
    say("writing the manifest")
    files.append(write_manifest(out, files))
    return files, graph


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
    full: bool = False,
    links_per_account: int | None = None,
    phase: Phase | None = None,
) -> ExportResult:
    """Export the evidence of the chosen clusters (see ``selection.cluster_ids_for``).
    ``phase`` hears what the export is doing (and, with ``full``, how large it will be)."""
    say = phase or (lambda _text: None)
    if fmt not in GRAPH_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(GRAPH_FORMATS)}")
    per_account = links_per_account if links_per_account is not None else int(Settings()["evidence_links_per_account"])
    say("reading one hop of everything around the clusters" if full else "building the evidence graph")
    raw = evidence_for(store, cluster_ids, operator_id, full=full, workspace=workspace, degree_cap=degree_cap,
                       links_per_account=per_account, phase=say)
    if full:
        say(f"full export: {describe_size(raw, fmt)}")
    files, written = write_export(store, raw, out, fmt, redact=redact, workspace=workspace, phase=say)
    return ExportResult(fmt, out, files, raw.cluster_ids, len(written.nodes), len(written.relationships), redact, full,
                        raw.fold_note())
