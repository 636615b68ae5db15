"""The size budget of the evidence exports, on a generated cluster shaped like the medium
world's 2,200-account op-hydra cluster (issue 13): every member on three folded proxy
networks, a device per 25 members and a card per 60, full account properties, about one link
per member with three reasons; at 2,200 members (drawn member by member) and at 5,000 and
11,000 (the seed world's clusters), where the evidence graph is folded into member groups
(graph/evidence_fold.py). Sizes are asserted, never times."""

from __future__ import annotations

import json
import re
from pathlib import Path

import networkx as nx
import pytest

from graph.evidence import MEMBER_GROUP
from graph.export.manifest import verify_manifest
from graph.export.run import REPORT_BUDGET, export_graph
from graph.schema import Label, Rel
from graph.settings import Settings
from graph.stores.embedded import EmbeddedStore

MEMBERS = 2_200
UNFOLDED_UP_TO = 2_400  # members: every graph file of an unfolded cluster this big fits its budget
SIZES = (MEMBERS, 5_000, 11_000)
TARGETS = {"graphml": 10e6, "gexf": 10e6, "json": 10e6, "html": 5e6, "stix": 10e6}
NETWORKS = ["181.24.0.0/18", "91.40.0.0/18", "73.8.0.0/18"]


def _ip(n: int, i: int) -> str:
    first, second = NETWORKS[n].split(".")[:2]
    return f"{first}.{second}.{i // 250}.{i % 250 + 1}"


def _hex(i: int, salt: str) -> str:
    return (f"{salt}{i:08x}" * 8)[:64]


