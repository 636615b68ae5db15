"""The reader: discovery rules, every format, exact row numbers, encodings and line endings."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loaders.errors import BundleError
from loaders.reader import SlowPathNeeded, discover, iter_chunks
from tests.worlds.bundles import write_bundle

ACCOUNTS = "account_id,created_at\na1,2025-04-22T10:00:00Z\n"


def _bundle(tmp_path: Path, files: Mapping[str, str | bytes]) -> Path:
    return write_bundle(tmp_path / "bundle", files)


def _rows(tmp_path: Path, name: str, content: str | bytes, *, fast: bool = True) -> list[dict[str, object]]:
    root = _bundle(tmp_path, {"accounts.csv": ACCOUNTS, name: content})
    table = name.split(".")[0].split("/")[0]
    src = discover(root).files[table][0]
    out: list[dict[str, object]] = []
    for chunk in iter_chunks(src, fast=fast):
        out.extend(chunk.to_pylist())
    return out


# ---- discovery ---------------------------------------------------------------------------------


def test_discovery_maps_tables_and_lists_ignored_files(tmp_path: Path) -> None:
    root = _bundle(tmp_path, {
        "accounts.csv": ACCOUNTS,
        "payments.jsonl.gz": gzip.compress(b""),
        "exchanges/part-1.parquet": b"",
        "exchanges/part-2.csv": "x\n",
        "exchanges/_SUCCESS": "",
        "groups.csv": "a\n",
        "notes/readme.txt": "hello",
        ".hidden": "x",
    })
    found = discover(root)
    assert sorted(found.files) == ["accounts", "exchanges", "payments"]
    assert [s.rel for s in found.files["exchanges"]] == ["exchanges/part-1.parquet", "exchanges/part-2.csv"]
    assert found.files["payments"][0].gzip and found.files["payments"][0].fmt == "jsonl"
    assert found.ignored == ["exchanges/_SUCCESS", "groups.csv", "notes/"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"accounts.csv": ACCOUNTS, "exchanges.xlsx": "x"}, "exchanges.xlsx: unknown file type for table 'exchanges'"),
        ({"accounts.csv": ACCOUNTS, "accounts.jsonl": "{}"}, "two files for table 'accounts'"),
        ({"accounts.csv": ACCOUNTS, "exchanges.csv": "x\n", "exchanges/a.csv": "x\n"}, "two files for table 'exchanges'"),
        ({"accounts.csv": ACCOUNTS, "exchanges/a.txt": "x"}, "exchanges/a.txt: unknown file type"),
        ({"exchanges.csv": "x\n"}, "no accounts table"),
    ],
)
def test_discovery_file_faults(tmp_path: Path, files: dict[str, str], message: str) -> None:
    root = _bundle(tmp_path, files)
    with pytest.raises(BundleError, match=message.replace("(", r"\(").replace(".", r"\.")):
        discover(root)


# ---- CSV ---------------------------------------------------------------------------------------


def test_csv_bom_crlf_quoted_newlines_unicode(tmp_path: Path) -> None:
    content = (
        "\ufeffexchange_id,prompt\r\n"
        'e1,"line one\r\nline two, with comma"\r\n'
        "e2,Grüße 😀\r\n"
        'e3,"she said ""hi"""\r\n'
    ).encode()
    rows = _rows(tmp_path, "exchanges.csv", content)
    assert [r["exchange_id"] for r in rows] == ["e1", "e2", "e3"]
    assert rows[0]["prompt"] == "line one\r\nline two, with comma"
    assert rows[1]["prompt"] == "Grüße 😀"
    assert rows[2]["prompt"] == 'she said "hi"'
    assert [r["_row"] for r in rows] == [1, 2, 3]
    assert all(r["_error"] is None for r in rows)


def test_csv_values_stay_strings_and_empty_is_empty(tmp_path: Path) -> None:
    rows = _rows(tmp_path, "exchanges.csv", "exchange_id,input_tokens,ip\n007,12,\n")
    assert rows[0]["exchange_id"] == "007" and rows[0]["input_tokens"] == "12" and rows[0]["ip"] == ""


def test_csv_header_only_and_empty_file(tmp_path: Path) -> None:
    assert _rows(tmp_path / "a", "exchanges.csv", "exchange_id,account_id,ts\n") == []
    assert _rows(tmp_path / "b", "exchanges.csv", "") == []
    assert _rows(tmp_path / "c", "exchanges.csv", "\ufeff") == []


