"""Bad input: every row rule and file rule, with exact counts, through a whole load."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from graph.settings import Settings
from graph.staging import table_dir
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir, quarantine_dir, templates_path
from loaders.errors import BundleError
from loaders.load import LoadReport, load_bundle
from tests.worlds.bundles import write_bundle

ACCOUNTS = (
    "account_id,created_at,email,phone,signup_ip,country\n"
    "a1,2025-04-22T10:00:00Z,John.Doe+x@gmail.com,+1 555 0100,10.0.0.5,US\n"
    "a2,2025-04-22T11:00:00+02:00,dev.ops0401@throwaway.io,,10.0.0.6,DE\n"
)


_write = write_bundle


def _settings(ws: Path) -> Settings:
    return Settings({"workspace": str(ws), "hash_salt": "pepper"}, environ={})


def _load(tmp_path: Path, files: Mapping[str, str | bytes]) -> tuple[LoadReport, EmbeddedStore, Path]:
    bundle = _write(tmp_path / "bundle", files)
    ws = tmp_path / "ws"
    store = EmbeddedStore(embedded_dir(ws))
    return load_bundle(bundle, _settings(ws), store), store, ws


def _quarantine(report: LoadReport) -> list[dict[str, Any]]:
    text = Path(report.quarantine_path).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _counts(report: LoadReport, table: str) -> tuple[int, int, int, int]:
    c = report.tables[table]
    return c["read"], c["loaded"], c["quarantined"], c["duplicates"]


def _exchanges(lines: Sequence[Mapping[str, Any] | str]) -> str:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)


# ---- row rules -------------------------------------------------------------------------------


def test_each_exchange_row_rule_is_quarantined_with_reason(tmp_path: Path) -> None:
    ok = {"account_id": "a1", "ts": "2025-04-22T10:00:00Z"}
    lines: list[dict[str, Any] | str] = [
        {"exchange_id": "e1", **ok, "ip": "10.0.0.5", "input_tokens": 5, "output_tokens": 7, "prompt": "hi"},
        {"exchange_id": "e2", "account_id": "a1"},                                     # missing ts
        {"exchange_id": "", **ok},                                                     # missing exchange_id
        {"exchange_id": "e3", "account_id": "a1", "ts": "22/04/2025 10h"},             # bad timestamp
        {"exchange_id": "e4", **ok, "ip": "300.1.1.1"},                                # bad IP
        {"exchange_id": "e5", **ok, "input_tokens": -1},                               # negative tokens
        {"exchange_id": "e6", **ok, "output_tokens": "many"},                          # wrong type
        {"exchange_id": "e7", "account_id": "ghost", "ts": "2025-04-22T10:00:00Z"},    # unknown account
        {"exchange_id": "e1", **ok, "ip": "10.0.0.5", "input_tokens": 5, "output_tokens": 7, "prompt": "hi"},  # exact dup
        {"exchange_id": "e1", **ok, "ip": "10.0.0.9"},                                 # conflicting dup
        "{broken json",                                                                # malformed line
        {"exchange_id": "e8", **ok, "ts": 1745316000, "input_tokens": 3},              # epoch ts: fine
    ]
    report, store, _ = _load(tmp_path, {"accounts.csv": ACCOUNTS, "exchanges.jsonl": _exchanges(lines)})
    assert _counts(report, "exchanges") == (12, 2, 9, 1)
    reasons = {q["row"]: q["reason"] for q in _quarantine(report) if q["table"] == "exchanges"}
    assert reasons[2] == "missing ts"
    assert reasons[3] == "missing exchange_id"
    assert reasons[4] == "unparseable timestamp in ts"
    assert reasons[5] == "unparseable IP in ip"
    assert reasons[6] == "negative input_tokens"
    assert reasons[7] == "output_tokens is not an integer"
    assert reasons[8] == "unknown account_id"
    assert reasons[10] == "duplicate exchange_id with conflicting values"
    assert reasons[11].startswith("malformed JSON")
    assert set(reasons) == {2, 3, 4, 5, 6, 7, 8, 10, 11}
    records = {q["row"]: q for q in _quarantine(report)}
    assert records[8]["raw"]["account_id"] == "ghost" and records[8]["file"] == "exchanges.jsonl"
    assert records[11]["raw"] == "{broken json"
    account = store.get_node("Account", "a1")
    assert account is not None
    assert account.props["exchanges"] == 2 and account.props["input_tokens"] == 8


def test_account_rules_and_duplicates(tmp_path: Path) -> None:
    accounts = ACCOUNTS + (
        "a3,,x@y.com,,,\n"                                   # missing created_at
        "a4,yesterday,,,,\n"                                 # bad timestamp
        "a5,2025-04-22,,,10.0.0.256,\n"                      # bad signup IP
        "a1,2025-04-22T10:00:00Z,John.Doe+x@gmail.com,+1 555 0100,10.0.0.5,US\n"   # exact dup
        "a2,2025-05-01T00:00:00Z,,,,\n"                      # conflicting dup
        ",2025-04-22T10:00:00Z,,,,\n"                        # missing id
    )
    report, store, _ = _load(tmp_path, {"accounts.csv": accounts})
    assert _counts(report, "accounts") == (8, 2, 5, 1)
    reasons = sorted(q["reason"] for q in _quarantine(report))
    assert reasons == sorted([
        "missing created_at", "unparseable timestamp in created_at", "unparseable IP in signup_ip",
        "duplicate account_id with conflicting values", "missing account_id",
    ])
    assert {n.key for n in store.iter_nodes("Account")} == {"a1", "a2"}


def test_other_tables_rules(tmp_path: Path) -> None:
    files = {
        "accounts.csv": ACCOUNTS,
        "payments.csv": (
            "account_id,payment_id,card_bin,card_last4,billing_name,first_seen\n"
            "a1,pm1,411111,1234,JOHN  DOE,2025-04-22\n"
            "a2,pm1,411111,1234,john doe,2025-04-23\n"
            "a1,pm2,4111111111111111,1234,x,\n"          # a full card number is not a BIN
            "ghost,pm3,411111,,,\n"                      # unknown account
            "a1,,411111,,,\n"                            # missing payment_id
        ),
        "devices.csv": "account_id,device_id,first_seen,last_seen\na1,d1,2025-04-22,2025-04-23\na1,d1,2025-04-22,2025-04-23\na2,d2,x,\n",
        "ip_intel.csv": "network,asn,kind\n10.0.0.0/8,64500,hosting\nnot-a-net,1,vpn\n10.0.0.0/8,64501,vpn\n192.0.2.0/24,AS5,proxy\n",
        "operators.csv": (
            "operator_id,name,indicator_type,indicator_value,source,confidence\n"
            "op1,Hydra,ip,10.0.0.5,report,0.9\n"
            "op1,Hydra,asn,64500,report,1.5\n"           # confidence out of range
            "op2,,ip,10.0.0.6,,\n"                        # missing name
        ),
        "labels.csv": "account_id,operator_id\na1,op1\na2,\nghost,op1\n",
    }
    report, store, _ = _load(tmp_path, files)
    assert _counts(report, "payments") == (5, 2, 3, 0)
    assert _counts(report, "devices") == (3, 1, 1, 1)
    assert _counts(report, "ip_intel") == (4, 1, 3, 0)
    assert _counts(report, "operators") == (3, 1, 2, 0)
    assert _counts(report, "labels") == (3, 2, 1, 0)
    reasons = {(q["table"], q["row"]): q["reason"] for q in _quarantine(report)}
    assert reasons[("payments", 3)] == "card_bin is not 6-8 digits"
    assert reasons[("payments", 4)] == "unknown account_id"
    assert reasons[("ip_intel", 2)] == "unparseable network (CIDR)"
    assert reasons[("ip_intel", 3)] == "duplicate network with conflicting values"
    assert reasons[("ip_intel", 4)] == "asn is not an integer"
    assert reasons[("operators", 2)] == "confidence is not a number between 0 and 1"
    assert reasons[("devices", 3)] == "unparseable timestamp in first_seen"
    # the raw card number never reaches the graph, nor the quarantine
    assert "4111111111111111" not in Path(report.quarantine_path).read_text()
    for node in store.iter_nodes("PaymentMethod"):
        assert "4111111111111111" not in json.dumps(node.props)


# ---- formats, encodings, sizes ---------------------------------------------------------------


def test_empty_header_only_bom_crlf_and_gzip_files_load(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "accounts.csv": ("\ufeff" + ACCOUNTS).replace("\n", "\r\n").encode(),
        "payments.csv": "account_id,payment_id\n",
        "devices.jsonl": "",
        "exchanges.csv.gz": gzip.compress(
            b'exchange_id,account_id,ts,prompt\r\ne1,a1,2025-04-22T10:00:00Z,"multi\r\nline, ""quoted"""\r\n'
        ),
    }
    report, store, _ = _load(tmp_path, files)
    assert _counts(report, "accounts") == (2, 2, 0, 0)
    assert _counts(report, "payments") == (0, 0, 0, 0)
    assert _counts(report, "devices") == (0, 0, 0, 0)
    assert _counts(report, "exchanges") == (1, 1, 0, 0)
    assert store.get_node("Account", "a1") is not None


