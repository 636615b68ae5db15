"""The audit trail: every analyst decision, filterable by investigator, action, target, time,
each shown with what it changed (before → after per field) rather than raw JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from app.plain_text import literal
from app.views import common, links
from graph import cases
from graph.investigate import audit

DETAILED_EVENTS = 20


def event_rows(events: Sequence[cases.AuditEvent]) -> list[dict[str, Any]]:
    """Table rows: when, who, what, on which target (a link), and the changes in one line."""
    return [
        {"at": e.at[:19].replace("T", " "), "who": e.who, "action": e.action, "target": e.target,
         "changes": audit.change_summary(e.before, e.after), "event_id": e.event_id}
        for e in events
    ]


def events_table(events: Sequence[cases.AuditEvent], key: str) -> None:
    """The events as a table (targets link to their cluster or pivot)."""
    links.dataframe(event_rows(events), key=key, column_config={
        "at": st.column_config.TextColumn("at (UTC)", width=150),
        "changes": st.column_config.TextColumn("changes", width="large"),
        "event_id": st.column_config.TextColumn("event", width="small"),
    })


def event_details(events: Sequence[cases.AuditEvent], limit: int = DETAILED_EVENTS) -> None:
    """The newest events one by one, each a before/after table of the fields it changed."""
    for e in events[:limit]:
        with st.expander(f"{e.at[:19].replace('T', ' ')} · {literal(e.who)} · {e.action} · {literal(e.target)}"):
            rows = audit.changes(e.before, e.after)
            if rows:
                st.dataframe(rows, hide_index=True, column_config={
                    "field": st.column_config.TextColumn("field", width="small"),
                    "before": st.column_config.TextColumn("before", width="medium"),
                    "after": st.column_config.TextColumn("after", width="large"),
                })
            else:
                st.caption("No change recorded.")
    if len(events) > limit:
        st.caption(f"The {limit} newest events are shown in detail; the table above lists all {len(events)}.")


def _bound(text: str, *, end: bool, name: str) -> tuple[bool, str | None]:
    """(ok, ISO text) for one typed bound; an unreadable one is reported, never silently applied."""
    try:
        return True, audit.parse_time_bound(text, end=end)
    except audit.TimeBoundError as exc:
        st.error(f"{name}: {exc}")
        return False, None


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
    since = c4.text_input("Since", key="audit_since", placeholder="2025-04-22, yesterday, 3d", help=f"Accepts {audit.FORMATS_HELP}.")
    until = c5.text_input("Until", key="audit_until", placeholder="2025-06-05T23:59, today", help=f"Accepts {audit.FORMATS_HELP}.")
    ok_since, since_iso = _bound(since, end=False, name="Since")
    ok_until, until_iso = _bound(until, end=True, name="Until")
    if not (ok_since and ok_until):
        return
    shown = cases.audit_trail(
        common.store(),
        who=None if who == "(any)" else str(who),
        action=None if action == "(any)" else str(action),
        target=target or None,
        since=since_iso,
        until=until_iso,
    )
    window = " ".join(x for x in (f"since {since_iso[:19]}" if since_iso else "", f"until {until_iso[:19]}" if until_iso else "") if x)
    st.caption(f"{len(shown)} of {len(events)} events" + (f" ({window} UTC)" if window else ""))
    if not shown:
        return
    events_table(shown, key="audit_table")
    event_details(shown)
