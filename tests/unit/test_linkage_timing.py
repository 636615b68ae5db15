"""Timing evidence: lock-step co-activity from staged exchanges, linear on big groups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from graph.linkage.evidence import Evidence
from graph.linkage.timing import (
    candidate_pairs,
    link_timing,
    read_buckets,
    read_model_onsets,
    signatures,
)
from graph.staging import table_dir

START = datetime(2025, 4, 22, tzinfo=UTC)


def _write_exchanges(workspace: Path, rows: list[tuple[str, datetime, str]], column: str = "model") -> None:
    """Stage exchanges (account, ts, and ``column``: the model or the template id)."""
    directory = table_dir(workspace, "exchanges")
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table({
            "account_id": [r[0] for r in rows],
            "ts": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
            column: [r[2] for r in rows],
        }),
        directory / "b-0.parquet",
    )


def _world(workspace: Path) -> None:
    rng = np.random.default_rng(3)
    rows = []
    bursts = [START + timedelta(hours=8 * k) for k in range(40)]
    for i in range(8):  # lock-step operator accounts: every burst, switch model at once
        for k, b in enumerate(bursts):
            model = "new" if k >= 30 else "old"
            rows.append((f"op{i}", b + timedelta(minutes=int(rng.integers(0, 50))), model))
    for i in range(10):  # humans: a few random hours over two months
        for h in rng.choice(24 * 60, size=20, replace=False):
            rows.append((f"hu{i}", START + timedelta(hours=int(h)), "old" if h < 700 else "new"))
    _write_exchanges(workspace, rows)


def test_lockstep_accounts_link_and_humans_do_not(tmp_path: Path) -> None:
    _world(tmp_path)
    ev = Evidence()
    link_timing(ev, tmp_path, cap=50)
    op_pairs = [p for p in ev.pairs() if p[0].startswith("op") and p[1].startswith("op")]
    assert len(op_pairs) == 28  # every pair of the 8 operator accounts
    assert not [p for p in ev.pairs() if "hu" in p[0] + p[1]]
    reason = ev.reasons(op_pairs[0])[0].to_json()
    assert reason["family"] == "timing" and reason["kind"] == "coactivity" and reason["jaccard"] >= 0.9


def test_model_onsets_find_the_newest_model(tmp_path: Path) -> None:
    _world(tmp_path)
    onsets = read_model_onsets(tmp_path)
    expected = (START + timedelta(hours=8 * 30)).timestamp()
    assert all(abs(onsets[f"op{i}"] - expected) < 3600 for i in range(8))


def test_big_lockstep_groups_give_a_linear_number_of_candidates() -> None:
    buckets = {f"a{i:04d}": np.arange(100, dtype=np.int64) for i in range(400)}
    pairs = candidate_pairs(signatures(buckets), cap=50)
    assert len(pairs) <= 400 * 6 * 8
    # still one connected group
    from graph.clustering import components

    assert [len(g) for g in components([], sorted(pairs))] == [400]


def test_without_staging_no_timing_evidence(tmp_path: Path) -> None:
    ev = Evidence()
    assert read_buckets(tmp_path) == {} and link_timing(ev, tmp_path, cap=50) == 0 and len(ev) == 0
    assert read_model_onsets(None) == {}


def test_signature_agreement_estimates_jaccard() -> None:
    # consecutive bucket numbers: a monotone hash would make every minimum the first bucket
    a = np.arange(0, 300, dtype=np.int64)
    b = np.arange(100, 400, dtype=np.int64)
    sigs = signatures({"a": a, "b": b, "c": np.arange(1000, 1300, dtype=np.int64)})
    assert 0.2 <= float(np.mean(sigs["a"] == sigs["b"])) <= 0.8  # true Jaccard 0.5
    assert float(np.mean(sigs["a"] == sigs["c"])) == 0.0


def test_other_operators_bursting_at_the_same_hours_are_not_linked(tmp_path: Path) -> None:
    """Keys are (time bucket, template): two scripts in the same bursts stay apart."""
    rows = []
    for k in range(40):
        burst = START + timedelta(hours=8 * k)
        for i in range(6):
            rows.append((f"a{i}", burst + timedelta(minutes=i), "script-a"))
            rows.append((f"b{i}", burst + timedelta(minutes=i), "script-b"))
    _write_exchanges(tmp_path, rows, "template_id")
    ev = Evidence()
    link_timing(ev, tmp_path, cap=50)
    pairs = set(ev.pairs())
    assert ("a0", "a1") in pairs and ("b0", "b1") in pairs
    assert not [p for p in pairs if p[0][0] != p[1][0]]


def test_minute_regularity_tells_cron_from_bursts(tmp_path: Path) -> None:
    from graph.linkage.timing import read_minute_regularity

    rows = [("cron", START + timedelta(hours=h, minutes=5, seconds=h % 20), "m") for h in range(100)]
    rng = np.random.default_rng(1)
    rows += [("burst", START + timedelta(hours=h, minutes=int(rng.integers(0, 60))), "m") for h in range(100)]
    _write_exchanges(tmp_path, rows)
    reg = read_minute_regularity(tmp_path)
    assert reg["cron"] == (100, 100)
    assert reg["burst"][0] < 10 and reg["burst"][1] == 100


def test_withheld_prompts_do_not_dilute_lockstep(tmp_path: Path) -> None:
    """A world that withholds most texts: each burst, every operator account sends the
    script once readable and several times as a one-off hash. Counting the hashes as slots
    would put the Jaccard under the minimum; the readable sample still shows the lock-step."""
    rows = []
    for k in range(40):
        burst = START + timedelta(hours=8 * k)
        for i in range(6):
            rows.append((f"op{i}", burst + timedelta(minutes=i), "script"))
            rows += [(f"op{i}", burst + timedelta(minutes=10 + j), f"h:{i}-{k}-{j}") for j in range(19)]
    _write_exchanges(tmp_path, rows, "template_id")
    buckets = read_buckets(tmp_path)
    assert all(len(keys) == 40 for keys in buckets.values())  # one readable slot per burst
    ev = Evidence()
    link_timing(ev, tmp_path, cap=50)
    assert len(ev.pairs()) == 15 and ev.reasons(("op0", "op1"))[0].to_json()["jaccard"] == 1.0
    assert buckets.keyed_by_template and ev.reasons(("op0", "op1"))[0].to_json()["slot"] == "3h bucket x prompt template"


def test_all_prompts_withheld_times_the_buckets_alone(tmp_path: Path) -> None:
    rows = []
    for k in range(40):
        burst = START + timedelta(hours=8 * k)
        rows += [(f"op{i}", burst + timedelta(minutes=i), f"h:{i}-{k}") for i in range(4)]
    _write_exchanges(tmp_path, rows, "template_id")
    assert all(len(keys) == 40 for keys in read_buckets(tmp_path).values())
    ev = Evidence()
    link_timing(ev, tmp_path, cap=50)
    assert len(ev.pairs()) == 6
    # the reason says what was compared: the hours alone, no template
    assert ev.reasons(("op0", "op1"))[0].to_json()["slot"] == "3h bucket"
