"""Evidence exports, each re-read and checked: graph files by networkx, STIX by a strict
parse, tables by pyarrow/csv, the report against its manifest; the cluster table's exact
columns; and that nothing raw survives redaction."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import networkx as nx
import pyarrow.parquet as pq
import pytest
import stix2

from graph.export.clusters import CSV_COLUMNS, cluster_table, write_clusters
from graph.export.graphfiles import write_gexf, write_graphml, write_json
from graph.export.html import render_html
from graph.export.manifest import MANIFEST_NAME, verify_manifest, write_manifest
from graph.export.redact import Redactor, redact_graph
from graph.export.run import GRAPH_FORMATS, export_graph
from graph.export.selection import EvidenceGraph, SelectionError, evidence_for, select
from graph.export.stix import build_bundle, indicator_pattern
from graph.export.tables import write_tables
from graph.schema import Label, Rel
from graph.stores.embedded import EmbeddedStore
from tests.worlds.evidence import (
    HUB_IP,
    add_lone_surrogates,
    build_world,
    raw_identifiers,
    write_staging,
)


@pytest.fixture(scope="module")
def world() -> EmbeddedStore:
    """The evidence world, hostile prompts and all, with lone surrogates too (the embedded
    store holds them): every export below writes them."""
    store = EmbeddedStore(None)
    build_world(store)
    add_lone_surrogates(store)
    return store


@pytest.fixture(scope="module")
def evidence(world: EmbeddedStore) -> EvidenceGraph:
    return evidence_for(world, degree_cap=50)


# ---- selection --------------------------------------------------------------------------------


def test_selection_defaults_to_flagged_clusters_and_leaves_hubs_out(evidence: EvidenceGraph) -> None:
    assert evidence.cluster_ids == ["c-1", "c-2"]
    refs = {n.ref for n in evidence.nodes}
    assert ("Account", "acct-a1") in refs and ("Account", "acct-c1") not in refs
    assert ("IP", HUB_IP) not in refs and evidence.hubs[("IP", HUB_IP)] == 56
    assert {("Operator", "op-alpha"), ("Indicator", "asn:64500"), ("Network", "203.0.113.0/24")} <= refs
    assert not any(r.type == Rel.ABOUT for r in evidence.relationships)
    assert {(r.start[1], r.end[1]) for r in evidence.relationships if r.type == Rel.LINKED} == {
        ("acct-a1", "acct-a2"), ("acct-a2", "acct-a3"), ("acct-a3", "acct-b1"), ("acct-b1", "acct-b2")}


def test_selection_by_cluster_and_operator(world: EmbeddedStore) -> None:
    assert evidence_for(world, ["c-3"]).cluster_ids == ["c-3"]
    assert evidence_for(world, operator_id="op-beta").cluster_ids == ["c-2"]
    with pytest.raises(SelectionError, match="no cluster 'nope'"):
        evidence_for(world, ["nope"])
    with pytest.raises(SelectionError, match="no operator"):
        evidence_for(world, operator_id="nope")


def test_full_export_is_one_hop_of_everything_and_says_how_big(world: EmbeddedStore, tmp_path: Path) -> None:
    full = select(world, ["c-1"], degree_cap=50)
    refs = {n.ref for n in full.nodes}
    assert full.full and {("PromptTemplate", "tpl-hi"), ("IP", "192.0.2.1"), ("ASN", "64500")} <= refs
    heard: list[str] = []
    result = export_graph(world, tmp_path / "full.json", "json", cluster_ids=["c-1"], full=True, degree_cap=50,
                          phase=heard.append)
    assert result.full and result.nodes == len(full.nodes) and result.relationships == len(full.relationships)
    assert f"full export: {len(full.nodes)} nodes, {len(full.relationships)} relationships, about " in "\n".join(heard)
    assert heard.index(next(h for h in heard if h.startswith("full export"))) < heard.index("writing json")


# ---- graph files ------------------------------------------------------------------------------


def test_graphml_reads_back_with_the_same_counts(evidence: EvidenceGraph, tmp_path: Path) -> None:
    g = nx.read_graphml(write_graphml(evidence, tmp_path / "g.graphml"))
    assert g.number_of_nodes() == len(evidence.nodes)
    assert g.number_of_edges() == len(evidence.relationships)
    node = g.nodes["Account:acct-a3"]
    assert node["kind"] == "Account" and node["key"] == "acct-a3" and node["created_at"] == "2025-04-22T10:02:00Z"
    linked = [d for _, _, d in g.edges(data=True) if d["type"] == "LINKED"]
    assert {d["families"] for d in linked} >= {"payment;network", "device"}


def test_gexf_reads_back_with_time_spans(evidence: EvidenceGraph, tmp_path: Path) -> None:
    path = write_gexf(evidence, tmp_path / "g.gexf")
    g = nx.read_gexf(path)
    assert g.number_of_nodes() == len(evidence.nodes)
    assert g.number_of_edges() == len(evidence.relationships)
    text = path.read_text()
    assert 'mode="dynamic"' in text and 'start="2025-04-22T10:00:00Z"' in text
    assert g.nodes["Cluster:c-1"]["start"] == "2025-04-22T10:00:00Z"


def test_node_link_json_reads_back(evidence: EvidenceGraph, tmp_path: Path) -> None:
    data = json.loads(write_json(evidence, tmp_path / "g.json").read_text())
    g = nx.node_link_graph(data, edges="edges")
    assert g.number_of_nodes() == len(evidence.nodes)
    assert g.number_of_edges() == len(evidence.relationships)
    assert g.nodes["Cluster:c-1"]["score"] == 0.9
    assert any(d.get("families") == ["payment", "network"] for _, _, d in g.edges(data=True))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_read_back(evidence: EvidenceGraph, tmp_path: Path, fmt: str) -> None:
    files = write_tables(evidence, tmp_path / fmt, fmt)
    counts: dict[str, int] = {}
    for path in files:
        if fmt == "csv":
            with open(path, newline="") as fh:
                counts[path.stem] = len(list(csv.DictReader(fh)))
        else:
            counts[path.stem] = pq.read_table(path).num_rows
    assert sum(v for k, v in counts.items() if k.startswith("nodes_")) == len(evidence.nodes)
    assert sum(v for k, v in counts.items() if k.startswith("edges_")) == len(evidence.relationships)
    assert counts["nodes_Account"] == sum(1 for n in evidence.nodes if n.label == Label.ACCOUNT)


# ---- STIX -------------------------------------------------------------------------------------


def test_stix_bundle_parses_strictly_and_maps_the_evidence(evidence: EvidenceGraph) -> None:
    text = build_bundle(evidence).serialize()
    bundle = stix2.parse(text, allow_custom=False)
    by_type: dict[str, list] = {}
    for obj in bundle.objects:
        by_type.setdefault(obj.type, []).append(obj)
    groupings = {g.name: g for g in by_type["grouping"]}
    assert set(groupings) == {"Sybilscope cluster c-1", "Sybilscope cluster c-2"}
    assert all(g.context == "suspicious-activity" for g in groupings.values())
    assert {i.name for i in by_type["intrusion-set"]} == {"Alpha Lab", "Beta Group"}
    infra = {i.infrastructure_types[0] for i in by_type["infrastructure"]}
    assert infra == {"anonymization", "botnet"}
    assert {u.user_id for u in by_type["user-account"]} == {"acct-a1", "acct-a2", "acct-a3", "acct-a4", "acct-b1", "acct-b2", "acct-b3"}
    patterns = {i.pattern for i in by_type["indicator"]}
    assert "[ipv4-addr:value = '203.0.113.7']" in patterns and "[autonomous-system:number = 64500]" in patterns
    timed = [r for r in by_type["relationship"] if "start_time" in r and "stop_time" in r]
    assert timed and all(r.stop_time > r.start_time for r in timed)
    ids = {o.id for o in bundle.objects}
    c1 = groupings["Sybilscope cluster c-1"]
    assert set(c1.object_refs) <= ids
    members = {o.id for o in by_type["user-account"] if o.user_id.startswith("acct-a")}
    assert members <= set(c1.object_refs)
    # exporting twice gives the same identifiers
    assert {o.id for o in build_bundle(evidence).objects} == ids


def test_indicator_patterns_quote_values() -> None:
    assert indicator_pattern("email_domain", "x'y.test") == "[domain-name:value = 'x\\'y.test']"
    assert indicator_pattern("device", "dev-1") is None
    pattern = indicator_pattern("ip", "2001:db8::1")
    assert pattern is not None
    stix2.Indicator(pattern=pattern, pattern_type="stix", valid_from="2025-01-01T00:00:00Z")


# ---- HTML -------------------------------------------------------------------------------------


def test_html_inlines_everything_and_escapes_identifiers(world: EmbeddedStore, tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    build_world(store)
    evil = "acct-</script><script>alert(1)</script>"
    store.upsert_relationships(Rel.MEMBER_OF, Label.ACCOUNT, Label.CLUSTER, [{"start": evil, "end": "c-1"}])
    page = render_html(select(store, ["c-1"]))
    lower = page.lower()
    assert "<script src=" not in lower and "<link" not in lower
    assert "vis.Network" in page and "</script><script>alert(1)" not in page


# ---- report and manifest -----------------------------------------------------------------------


def test_report_names_source_rows_attribution_and_audit(world: EmbeddedStore, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write_staging(ws)
    result = export_graph(world, tmp_path / "report", "report", cluster_ids=["c-1"], workspace=ws, degree_cap=50)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "payments.csv row 1 (payments, 2025-04-22T10:00:00Z; account acct-a1)" in md
    assert "exchanges.jsonl row 1 (exchanges" in md and "… and" not in md.split("acct-a2 — acct-a3")[1]
    assert "Rationale: shared card pay-1 and hydra-proxy exit" in md
    assert "| 2025-06-02T10:00:00Z | alice | attribute |" in md and "acct-a1 pays with pay-1" in md
    assert "0.9" in md and "| size | 4 |" in md
    page = (tmp_path / "report" / "report.html").read_text()
    assert "<td>alice</td>" in page and "payments.csv row 2" in page
    names = {p.name for p in result.files}
    assert names == {"report.md", "report.html", "evidence-1.svg", "graph.json", "graph.html", MANIFEST_NAME,
                     "members.csv", "shared_values.csv", "templates.csv", "links.csv", "shares_infrastructure.csv",
                     "audit.csv", "notes.csv"}
    assert verify_manifest(tmp_path / "report") == []
    (tmp_path / "report" / "graph.json").write_text("{}")
    assert verify_manifest(tmp_path / "report") == ["changed: graph.json"]


def test_report_caps_source_rows_and_counts_the_rest(world: EmbeddedStore, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write_staging(ws)
    export_graph(world, tmp_path / "r", "report", cluster_ids=["c-2"], workspace=ws, degree_cap=50)
    md = (tmp_path / "r" / "report.md").read_text()
    assert "devices.csv row 2 (devices; account acct-b1)" in md


def test_manifest_flags_missing_and_unlisted_files(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b")
    write_manifest(tmp_path)
    assert verify_manifest(tmp_path) == []
    (tmp_path / "a.txt").unlink()
    (tmp_path / "c.txt").write_text("c")
    assert sorted(verify_manifest(tmp_path)) == ["missing: a.txt", "not in manifest: c.txt"]


# ---- redaction --------------------------------------------------------------------------------


def test_no_raw_identifier_survives_any_redacted_export(world: EmbeddedStore, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write_staging(ws)
    raw = raw_identifiers()
    written: list[Path] = []
    for fmt in GRAPH_FORMATS:
        out = tmp_path / f"redacted-{fmt}"
        result = export_graph(world, out, fmt, redact=True, workspace=ws, degree_cap=50)
        written += result.files
    assert len(written) >= 15
    # whole-token search: a 16-hex-digit pseudonym may contain "4242" by chance, never as a token
    patterns = {r: re.compile(rb"(?<![0-9A-Za-z])" + re.escape(r.encode()) + rb"(?![0-9A-Za-z])") for r in raw}
    for path in written:
        data = path.read_bytes()
        leaked = [r for r, pattern in patterns.items() if pattern.search(data)]
        assert not leaked, f"{path.name} shows {leaked}"
    # the same exports without --redact do show them, so the check above can fail
    plain = export_graph(world, tmp_path / "plain.json", "json", degree_cap=50)
    text = plain.files[0].read_text()
    assert all(r in text for r in ("acct-a1", "pay-1", "203.0.113.7", "op-alpha"))


def test_redaction_is_consistent_within_an_export_and_drops_email_and_billing(evidence: EvidenceGraph) -> None:
    r = Redactor(salt=b"fixed-for-the-test")
    red = redact_graph(evidence, r)
    assert not any(n.label == Label.EMAIL_DOMAIN for n in red.nodes)
    assert not any(rel.type == Rel.HAS_EMAIL_DOMAIN for rel in red.relationships)
    a1 = r.hash("acct-a1")
    account = next(n for n in red.nodes if n.ref == ("Account", a1))
    assert "email_shape" not in account.props and "email_hash" not in account.props
    assert account.props["signup_ip"] == r.hash("203.0.113.7")
    assert ("IP", r.hash("203.0.113.7")) in {n.ref for n in red.nodes}
    pay = next(n for n in red.nodes if n.label == Label.PAYMENT_METHOD)
    assert not {"card_bin", "card_last4", "billing_country", "billing_name_hash"} & set(pay.props)
    linked = next(x for x in red.relationships if x.type == Rel.LINKED and x.start == ("Account", a1))
    reasons = json.loads(linked.props["reasons"])
    assert reasons[0]["entity"] == {"label": "PaymentMethod", "key": r.hash("pay-1")}
    assert Redactor().hash("acct-a1") != a1  # a fresh salt each export


# ---- cluster table ------------------------------------------------------------------------------


def test_cluster_csv_has_exactly_the_contract_columns(world: EmbeddedStore, tmp_path: Path) -> None:
    path = tmp_path / "clusters.csv"
    assert write_clusters(world, path, "csv") == 8
    lines = path.read_text().splitlines()
    assert lines[0] == "cluster_id,account_id,score,flagged,operator_id"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_account = {r["account_id"]: r for r in rows}
    assert by_account["acct-a1"] == {"cluster_id": "c-1", "account_id": "acct-a1", "score": "0.9", "flagged": "true", "operator_id": "op-alpha"}
    assert by_account["acct-b2"]["operator_id"] == "op-alpha"  # strongest suggestion (0.5 over op-beta's 0.3)
    assert by_account["acct-c1"]["flagged"] == "false" and by_account["acct-c1"]["operator_id"] == ""


def test_confirmed_operator_beats_a_suggestion(tmp_path: Path) -> None:
    store = EmbeddedStore(None)
    build_world(store)
    store.upsert_relationships(Rel.ATTRIBUTED_TO, Label.CLUSTER, Label.OPERATOR,
                               [{"start": "c-2", "end": "op-beta", "confidence": 0.1, "rationale": "r", "by": "x", "at": "t"}])
    table = {c["cluster_id"]: c for c in cluster_table(store)}
    assert table["c-2"]["operator_id"] == "op-beta" and table["c-2"]["operator_source"] == "confirmed"


def test_cluster_json(world: EmbeddedStore, tmp_path: Path) -> None:
    path = tmp_path / "clusters.json"
    assert write_clusters(world, path, "json") == 3
    data = json.loads(path.read_text())["clusters"]
    assert data[0]["cluster_id"] == "c-1" and data[0]["members"] == ["acct-a1", "acct-a2", "acct-a3", "acct-a4"]
    assert data[0]["flagged"] is True and data[2]["operator_id"] == ""


def _world_sharing_with(n: int) -> EmbeddedStore:
    """The evidence world with ``n`` more clusters sharing infrastructure with c-1: the weakest
    of them flagged, the rest by falling weight (a proxy network's other customers)."""
    store = EmbeddedStore(None)
    build_world(store)
    store.upsert_nodes(Label.CLUSTER, [
        {"cluster_id": f"c-x{i:02d}", "score": 0.9 if i == n - 1 else 0.1, "flagged": i == n - 1, "size": 2, "status": "open"}
        for i in range(n)])
    store.upsert_relationships(Rel.SHARES_INFRASTRUCTURE, Label.CLUSTER, Label.CLUSTER, [
        {"start": "c-1", "end": f"c-x{i:02d}", "weight": round(0.9 - i * 0.01, 2), "families": ["network"],
         "values": json.dumps([{"label": "Network", "key": "net-1", "accounts": 9}])} for i in range(n)])
    return store


def test_report_lists_the_strongest_clusters_sharing_infrastructure_and_writes_them_all(tmp_path: Path) -> None:
    from graph.export.report import TOP_NEIGHBOURS

    n = TOP_NEIGHBOURS + 5
    store = _world_sharing_with(n)
    ws = tmp_path / "ws"
    write_staging(ws)
    export_graph(store, tmp_path / "r", "report", cluster_ids=["c-1"], workspace=ws, degree_cap=50)
    md = (tmp_path / "r" / "report.md").read_text()
    section = md.split(f"Other clusters sharing infrastructure ({n})", 1)[1].split("\n#", 1)[0]
    listed = re.findall(r"^\| (c-x\d\d) \|", section, flags=re.M)
    flagged = f"c-x{n - 1:02d}"
    assert listed == [flagged, *(f"c-x{i:02d}" for i in range(TOP_NEIGHBOURS - 1))]  # flagged first, then strongest
    assert f"The {TOP_NEIGHBOURS} strongest of {n} clusters sharing infrastructure are listed" in section
    with (tmp_path / "r" / "shares_infrastructure.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["cluster"] for r in rows] == ["c-1"] * n
    assert sorted(r["other cluster"] for r in rows) == [f"c-x{i:02d}" for i in range(n)]
    assert verify_manifest(tmp_path / "r") == []


def test_other_clusters_sit_outside_everything_with_captions_apart() -> None:
    from graph.evidence_style import view_scale
    from graph.export.layout import OUTER_LABEL_PX, evidence_layout

    graph = evidence_for(_world_sharing_with(60), ["c-1"], degree_cap=50)
    layout = evidence_layout(graph)
    outer = {ref: xy for ref, xy in layout.positions.items() if ref[0] == Label.CLUSTER.value and ref[1] != "c-1"}
    inner = [xy for ref, xy in layout.positions.items() if ref[0] not in (Label.CLUSTER.value, "Operator", "Indicator", "Hub")]
    assert len(outer) == 60
    reach = max(math.hypot(x, y) for x, y in inner)
    assert all(math.hypot(x, y) > reach for x, y in outer.values())
    apart = OUTER_LABEL_PX * view_scale(reach) * 0.99
    points = list(outer.values())
    closest = min(math.dist(a, b) for i, a in enumerate(points) for b in points[i + 1:])
    assert closest >= apart, closest  # on one arc at the top they were 0.25 rad apart: captions on top of each other
