"""Triage: the ranked queue of clusters, filtered and sorted, with an activity sparkline."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import format as fmt
from app.views import common, links
from graph.investigate import triage


@st.cache_data(ttl=120, show_spinner=False)
def _activity(workspace: str, member_of: dict[str, str]) -> dict[str, list[int]]:
    from pathlib import Path

    return triage.daily_activity(Path(workspace), member_of, days=60)


# The columns an investigator reads first come first, so operator and suggestion are in view.
COLUMN_ORDER = ("cluster_id", "score", "flagged", "size", "tokens", "exchanges", "activity", "operator", "suggested",
                "status", "span_days", "top_indicators", "capabilities", "first_seen", "last_seen")


def _filters(clusters: list[dict[str, Any]]) -> dict[str, Any]:
    any_flagged = any(c["flagged"] for c in clusters)
    with st.sidebar:
        st.subheader("Triage filters")
        statuses = st.multiselect(
            "Status", ["open", "in_progress", "confirmed", "dismissed", "merged"],
            default=["open", "in_progress", "confirmed"], key="f_status",
        )
        min_score = st.slider("Minimum score", 0.0, 1.0, 0.0, 0.05, key="f_score")
        # The queue opens on what detection flagged; the rest is one toggle away.
        flagged = st.toggle("Flagged only", value=any_flagged, key="f_flagged",
                            help="Detection's flagged clusters; turn off to see every cluster (flagged ones stay on top).")
        retired = st.checkbox("Include retired clusters", value=False, key="f_retired",
                              help="Clusters an analyst touched that a later detection run no longer finds.")
        operator = st.selectbox("Operator", ["(any)", *triage.operator_choices(clusters)], key="f_operator")
        signal = st.selectbox("Signal", ["(any)", *triage.signal_choices(clusters)], key="f_signal")
        sort_by = st.selectbox("Sort by", ["score", "size", "exchanges", "tokens", "span_days", "last_seen"], key="f_sort")
    return {
        "statuses": statuses,
        "min_score": min_score,
        "flagged_only": flagged,
        "include_retired": retired,
        "operator": None if operator == "(any)" else operator,
        "signal": None if signal == "(any)" else signal,
        "sort_by": sort_by,
    }


def render() -> None:
    st.title("Triage")
    common.show_flash()
    store = common.store()
    clusters = triage.load_clusters(store)
    if not clusters:
        st.info("No clusters yet: run `sybilscope load BUNDLE` and `sybilscope detect` on this workspace.")
        return
    chosen = _filters(clusters)
    activity = _activity(str(common.workspace()), triage.membership(store))
    rows = triage.triage_rows(clusters, activity=activity, **chosen)
    flagged = sum(1 for c in clusters if c["flagged"])
    a, b, c = st.columns(3)
    a.metric("Clusters", fmt.short_number(len(clusters)), help=f"{len(clusters):,}")
    b.metric("Flagged", fmt.short_number(flagged), help=f"{flagged:,}")
    c.metric("Shown", fmt.short_number(len(rows)), help=f"{len(rows):,}")
    if chosen["flagged_only"]:
        st.caption(f"Showing flagged clusters only; turn off **Flagged only** in the sidebar to see all {len(clusters):,}.")
    hubs = triage.suppressed_hubs(common.workspace())
    if hubs:
        with st.expander(f"{len(hubs)} hub values suppressed as evidence (shared too widely to mean anything)"):
            links.dataframe(hubs, value_kind_column="label", value_column="key", height=250, key="triage_hubs",
                            column_order=["label", "key", "accounts", "why", "family"])
    if not rows:
        st.warning("No cluster matches the filters.")
        return
    peak = triage.activity_scale(rows)
    event = st.dataframe(
        rows,
        key="triage_table",
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        column_order=COLUMN_ORDER,
        column_config={
            "cluster_id": st.column_config.TextColumn("cluster", width=125, pinned=True),
            "score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.2f", width=80),
            "flagged": st.column_config.CheckboxColumn("flag", width=40),
            "size": st.column_config.NumberColumn("accounts", format="compact", width=70),
            "tokens": st.column_config.NumberColumn("tokens", format="compact", width=65),
            "exchanges": st.column_config.NumberColumn("exchanges", format="compact", width=80),
            "activity": st.column_config.LineChartColumn(
                "activity", y_min=0, y_max=max(peak, 1), width=140,
                help=f"Exchanges per day, every cluster on one scale (0 to {fmt.short_number(peak)} a day)"),
            "operator": st.column_config.TextColumn(
                "operator", width=330, help="The analyst's attribution: operator (confidence) by whom, when: rationale"),
            "suggested": st.column_config.TextColumn("suggested", width=200, help="The detector's suggestion (confidence)"),
            "status": st.column_config.TextColumn("status", width=90),
            "span_days": st.column_config.NumberColumn("days", format="%.0f", width=50),
        },
    )
    picked = list(event.selection.rows) if event is not None and hasattr(event, "selection") else []
    if picked and picked != st.session_state.get("_triage_last_pick"):
        # A clicked row opens its cluster once; the selection lingers, so remember it.
        st.session_state["_triage_last_pick"] = picked
        common.select_cluster(str(rows[picked[0]]["cluster_id"]))
        st.switch_page(st.session_state["pages"]["cluster"])
    ids = [r["cluster_id"] for r in rows]
    current = common.selected_cluster()
    col1, col2 = st.columns([3, 1])
    target = col1.selectbox("Cluster", ids, index=ids.index(current) if current in ids else 0, key="triage_pick")
    if col2.button("Open cluster", key="open_cluster", type="primary"):
        common.select_cluster(str(target))
        st.switch_page(st.session_state["pages"]["cluster"])
