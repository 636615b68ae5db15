"""Reading the audit trail (graph/investigate/audit.py): typed time bounds and before/after diffs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from graph import cases
from graph.investigate import audit
from graph.stores.embedded import EmbeddedStore

NOW = datetime(2025, 6, 10, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("2025-06-01", False, "2025-06-01T00:00:00.000000Z"),
        ("2025-06-01", True, "2025-06-01T23:59:59.999999Z"),
        ("2025-06-01T14:30", False, "2025-06-01T14:30:00.000000Z"),
        ("2025-06-01 14:30:05", False, "2025-06-01T14:30:05.000000Z"),
        ("2025-06-01T14:30:00Z", False, "2025-06-01T14:30:00.000000Z"),
        ("2025-06-01T16:30:00+02:00", False, "2025-06-01T14:30:00.000000Z"),
        ("today", False, "2025-06-10T00:00:00.000000Z"),
        ("Yesterday", False, "2025-06-09T00:00:00.000000Z"),
        ("yesterday", True, "2025-06-09T23:59:59.999999Z"),
        ("3d", False, "2025-06-07T15:30:00.000000Z"),
        ("12h ago", False, "2025-06-10T03:30:00.000000Z"),
        ("2 weeks ago", False, "2025-05-27T15:30:00.000000Z"),
        ("", False, None),
        ("   ", True, None),
    ],
)
def test_time_bounds_read_as_iso_utc(text: str, end: bool, expected: str | None) -> None:
    assert audit.parse_time_bound(text, end=end, now=NOW) == expected


@pytest.mark.parametrize("text", ["last tuesday", "2025-13-01", "06/01/2025", "3 fortnights"])
def test_unreadable_time_bounds_are_refused_with_what_is_accepted(text: str) -> None:
    with pytest.raises(audit.TimeBoundError) as err:
        audit.parse_time_bound(text, now=NOW)
    assert repr(text) in str(err.value) and "yesterday" in str(err.value) and "ISO date" in str(err.value)


def test_parsed_bounds_filter_events_that_raw_text_would_miss(tmp_path: object) -> None:
    """'yesterday' used to be compared as text and matched no event; parsed, it matches today's."""
    from pathlib import Path

    store = EmbeddedStore(Path(str(tmp_path)) / "embedded")
    store.upsert_nodes("Cluster", [{"cluster_id": "c-1", "status": "open"}])
    cases.set_status(store, "c-1", "in_progress", who="ana", reason="looking")
    assert cases.audit_trail(store, since="yesterday") == []
    since = audit.parse_time_bound("yesterday")
    assert [e.action for e in cases.audit_trail(store, since=since)] == ["status"]


def test_changes_show_only_what_changed() -> None:
    before = {"operator_id": "op-a", "confidence": 0.7, "rationale": "old", "by": "ana"}
    after = {"operator_id": "op-b", "confidence": 0.85, "rationale": "old", "by": "ana", "at": "2025-06-01T10:00:00Z"}
    assert audit.changes(before, after) == [
        {"field": "at", "before": "—", "after": "2025-06-01T10:00:00Z"},
        {"field": "confidence", "before": "0.7", "after": "0.85"},
        {"field": "operator_id", "before": "op-a", "after": "op-b"},
    ]
    assert audit.changes({"x": 1}, {}) == [{"field": "x", "before": "1", "after": "—"}]
    assert audit.changes({"members": ["a", "b"]}, {"members": ["a"]}) == [{"field": "members", "before": '["a", "b"]', "after": '["a"]'}]
    summary = audit.change_summary({"status": "open"}, {"status": "in_progress", "reason": "r" * 200}, width=20)
    assert summary == "reason: " + "r" * 19 + "…; status: open → in_progress"
    assert audit.change_summary({}, {}) == "no change recorded"
    assert audit.change_summary(before, after) == "confidence: 0.7 → 0.85; operator_id: op-a → op-b"
