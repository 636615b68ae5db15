"""The evidence report a person reads: its first page says who, what, when, how much and why;
its tables show the strongest rows and the CSV beside it all of them; the redactor's scrub
(tests/security/test_redaction.py greps every redacted export)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from graph.export.manifest import verify_manifest
from graph.export.redact import Redactor
from graph.export.report import TOP_MEMBERS
from graph.export.run import export_graph
from graph.schema import Label, Rel
from graph.stores.embedded import EmbeddedStore
from tests.worlds.evidence import build_world, write_staging


@pytest.fixture()
def world(tmp_path: Path) -> tuple[EmbeddedStore, Path]:
    store = EmbeddedStore(None)
    build_world(store)
    store.upsert_nodes(Label.CLUSTER, [{
        "cluster_id": "c-1", "capability_profile": json.dumps({"reasoning": 0.62, "coding": 0.3, "other": 0.08}),
        "indicators": json.dumps([{"name": "template_concentration", "value": 0.91, "contribution": 0.11},
                                  {"name": "lockstep_activity", "value": 0.8, "contribution": 0.12}]),
        "stability": json.dumps({"payment": 0.5, "network": 1.0, "min": 0.5, "weakest": "payment"}),
        "families": ["network", "payment"],
    }])
    ws = tmp_path / "ws"
    write_staging(ws)
    return store, ws


def _first_page(md: str) -> str:
    return md.split("### Members")[0]


def test_the_first_page_says_who_what_when_how_much_and_why(world: tuple[EmbeddedStore, Path], tmp_path: Path) -> None:
    store, ws = world
    export_graph(store, tmp_path / "r", "report", cluster_ids=["c-1"], workspace=ws, degree_cap=50)
    md = (tmp_path / "r" / "report.md").read_text()
    first = _first_page(md)
    # who, how much, when, what
    assert ("4 member accounts sent 1,200 exchanges (50,000 input and 900,000 output tokens) between "
            "2025-04-22T10:00:00Z and 2025-06-01T00:00:00Z (40 days), mostly reasoning (62%)") in first
    assert "| capabilities targeted | reasoning 62%, coding 30%, other 8% |" in first
    # why: the indicators with their contributions, the stability per family
    assert "| lockstep_activity | 0.8 | 0.12 |" in first and "| template_concentration | 0.91 | 0.11 |" in first
    assert "| payment | 0.5 | partly rests on it |" in first and "| network | 1 | holds without it |" in first
    assert "Weakest without payment (0.5)." in first
    # the attribution, its rationale and who made it; the detector's suggestion with its indicators
    assert "Attributed to operator op-alpha (Alpha Lab) by alice at 2025-06-02T10:00:00Z, confidence 0.85." in first
    assert "Rationale: shared card pay-1 and hydra-proxy exit" in first
    assert "Detector suggestion: operator op-alpha (Alpha Lab) with confidence 0.8 (1 matching indicators)." in first
    # the picture and the strongest shared values
    assert "![The evidence graph: 4 members" in first and "(evidence-1.svg)" in first
    assert "| PaymentMethod | pay-1 | 3 | 3 | 2025-04-22T10:00:00Z | 2025-04-22T10:00:00Z |" in first
    assert first.index("Strongest shared values") > first.index("Evidence graph") > first.index("Attribution")
    svg = (tmp_path / "r" / "evidence-1.svg").read_text()
    assert svg.startswith("<svg ") and svg.count("<circle") >= 4 + 6 and "<script" not in svg
    page = (tmp_path / "r" / "report.html").read_text()
    assert page.count("<svg ") == 1 and "<figcaption>" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


def test_tables_show_the_strongest_rows_and_the_csv_beside_holds_them_all(tmp_path: Path) -> None:
    store = EmbeddedStore(None)
    build_world(store)
    extra = [f"acct-x{i:02d}" for i in range(TOP_MEMBERS + 5)]
    store.upsert_nodes(Label.ACCOUNT, [{"account_id": a, "exchanges": i} for i, a in enumerate(extra)])
    store.upsert_relationships(Rel.MEMBER_OF, Label.ACCOUNT, Label.CLUSTER, [{"start": a, "end": "c-1"} for a in extra])
    result = export_graph(store, tmp_path / "r", "report", cluster_ids=["c-1"], degree_cap=50)
    md = (tmp_path / "r" / "report.md").read_text()
    total = TOP_MEMBERS + 5 + 4
    assert f"### Members ({total})" in md
    assert f"The {TOP_MEMBERS} strongest of {total} members (by exchanges) are listed; members.csv beside this report holds them all." in md
    members_section = md.split("### Members")[1].split("###")[0]
    top = f"acct-x{TOP_MEMBERS + 4}"
    assert members_section.count("\n| acct-") == TOP_MEMBERS and f"| {top} |" in members_section  # most exchanges first
    with open(tmp_path / "r" / "members.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == total and {r["cluster"] for r in rows} == {"c-1"} and rows[0]["account"] == top
    assert verify_manifest(tmp_path / "r") == [] and (tmp_path / "r" / "members.csv") in result.files


def test_scrub_replaces_identifiers_and_pii_shapes_in_one_pass() -> None:
    store = EmbeddedStore(None)
    build_world(store)
    r = Redactor(salt=b"fixed", store=store)
    r.hash("Alpha Lab")
    text = ("Alpha Lab ran acct-c1 (and Account:acct-b2) via 192.0.2.1 and 2001:db8::7; mail x.y@z.example, "
            "call (415) 555-0199, card 5555-5555-5555-4444, see www.evil.example; at 2025-06-02T10:00:00Z, "
            "weight 0.85, 1,200 exchanges")
    out = r.scrub(text)
    assert out.startswith(r.hash("Alpha Lab") + " ran " + r.hash("acct-c1") + " (and Account:" + r.hash("acct-b2") + ")")
    assert f"via {r.hash('192.0.2.1')} and [ip]; mail [email], call [phone], card [card], see [url];" in out
    assert out.endswith("at 2025-06-02T10:00:00Z, weight 0.85, 1,200 exchanges")
    assert r.scrub(out) == out  # pseudonyms are not scrubbed again
