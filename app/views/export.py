"""Export: the cluster table and evidence files (graph formats, STIX, HTML, the report with
its manifest), optionally redacted, offered as downloads."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import streamlit as st

from app.views import common

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


def build_download(fmt: str, clusters: list[str], operator: str | None, redact: bool) -> tuple[str, bytes]:
    """Run the export in a scratch directory; the file name and bytes to offer."""
    from graph.export.run import export_graph

    s = common.settings()
    with tempfile.TemporaryDirectory(prefix="sybilscope-export-") as tmp:
        target = Path(tmp) / ("evidence" if fmt in ("report", "csv", "parquet") else FILE_NAMES[fmt])
        export_graph(common.store(), target, fmt, cluster_ids=clusters, operator_id=operator, redact=redact,
                     workspace=s.workspace, degree_cap=int(s["ui_degree_cap"]))
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
    redact = st.checkbox("Redact (salted hashes for identifiers; no e-mail or billing data)", key="export_redact")
    if st.button("Prepare export", key="export_go", disabled=(by == "clusters" and not chosen)):
        try:
            with st.spinner("Exporting…"):
                st.session_state["export_file"] = build_download(str(fmt), chosen, operator, redact)
        except Exception as exc:  # noqa: BLE001 - show the reason, not a trace
            st.session_state.pop("export_file", None)
            st.error(str(exc))
    ready = st.session_state.get("export_file")
    if ready:
        st.download_button(f"Download {ready[0]}", ready[1], file_name=ready[0], key="export_dl")


def render() -> None:
    st.title("Export")
    _clusters_section()
    st.divider()
    _evidence_section()
