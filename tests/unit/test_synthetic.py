"""The synthetic world generator (tiny scale): contract conformance, determinism, ground truth."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import ipaddress
import json
import re
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from loaders import synthetic
from loaders.synthetic import generate
from loaders.synthetic_spec import (
    CAMPAIGN_END,
    CAMPAIGN_START,
    MODEL_RELEASE,
    NEW_MODEL,
    OPERATOR_CLIENTS,
    OPERATOR_IDS,
    OPERATORS,
    epoch,
)
from loaders.synthetic_text import VIRAL_PROMPT

CONTRACT = {
    "accounts": ["account_id", "created_at", "email", "phone", "signup_ip", "country", "org_id", "verification", "status"],
    "payments": ["account_id", "payment_id", "card_bin", "card_last4", "billing_country", "billing_name", "billing_postal", "first_seen"],
    "devices": ["account_id", "device_id", "first_seen", "last_seen"],
    "ip_intel": ["network", "asn", "as_org", "kind", "country", "provider"],
    "operators": ["operator_id", "name", "indicator_type", "indicator_value", "source", "confidence"],
    "labels": ["account_id", "operator_id"],
    "groups": ["account_id", "group"],
}
EXCHANGE_COLUMNS = ["exchange_id", "account_id", "ts", "ip", "api_key_id", "user_agent", "client_fingerprint",
                    "model", "input_tokens", "output_tokens", "prompt"]
HARD_NEGATIVE_KINDS = {"university", "company", "family", "vpn", "carrier_nat", "viral_prompt", "resproxy_benign", "ordinary"}
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def read_csv(bundle: Path, table: str) -> list[dict[str, str]]:
    with (bundle / f"{table}.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def exchanges(bundle: Path, columns: list[str] | None = None) -> list[dict[str, object]]:
    return pq.ParquetDataset(bundle / "exchanges").read(columns=columns).to_pylist()


def file_hashes(bundle: Path) -> dict[str, str]:
    return {str(p.relative_to(bundle)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(bundle.rglob("*")) if p.is_file()}


def ts(value: str) -> int:
    assert ISO_Z.match(value), value
    return epoch(value)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("tiny") / "bundle"
    return out, generate(out, "tiny", 11)


@pytest.fixture(scope="module")
def bundle(generated: tuple[Path, dict[str, Any]]) -> Path:
    return generated[0]


@pytest.fixture(scope="module")
def owner(bundle: Path) -> dict[str, str]:
    """account_id -> operator_id ('' for benign)."""
    return {r["account_id"]: r["operator_id"] for r in read_csv(bundle, "labels")}


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(bundle: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", "tiny", 11)
    generate(tmp_path / "other", "tiny", 12)
    assert file_hashes(tmp_path / "again") == file_hashes(bundle)
    other = file_hashes(tmp_path / "other")
    assert other.keys() == file_hashes(bundle).keys()
    assert all(other[name] != digest for name, digest in file_hashes(bundle).items() if name != "ip_intel.csv")


def test_every_table_has_exactly_the_contract_columns(bundle: Path) -> None:
    for table, columns in CONTRACT.items():
        with (bundle / f"{table}.csv").open(encoding="utf-8") as fh:
            assert next(csv.reader(fh)) == columns, table
    parts = sorted((bundle / "exchanges").glob("*.parquet"))
    assert parts
    for part in parts:
        assert pq.read_schema(part).names == EXCHANGE_COLUMNS


def test_values_obey_the_contract_rules(bundle: Path, owner: dict[str, str]) -> None:
    accounts = read_csv(bundle, "accounts")
    ids = [a["account_id"] for a in accounts]
    assert len(ids) == len(set(ids))
    for a in accounts:
        ts(a["created_at"])
        ipaddress.ip_address(a["signup_ip"])
        assert "@" in a["email"] and a["status"] in {"active", "suspended"}
    for p in read_csv(bundle, "payments"):
        assert p["account_id"] in owner and p["payment_id"].startswith("pmfp_")
        assert re.fullmatch(r"\d{6}", p["card_bin"]) and re.fullmatch(r"\d{4}", p["card_last4"])
        ts(p["first_seen"])
    for d in read_csv(bundle, "devices"):
        assert d["account_id"] in owner and ts(d["first_seen"]) <= ts(d["last_seen"])
    for row in read_csv(bundle, "ip_intel"):
        ipaddress.ip_network(row["network"])
        assert row["kind"] in {"residential", "mobile", "hosting", "proxy", "vpn", "tor", "education", "corporate"}
    for row in read_csv(bundle, "operators"):
        assert 0 <= float(row["confidence"]) <= 1 and row["indicator_value"]
    rows = exchanges(bundle)
    assert len({r["exchange_id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["account_id"] in owner
        ts(str(r["ts"]))
        ipaddress.ip_address(str(r["ip"]))
        assert int(r["input_tokens"]) >= 0 and int(r["output_tokens"]) >= 0 and r["prompt"]  # type: ignore[call-overload]


def test_labels_and_groups_cover_every_account_exactly_once(bundle: Path, owner: dict[str, str]) -> None:
    accounts = [a["account_id"] for a in read_csv(bundle, "accounts")]
    labels = [r["account_id"] for r in read_csv(bundle, "labels")]
    groups = read_csv(bundle, "groups")
    assert sorted(labels) == sorted(accounts) == sorted(g["account_id"] for g in groups)
    for g in groups:
        assert (g["group"] == "attack") == bool(owner[g["account_id"]])


def test_every_operator_and_every_hard_negative_kind_is_present(bundle: Path, owner: dict[str, str]) -> None:
    per_operator = Counter(o for o in owner.values() if o)
    assert set(per_operator) == set(OPERATOR_IDS) and len(per_operator) >= 4
    assert all(n >= 3 for n in per_operator.values())
    kinds = {g["group"].split(":")[0] for g in read_csv(bundle, "groups")} - {"attack"}
    assert kinds == HARD_NEGATIVE_KINDS


def test_attack_traffic_is_inside_the_campaign_window_and_jumps_to_the_new_model(
    generated: tuple[Path, dict[str, Any]], owner: dict[str, str]
) -> None:
    bundle, summary = generated
    operator_clients = {fp for clients in OPERATOR_CLIENTS.values() for _, fp in clients}
    rows = [r for r in exchanges(bundle) if owner[str(r["account_id"])]]
    attack = [r for r in rows if r["client_fingerprint"] in operator_clients]
    assert len(attack) == summary["attack_exchanges"]
    # the only other rows of attack accounts are the rightful owners' use of stolen accounts
    past = [r for r in rows if r["client_fingerprint"] not in operator_clients]
    assert past and all(owner[str(r["account_id"])] == "op-reseller" and ts(str(r["ts"])) < CAMPAIGN_START for r in past)
    assert len(past) == summary["stolen_account_history_exchanges"]
    times = [ts(str(r["ts"])) for r in attack]
    assert all(CAMPAIGN_START <= t <= CAMPAIGN_END for t in times)
    after = [r["model"] for r, t in zip(attack, times, strict=True) if t >= MODEL_RELEASE + 24 * 3600]
    assert after and all(m == NEW_MODEL for m in after)
    assert all(r["model"] != NEW_MODEL for r, t in zip(attack, times, strict=True) if t < MODEL_RELEASE)


def test_reseller_uses_old_accounts_with_a_synchronised_onset(bundle: Path, owner: dict[str, str]) -> None:
    reseller = {a["account_id"]: a for a in read_csv(bundle, "accounts") if owner[a["account_id"]] == "op-reseller"}
    op = next(o for o in OPERATORS if o.operator_id == "op-reseller")
    assert all(ts(a["created_at"]) < epoch("2024-12-01T00:00:00Z") for a in reseller.values())
    relay = {ip for ip in (str(r["indicator_value"]) for r in read_csv(bundle, "operators") if r["indicator_type"] == "ip")}
    first: dict[str, int] = {}
    for r in exchanges(bundle, ["account_id", "ts", "ip"]):
        if str(r["account_id"]) in reseller and ts(str(r["ts"])) >= CAMPAIGN_START:
            first[str(r["account_id"])] = min(first.get(str(r["account_id"]), 2**62), ts(str(r["ts"])))
            assert str(r["ip"]).rsplit(".", 1)[0] == next(iter(relay)).rsplit(".", 1)[0]  # all through the relay
    assert set(first) == set(reseller)
    assert all(op.start <= t <= op.start + op.burst_len_h * 3600 for t in first.values())


def test_only_some_operators_are_known_and_their_indicators_occur_in_their_traffic(bundle: Path, owner: dict[str, str]) -> None:
    indicators = read_csv(bundle, "operators")
    listed = {r["operator_id"] for r in indicators}
    assert listed and listed < set(OPERATOR_IDS)
    accounts = read_csv(bundle, "accounts")
    rows = exchanges(bundle, ["account_id", "ip", "client_fingerprint", "prompt"])
    seen: dict[str, set[str]] = {
        "payment": {p["payment_id"] for p in read_csv(bundle, "payments") if owner[p["account_id"]]},
        "card_bin": {p["card_bin"] for p in read_csv(bundle, "payments") if owner[p["account_id"]]},
        "device": {d["device_id"] for d in read_csv(bundle, "devices") if owner[d["account_id"]]},
        "email_domain": {a["email"].split("@")[1] for a in accounts if owner[a["account_id"]]},
        "ip": {str(r["ip"]) for r in rows if owner[str(r["account_id"])]},
        "client_fingerprint": {str(r["client_fingerprint"]) for r in rows if owner[str(r["account_id"])]},
        "asn": {i["asn"] for i in read_csv(bundle, "ip_intel")},
    }
    for row in indicators:
        kind, value = row["indicator_type"], row["indicator_value"]
        if kind == "network":
            net = ipaddress.ip_network(value)
            assert any(ipaddress.ip_address(ip) in net for ip in seen["ip"]), value
        elif kind == "prompt_template":
            assert any(value in str(r["prompt"]) for r in rows if owner[str(r["account_id"])] == row["operator_id"])
        else:
            assert value in seen[kind], (kind, value)


def test_linking_signals_and_hard_negatives_look_as_designed(bundle: Path, owner: dict[str, str]) -> None:
    group = {g["account_id"]: g["group"] for g in read_csv(bundle, "groups")}
    accounts_per_card: dict[str, set[str]] = defaultdict(set)
    for p in read_csv(bundle, "payments"):
        accounts_per_card[p["payment_id"]].add(p["account_id"])
    hydra_cards = {c for c, accts in accounts_per_card.items() if any(owner[a] == "op-hydra" for a in accts)}
    hydra = sum(1 for o in owner.values() if o == "op-hydra")
    assert len(hydra_cards) < hydra / 3  # a handful of virtual cards behind many accounts
    company_cards = [accts for accts in accounts_per_card.values() if any(group[a].startswith("company:") for a in accts)]
    assert any(len(accts) > 1 for accts in company_cards)
    emails = sorted(a["email"] for a in read_csv(bundle, "accounts") if owner[a["account_id"]] == "op-dcfarm")
    assert all(re.fullmatch(r"dev\.ops\d{4}@throwmail\.example", e) for e in emails)
    rows = exchanges(bundle, ["account_id", "prompt", "ip"])
    viral = {str(r["account_id"]) for r in rows if r["prompt"] == VIRAL_PROMPT}
    assert len(viral) >= 2 and all(group[a] == "viral_prompt" for a in viral)
    edu = [str(r["prompt"]) for r in rows if owner[str(r["account_id"])] == "op-edufarm"]
    assert sum("Think step by step" in p for p in edu) > len(edu) / 2 > 0
    nat_ips = {str(r["ip"]) for r in rows if group[str(r["account_id"])] == "carrier_nat"}
    nat_users = {str(r["account_id"]) for r in rows if group[str(r["account_id"])] == "carrier_nat"}
    assert len(nat_users) > len(nat_ips)


def test_exchanges_are_written_in_row_groups_of_bounded_size(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "chunked"
    summary = generate(out, "tiny", 11, chunk_rows=400, part_rows=1500)
    parts = sorted((out / "exchanges").glob("*.parquet"))
    assert len(parts) > 1 and summary["exchange_parts"] == len(parts)
    groups = [pq.ParquetFile(p).metadata.row_group(i).num_rows for p in parts for i in range(pq.ParquetFile(p).metadata.num_row_groups)]
    assert len(groups) > 5 and max(groups) == 400 and sum(groups) == summary["counts"]["exchanges"]
    # how the stream is cut into row groups changes nothing in the data
    assert pq.ParquetDataset(out / "exchanges").read().equals(pq.ParquetDataset(bundle / "exchanges").read())


def test_withheld_prompts_carry_their_md5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(synthetic.SCALES, "tiny", dataclasses.replace(synthetic.SCALES["tiny"], prompt_text_every=5))
    generate(tmp_path / "hashed", "tiny", 11)
    table = pq.ParquetDataset(tmp_path / "hashed" / "exchanges").read()
    assert table.column_names == [*EXCHANGE_COLUMNS, "prompt_hash"]
    kept = [r for r in table.to_pylist() if r["prompt"] is not None]
    assert 0 < len(kept) < table.num_rows / 2
    assert all(r["prompt_hash"] == hashlib.md5(r["prompt"].encode()).hexdigest() for r in kept)
    assert pc.all(pc.is_valid(table.column("prompt_hash"))).as_py()


def test_cli_prints_the_summary_json(tmp_path: Path) -> None:
    from app.cli import main

    result = CliRunner().invoke(main, ["generate", str(tmp_path / "cli"), "--scale", "tiny", "--seed", "5"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["scale"] == "tiny" and summary["seed"] == 5 and summary["output"] == str((tmp_path / "cli").resolve())
    assert summary["counts"]["accounts"] == len(read_csv(tmp_path / "cli", "accounts"))
    assert set(summary["accounts_per_operator"]) == set(OPERATOR_IDS)
    assert set(summary["hard_negative_groups"]) == HARD_NEGATIVE_KINDS
    assert datetime.fromisoformat(summary["campaign_window"][0].replace("Z", "+00:00")).timestamp() == CAMPAIGN_START


def test_hydra_volumes_are_round_robin_and_farm_signups_come_in_bursts(bundle: Path, owner: dict[str, str]) -> None:
    volumes = Counter(str(r["account_id"]) for r in exchanges(bundle, ["account_id"]))
    hydra = [volumes[a] for a, o in owner.items() if o == "op-hydra"]
    benign = [volumes[a] for a, o in owner.items() if not o and volumes[a]]
    assert max(hydra) - min(hydra) <= 1  # just under the same per-account limit
    assert max(benign) > 5 * min(benign)  # humans are heavy-tailed
    farm = sorted(ts(a["created_at"]) for a in read_csv(bundle, "accounts") if owner[a["account_id"]] == "op-dcfarm")
    gaps = [b - a for a, b in zip(farm, farm[1:], strict=False)]
    assert sum(g <= 180 for g in gaps) >= len(gaps) / 2  # most sign-ups minutes apart, in batches
