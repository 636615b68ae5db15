"""Personal data at rest: the quarantine, the salt and the staging area after a real load.

Observed before: the quarantine held the raw e-mail, phone and billing name of bad rows; it and
``<workspace>/salt`` were 0644; and with the salt, e-mail hashes (a salted SHA-256) could be
re-identified by guessing. Now the quarantine keeps keyed hashes only, every file is 0600 in
0700 directories whatever the umask, the hash is an HMAC keyed with the salt, and a workspace
staged with another scheme or key is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from graph.stores.embedded import EmbeddedStore
from loaders.enrich import HASH_SCHEME, UNSPLIT_ROW, salted_hash
from loaders.errors import WorkspaceError
from loaders.load import load_bundle
from tests.security.input_loads import (
    assert_files_balance,
    files_holding,
    load,
    modes,
    quarantine,
    settings_for,
    staged_rows,
)
from tests.worlds.bundles import write_bundle

GOOD_EMAIL, GOOD_PHONE = "Planted.Person+tag@GMail.com", "+1 (555) 010-4477"
BAD_EMAIL, BAD_PHONE = "Quarantined.Alice@Mailbox.org", "+44 20 7946 0958"
DUP_EMAIL = "Conflicting.Carol@Mailbox.org"
SPLIT_EMAIL = "wrongfields.bob@example.net"
BILLING_UNKNOWN, BILLING_BAD_BIN, BILLING_MALFORMED = "Zebulon Quimby", "Ophelia Thistlewood", "Xanthippe Marlowe"

ACCOUNTS = (
    "account_id,created_at,email,phone,country\n"
    f"a1,2025-04-22T10:00:00Z,{GOOD_EMAIL},{GOOD_PHONE},US\n"
    f"a2,,{BAD_EMAIL},{BAD_PHONE},GB\n"                                # missing created_at: a row rule
    f"a1,2025-05-01T00:00:00Z,{DUP_EMAIL},,US\n"                       # conflicting duplicate: a table rule
    f"a3,2025-04-22T10:00:00Z,{SPLIT_EMAIL},+1 555 0199,US,extra\n"    # wrong field count: never split
    "a4,2025-04-22T11:00:00Z,,,DE\n"
)
PAYMENTS = "".join(json.dumps(r) + "\n" for r in [
    {"account_id": "a1", "payment_id": "pm1", "card_bin": "411111", "billing_name": "JOHN  DOE"},
    {"account_id": "ghost", "payment_id": "pm2", "billing_name": BILLING_UNKNOWN},   # unknown account
    {"account_id": "a4", "payment_id": "pm3", "card_bin": "41", "billing_name": BILLING_BAD_BIN},
]) + '{"account_id": "a4", "payment_id": "pm4", "billing_name": "' + BILLING_MALFORMED + '"\n'   # malformed JSON

PLANTED = [GOOD_EMAIL, GOOD_PHONE, BAD_EMAIL, BAD_PHONE, DUP_EMAIL, SPLIT_EMAIL,
           BILLING_UNKNOWN, BILLING_BAD_BIN, BILLING_MALFORMED, "JOHN  DOE"]
# the normalised forms the hashes are made of must not be at rest either
NORMALISED = ["plantedperson@gmail.com", "quarantined.alice@mailbox.org", "+15550104477", "+442079460958",
              "zebulon quimby", "ophelia thistlewood", "xanthippe marlowe", "john doe"]


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Load with umask 0000: modes must come from the loader, not from the caller's umask."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_quarantine_keeps_reason_file_row_and_only_keyed_hashes(tmp_path: Path) -> None:
    report, _store, ws = load(tmp_path, {"accounts.csv": ACCOUNTS, "payments.jsonl": PAYMENTS})
    assert_files_balance(report)
    assert report.files["accounts.csv"] | {} == {
        "table": "accounts", "read": 5, "loaded": 2, "quarantined": 3, "duplicates": 0, "extra_columns": []}
    assert (report.files["payments.jsonl"]["read"], report.files["payments.jsonl"]["loaded"],
            report.files["payments.jsonl"]["quarantined"]) == (4, 1, 3)
    salt = (ws / "salt").read_text().strip()
    records = {(q["file"], q["row"]): q for q in quarantine(report)}
    assert {k: v["reason"] for k, v in records.items()} == {
        ("accounts.csv", 2): "missing created_at",
        ("accounts.csv", 3): "duplicate account_id with conflicting values",
        ("accounts.csv", 4): "expected 5 fields, got 6",
        ("payments.jsonl", 2): "unknown account_id",
        ("payments.jsonl", 3): "card_bin is not 6-8 digits",
        ("payments.jsonl", 4): records[("payments.jsonl", 4)]["reason"],
    }
    assert records[("payments.jsonl", 4)]["reason"].startswith("malformed JSON")

    # row rule: the raw row is kept with e-mail and phone as the hashes staging would give them
    raw = records[("accounts.csv", 2)]["raw"]
    assert "email" not in raw and "phone" not in raw
    assert raw["account_id"] == "a2" and raw["country"] == "GB"
    assert raw["email_hash"] == salted_hash(salt, "quarantined.alice@mailbox.org")
    assert raw["phone_hash"] == salted_hash(salt, "+442079460958")
    # table rules re-read the row from the source file: hashed all the same
    assert records[("accounts.csv", 3)]["raw"]["email_hash"] == salted_hash(salt, "conflicting.carol@mailbox.org")
    assert records[("payments.jsonl", 2)]["raw"]["billing_name_hash"] == salted_hash(salt, "zebulon quimby")
    assert "billing_name" not in records[("payments.jsonl", 3)]["raw"]
    # rows that never split into columns: which value is personal is unknown, so none is kept
    for key in (("accounts.csv", 4), ("payments.jsonl", 4)):
        assert set(records[key]["raw"]) == {"redacted", "chars", "hash"}
        assert records[key]["raw"]["redacted"] == UNSPLIT_ROW
    # one hash for one mailbox: the quarantined hash matches the staged one
    staged = {r["account_id"]: r for r in staged_rows(ws, "accounts")}
    assert staged["a1"]["email_hash"] == salted_hash(salt, "plantedperson@gmail.com")

    assert files_holding(ws, PLANTED + NORMALISED) == []


def test_hashes_are_keyed_with_the_salt(tmp_path: Path) -> None:
    _report, _store, ws = load(tmp_path, {"accounts.csv": ACCOUNTS})
    salt = (ws / "salt").read_text().strip()
    assert len(salt) == 32
    (row,) = [r for r in staged_rows(ws, "accounts") if r["account_id"] == "a1"]
    address = "plantedperson@gmail.com"
    assert row["email_hash"] == hmac.new(salt.encode(), address.encode(), hashlib.sha256).hexdigest()
    # neither the old salted digest nor a plain one: a store leaked without the key matches nothing
    assert row["email_hash"] != hashlib.sha256((salt + "\0" + address).encode()).hexdigest()
    assert row["email_hash"] != hashlib.sha256(address.encode()).hexdigest()
    assert row["email_hash"] != salted_hash("another key", address)
    document = json.loads((ws / "staging" / "bundles.json").read_text())
    assert document["hash_scheme"] == HASH_SCHEME == "hmac-sha256"
    assert salt not in json.dumps(document)


def test_salt_quarantine_and_staging_are_owner_only_whatever_the_umask(tmp_path: Path, open_umask: None) -> None:
    report, _store, ws = load(tmp_path, {"accounts.csv": ACCOUNTS, "payments.jsonl": PAYMENTS})
    assert os.stat(ws).st_mode & 0o777 == 0o700
    assert os.stat(ws / "salt").st_mode & 0o777 == 0o600
    assert Path(report.quarantine_path).stat().st_mode & 0o777 == 0o600
    for root in (ws / "staging", ws / "quarantine"):
        found = modes(root)
        assert len(found) >= 2
        for rel, mode in found.items():
            expected = 0o700 if (root / rel).is_dir() else 0o600
            assert mode == expected, (root.name, rel, oct(mode))


def test_a_workspace_of_an_earlier_version_is_narrowed_on_the_next_load(tmp_path: Path) -> None:
    report, store, ws = load(tmp_path, {"accounts.csv": ACCOUNTS})
    widened = [ws, ws / "salt", Path(report.quarantine_path), *ws.joinpath("staging").rglob("*")]
    for path in widened:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    load_bundle(tmp_path / "bundle", settings_for(ws), store)
    for path in widened:
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path


def test_a_workspace_hashed_with_the_old_scheme_is_refused_untouched(tmp_path: Path) -> None:
    report, store, ws = load(tmp_path, {"accounts.csv": ACCOUNTS})
    bundles = ws / "staging" / "bundles.json"
    document = json.loads(bundles.read_text())
    del document["hash_scheme"], document["key_check"]     # as the loader before this one wrote it
    bundles.write_text(json.dumps(document))
    before = {p: p.read_bytes() for p in ws.rglob("*") if p.is_file() and p.name != ".load.lock"}
    second = write_bundle(tmp_path / "second", {"accounts.csv": "account_id,created_at\nz9,2025-04-22T10:00:00Z\n"})
    with pytest.raises(WorkspaceError) as info:
        load_bundle(second, settings_for(ws), store)
    message = str(info.value)
    assert "sha256-salt-prefix" in message and "hmac-sha256" in message and "fresh workspace" in message
    assert str(ws) in message and "\n" not in message
    after = {p: p.read_bytes() for p in ws.rglob("*") if p.is_file() and p.name != ".load.lock"}
    assert after == before
    assert store.get_node("Account", "z9") is None
    assert report.tables["accounts"]["loaded"] == 2


def test_a_load_with_another_key_is_refused(tmp_path: Path) -> None:
    _report, store, ws = load(tmp_path, {"accounts.csv": ACCOUNTS})
    second = write_bundle(tmp_path / "second", {"accounts.csv": "account_id,created_at\nz9,2025-04-22T10:00:00Z\n"})
    with pytest.raises(WorkspaceError, match="another hashing key"):
        load_bundle(second, settings_for(ws, hash_salt="a different key"), store)
    load_bundle(second, settings_for(ws), store)  # the workspace's own key still loads
    assert store.get_node("Account", "z9") is not None
    # a fresh workspace takes any key
    fresh = tmp_path / "fresh"
    load_bundle(second, settings_for(fresh, hash_salt="a different key"), EmbeddedStore(fresh / "embedded"))