def test_unicode_and_very_long_prompts(tmp_path: Path) -> None:
    long_prompt = "Explain this log:\n" + ("ошибка 😀 line\n" * 8000)
    assert len(long_prompt) >= 100_000
    lines = [
        {"exchange_id": "e1", "account_id": "a1", "ts": "2025-04-22T10:00:00Z", "prompt": long_prompt},
        {"exchange_id": "e2", "account_id": "a2", "ts": "2025-04-22T10:00:00Z", "prompt": "Grüße aus Köln, 12 Äpfel"},
    ]
    report, store, ws = _load(tmp_path, {"accounts.csv": ACCOUNTS, "exchanges.jsonl": _exchanges(lines)})
    assert _counts(report, "exchanges") == (2, 2, 0, 0)
    import pyarrow.parquet as pq

    table = pq.read_table(templates_path(ws), columns=["template", "example"])
    rows = sorted(zip(table.column("template").to_pylist(), table.column("example").to_pylist(), strict=True))
    assert len(rows) == 2
    assert all(len(example) <= 2000 for _t, example in rows)
    assert any(t.startswith("Grüße aus <NAME>, <N>") for t, _e in rows)


def test_file_faults_stop_before_the_store_and_staging_are_touched(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    store = EmbeddedStore(embedded_dir(ws))
    good = _write(tmp_path / "good", {"accounts.csv": ACCOUNTS})
    load_bundle(good, _settings(ws), store)
    before_nodes = store.counts()
    before_files = sorted(p.relative_to(ws).as_posix() for p in ws.rglob("*") if p.is_file())

    bad_bundles: dict[str, tuple[dict[str, str | bytes], str]] = {
        "xlsx": ({"accounts.csv": ACCOUNTS, "exchanges.xlsx": "x"}, "exchanges.xlsx: unknown file type"),
        "two": ({"accounts.csv": ACCOUNTS, "accounts.jsonl": "{}\n"}, "two files for table 'accounts'"),
        "column": ({"accounts.csv": ACCOUNTS, "exchanges.csv": "exchange_id,ts\ne1,2025-04-22\n"},
                   "exchanges.csv: missing required column(s) account_id"),
        "bytes": ({"accounts.csv": ACCOUNTS, "exchanges.csv": b"exchange_id,account_id,ts\ne1,a1,\xff\xfe\n"},
                  "exchanges.csv: undecodable bytes"),
        "gzip": ({"accounts.csv": ACCOUNTS,
                  "exchanges.csv.gz": gzip.compress(b"exchange_id,account_id,ts\n" + b"e1,a1,2025-04-22\n" * 4000)[:200]},
                 "exchanges.csv.gz: truncated or corrupt gzip"),
        "noaccounts": ({"exchanges.csv": "exchange_id,account_id,ts\n"}, "no accounts table"),
    }
    for name, (files, message) in bad_bundles.items():
        bundle = _write(tmp_path / name, files)
        with pytest.raises(BundleError) as info:
            load_bundle(bundle, _settings(ws), store)
        assert message in str(info.value), name
        assert "\n" not in str(info.value)
        assert store.counts() == before_nodes
        after = sorted(p.relative_to(ws).as_posix() for p in ws.rglob("*") if p.is_file())
        assert after == before_files, name


def test_ignored_files_are_reported_not_read(tmp_path: Path) -> None:
    report, _store, _ = _load(tmp_path, {"accounts.csv": ACCOUNTS, "groups.csv": "\xff garbage", "notes/x.bin": b"\x00"})
    assert report.ignored_files == ["groups.csv", "notes/"]
    assert set(report.tables) == {"accounts"}


def test_every_file_balances(tmp_path: Path) -> None:
    lines = [{"exchange_id": f"e{i % 7}", "account_id": "a1" if i % 3 else "zz", "ts": "2025-04-22T10:00:00Z",
              "input_tokens": i - 5} for i in range(40)]
    report, _store, _ = _load(tmp_path, {"accounts.csv": ACCOUNTS, "exchanges.jsonl": _exchanges(list(lines))})
    for counts in report.files.values():
        assert counts["read"] == counts["loaded"] + counts["quarantined"] + counts["duplicates"]
    assert report.tables["exchanges"]["read"] == 40
    assert len(_quarantine(report)) == sum(c["quarantined"] for c in report.tables.values())


def test_cli_load_writes_the_report_and_fails_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from app.cli import main

    good = _write(tmp_path / "good", {"accounts.csv": ACCOUNTS, "groups.csv": "x\n"})
    ws = tmp_path / "ws"
    report_path = tmp_path / "out" / "report.json"
    runner = CliRunner()
    result = runner.invoke(main, ["load", str(good), "--workspace", str(ws), "--report-json", str(report_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["tables"] == {"accounts": {"read": 2, "loaded": 2, "quarantined": 0, "duplicates": 0}}
    assert report["ignored_files"] == ["groups.csv"]
    assert Path(report["quarantine_path"]).parent == quarantine_dir(ws)

    bad = _write(tmp_path / "bad", {"accounts.csv": ACCOUNTS, "exchanges.xlsx": "x"})
    result = runner.invoke(main, ["load", str(bad), "--workspace", str(ws)])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "exchanges.xlsx" in lines[0] and "unknown file type" in lines[0]


def test_a_table_directory_of_mixed_files_with_duplicates_across_files(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    bundle = _write(tmp_path / "bundle", {
        "accounts.csv": ACCOUNTS,
        "exchanges/a.csv": "exchange_id,account_id,ts,input_tokens\ne1,a1,2025-04-22T10:00:00Z,1\ne2,a2,2025-04-22T10:00:00Z,2\n",
        "exchanges/b.jsonl.gz": gzip.compress(
            b'{"exchange_id": "e1", "account_id": "a1", "ts": "2025-04-22T10:00:00Z", "input_tokens": 1}\n'
            b'{"exchange_id": "e2", "account_id": "a2", "ts": "2025-04-22T10:00:00Z", "input_tokens": 9}\n'
        ),
    })
    pq.write_table(pa.table({"exchange_id": ["e3"], "account_id": ["a2"], "ts": ["2025-04-23T00:00:00Z"]}),
                   bundle / "exchanges" / "c.parquet")
    ws = tmp_path / "ws"
    report = load_bundle(bundle, _settings(ws), EmbeddedStore(embedded_dir(ws)))
    files = report.files
    assert (files["exchanges/a.csv"]["read"], files["exchanges/a.csv"]["loaded"]) == (2, 2)
    b = files["exchanges/b.jsonl.gz"]
    assert (b["read"], b["loaded"], b["quarantined"], b["duplicates"]) == (2, 0, 1, 1)
    assert files["exchanges/c.parquet"]["loaded"] == 1
    assert _counts(report, "exchanges") == (5, 3, 1, 1)
    (q,) = _quarantine(report)
    assert (q["file"], q["row"], q["reason"]) == ("exchanges/b.jsonl.gz", 2, "duplicate exchange_id with conflicting values")
    assert q["raw"]["input_tokens"] == "9"


def test_csv_rows_with_the_wrong_number_of_fields_are_quarantined_with_exact_rows(tmp_path: Path) -> None:
    exchanges = (
        "exchange_id,account_id,ts,prompt\n"
        'e1,a1,2025-04-22T10:00:00Z,"a prompt\nover two lines"\n'
        "e2,a1,2025-04-22T10:00:00Z,too,many,fields\n"
        "e3,a2\n"
        "e4,a2,2025-04-22T10:00:00Z,fine\n"
    )
    report, _store, ws = _load(tmp_path, {"accounts.csv": ACCOUNTS, "exchanges.csv": exchanges})
    assert _counts(report, "exchanges") == (4, 2, 2, 0)
    got = {(q["row"], q["reason"], q["raw"]) for q in _quarantine(report)}
    assert got == {
        (2, "expected 4 fields, got 6", "e2,a1,2025-04-22T10:00:00Z,too,many,fields"),
        (3, "expected 4 fields, got 2", "e3,a2"),
    }
    import pyarrow.parquet as pq

    staged = pq.read_table(next(table_dir(ws, "exchanges").glob("*.parquet"))).to_pylist()
    assert sorted((r["exchange_id"], r["_row"], r["_file"]) for r in staged) == [
        ("e1", 1, "exchanges.csv"), ("e4", 4, "exchanges.csv")]


def test_withheld_prompts_link_by_hash_only_when_shared(tmp_path: Path) -> None:
    ok = {"ts": "2025-04-22T10:00:00Z"}
    lines = [
        {"exchange_id": "e1", "account_id": "a1", "prompt_hash": "aaa", **ok},
        {"exchange_id": "e2", "account_id": "a2", "prompt_hash": "aaa", **ok},
        {"exchange_id": "e3", "account_id": "a1", "prompt_hash": "bbb", **ok},
        {"exchange_id": "e4", "account_id": "a1", "prompt": "is 7 a prime number?", "prompt_hash": "ccc", **ok},
    ]
    report, store, ws = _load(tmp_path, {"accounts.csv": ACCOUNTS, "exchanges.jsonl": _exchanges(lines)})
    assert _counts(report, "exchanges") == (4, 4, 0, 0)
    templates = {n.key: n.props for n in store.iter_nodes("PromptTemplate")}
    # only the hash two accounts sent links anyone: the readable prompt a1 alone sent stays in staging
    assert set(templates) == {"h:aaa"}
    assert templates["h:aaa"]["hashed"] is True
    sent = {(r.start[1], r.end[1]) for r in store.iter_relationships("SENT_TEMPLATE")}
    assert sent == {("a1", "h:aaa"), ("a2", "h:aaa")}
    import pyarrow.parquet as pq

    from graph.linkage.template_props import TemplateProps
    from graph.staging import read_template_table, read_template_uses

    staged = {r["exchange_id"]: r for r in pq.read_table(next(table_dir(ws, "exchanges").glob("*.parquet"))).to_pylist()}
    assert staged["e3"]["template_id"] == "h:bbb" and staged["e3"]["capability"] is None
    text = pq.read_table(templates_path(ws)).column("template_id").to_pylist()
    assert len(text) == 1 and staged["e4"]["template_id"] == text[0]
    assert TemplateProps(read_template_table(ws))[text[0]]["capability"] == "math"
    uses = read_template_uses(ws)
    assert uses is not None
    # detection reads the one-sender readable template too, never a one-sender hash
    assert sorted(zip(uses.column("account_id").to_pylist(), uses.column("template_id").to_pylist(), strict=True)) == sorted(
        [("a1", "h:aaa"), ("a2", "h:aaa"), ("a1", text[0])])
