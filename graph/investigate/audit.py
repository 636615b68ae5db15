"""Reading the audit trail: what an event changed (a diff of its before/after, not raw JSON),
and the time bounds an investigator types into its filter.

Audit events (graph/cases.py) store ``before`` and ``after`` as JSON of the properties an action
changed; a reviewer wants "status: open → in_progress", with the long rationale in full. Time
bounds are compared as the schema's ISO text, so anything typed is turned into that text first,
and what cannot be read is refused with a message rather than matching nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

# ISO text as events store it: sorts like time.
_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"
_RELATIVE = re.compile(r"^(\d+)\s*(m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)(\s+ago)?$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
FORMATS_HELP = "an ISO date or time (2025-06-01, 2025-06-01T14:30, with an offset or Z), today, yesterday, or an age such as 3d or 12h ago"


class TimeBoundError(ValueError):
    """A time bound that cannot be read; the message says what was typed and what is accepted."""


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime(_ISO)


def parse_time_bound(text: str | None, *, end: bool = False, now: datetime | None = None) -> str | None:
    """A typed time bound as ISO UTC text (None when blank). A bare date is its whole day: its
    first instant as a lower bound, its last as an upper (``end``). A time without an offset is
    UTC. ``today``/``yesterday`` are UTC days; ``3d``, ``12h ago``, ``2 weeks`` count back from
    ``now``. Anything else raises TimeBoundError naming the text and the accepted forms."""
    if text is None or not text.strip():
        return None
    t = text.strip().lower()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day: datetime | None = None
    if t in ("today", "now"):
        if t == "now":
            return _iso(now)
        day = today
    elif t == "yesterday":
        day = today - timedelta(days=1)
    if day is not None:
        return _iso(day + timedelta(days=1) - timedelta(microseconds=1) if end else day)
    rel = _RELATIVE.match(t)
    if rel:
        seconds = int(rel.group(1)) * _UNIT_SECONDS[rel.group(2)[0]]
        return _iso(now - timedelta(seconds=seconds))
    raw = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            start = datetime.fromisoformat(raw).replace(tzinfo=UTC)
            return _iso(start + timedelta(days=1) - timedelta(microseconds=1) if end else start)
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise TimeBoundError(f"cannot read {text.strip()!r} as a time: use {FORMATS_HELP}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _iso(parsed)


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, str]]:
    """The keys an event changed, one row each {field, before, after} (``—`` for absent),
    in key order; unchanged keys left out. A key only in ``after`` was set, only in
    ``before`` was removed."""
    rows = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if key in before and key in after and old == new:
            continue
        rows.append({"field": key, "before": _show(old) if key in before else "—", "after": _show(new) if key in after else "—"})
    return rows


# Fields an action stamps with its own time and investigator: the event's columns say them already.
_EVENT_OWN = frozenset({"at", "by"})


def change_summary(before: Mapping[str, Any], after: Mapping[str, Any], width: int = 80) -> str:
    """The changes in one line for a table cell: ``status: open → in_progress; rationale: …``,
    each value cut to ``width`` characters; the action's own time and investigator (``at``,
    ``by``) left to the event's columns."""
    def cut(text: str) -> str:
        return text if len(text) <= width else text[: width - 1].rstrip() + "…"

    parts = []
    for row in changes(before, after):
        if row["field"] in _EVENT_OWN:
            continue
        if row["before"] == "—":
            parts.append(f"{row['field']}: {cut(row['after'])}")
        else:
            parts.append(f"{row['field']}: {cut(row['before'])} → {cut(row['after'])}")
    return "; ".join(parts) or "no change recorded"
