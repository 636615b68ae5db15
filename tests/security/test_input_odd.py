"""Odd input through the real loader: control characters, lone surrogates, deep nesting, huge
lines and gzip bombs, CSV fields beyond pyarrow's block, and symbolic links out of the bundle.

Observed before: a NUL made ``acct-2\\x00`` a second account; a lone surrogate in JSONL aborted
the whole load while writing the quarantine, naming no file; deeply nested JSON on the Python
path aborted with "maximum recursion depth exceeded"; a 1 MB ``jsonl.gz`` expanding to one
1 GiB line loaded at 5.2 GB peak memory; a CSV field over 16 MiB aborted the load; symbolic
links out of the bundle were followed.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graph.settings import Settings
from graph.stores.embedded import EmbeddedStore
from loaders.errors import BundleError
from loaders.load import load_bundle
from loaders.reader import ReadLimits, discover, iter_chunks
from loaders.validate import TABLE_SPECS
from tests.security.input_loads import (
    assert_files_balance,
    load,
    quarantine,
    settings_for,
    staged_rows,
)
from tests.worlds.bundles import write_bundle

ACCOUNTS = "account_id,created_at\nacct-1,2025-04-22T10:00:00Z\nacct-2,2025-04-22T10:00:00Z\n"
TS = "2025-04-22T10:00:00Z"


def _jsonl(rows: list[dict[str, Any] | str]) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def _refused(tmp_path: Path, files: dict[str, str | bytes], **overrides: Any) -> str:
    """Load ``files`` into a fresh workspace expecting a file-level fault; returns its message
    after checking that nothing was staged and the store is empty."""
    bundle = write_bundle(tmp_path / "bundle", files)
    ws = tmp_path / "ws"
    store = EmbeddedStore(ws / "embedded")
    with pytest.raises(BundleError) as info:
        load_bundle(bundle, settings_for(ws, **overrides), store)
    assert not list((ws / "staging").glob("*/*.parquet"))
    assert store.counts()["nodes"] == {} or not any(store.counts()["nodes"].values())
    message = str(info.value)
    assert "\n" not in message
    return message


# ---- control characters in identifiers ---------------------------------------------------------


def test_control_characters_in_identifiers_are_quarantined(tmp_path: Path) -> None:
    accounts = ACCOUNTS + "acct-2\x00,2025-04-22T10:00:00Z\nacct-\x1b[31m,2025-04-22T10:00:00Z\n"
    exchanges = _jsonl([
        {"exchange_id": "e1", "account_id": "acct-1", "ts": TS},
        {"exchange_id": "e2", "account_id": "acct-2\u0000", "ts": TS},
        {"exchange_id": "e3\n", "account_id": "acct-1", "ts": TS},
        {"exchange_id": "e4", "account_id": "acct-1", "ts": TS, "client_fingerprint": "ja3\u0085x"},
        {"exchange_id": "e5", "account_id": "acct-2", "ts": TS, "prompt": "tabs\tand\nnewlines are fine in text"},
    ])
    files: dict[str, str | bytes] = {
        "accounts.csv": accounts,
        "exchanges.jsonl": exchanges,
        "devices.csv": "account_id,device_id\nacct-1,dev-1\nacct-1,dev\t1\n",
        "payments.csv": "account_id,payment_id\nacct-1,pm\x7f1\nacct-2,pm-2\n",
        "operators.csv": "operator_id,name,indicator_type,indicator_value\nop\x01,Hydra,ip,10.0.0.1\nop1,Hydra,ip,10.0.0.1\n",
    }
    report, store, _ws = load(tmp_path, files)
    assert_files_balance(report)
    assert {n.key for n in store.iter_nodes("Account")} == {"acct-1", "acct-2"}
    assert {n.key for n in store.iter_nodes("Device")} == {"dev-1"}
    assert {n.key for n in store.iter_nodes("PaymentMethod")} == {"pm-2"}
    assert {n.key for n in store.iter_nodes("Operator")} == {"op1"}
    reasons = {(q["file"], q["row"]): q["reason"] for q in quarantine(report)}
    assert reasons == {
        ("accounts.csv", 3): "control character in account_id",
        ("accounts.csv", 4): "control character in account_id",
        ("exchanges.jsonl", 2): "control character in account_id",
        ("exchanges.jsonl", 3): "control character in exchange_id",
        ("exchanges.jsonl", 4): "control character in client_fingerprint",
        ("devices.csv", 2): "control character in device_id",
        ("payments.csv", 1): "control character in payment_id",
        ("operators.csv", 1): "control character in operator_id",
    }
    assert report.tables["exchanges"] == {"read": 5, "loaded": 2, "quarantined": 3, "duplicates": 0}
    # the quarantine keeps the value as it was, NUL included (escaped by JSON)
    (nul,) = [q for q in quarantine(report) if (q["file"], q["row"]) == ("accounts.csv", 3)]
    assert nul["raw"]["account_id"] == "acct-2\x00"


# ---- lone surrogates ---------------------------------------------------------------------------


def test_a_lone_surrogate_is_replaced_in_text_and_quarantined_in_ids(tmp_path: Path) -> None:
    exchanges = (
        _jsonl([{"exchange_id": "e1", "account_id": "acct-1", "ts": TS}])
        + '{"exchange_id": "e2", "account_id": "acct-1", "ts": "' + TS + '", "prompt": "broken \\ud800 emoji"}\n'
        + '{"exchange_id": "e3", "account_id": "acct-1\\udc00", "ts": "' + TS + '"}\n'
        + '{"exchange_id": "e4", "account_id": "acct-1", "ts": "' + TS + '", "\\ud83d": "lone key", "user_agent": "ok \\ud83d\\ude00"}\n'
    )
    accounts = (
        '{"account_id": "acct-1", "created_at": "' + TS + '"}\n'
        '{"account_id": "acct-2", "created_at": "' + TS + '", "email": "x\\udfffy@example.com"}\n'
    )
    report, store, ws = load(tmp_path, {"accounts.jsonl": accounts, "exchanges.jsonl.gz": gzip.compress(exchanges.encode())})
    assert_files_balance(report)
    assert report.tables["exchanges"] == {"read": 4, "loaded": 3, "quarantined": 1, "duplicates": 0}
    assert report.tables["accounts"] == {"read": 2, "loaded": 1, "quarantined": 1, "duplicates": 0}
    records = {(q["file"], q["row"]): q for q in quarantine(report)}
    assert records[("exchanges.jsonl.gz", 3)]["reason"] == "invalid Unicode (lone surrogate) in account_id"
    assert records[("accounts.jsonl", 2)]["reason"] == "invalid Unicode (lone surrogate) in email"
    # the row is kept as it was, the surrogate escaped; the e-mail only as its hash
    assert records[("exchanges.jsonl.gz", 3)]["raw"]["account_id"] == "acct-1\udc00"
    assert set(records[("accounts.jsonl", 2)]["raw"]) == {"account_id", "created_at", "email_hash"}
    staged = {r["exchange_id"]: r for r in staged_rows(ws, "exchanges")}
    assert staged["e4"]["user_agent"] == "ok 😀"
    example = pq.read_table(ws / "staging" / "templates.parquet").column("example").to_pylist()
    assert example == ["broken \ufffd emoji"]
    assert store.get_node("Account", "acct-1") is not None
    assert (store.get_node("Account", "acct-1") or pytest.fail()).props["exchanges"] == 3
    assert store.get_node("Account", "acct-2") is None


# ---- deep nesting on the Python path ---------------------------------------------------------


def test_deep_json_on_the_python_path_is_a_row_fault_naming_file_and_line(tmp_path: Path) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    fine = "[" * 60 + '"ok"' + "]" * 60
    exchanges = (
        _jsonl([{"exchange_id": "e1", "account_id": "acct-1", "ts": TS}])
        # a lone surrogate makes DuckDB give up on the file: the Python path reads all of it
        + '{"exchange_id": "e2", "account_id": "acct-1", "ts": "' + TS + '", "prompt": "\\ud800"}\n'
        + '{"exchange_id": "e3", "account_id": "acct-1", "ts": "' + TS + '", "prompt": ' + deep + "}\n"
        + '{"exchange_id": "e4", "account_id": "acct-2", "ts": "' + TS + '", "prompt": ' + fine + "}\n"
        + '{"exchange_id": "e5", "extra": {"a": ' + deep + '}, "account_id": "acct-2", "ts": "' + TS + '"}\n'
    )
    report, _store, ws = load(tmp_path, {"accounts.csv": ACCOUNTS, "exchanges.jsonl": exchanges})
    assert_files_balance(report)
    assert report.tables["exchanges"] == {"read": 5, "loaded": 3, "quarantined": 2, "duplicates": 0}
    records = {(q["file"], q["row"]): q for q in quarantine(report)}
    assert set(records) == {("exchanges.jsonl", 3), ("exchanges.jsonl", 5)}
    for record in records.values():
        assert record["reason"] == "JSON nested deeper than 100 levels"
        assert isinstance(record["raw"], str) and record["raw"].startswith('{"exchange_id"')
    assert {r["exchange_id"] for r in staged_rows(ws, "exchanges")} == {"e1", "e2", "e4"}
    # and the reader's Python path itself, directly: the same verdicts with line numbers
    src = discover(tmp_path / "bundle").files["exchanges"][0]
    spec = TABLE_SPECS["exchanges"]
    rows = [r for c in iter_chunks(src, fast=False, columns=spec.columns, free_text=spec.free_text) for r in c.to_pylist()]
    assert [(r["_row"], r["_error"]) for r in rows] == [
        (1, None), (2, None), (3, "JSON nested deeper than 100 levels"), (4, None), (5, "JSON nested deeper than 100 levels")]


# ---- a 1 GiB line, gzip bombs ------------------------------------------------------------------


class _Counting(io.RawIOBase):
    """A readable stream counting the decompressed bytes handed out."""

    def __init__(self, inner: IO[bytes], counter: list[int]) -> None:
        self.inner, self.counter = inner, counter

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        self.counter[0] += len(data)
        return len(data)

    def close(self) -> None:
        self.inner.close()
        super().close()


def _count_decompression(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Route every gzip stream the reader's Python paths open through a counter."""
    counter = [0]
    real_gzip_open: Callable[..., Any] = gzip.open

    def gzip_open(path: Any, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        return io.BufferedReader(_Counting(real_gzip_open(path, mode, *args, **kwargs), counter))

    monkeypatch.setattr(gzip, "open", gzip_open)
    return counter


def _one_gib_line() -> bytes:
    """A ~1 MB gzip (concatenated members) expanding to a first good line and a 1 GiB second."""
    head = gzip.compress(_jsonl([{"exchange_id": "e1", "account_id": "acct-1", "ts": TS}]).encode()
                         + b'{"exchange_id": "e2", "account_id": "acct-1", "ts": "' + TS.encode() + b'", "prompt": "')
    block = gzip.compress(b"a" * (16 << 20), 9)
    return head + block * 64 + gzip.compress(b'"}\n')


@pytest.mark.parametrize("limit", [1 << 20, 64 << 10])
def test_a_one_gib_line_stops_at_the_line_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    data = _one_gib_line()
    assert len(data) < 2 << 20
    counter = _count_decompression(monkeypatch)
    message = _refused(tmp_path, {"accounts.csv": ACCOUNTS, "exchanges.jsonl.gz": data}, max_line_bytes=limit)
    assert message == (f"exchanges.jsonl.gz: line 2 is longer than max_line_bytes ({limit} bytes); "
                       "raise SYBILSCOPE_MAX_LINE_BYTES to read it")
    # bounded by construction: the Python path, which used to hold the whole line, reads at
    # most the limit of it (plus the first line and one read buffer)...
    assert 0 < counter[0] <= limit + 2 + 64 * 1024
    # ... and pyarrow's fast path never holds a row longer than one block, no larger than the limit
    assert ReadLimits(max_line_bytes=limit).block_bytes == limit + 1


# The peak is VmHWM of the child's own address space: ru_maxrss would carry over the RSS of
# the (large) pytest process the child was forked from.
PEAK_SCRIPT = """
import sys
from pathlib import Path
from graph.stores.embedded import EmbeddedStore
from loaders.errors import BundleError
from loaders.load import load_bundle
from tests.security.input_loads import settings_for
ws = Path(sys.argv[2])
try:
    load_bundle(Path(sys.argv[1]), settings_for(ws, max_line_bytes=1 << 20), EmbeddedStore(ws / "embedded"))
except BundleError as exc:
    print(exc)
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
print(int(status["VmHWM"].split()[0]) * 1024)
"""


def test_the_one_gib_line_load_peaks_far_below_the_line(tmp_path: Path) -> None:
    """The whole load (pyarrow's fast path with its read-ahead, then the Python path) in a
    process of its own, whose peak memory is not that of earlier tests: far below the 1 GiB
    line it refuses (it held 5.2 GB before)."""
    import subprocess
    import sys

    bundle = write_bundle(tmp_path / "bundle", {"accounts.csv": ACCOUNTS, "exchanges.jsonl.gz": _one_gib_line()})
    done = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(bundle), str(tmp_path / "ws")],
                          capture_output=True, text=True, check=True, env={**os.environ})
    message, peak = done.stdout.strip().splitlines()
    assert message.startswith("exchanges.jsonl.gz: line 2 is longer than max_line_bytes (1048576 bytes)")
    assert int(peak) < 512 << 20