def _big_cluster(store: EmbeddedStore, members: int = MEMBERS) -> list[str]:
    accounts = [f"acct-{i:07d}" for i in range(members)]
    rows = [{"account_id": a, "created_at": "2025-04-15T14:06:52Z", "email_domain": "quickpost.example",
             "email_hash": _hex(i, "e"), "email_shape": "word+digits", "phone_hash": _hex(i, "f"),
             "signup_ip": _ip(i % 3, i % 2000), "country": "AR", "verification": "phone", "status": "active",
             "exchanges": 313, "input_tokens": 92803, "output_tokens": 432084, "first_seen": "2025-04-22T00:45:41Z",
             "last_seen": "2025-06-05T21:29:33Z", "active_days": 45, "models": ["atlas-3", "atlas-3.5"],
             "ip_uses_by_kind": '{"proxy":313}', "capability_mix": '{"agentic":232,"coding":12,"other":69}',
             "cot_exchanges": 231} for i, a in enumerate(accounts)]
    ips = [_ip(n, i) for n in range(3) for i in range(2000)]
    with store.bulk():
        store.upsert_nodes(Label.ACCOUNT, rows)
        store.upsert_nodes(Label.CLUSTER, [{"cluster_id": "hydra", "score": 0.93, "flagged": True, "size": members,
                                            "families": ["network", "timing"]}])
        store.upsert_nodes(Label.NETWORK, [{"cidr": c, "kind": "proxy", "asn": "64603", "provider": "PeerMesh"} for c in NETWORKS])
        store.upsert_nodes(Label.IP, [{"ip": ip, "network": NETWORKS[k // 2000], "kind": "proxy"} for k, ip in enumerate(ips)])
        store.upsert_relationships(Rel.MEMBER_OF, Label.ACCOUNT, Label.CLUSTER, [
            {"start": a, "end": "hydra", "bridge": i % 2 == 0, "compromised": False, "onset": ""} for i, a in enumerate(accounts)])
        store.upsert_relationships(Rel.USED_IP, Label.ACCOUNT, Label.IP, [
            {"start": a, "end": _ip(n, (i * 7 + k) % 2000), "count": 6, "first_seen": "2025-04-22T00:45:41Z",
             "last_seen": "2025-06-05T15:39:26Z"}
            for i, a in enumerate(accounts) for n in range(3) for k in range(4)])
        for rel, label, prefix, per in ((Rel.USED_DEVICE, Label.DEVICE, "dev_", 25), (Rel.PAID_WITH, Label.PAYMENT_METHOD, "pmfp_", 60)):
            store.upsert_relationships(rel, Label.ACCOUNT, label, [
                {"start": a, "end": f"{prefix}{i // per:016x}", "first_seen": "2025-04-15T14:06:52Z",
                 "last_seen": "2025-06-05T00:00:00Z"} for i, a in enumerate(accounts)])
        store.upsert_relationships(Rel.LINKED, Label.ACCOUNT, Label.ACCOUNT, [
            {"start": accounts[i], "end": accounts[(i + 1) % members], "weight": 0.7915, "families": ["network", "timing"],
             "reasons": json.dumps([
                 {"family": "timing", "kind": "coactivity", "entity": {"label": "TimeBuckets", "key": "10800s"}, "accounts": 2,
                  "weight": 0.5213, "jaccard": 0.223, "shared_slots": 82, "active_slots": [220, 229], "slot": "3h bucket x prompt template"},
                 *({"family": "network", "kind": "shared_ip", "entity": {"label": "IP", "key": _ip(n, (i * 7) % 2000)}, "accounts": 16,
                    "weight": 0.35, "counts": [11, 7], "time_overlap": 1.0, "first_seen": "2025-04-22T18:56:10Z",
                    "last_seen": "2025-06-05T06:20:02Z"} for n in range(2))])}
            for i in range(members)])
    return accounts


@pytest.fixture(scope="module", params=SIZES, ids=[f"{n}-members" for n in SIZES])
def hydra(request: pytest.FixtureRequest) -> tuple[EmbeddedStore, list[str]]:
    store = EmbeddedStore(None)
    return store, _big_cluster(store, request.param)


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _listed(fmt: str, path: Path) -> set[str]:
    """The member accounts a graph file names: as nodes, or in its member groups' lists."""
    if fmt in ("graphml", "gexf"):
        graph = nx.read_graphml(path) if fmt == "graphml" else nx.read_gexf(path)
        ids = {n for n in graph.nodes if n.startswith("Account:")}
        for _n, data in graph.nodes(data=True):
            if data.get("kind") == MEMBER_GROUP:
                ids |= {f"Account:{a}" for a in str(data["account_ids"]).split(";")}
        return ids
    if fmt == "json":
        nodes = json.loads(path.read_text(encoding="utf-8"))["nodes"]
        return {n["id"] for n in nodes if n["id"].startswith("Account:")} | {
            f"Account:{a}" for n in nodes if n.get("kind") == MEMBER_GROUP for a in n["account_ids"]}
    text = path.read_text(encoding="utf-8")
    return {f"Account:{a}" for a in re.findall(r"acct-\d{7}", text)}


@pytest.mark.parametrize("fmt", sorted(TARGETS))
def test_every_member_is_in_each_graph_file_within_its_budget(hydra: tuple[EmbeddedStore, list[str]], fmt: str,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, accounts = hydra
    if len(accounts) == MEMBERS:  # the writers' own budget: the largest cluster still drawn member by member
        monkeypatch.setenv("SYBILSCOPE_EVIDENCE_FOLD_MEMBERS", str(UNFOLDED_UP_TO))
    result = export_graph(store, tmp_path / f"g.{fmt}", fmt, cluster_ids=["hydra"], degree_cap=20_000)
    size = _bytes(result.path)
    assert size <= TARGETS[fmt], f"{fmt}, {len(accounts):,} members: {size / 1e6:.1f} MB"
    assert {f"Account:{a}" for a in accounts} <= _listed(fmt, result.path)
    folded = len(accounts) > int(Settings()["evidence_fold_members"])
    if not folded:
        assert result.nodes >= len(accounts) and result.relationships >= 3 * len(accounts)
        return
    assert result.nodes < 1_000, "a folded graph has a bounded number of groups"
    text = result.path.read_text(encoding="utf-8")
    assert f"{len(accounts):,} members folded into" in text  # the file says it is folded
    if fmt == "graphml":
        assert "folded" in nx.read_graphml(result.path).graph
    elif fmt == "json":
        assert json.loads(text)["graph"]["fold"]["members"] == len(accounts)


def test_the_report_of_a_big_cluster_keeps_its_budget_and_says_what_it_left_out(hydra: tuple[EmbeddedStore, list[str]],
                                                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, accounts = hydra
    if len(accounts) == MEMBERS:
        monkeypatch.setenv("SYBILSCOPE_EVIDENCE_FOLD_MEMBERS", str(UNFOLDED_UP_TO))
    out = tmp_path / "report"
    export_graph(store, out, "report", cluster_ids=["hydra"], degree_cap=20_000)
    assert _bytes(out) <= REPORT_BUDGET, f"{len(accounts):,} members: {_bytes(out) / 1e6:.1f} MB"
    assert verify_manifest(out) == []
    names = {p.name for p in out.iterdir()}
    assert "graph.html" in names and "links.csv" in names
    md = (out / "report.md").read_text(encoding="utf-8")
    if len(accounts) == MEMBERS:
        assert "graph.json" not in names
        assert "would take this report over its size budget" in md and "export graph --format json" in md
    else:
        assert f"{len(accounts):,} members folded into" in md
    members = (out / "members.csv").read_text(encoding="utf-8")
    assert all(a in members for a in accounts)
    links = (out / "links.csv").read_text(encoding="utf-8")
    assert links.count("shared_ip") >= 2 * min(len(accounts), 2_500)
