"""Property values as the schema stores them: times as ISO-8601 UTC text (which sorts as text),
and lists and maps (reasons, indicators, profiles) as JSON text, because a Neo4j property cannot
hold a map. One copy of each conversion, for every floor of graph/.

>>> epoch("1970-01-01T00:01:00Z")
60.0
>>> loads('{"a": 1}', {}), loads(None, []), loads("not json", {})
({'a': 1}, [], {})
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def loads(raw: Any, default: Any) -> Any:
    """Parse a JSON property, tolerating values already decoded or missing."""
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return default


def epoch(ts: Any) -> float | None:
    """Seconds since 1970 of an ISO-8601 time (``Z`` or an offset; naive means UTC), or None
    when missing or unparseable."""
    if not ts:
        return None
    try:
        parsed = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def now_iso(*, microseconds: bool = False) -> str:
    """The current time as the schema's ISO-8601 UTC text; ``microseconds`` where events of one
    second must still sort in order (the audit trail)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ" if microseconds else "%Y-%m-%dT%H:%M:%SZ")
