"""What every page shares: settings, the cached store, the investigator's name, the selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from graph.settings import Settings
from graph.store import GraphStore


def settings() -> Settings:
    """Settings from the environment the ``ui`` command exported."""
    return Settings()


@st.cache_resource(show_spinner=False)
def _open(workspace: str, store_uri: str) -> GraphStore:
    from graph.stores import open_store

    return open_store(Settings({"workspace": workspace, "store": store_uri}))


def store() -> GraphStore:
    """The one store for this workspace and URI, shared by every session of the server."""
    s = settings()
    return _open(str(s.workspace), str(s["store"]))


def workspace() -> Path:
    return settings().workspace


def who() -> str:
    """The investigator recorded in audit events (set by the auth gate in main.py)."""
    return str(st.session_state.get("investigator") or "analyst")


def selected_cluster() -> str | None:
    """The cluster under investigation: the one the address names (``?cluster=``, set by a
    link to a cluster, kept on a reload), else the session's. A link to another cluster than
    the session's becomes the session's selection, so the previous cluster's canvas
    selection is dropped with it."""
    asked = st.query_params.get("cluster")
    if asked and asked != st.session_state.get("cluster_id"):
        select_cluster(str(asked))
    cid = st.session_state.get("cluster_id")
    return str(cid) if cid else None


def select_cluster(cluster_id: str) -> None:
    if st.session_state.get("cluster_id") != cluster_id:
        for key in ("graph_state", "selected_edge", "selected_node", "graph_event_ts"):
            st.session_state.pop(key, None)
    st.session_state["cluster_id"] = cluster_id
    st.query_params["cluster"] = cluster_id


def flash(message: str, kind: str = "success", cluster: str | None = None) -> None:
    """A message shown once on the next run (after st.rerun); with ``cluster``, beside a
    button that opens that cluster."""
    st.session_state["flash"] = (kind, message, cluster)


def show_flash() -> None:
    """Render the pending message in a container that always exists, so the elements after
    it keep their place (a moving component would be remounted and lose its layout)."""
    slot = st.container()
    item: Any = st.session_state.pop("flash", None)
    if item:
        kind, message, cluster = (*item, None)[:3]
        getattr(slot, kind, slot.info)(message)
        if cluster:
            slot.button(f"Open cluster {cluster}", key=f"flash_open_{cluster}", on_click=select_cluster, args=(cluster,))