def test_csv_wrong_field_count_needs_the_slow_path_with_exact_rows(tmp_path: Path) -> None:
    content = 'exchange_id,prompt\ne1,"multi\nline"\ne2,a,b\ne3,ok\n'
    root = _bundle(tmp_path, {"accounts.csv": ACCOUNTS, "exchanges.csv": content})
    src = discover(root).files["exchanges"][0]
    with pytest.raises(SlowPathNeeded):
        list(iter_chunks(src))
    rows = [r for c in iter_chunks(src, fast=False) for r in c.to_pylist()]
    assert [r["_row"] for r in rows] == [1, 2, 3]
    assert rows[0]["prompt"] == "multi\nline"
    assert rows[1]["_error"] == "expected 2 fields, got 3" and rows[1]["_raw"] == "e2,a,b"
    assert rows[2]["exchange_id"] == "e3" and rows[2]["_error"] is None


def test_fast_and_slow_csv_paths_agree(tmp_path: Path) -> None:
    content = "a,b\n1,x\n\n2,\"y\nz\"\n3,\n"
    root = _bundle(tmp_path, {"accounts.csv": content})
    src = discover(root).files["accounts"][0]
    fast = [r for c in iter_chunks(src) for r in c.to_pylist()]
    slow = [r for c in iter_chunks(src, fast=False) for r in c.to_pylist()]
    assert fast == slow
    assert [r["_row"] for r in fast] == [1, 2, 3]


def test_csv_gzip_and_chunking_keep_row_numbers(tmp_path: Path) -> None:
    lines = "".join(f"e{i},p{i}\n" for i in range(1, 2501))
    content = gzip.compress(("exchange_id,prompt\n" + lines).encode())
    root = _bundle(tmp_path, {"accounts.csv": ACCOUNTS, "exchanges.csv.gz": content})
    src = discover(root).files["exchanges"][0]
    chunks = list(iter_chunks(src, chunk_rows=1000))
    assert len(chunks) == 3
    rows = [r for c in chunks for r in c.to_pylist()]
    assert [r["_row"] for r in rows] == list(range(1, 2501))
    assert all(r["exchange_id"] == f"e{r['_row']}" for r in rows)


