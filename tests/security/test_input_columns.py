"""Input columns named like the loader's own: ignored, reported, never mixed into the checks.

Observed before: a column named ``_row`` gave "loaded 3, quarantined 1" with no account in the
graph, and a ``_reason`` column quarantined valid rows with an empty reason. input-bundle.md
says extra columns are "kept as properties where cheap, otherwise ignored, never an error", so
such a column is not refused: like every extra column it is ignored (only the contract's
columns are read) and the load report lists it per file under ``extra_columns``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.security.input_loads import assert_files_balance, load, quarantine, staged_rows

# every name the reader, the checks, the stager and the graph writer give their own columns
INTERNAL = ["_row", "_error", "_raw", "_file", "_bundle", "_reason", "_digest", "_seq",
            "_d_email_hash", "_v_account_id", "_t_created_at", "_vals", "rn"]


def _accounts_csv(extra: list[str]) -> str:
    header = "account_id,created_at," + ",".join(extra)
    junk = ",".join("x" for _ in extra)
    return (
        header + "\n"
        + f"acct-1,2025-04-22T10:00:00Z,{junk}\n"
        + f"acct-2,2025-04-22T10:00:00Z,{junk}\n"
        + f"acct-3,not a time,{junk}\n"
        + f"acct-4,2025-04-22T10:00:00Z,{junk}\n"
    )


def _check(tmp_path: Path, files: dict[str, str | bytes], rel: str, extra: list[str]) -> None:
    report, store, ws = load(tmp_path, files)
    assert_files_balance(report)
    counts = report.files[rel]
    assert (counts["read"], counts["loaded"], counts["quarantined"], counts["duplicates"]) == (4, 3, 1, 0)
    assert counts["extra_columns"] == extra
    assert {n.key for n in store.iter_nodes("Account")} == {"acct-1", "acct-2", "acct-4"}
    (bad,) = quarantine(report)
    assert (bad["file"], bad["row"], bad["reason"]) == (rel, 3, "unparseable timestamp in created_at")
    staged = staged_rows(ws, "accounts")
    assert sorted((r["account_id"], r["_row"], r["_file"], r["_bundle"]) for r in staged) == [
        ("acct-1", 1, rel, report.bundle_id), ("acct-2", 2, rel, report.bundle_id), ("acct-4", 4, rel, report.bundle_id)]
    assert not set(extra) - {"_row", "_file", "_bundle"} & set(staged[0])


def test_internal_names_in_a_csv_are_ignored_and_reported(tmp_path: Path) -> None:
    _check(tmp_path, {"accounts.csv": _accounts_csv(INTERNAL)}, "accounts.csv", INTERNAL)


def test_a_reason_column_alone_quarantines_nothing(tmp_path: Path) -> None:
    accounts = "account_id,created_at,_reason\nacct-1,2025-04-22T10:00:00Z,\nacct-2,2025-04-22T10:00:00Z,because\n"
    report, store, _ws = load(tmp_path, {"accounts.csv": accounts})
    assert report.tables["accounts"] == {"read": 2, "loaded": 2, "quarantined": 0, "duplicates": 0}
    assert {n.key for n in store.iter_nodes("Account")} == {"acct-1", "acct-2"}
    assert quarantine(report) == []


@pytest.mark.parametrize("gz", [False, True])
def test_internal_names_in_jsonl_are_ignored_and_reported(tmp_path: Path, gz: bool) -> None:
    rows = [
        {"account_id": "acct-1", "created_at": "2025-04-22T10:00:00Z"},
        {"account_id": "acct-2", "created_at": "2025-04-22T10:00:00Z"},
        {"account_id": "acct-3", "created_at": "not a time"},
        {"account_id": "acct-4", "created_at": "2025-04-22T10:00:00Z"},
    ]
    for row in rows:
        row.update({name: "x" for name in INTERNAL})
        row["_row"] = 1   # the same number on every line
    text = "".join(json.dumps(r) + "\n" for r in rows)
    import gzip

    name = "accounts.jsonl.gz" if gz else "accounts.jsonl"
    _check(tmp_path, {name: gzip.compress(text.encode()) if gz else text}, name, INTERNAL)


def test_internal_names_in_parquet_are_ignored_and_reported(tmp_path: Path) -> None:
    from tests.worlds.bundles import write_bundle

    bundle = write_bundle(tmp_path / "bundle", {})
    table = pa.table({
        "account_id": ["acct-1", "acct-2", "acct-3", "acct-4"],
        "created_at": ["2025-04-22T10:00:00Z", "2025-04-22T10:00:00Z", "not a time", "2025-04-22T10:00:00Z"],
        **{name: pa.array([7, 7, 7, 7], pa.int64()) for name in INTERNAL},
    })
    pq.write_table(table, bundle / "accounts.parquet")
    _check(tmp_path, {}, "accounts.parquet", INTERNAL)
