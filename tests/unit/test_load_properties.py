"""Random rows never crash the stager and every file balances: read = loaded + quarantined + duplicates."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.workspace import staging_dir
from loaders.stage import Stager

TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=30
)
IDS = st.sampled_from(["a1", "a2", "a3", "", " ", "ghost", "a1 "])
TIMES = st.sampled_from(["2025-04-22T10:00:00Z", "2025-04-22 10:00:00+02:00", "1745316000", "", "soon", "2025-02-30"])
IPS = st.sampled_from(["10.0.0.1", "2001:db8::1", "", "999.0.0.1", "::ffff:1.2.3.4", "x"])
INTS = st.sampled_from(["", "0", "12", "-3", "1.5", "abc", "99999999999999999999"])
CELL = st.one_of(TEXT, IDS, TIMES, IPS, INTS, st.none())

ACCOUNT_ROW = st.fixed_dictionaries({"account_id": IDS, "created_at": TIMES, "email": CELL, "signup_ip": IPS})
EXCHANGE_ROW = st.fixed_dictionaries(
    {"exchange_id": st.sampled_from(["e1", "e2", "e3", ""]), "account_id": IDS, "ts": TIMES, "ip": IPS,
     "input_tokens": INTS, "prompt": CELL},
    optional={"extra": CELL, "prompt_hash": CELL},
)


def _csv(rows: list[dict[str, str | None]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return out.getvalue()


def _jsonl(rows: list[dict[str, str | None]], garbage: list[str]) -> str:
    lines = [json.dumps(r, ensure_ascii=False) for r in rows] + garbage
    return "\n".join(lines) + "\n"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    accounts=st.lists(ACCOUNT_ROW, max_size=8),
    exchanges=st.lists(EXCHANGE_ROW, max_size=15),
    garbage=st.lists(st.sampled_from(["{", "[1]", "null", '{"exchange_id": 5}', "  "]), max_size=3),
    as_csv=st.booleans(),
)
def test_random_rows_balance(accounts: list[dict[str, str | None]], exchanges: list[dict[str, str | None]],
                             garbage: list[str], as_csv: bool) -> None:
    root = Path(tempfile.mkdtemp(prefix="sybil-prop-"))
    try:
        bundle = root / "bundle"
        bundle.mkdir()
        (bundle / "accounts.csv").write_text(
            _csv(accounts, ["account_id", "created_at", "email", "signup_ip"]), encoding="utf-8")
        if as_csv:
            columns = ["exchange_id", "account_id", "ts", "ip", "input_tokens", "prompt"]
            (bundle / "exchanges.csv").write_text(_csv(exchanges, columns), encoding="utf-8")
        else:
            (bundle / "exchanges.jsonl").write_text(_jsonl(exchanges, garbage), encoding="utf-8")
        ws = root / "ws"
        staging_dir(ws).mkdir(parents=True)
        stager = Stager(bundle, ws, "salt")
        result = stager.stage()
        stager.commit()
        for counts in result.files.values():
            assert counts.read == counts.loaded + counts.quarantined + counts.duplicates
            assert min(counts.loaded, counts.quarantined, counts.duplicates) >= 0
        assert result.files["accounts.csv"].read == len(accounts)
        exchange_file = "exchanges.csv" if as_csv else "exchanges.jsonl"
        expected = len(exchanges) + (0 if as_csv else sum(1 for g in garbage if g.strip()))
        assert result.files[exchange_file].read == expected
        quarantined = Path(result.quarantine_path).read_text(encoding="utf-8").splitlines()
        assert len(quarantined) == sum(c.quarantined for c in result.files.values())
        # at most one loaded row per key
        loaded_accounts = result.files["accounts.csv"].loaded
        assert loaded_accounts <= len({(r["account_id"] or "").strip() for r in accounts} - {""})
    finally:
        shutil.rmtree(root, ignore_errors=True)