def test_truncated_gzip_is_a_file_fault(tmp_path: Path) -> None:
    data = gzip.compress(("exchange_id,prompt\n" + "e1,hello world\n" * 5000).encode())
    root = _bundle(tmp_path, {"accounts.csv": ACCOUNTS, "exchanges.csv.gz": data[: len(data) // 2]})
    src = discover(root).files["exchanges"][0]
    with pytest.raises(BundleError, match="exchanges.csv.gz: truncated or corrupt gzip"):
        list(iter_chunks(src))


@pytest.mark.parametrize("fast", [True, False])
def test_undecodable_bytes_are_a_file_fault(tmp_path: Path, fast: bool) -> None:
    root = _bundle(tmp_path, {"accounts.csv": ACCOUNTS, "exchanges.csv": b"exchange_id,prompt\ne1,caf\xe9\n"})
    src = discover(root).files["exchanges"][0]
    with pytest.raises(BundleError, match=r"exchanges\.csv: undecodable bytes"):
        list(iter_chunks(src, fast=fast))


# ---- JSONL -------------------------------------------------------------------------------------


def test_jsonl_line_numbers_blank_lines_and_malformed_lines(tmp_path: Path) -> None:
    content = (
        '\ufeff{"exchange_id": "e1", "input_tokens": 5, "ok": true, "meta": {"a": [1]}}\r\n'
        "\n"
        "{not json\n"
        '["a list"]\n'
        '{"exchange_id": null, "prompt": "Ünïcode \\n text"}\n'
    )
    rows = _rows(tmp_path, "exchanges.jsonl", content)
    assert [r["_row"] for r in rows] == [1, 3, 4, 5]
    assert rows[0]["exchange_id"] == "e1" and rows[0]["input_tokens"] == "5"
    assert rows[0]["ok"] == "true" and rows[0]["meta"] == '{"a":[1]}'
    assert str(rows[1]["_error"]).startswith("malformed JSON") and rows[1]["_raw"] == "{not json"
    assert rows[2]["_error"] == "not a JSON object"
    assert rows[3]["exchange_id"] is None and rows[3]["prompt"] == "Ünïcode \n text"


def test_jsonl_gz_and_undecodable_line(tmp_path: Path) -> None:
    good = gzip.compress(b'{"account_id": "a1"}\n{"account_id": "a2"}\n')
    assert [r["_row"] for r in _rows(tmp_path / "a", "labels.jsonl.gz", good)] == [1, 2]
    root = _bundle(tmp_path / "b", {"accounts.csv": ACCOUNTS, "labels.jsonl": b'{"a": 1}\n{"a": "\xff"}\n'})
    src = discover(root).files["labels"][0]
    with pytest.raises(BundleError, match=r"labels\.jsonl: undecodable bytes \(not UTF-8\) on line 2"):
        list(iter_chunks(src))


# ---- Parquet -----------------------------------------------------------------------------------


def test_parquet_types_become_strings_with_iso_timestamps(tmp_path: Path) -> None:
    root = _bundle(tmp_path, {"accounts.csv": ACCOUNTS})
    (root / "exchanges").mkdir()
    table = pa.table({
        "exchange_id": pa.array(["e1", "e2", "e3"]),
        "ts": pa.array([1745316000, 1745316060, None], pa.timestamp("s")),
        "input_tokens": pa.array([1, None, 3], pa.int64()),
        "flag": pa.array([True, False, None]),
        "model": pa.array(["m", "m", "n"]).dictionary_encode(),
        "paris": pa.array([1745316000, None, None], pa.timestamp("s", tz="Europe/Paris")),
    })
    pq.write_table(table, root / "exchanges" / "part-0.parquet", row_group_size=2)
    src = discover(root).files["exchanges"][0]
    rows = [r for c in iter_chunks(src, chunk_rows=2) for r in c.to_pylist()]
    assert [r["_row"] for r in rows] == [1, 2, 3]
    assert rows[0]["ts"] in ("2025-04-22T10:00:00Z", "2025-04-22T10:00:00.000Z") and rows[2]["ts"] is None
    assert rows[0]["input_tokens"] == "1" and rows[1]["input_tokens"] is None
    assert rows[0]["flag"] == "true" and rows[1]["flag"] == "false"
    assert rows[2]["model"] == "n"
    assert str(rows[0]["paris"]).startswith("2025-04-22T10:00:00")


def test_corrupt_parquet_is_a_file_fault(tmp_path: Path) -> None:
    root = _bundle(tmp_path, {"accounts.csv": ACCOUNTS, "exchanges.parquet": b"PAR1 not really"})
    src = discover(root).files["exchanges"][0]
    with pytest.raises(BundleError, match=r"exchanges\.parquet: unreadable Parquet"):
        list(iter_chunks(src))


def test_json_text_round_trip() -> None:
    from loaders.reader import json_text

    assert json_text(None) is None
    assert json_text(1.5) == "1.5" and json_text(2) == "2" and json_text(False) == "false"
    assert json.loads(json_text({"a": [1, "é"]}) or "") == {"a": [1, "é"]}


def test_fast_and_python_jsonl_paths_agree(tmp_path: Path) -> None:
    from loaders.validate import TABLE_SPECS

    content = (
        '\ufeff{"exchange_id": "e1", "input_tokens": 5, "prompt": {"a": [1, "é"]}, "model": 1.5}\r\n'
        "\n{not json\n[\"a list\"]\n"
        '  {"exchange_id": null, "prompt": "Ünïcode \\n text\\u2028 x", "ts": 1745316000}\n'
        'null\n   \n{"exchange_id": "e9", "api_key_id": false, "extra": 1}\n"str"\n'
    )
    root = _bundle(tmp_path, {"accounts.csv": ACCOUNTS, "exchanges.jsonl.gz": gzip.compress(content.encode())})
    src = discover(root).files["exchanges"][0]
    columns = TABLE_SPECS["exchanges"].columns
    fast = [r for c in iter_chunks(src, columns=columns) for r in c.to_pylist()]
    slow = [r for c in iter_chunks(src, fast=False) for r in c.to_pylist()]
    assert [r["_row"] for r in fast] == [r["_row"] for r in slow] == [1, 3, 4, 5, 6, 8, 9]
    for f, s in zip(fast, slow, strict=True):
        assert str(s["_error"] or "").startswith(str(f["_error"] or "")), (f, s)
        assert {k: v for k, v in f.items() if k != "_error"} == {k: s.get(k) for k in f if k != "_error"}
    assert fast[0]["prompt"] == '{"a":[1,"é"]}' and fast[0]["input_tokens"] == "5"
    assert fast[6]["_error"] == "not a JSON object"
