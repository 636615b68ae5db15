"""The case panel of a cluster: status, attribution, merge, split and notes (graph/cases.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from app import format as fmt
from app.plain_text import literal
from app.views import common
from graph import cases
from graph.schema import Label


def _do(action: Any, success: str | Callable[[Any], str], opens: Callable[[Any], str] | None = None) -> None:
    """Run one case action; show its error inline, or rerun with a success message (made
    from the action's result when ``success`` is a function) and, with ``opens``, a button
    that opens the cluster it names."""
    try:
        result = action()
    except cases.CaseError as exc:
        st.error(str(exc))
        return
    common.flash(success(result) if callable(success) else success, cluster=opens(result) if opens else None)
    st.rerun()


def _status(cluster: dict[str, Any]) -> None:
    current = cluster["status"]
    allowed = sorted(cases.TRANSITIONS.get(current, frozenset()))
    st.markdown(f"**Status:** `{current}`")
    if not allowed:
        return
    c1, c2, c3 = st.columns([2, 3, 1])
    new = c1.selectbox("Move to", allowed, key="status_new")
    reason = c2.text_input("Reason", key="status_reason")
    if c3.button("Apply", key="status_apply"):
        _do(lambda: cases.set_status(common.store(), cluster["cluster_id"], str(new), who=common.who(), reason=reason),
            f"Status set to {new}")


def _current_attribution(cluster: dict[str, Any]) -> None:
    """The attribution in force: operator, confidence, who made it and when, and the rationale
    in full (what a reviewer must read before acting on it)."""
    with st.container(border=True):
        c1, c2, c3 = st.columns([3, 1, 2])
        c1.markdown(f"Attributed to **{cluster['attributed_name']}** (`{cluster['attributed_operator']}`)")
        c2.metric("Confidence", f"{cluster['attribution_confidence']:.2f}")
        when = cluster["attributed_at"][:19].replace("T", " ")
        c3.markdown(f"by **{cluster['attributed_by'] or 'unknown'}**  \n{when + ' UTC' if when else 'time not recorded'}")
        if cluster["attribution_rationale"]:
            st.markdown("**Rationale**")
            st.text(cluster["attribution_rationale"])
        else:
            st.caption("No rationale recorded.")


def _attribution(cluster: dict[str, Any]) -> None:
    st.markdown("**Attribution**")
    if cluster["attributed_operator"]:
        _current_attribution(cluster)
    else:
        st.caption("Not attributed yet.")
    if cluster["suggested_operator"] and cluster["suggested_operator"] != cluster["attributed_operator"]:
        st.write(f"Detector suggests **{cluster['suggested_name']}** with confidence {cluster['suggestion_confidence']:.2f}")
        if st.button("Confirm suggestion", key="confirm_suggestion"):
            _do(lambda: cases.confirm_suggestion(common.store(), cluster["cluster_id"], who=common.who()),
                f"Attributed to {cluster['suggested_name']}")
    operators = {n.key: str(n.props.get("name") or n.key) for n in common.store().iter_nodes(Label.OPERATOR)}
    with st.form("attribute_form", clear_on_submit=True):
        choice = st.selectbox("Operator", ["(new operator)", *sorted(operators)],
                              format_func=lambda k: k if k == "(new operator)" else f"{operators[k]} ({k})", key="attr_operator")
        new_name = st.text_input("New operator name (when creating one)", key="attr_new_name")
        confidence = st.slider("Confidence", 0.0, 1.0, 0.7, 0.05, key="attr_confidence")
        rationale = st.text_area("Attribution rationale", key="attr_rationale", placeholder="Why this cluster is this operator: the evidence you relied on")
        submitted = st.form_submit_button("Attribute")
    if submitted:
        existing = None if choice == "(new operator)" else str(choice)
        _do(lambda: cases.attribute(common.store(), cluster["cluster_id"], who=common.who(), confidence=float(confidence),
                                    rationale=rationale, operator_id=existing, operator_name=new_name or None),
            "Attribution recorded")


def _figures_text(figures: dict[str, Any]) -> str:
    """A refigured cluster's headline figures, as a merge or split recorded them."""
    flag = ", flagged" if figures.get("flagged") else ", not flagged"
    return (f"{fmt.short_number(int(figures.get('size') or 0))} accounts, "
            f"{fmt.short_number(int(figures.get('exchanges') or 0))} exchanges, score {float(figures.get('score') or 0.0):.2f}{flag}")


def merged_message(event: cases.AuditEvent) -> str:
    """What a merge tells the analyst: which cluster absorbed which, and its new figures."""
    return f"Merged {event.after['absorbed']} into {event.target.split(':', 1)[1]}: now {_figures_text(event.after)}."


def split_message(event: cases.AuditEvent) -> str:
    """What a split tells the analyst: the new cluster's name and figures, and the parent's."""
    parent = event.target.split(":", 1)[1]
    return (f"Split {len(event.after['moved'])} accounts off {parent} into the new cluster {event.after['new_cluster']}: "
            f"{_figures_text(event.after['new_cluster_figures'])}. {parent} now has {_figures_text(event.after)}.")


def _mergeable(clusters: Mapping[str, dict[str, Any]], current: str) -> list[str]:
    """The clusters that can be merged into ``current``: every other one that has accounts
    (not merged away nor retired)."""
    return [cid for cid, c in clusters.items()
            if cid != current and c["size"] and c["status"] != "merged" and not c["retired"]]


def _merge_split(cluster: dict[str, Any], clusters: Mapping[str, dict[str, Any]], members: list[str]) -> None:
    if cluster["status"] == "merged" or cluster["retired"] or not members:
        st.caption("This cluster has no accounts to merge or split.")
        return
    with st.expander("Merge another cluster into this one"):
        others = _mergeable(clusters, cluster["cluster_id"])
        other = st.selectbox("Cluster to absorb", others, key="merge_other") if others else None
        why = st.text_input("Merge rationale", key="merge_rationale")
        if st.button("Merge", key="merge_apply") and other:
            _do(lambda: cases.merge_clusters(common.store(), cluster["cluster_id"], str(other), who=common.who(), rationale=why,
                                             settings=common.settings()),
                merged_message)
    with st.expander("Split accounts off into a new cluster"):
        chosen = st.multiselect("Accounts", members, key="split_accounts")
        why = st.text_input("Split rationale", key="split_rationale")
        if st.button("Split", key="split_apply"):
            _do(lambda: cases.split_accounts(common.store(), cluster["cluster_id"], chosen, who=common.who(), rationale=why,
                                             settings=common.settings()),
                split_message, opens=lambda e: e.after["new_cluster"])


def _notes(cluster: dict[str, Any]) -> None:
    ref = (Label.CLUSTER.value, cluster["cluster_id"])
    st.markdown("**Notes**")
    for note in cases.notes_about(common.store(), ref):
        # Plain text, not Markdown: a note must not load images or show links (plain_text.py).
        st.caption(literal(f"{str(note.get('at', ''))[:19]} {note.get('who', '')}"))
        st.text(str(note.get("text", "")))
    with st.form("note_form", clear_on_submit=True):
        text = st.text_area("Add a note", key="note_text")
        if st.form_submit_button("Save note"):
            _do(lambda: cases.add_note(common.store(), ref, text, who=common.who()), "Note saved")


def render(cluster: dict[str, Any], clusters: Mapping[str, dict[str, Any]], members: list[str]) -> None:
    """The case panel of ``cluster`` (a row of ``triage.load_clusters``, as every one of
    ``clusters`` by id) whose accounts are ``members``."""
    st.caption(f"Acting as **{common.who()}**; every action below is written to the audit trail.")
    _status(cluster)
    st.divider()
    _attribution(cluster)
    st.divider()
    _merge_split(cluster, clusters, members)
    st.divider()
    _notes(cluster)
    st.divider()
    st.markdown("**Audit trail of this cluster**")
    from app.views import audit

    events = cases.audit_trail(common.store(), target=f"Cluster:{cluster['cluster_id']}")
    audit.events_table([e for e in events if e.target == f"Cluster:{cluster['cluster_id']}"], key="case_audit")