def test_gzip_bombs_stop_at_the_decompressed_limit(tmp_path: Path) -> None:
    lines = "".join(f"e{i},acct-1,{TS},{'x' * 100}\n" for i in range(60_000))   # ~7 MB
    csv_gz = gzip.compress(("exchange_id,account_id,ts,prompt\n" + lines).encode(), 1)
    jsonl_lines = "".join(json.dumps({"exchange_id": f"e{i}", "account_id": "acct-1", "ts": TS, "prompt": "x" * 100}) + "\n"
                          for i in range(40_000))
    cases = {"exchanges.csv.gz": csv_gz, "exchanges.jsonl.gz": gzip.compress(jsonl_lines.encode(), 1)}
    for name, data in cases.items():
        message = _refused(tmp_path / name, {"accounts.csv": ACCOUNTS, name: data}, max_decompressed_bytes=2 << 20)
        assert message == (f"{name}: decompresses to more than max_decompressed_bytes ({2 << 20} bytes); "
                           "raise SYBILSCOPE_MAX_DECOMPRESSED_BYTES to read it")
        # the same file within a limit that fits loads
        report, _store, _ws = load(tmp_path / name / "ok", {"accounts.csv": ACCOUNTS, name: data},
                                   max_decompressed_bytes=64 << 20)
        assert report.tables["exchanges"]["loaded"] == report.tables["exchanges"]["read"] > 10_000


