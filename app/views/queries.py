"""Saved queries: pick a built-in or team query, fill a form generated from its typed
parameters, see the rows as a table and as a graph, open the nodes in the cluster view, and
save a variant as a team query (vetted as read-only Cypher, audited under the signed-in
investigator; replacing a colleague's query needs the explicit "overwrite" box)."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from app.views import common
from graph.queries.library import Parameter, QueryError, QuerySpec
from graph.store import NodeKey

GRAPH_NODE_LIMIT = 300


def widget_value(param: Parameter, key: str) -> Any:
    """One form widget per parameter type; returns the raw value (typed again by the runner)."""
    start = param.example if param.required else param.default
    label = f"{param.name} ({param.type})"
    help_text = param.description or None
    if param.type == "bool":
        return st.checkbox(label, value=bool(start), key=key, help=help_text)
    if param.type == "int":
        return st.number_input(label, value=int(start or 0), step=1, key=key, help=help_text,
                               min_value=int(param.minimum) if param.minimum is not None else None,
                               max_value=int(param.maximum) if param.maximum is not None else None)
    if param.type == "float":
        return st.number_input(label, value=float(start or 0.0), key=key, help=help_text, format="%.4f")
    if param.type == "list[string]":
        text = st.text_input(label, value=", ".join(start or []), key=key, help=(help_text or "") + " Comma-separated.")
        return [part.strip() for part in text.split(",") if part.strip()]
    placeholder = "2025-04-22T00:00:00Z" if param.type == "datetime" else ""
    return st.text_input(label, value=str(start or ""), key=key, help=help_text, placeholder=placeholder)


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def _graph(refs: list[NodeKey]) -> None:
    from graph.export.html import render_html
    from graph.export.selection import EvidenceGraph

    sub = common.store().subgraph(refs[:GRAPH_NODE_LIMIT])
    if not sub.nodes:
        return
    page = render_html(EvidenceGraph(nodes=sub.nodes, relationships=sub.relationships))
    st.components.v1.html(page, height=650, scrolling=False)
    if len(refs) > GRAPH_NODE_LIMIT:
        st.caption(f"Graph shows the first {GRAPH_NODE_LIMIT} of {len(refs)} nodes.")


def _open_in_cluster_view(refs: list[NodeKey]) -> None:
    from app import canvas

    st.session_state["open_in_cluster_view"] = [canvas.node_id(r) for r in refs]
    pages = st.session_state.get("pages") or {}
    if "cluster" in pages:
        st.switch_page(pages["cluster"])
    else:
        st.success(f"{len(refs)} nodes ready for the cluster view.")


def _save_form(spec: QuerySpec) -> None:
    from graph.queries.team import save_team_query

    with st.expander("Save as team query"), st.form("save_team_query"):
        new_id = st.text_input("Id (lower-case letters, digits, underscores)", value=f"team_{spec.id}"[:64])
        name = st.text_input("Name", value=spec.name)
        description = st.text_area("Description", value=spec.description)
        cypher = st.text_area("Cypher (read-only; runs on Neo4j)", value=spec.cypher, height=200)
        force = st.checkbox("Overwrite a colleague's query with this id (recorded in the audit trail)",
                            key="save_team_query_force")
        if st.form_submit_button("Save"):
            raw = {**spec.to_dict(), "id": new_id, "name": name, "description": description, "cypher": cypher,
                   "owner": common.who(), "revision": 1}
            if spec.builtin:
                raw["based_on"] = spec.id
            try:
                saved = save_team_query(common.store(), raw, who=common.who(), force=force)
            except QueryError as exc:
                st.error(str(exc))
            else:
                st.success(f"Saved team query {saved.id} (revision {saved.revision}).")


def render() -> None:
    import yaml

    from graph.queries.runner import all_queries, run_spec

    st.title("Saved queries")
    specs = all_queries(common.store())
    ids = list(specs)
    chosen = st.selectbox(
        "Query", ids, key="query_pick",
        format_func=lambda i: f"[{specs[i].category}] {specs[i].name}" + ("" if specs[i].builtin else f" — team, {specs[i].owner}"),
    )
    if chosen is None:
        return
    spec = specs[chosen]
    st.caption(spec.description)
    with st.expander("Cypher"):
        st.code(spec.cypher, language="cypher")
        if not spec.builtin:
            st.download_button("Download as YAML", yaml.safe_dump(spec.to_dict(), sort_keys=False),
                               file_name=f"{spec.id}.yaml", key="query_yaml")
    with st.form(f"params_{spec.id}"):
        values = {p.name: widget_value(p, f"param_{spec.id}_{p.name}") for p in spec.parameters}
        submitted = st.form_submit_button("Run")
    if submitted:
        settings = common.settings()
        try:
            st.session_state["query_result"] = run_spec(
                common.store(), spec, values,
                max_rows=int(settings["user_query_row_limit"]), timeout=float(settings["user_query_timeout_s"]),
            )
        except Exception as exc:  # noqa: BLE001 - show the store's or validator's message, not a trace
            st.session_state.pop("query_result", None)
            st.error(str(exc))
    result = st.session_state.get("query_result")
    if result is not None and result.query_id == spec.id:
        st.caption(f"{len(result.rows)} rows ({result.engine}){' — truncated' if result.truncated else ''}")
        if result.truncated:
            st.warning(result.truncation_note().capitalize())
        st.dataframe([{c: _cell(r.get(c)) for c in result.columns} for r in result.rows], hide_index=True)
        refs = result.node_refs()
        if refs:
            if st.button(f"Open {len(refs)} nodes in the cluster view", key="query_open"):
                _open_in_cluster_view(refs)
            _graph(refs)
    _save_form(spec)
