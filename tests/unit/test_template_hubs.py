"""The graph writer's choice of hub templates (loaders.graph_write.template_senders_sql): a kept
template sent by more accounts than the threshold has its uses staged, one at or under it has
them written, and every kept template gets its sender count, exchanges and first/last time."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from graph.staging import connect
from loaders.graph_csv import CsvGraphSink
from loaders.graph_write import GraphWriter, template_senders_sql

# (account, template, exchanges, first day, last day): t-hub has three senders, t-pair two,
# t-one one (not kept: it links nobody), t-named one but an indicator names it.
SENT = [
    ("a1", "t-hub", 2, 1, 3), ("a2", "t-hub", 1, 2, 2), ("a3", "t-hub", 5, 4, 9),
    ("a1", "t-pair", 1, 1, 1), ("a4", "t-pair", 3, 5, 6),
    ("a5", "t-one", 1, 1, 1),
    ("a6", "t-named", 1, 7, 7),
]
KEPT = ["t-hub", "t-pair", "t-named"]


def _senders(hub_senders: int) -> dict[str, tuple[int, int, datetime, datetime, bool]]:
    with connect() as con:
        con.execute("CREATE TEMP TABLE sent (account_id VARCHAR, template_id VARCHAR, n BIGINT, f TIMESTAMP, l TIMESTAMP)")
        con.executemany("INSERT INTO sent VALUES (?, ?, ?, ?, ?)",
                        [(a, t, n, datetime(2025, 4, f), datetime(2025, 4, last)) for a, t, n, f, last in SENT])
        con.execute("CREATE TEMP TABLE keep_tpl (template_id VARCHAR)")
        con.executemany("INSERT INTO keep_tpl VALUES (?)", [(t,) for t in KEPT])
        con.execute(template_senders_sql(hub_senders))
        rows = con.execute("SELECT template_id, accounts, exchanges, f, l, uses_staged FROM tpl_senders").fetchall()
    return {str(t): (int(a), int(n), f, last, bool(s)) for t, a, n, f, last, s in rows}


def test_more_senders_than_the_threshold_stage_the_uses() -> None:
    got = _senders(2)
    assert set(got) == set(KEPT)
    assert got["t-hub"] == (3, 8, datetime(2025, 4, 1), datetime(2025, 4, 9), True)
    assert got["t-pair"] == (2, 4, datetime(2025, 4, 1), datetime(2025, 4, 6), False)  # at the threshold: written
    assert got["t-named"] == (1, 1, datetime(2025, 4, 7), datetime(2025, 4, 7), False)


def test_the_threshold_moves_the_line() -> None:
    assert {t for t, row in _senders(1).items() if row[4]} == {"t-hub", "t-pair"}
    assert {t for t, row in _senders(3).items() if row[4]} == set()
    assert {t for t, row in _senders(0).items() if row[4]} == set(KEPT)


def test_a_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="graph_template_hub_senders"):
        template_senders_sql(-1)


def test_the_writer_takes_the_setting_unless_told(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ws = tmp_path
    monkeypatch.setenv("SYBILSCOPE_GRAPH_TEMPLATE_HUB_SENDERS", "7")
    assert GraphWriter(ws, CsvGraphSink(ws / "a")).template_hub_senders == 7
    assert GraphWriter(ws, CsvGraphSink(ws / "b"), template_hub_senders=3).template_hub_senders == 3
    monkeypatch.delenv("SYBILSCOPE_GRAPH_TEMPLATE_HUB_SENDERS")
    assert GraphWriter(ws, CsvGraphSink(ws / "c")).template_hub_senders == 200