def test_a_parquet_file_declaring_too_much_is_refused(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "bundle", {"accounts.csv": ACCOUNTS})
    table = pa.table({"exchange_id": [f"e{i}" for i in range(5000)], "account_id": ["acct-1"] * 5000,
                      "ts": [TS] * 5000, "prompt": ["y" * 1000] * 5000})
    pq.write_table(table, bundle / "exchanges.parquet", compression="zstd")
    assert (bundle / "exchanges.parquet").stat().st_size < 1 << 20
    ws = tmp_path / "ws"
    with pytest.raises(BundleError, match=r"^exchanges\.parquet: decompresses to more than max_decompressed_bytes"):
        load_bundle(bundle, settings_for(ws, max_decompressed_bytes=1 << 20), EmbeddedStore(ws / "embedded"))


def test_the_limits_are_settings_with_defaults_help_and_overrides() -> None:
    defaults = Settings(environ={})
    assert defaults["max_line_bytes"] == 64 << 20 and defaults["max_decompressed_bytes"] == 200 << 30
    rows = {r["name"]: r for r in defaults.rows()}
    assert rows["max_line_bytes"]["env_var"] == "SYBILSCOPE_MAX_LINE_BYTES" and rows["max_line_bytes"]["help"]
    env = Settings(environ={"SYBILSCOPE_MAX_LINE_BYTES": "4096", "SYBILSCOPE_MAX_DECOMPRESSED_BYTES": "8192"})
    assert env["max_line_bytes"] == 4096 and env["max_decompressed_bytes"] == 8192


