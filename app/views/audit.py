"""The audit trail: every analyst decision, filterable by investigator, action, target, time."""

from __future__ import annotations

import streamlit as st

from app.plain_text import literal
from app.views import common
from graph import cases


def render() -> None:
    st.title("Audit trail")
    events = cases.audit_trail(common.store())
    if not events:
        st.info("No analyst action recorded yet.")
        return
    c1, c2, c3, c4, c5 = st.columns(5)
    who = c1.selectbox("Investigator", ["(any)", *sorted({e.who for e in events})], key="audit_who")
    action = c2.selectbox("Action", ["(any)", *sorted({e.action for e in events})], key="audit_action")
    target = c3.text_input("Target contains", key="audit_target")
    since = c4.text_input("Since (ISO time)", key="audit_since", placeholder="2025-04-22")
    until = c5.text_input("Until (ISO time)", key="audit_until", placeholder="2025-06-05T23:59")
    shown = cases.audit_trail(
        common.store(),
        who=None if who == "(any)" else str(who),
        action=None if action == "(any)" else str(action),
        target=target or None,
        since=since or None,
        until=until or None,
    )
    st.caption(f"{len(shown)} of {len(events)} events")
    for e in shown[:5]:
        detail = e.after.get("operator_id") or e.after.get("status") or e.after.get("text") or ""
        # Names, targets and note text are shown literally (a note may hold Markdown images).
        st.markdown(f"- `{e.at[:19]}` **{literal(e.who)}** {e.action} {literal(e.target)} {literal(str(detail))}")
    st.dataframe([e.row() for e in shown], hide_index=True, key="audit_table")
