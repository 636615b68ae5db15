"""Export: the cluster table and evidence files (graph formats, STIX, HTML, the report with
its manifest), optionally redacted, offered as downloads.

Before an evidence export runs, the page builds the evidence graph of the selection (kept for
that selection in the session) and says how large each format will be: nodes, relationships
and an estimated size. While the export runs it shows each phase and a progress bar; the
export writes the graph already built instead of reading the store again."""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from app.views import common

if TYPE_CHECKING:
    from graph.evidence import EvidenceGraph

FORMATS = {
    "report": "Evidence report (Markdown + HTML + graph files + SHA-256 manifest, zip)",
    "graphml": "GraphML",
    "gexf": "GEXF (with time spans)",
    "json": "Node-link JSON",
    "stix": "STIX 2.1 bundle",
    "html": "Standalone HTML graph (opens offline)",
    "csv": "CSV tables (zip)",
    "parquet": "Parquet tables (zip)",
}
FILE_NAMES = {"graphml": "graph.graphml", "gexf": "graph.gexf", "json": "graph.json", "stix": "stix-bundle.json",
              "html": "graph.html"}


def zip_directory(directory: Path) -> bytes:
    """Every file under ``directory`` in a zip, paths relative to it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def evidence_graph(clusters: list[str], operator: str | None) -> EvidenceGraph:
    """The evidence graph of the selection (what every format writes), built once per
    selection in this session."""
    from graph.export.selection import evidence_for

    s = common.settings()
    key = ("export_evidence", tuple(sorted(clusters)), operator, int(s["ui_degree_cap"]),
           int(s["evidence_links_per_account"]))
    cached = st.session_state.get("export_evidence")
    if cached is None or cached[0] != key:
        graph = evidence_for(common.store(), clusters, operator, workspace=s.workspace,
                             degree_cap=int(s["ui_degree_cap"]), links_per_account=int(s["evidence_links_per_account"]))
        st.session_state["export_evidence"] = cached = (key, graph)
    return cached[1]


def size_rows(graph: EvidenceGraph) -> list[dict[str, object]]:
    """How large each format will be, for the table the page shows before an export runs."""
    from graph.export.size import estimate_bytes, human_bytes

    nodes, rels = graph.size()
    return [{"format": FORMATS[f], "nodes": nodes, "relationships": rels, "estimated size": human_bytes(estimate_bytes(graph, f))}
            for f in FORMATS]


def build_download(fmt: str, clusters: list[str], operator: str | None, redact: bool,
                   phase: Callable[[str], None] | None = None, graph: EvidenceGraph | None = None) -> tuple[str, bytes]:
    """Run the export in a scratch directory; the file name and bytes to offer. ``graph``: the
    evidence graph already built for this selection (else it is built here)."""
    from graph.export.run import write_export

    s = common.settings()
    raw = graph if graph is not None else evidence_graph(clusters, operator)
    with tempfile.TemporaryDirectory(prefix="sybilscope-export-") as tmp:
        target = Path(tmp) / ("evidence" if fmt in ("report", "csv", "parquet") else FILE_NAMES[fmt])
        write_export(common.store(), raw, target, fmt, redact=redact, workspace=s.workspace, phase=phase)
        if phase:
            phase("packing the download")
        if target.is_dir():
            return f"sybilscope-{fmt}{'-redacted' if redact else ''}.zip", zip_directory(target)
        return target.name, target.read_bytes()


def _clusters_section() -> None:
    from graph.export.clusters import write_clusters

    st.subheader("Clusters")
    fmt = st.radio("Format", ["csv", "json"], horizontal=True, key="export_clusters_fmt")
    if st.button("Prepare cluster table", key="export_clusters_go"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"clusters.{fmt}"
            write_clusters(common.store(), path, fmt)
            st.session_state["export_clusters_file"] = (path.name, path.read_bytes())
    ready = st.session_state.get("export_clusters_file")
    if ready:
        st.download_button(f"Download {ready[0]}", ready[1], file_name=ready[0], key="export_clusters_dl")


def _evidence_section() -> None:
    from graph.schema import Label

    st.subheader("Evidence")
    store = common.store()
    clusters = sorted(store.iter_nodes(Label.CLUSTER), key=lambda c: (-(c.props.get("score") or 0.0), c.key))
    operators = sorted(o.key for o in store.iter_nodes(Label.OPERATOR))
    current = common.selected_cluster()
    by = st.radio("Select by", ["clusters", "operator", "all flagged"], horizontal=True, key="export_by")
    chosen: list[str] = []
    operator = None
    if by == "clusters":
        default = [current] if current in {c.key for c in clusters} else []
        chosen = st.multiselect("Clusters", [c.key for c in clusters], default=default, key="export_clusters_pick")
    elif by == "operator":
        operator = st.selectbox("Operator", operators, key="export_operator") if operators else None
    names: list[str] = list(FORMATS)
    fmt = st.selectbox("Format", names, format_func=lambda f: FORMATS[f], key="export_fmt")
    redact = st.checkbox("Redact (salted hashes for identifiers; no e-mail or billing data; free text scrubbed)",
                         key="export_redact")
    ready_to_run = not (by == "clusters" and not chosen)
    graph = None
    if ready_to_run:
        try:
            with st.spinner("Reading the evidence graph…"):
                graph = evidence_graph(chosen, operator)
        except Exception as exc:  # noqa: BLE001 - show the reason, not a trace
            st.error(str(exc))
            ready_to_run = False
    if graph is not None:
        _size_section(graph, str(fmt))
    if st.button("Prepare export", key="export_go", disabled=not ready_to_run):
        try:
            st.session_state["export_file"] = _run_with_progress(str(fmt), chosen, operator, redact, graph)
        except Exception as exc:  # noqa: BLE001 - show the reason, not a trace
            st.session_state.pop("export_file", None)
            st.error(str(exc))
    ready = st.session_state.get("export_file")
    if ready:
        st.download_button(f"Download {ready[0]}", ready[1], file_name=ready[0], key="export_dl")


def _size_section(graph: EvidenceGraph, fmt: str) -> None:
    from graph.export.size import describe_size

    nodes, rels = graph.size()
    members = graph.member_count()
    st.markdown(f"**This export:** {describe_size(graph, fmt)} — {members:,} members, "
                f"{len(graph.shared_values()):,} shared values, {len(graph.hubs):,} hub values collapsed.")
    if graph.folded:
        st.info(f"Folded: {graph.fold_note()}.")
    if graph.left_out:
        st.caption("Left out as no evidence of a link: " + "; ".join(f"{k}: {v:,}" for k, v in graph.left_out.items()))
    with st.expander("Size of every format"):
        st.dataframe(size_rows(graph), hide_index=True, use_container_width=True)


PHASES = 8
"""About how many phases an export reports (the progress bar moves one step per phase)."""


def _run_with_progress(fmt: str, chosen: list[str], operator: str | None, redact: bool,
                       graph: EvidenceGraph | None) -> tuple[str, bytes]:
    """The export, with its phases listed in a status box and a progress bar."""
    bar = st.progress(0.0, text="starting")
    seen: list[str] = []
    with st.status(f"Exporting {FORMATS[fmt]}…", expanded=True) as status:
        def phase(text: str) -> None:
            seen.append(text)
            status.write(text)
            bar.progress(min(0.95, len(seen) / PHASES), text=text)

        result = build_download(fmt, chosen, operator, redact, phase=phase, graph=graph)
        bar.progress(1.0, text="done")
        status.update(label=f"Exported {result[0]} ({len(result[1]):,} bytes)", state="complete", expanded=False)
    return result


def render() -> None:
    st.title("Export")
    _clusters_section()
    st.divider()
    _evidence_section()