# ---- CSV fields beyond pyarrow's block -------------------------------------------------------


def test_a_csv_field_over_16_mib_loads(tmp_path: Path) -> None:
    prompt = "word " * ((17 << 20) // 5)
    exchanges = f"exchange_id,account_id,ts,prompt\ne1,acct-1,{TS},short\ne2,acct-2,{TS},\"{prompt}\"\ne3,acct-1,{TS},x\n"
    report, store, ws = load(tmp_path, {"accounts.csv": ACCOUNTS, "exchanges.csv": exchanges})
    assert report.tables["exchanges"] == {"read": 3, "loaded": 3, "quarantined": 0, "duplicates": 0}
    staged = {r["exchange_id"]: r for r in staged_rows(ws, "exchanges")}
    assert staged["e2"]["prompt_chars"] == len(prompt) and staged["e2"]["_row"] == 2
    assert (store.get_node("Account", "acct-1") or pytest.fail()).props["exchanges"] == 2


def test_a_csv_field_over_the_line_limit_names_file_and_record(tmp_path: Path) -> None:
    one_line = f"exchange_id,account_id,ts,prompt\ne1,acct-1,{TS},{'z' * 300_000}\n"
    message = _refused(tmp_path / "a", {"accounts.csv": ACCOUNTS, "exchanges.csv": one_line}, max_line_bytes=100_000)
    assert message == ("exchanges.csv: line 2 is longer than max_line_bytes (100000 bytes); "
                       "raise SYBILSCOPE_MAX_LINE_BYTES to read it")
    many_lines = "exchange_id,account_id,ts,prompt\n" + f"e1,acct-1,{TS},ok\n" + f'e2,acct-1,{TS},"' + ("z" * 1000 + "\n") * 300 + '"\n'
    message = _refused(tmp_path / "b", {"accounts.csv": ACCOUNTS, "exchanges.csv": many_lines}, max_line_bytes=100_000)
    assert message == ("exchanges.csv: a field of record 2 is longer than max_line_bytes (100000 bytes); "
                       "raise SYBILSCOPE_MAX_LINE_BYTES to read it")


# ---- symbolic links --------------------------------------------------------------------------


def test_symbolic_links_out_of_the_bundle_are_refused(tmp_path: Path) -> None:
    outside = write_bundle(tmp_path / "outside", {
        "secret.csv": "account_id,created_at\nstolen,2025-04-22T10:00:00Z\n",
        "dir/part.csv": "account_id,device_id\nacct-1,stolen-device\n",
    })
    cases: dict[str, tuple[str, Path, str]] = {
        "file": ("accounts.csv", outside / "secret.csv", "accounts.csv"),
        "table dir": ("devices", outside / "dir", "devices"),
        "part": ("devices/part-1.csv", outside / "dir" / "part.csv", "devices/part-1.csv"),
    }
    for name, (link, target, rel) in cases.items():
        base = {"accounts.csv": ACCOUNTS} if link != "accounts.csv" else {}
        bundle = write_bundle(tmp_path / name / "bundle", {**base, "devices/part-0.csv": "account_id,device_id\n"}
                              if link == "devices/part-1.csv" else base)
        (bundle / link).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, bundle / link)
        ws = tmp_path / name / "ws"
        store = EmbeddedStore(ws / "embedded")
        with pytest.raises(BundleError) as info:
            load_bundle(bundle, settings_for(ws), store)
        assert str(info.value) == (f"{rel}: a symbolic link to {target.resolve()}, outside the bundle; "
                                   "copy the file into the bundle instead"), name
        assert store.get_node("Account", "stolen") is None and store.get_node("Device", "stolen-device") is None


def test_links_inside_the_bundle_and_ignored_links_are_fine(tmp_path: Path) -> None:
    outside = write_bundle(tmp_path / "outside", {"notes.txt": "not ours"})
    bundle = write_bundle(tmp_path / "bundle", {"data/accounts.csv": ACCOUNTS})
    os.symlink(bundle / "data" / "accounts.csv", bundle / "accounts.csv")
    os.symlink(outside / "notes.txt", bundle / "notes.txt")        # matches no table: never read
    ws = tmp_path / "ws"
    report = load_bundle(bundle, settings_for(ws), EmbeddedStore(ws / "embedded"))
    assert report.tables["accounts"]["loaded"] == 2
    assert report.ignored_files == ["data/", "notes.txt"]
