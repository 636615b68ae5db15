"""Exports stay valid on any text: every format written from worlds whose prompts hold control
characters, NULs, ANSI escapes, non-characters, bidi overrides, lone surrogates and a 1 MB
paste, then read back by a strict reader of that format.

Two worlds: a hostile bundle loaded through the real loader and detection (on each store), and
the hand-built evidence world (tests/worlds/evidence.py, whose templates hold the hostile
prompts) with lone surrogates added, which only the embedded store can hold.
"""

from __future__ import annotations

import csv
import doctest
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import networkx as nx
import pyarrow.parquet as pq
import pytest
import stix2
from markdown_it import MarkdownIt

import graph.export.graphfiles as graphfiles
import graph.export.html as html_export
import graph.export.text as text
from graph.detection import run_detection
from graph.export.clusters import write_clusters
from graph.export.graphfiles import xml_attr, xml_escape_text
from graph.export.manifest import verify_manifest
from graph.export.report import REPORT_TEXT_CHARS, to_html, to_markdown
from graph.export.run import export_graph
from graph.export.text import clean_key, csv_text, display_text, md_text, utf8_text, xml_text
from graph.schema import Label, Rel
from graph.settings import Settings
from graph.store import GraphStore
from graph.stores.embedded import EmbeddedStore
from loaders.load import load_bundle
from tests.worlds.bundles import write_bundle
from tests.worlds.evidence import (
    HOSTILE_PROMPT,
    LONE_SURROGATE_PROMPT,
    LONG_PASTE,
    add_lone_surrogates,
    build_world,
    write_staging,
)

RAW_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # C0 but tab, LF, CR; DEL; C1
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
HOSTILE_CHARS = [
    *map(chr, range(0x00, 0x20)), *map(chr, range(0x7F, 0xA0)), "\ud800", "\udbff", "\udc00", "\udfff",
    "\ufffe", "\uffff", "\ufdd0", "\U0001fffe", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)),
]
# What the loaded bundle's accounts send: one prompt per kind of trouble. A lone surrogate is
# left out: the loader quarantines such a JSONL line as malformed and then fails writing the
# quarantine record (see the report to the lead); the evidence world below carries them instead.
BUNDLE_PROMPTS = [
    "Explain step by step\x0b the vertical tab",
    "a NUL\x00 in the middle",
    "colour \x1b[31mred\x1b[0m and \x1b]8;;http://evil\x07link\x1b]8;;\x07",
    "non-characters \ufffe and \uffff here",
    "right-to-left \u202eevil\u202c override and \u2066isolate\u2069",
    "C1 \x85 next line, \x9b CSI and DEL \x7f",
    "Windows\r\nline ends\rand a lone CR",
    "big paste: " + "0123456789" * 100_000,
]
# Control characters in an identifier quarantine its row (tests/security/test_input_odd.py); bidi
# overrides and isolates are not control characters and reach the graph.
HOSTILE_ACCOUNT = "acct-5\u202e\u2066x"
ACCOUNTS = [f"acct-{i}" for i in range(5)] + [HOSTILE_ACCOUNT]
EXAMPLE_KEEP = 2000  # the loader keeps the first 2,000 characters of a template's example prompt


# ---- the rules themselves ----------------------------------------------------------------------


def test_the_text_module_examples_hold() -> None:
    for module in (text, html_export, graphfiles):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


@pytest.mark.parametrize("char", HOSTILE_CHARS, ids=lambda c: f"U+{ord(c):04X}")
def test_each_rule_leaves_only_what_its_format_carries(char: str) -> None:
    sample = f"a{char}b"
    xml = xml_text(sample)
    assert len(xml) == len(sample) and not NOT_XML.search(xml)
    element = ET.fromstring(f"<e v={quoteattr(xml)}>{escape(xml)}</e>".encode())
    assert element.get("v") == xml and element.text == xml.replace("\r", "\n")
    ours = ET.fromstring(f"<e v={xml_attr(xml)}>{xml_escape_text(xml)}</e>".encode())
    assert ours.get("v") == xml and ours.text == xml  # our writers keep CR in both places
    for rule in (utf8_text, csv_text):
        clean = rule(sample)
        assert len(clean) == len(sample)
        assert json.loads(json.dumps(clean, ensure_ascii=False).encode("utf-8").decode("utf-8")) == clean
    assert "\x00" not in csv_text(sample)
    shown = display_text(sample)
    shown.encode("utf-8")
    assert not RAW_CONTROL.search(shown) and not BIDI.search(shown) and "\r" not in shown
    code = ord(char)
    escaped = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    assert shown == (sample if char in "\t\n" else f"a{escaped}b")
    assert "\n" not in md_text(sample)


def test_a_surrogate_pair_is_joined_not_replaced() -> None:
    assert utf8_text("\ud83d\ude00") == "\U0001f600" == xml_text("\ud83d\ude00")
    assert display_text("\ud83d\ude00 \ud800") == "\U0001f600 \\ud800"


def test_markdown_and_html_reports_cannot_be_restructured_by_their_text() -> None:
    attack = ("# fake heading\n## another <img src=x onerror=alert(1)> [click](http://evil) "
              "&#8238;entity | cell\n- list\n\n1. item \x1b[2J\u202e")
    blocks = [("h1", "Report"), ("p", attack), ("table", ["a", "b"], [[attack, "x"]]), ("ul", [(attack, [attack])]),
              ("p", "x" * (REPORT_TEXT_CHARS + 10))]
    rendered = MarkdownIt("commonmark").enable("table").render(to_markdown(blocks))
    assert rendered.count("<h1>") == 1 and "<h2>" not in rendered
    assert "<img" not in rendered and "<a " not in rendered and "\u202e" not in rendered
    assert rendered.count("<table>") == 1 and rendered.count("<li>") == 2 and "<ol" not in rendered
    assert "\\x1b[2J" in rendered and "\\u202e" in rendered
    assert f"[{REPORT_TEXT_CHARS + 10:,} characters in all]" in rendered
    page = to_html(blocks)
    tags = _parse_html(page)
    assert tags.balanced and "img" not in tags.starts and "a" not in tags.starts
    assert not RAW_CONTROL.search(page) and not BIDI.search(page)


# ---- readers -----------------------------------------------------------------------------------


class _Tags(HTMLParser):
    """Tags and text of a page, and whether every opened element was closed in order."""

    VOID = {"meta", "br", "link", "img", "hr", "input"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.starts: list[str] = []
        self.ends: list[str] = []
        self.stack: list[str] = []
        self.balanced = True
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self.ends.append(tag)
        if not self.stack or self.stack.pop() != tag:
            self.balanced = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse_html(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    parser.balanced = parser.balanced and not parser.stack
    return parser


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _strict_json(path: Path) -> Any:
    data = json.loads(path.read_bytes().decode("utf-8"))
    for s in _strings(data):
        s.encode("utf-8")  # a lone surrogate, even as a \\ud800 escape, fails here
    return data


def _examples_in(graph: nx.Graph) -> set[str]:
    return {d["example"] for n, d in graph.nodes(data=True) if d.get("kind") == "PromptTemplate" and "example" in d}


def _check_human_page(path: Path) -> _Tags:
    page = path.read_bytes().decode("utf-8")
    assert not RAW_CONTROL.search(page), f"{path.name}: raw control character"
    assert not BIDI.search(page), f"{path.name}: raw bidi override"
    return _parse_html(page)


def _read_tables(directory: Path, fmt: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(directory.iterdir()):
        if fmt == "csv":
            raw = path.read_bytes()
            assert b"\x00" not in raw, path.name
            out[path.stem] = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
        else:
            out[path.stem] = pq.read_table(path).to_pylist()
    return out


def _check_every_format(store: GraphStore, ws: Path, out: Path, expected_examples: set[str]) -> dict[str, Any]:
    """Export the report (every graph format, the report, the manifest), CSV and Parquet and a
    redacted report, read each back strictly, and check the example prompts survived as each
    format's rule says."""
    report = export_graph(store, out / "report", "report", workspace=ws, degree_cap=50)
    assert verify_manifest(out / "report") == []
    for fmt, name in (("graphml", "graph.graphml"), ("gexf", "graph.gexf"), ("stix", "stix-bundle.json")):
        export_graph(store, out / "report" / name, fmt, workspace=ws, degree_cap=50)
    graphml = nx.read_graphml(out / "report" / "graph.graphml")
    gexf = nx.read_gexf(out / "report" / "graph.gexf")
    assert graphml.number_of_nodes() == gexf.number_of_nodes() == report.nodes
    assert graphml.number_of_edges() == gexf.number_of_edges() == report.relationships
    assert _examples_in(graphml) == {xml_text(e) for e in expected_examples}  # CR LF and lone CR kept
    assert _examples_in(gexf) == {xml_text(e) for e in expected_examples}
    node_link = _strict_json(out / "report" / "graph.json")
    assert {n["example"] for n in node_link["nodes"] if n.get("kind") == "PromptTemplate" and "example" in n} == {
        utf8_text(e) for e in expected_examples}
    bundle_text = (out / "report" / "stix-bundle.json").read_bytes().decode("utf-8")
    _strict_json(out / "report" / "stix-bundle.json")
    bundle = stix2.parse(bundle_text, allow_custom=False)
    assert any(o.type == "grouping" for o in bundle.objects)
    page = _check_human_page(out / "report" / "report.html")
    assert page.balanced and "table" in page.starts
    graph_page = _check_human_page(out / "report" / "graph.html")
    assert "script" in graph_page.starts
    md = (out / "report" / "report.md").read_bytes().decode("utf-8")
    assert not RAW_CONTROL.search(md) and not BIDI.search(md)
    tables = {}
    for fmt in ("csv", "parquet"):
        export_graph(store, out / fmt, fmt, workspace=ws, degree_cap=50)
        tables[fmt] = _read_tables(out / fmt, fmt)
    assert {r["example"] for r in tables["parquet"]["nodes_PromptTemplate"] if r["example"]} == {
        utf8_text(e) for e in expected_examples}
    assert {r["example"] for r in tables["csv"]["nodes_PromptTemplate"] if r["example"]} == {
        text.fit(csv_text(e), text.CSV_CELL_CHARS) for e in expected_examples}
    export_graph(store, out / "redacted", "report", redact=True, workspace=ws, degree_cap=50)
    assert verify_manifest(out / "redacted") == []
    _strict_json(out / "redacted" / "graph.json")
    nx.read_graphml(export_graph(store, out / "redacted.graphml", "graphml", redact=True, degree_cap=50).path)
    stix = export_graph(store, out / "redacted-stix.json", "stix", redact=True, degree_cap=50).path
    stix2.parse(stix.read_bytes().decode("utf-8"), allow_custom=False)
    _check_human_page(out / "redacted" / "report.html")
    assert "### Prompt templates shared by members" in md and "| example prompt |" in md
    redacted_md = (out / "redacted" / "report.md").read_bytes().decode("utf-8")
    assert "### Prompt templates shared by members" in redacted_md and "example prompt" not in redacted_md
    return {"graphml": graphml, "gexf": gexf, "json": node_link, "md": md, "report": page, "tables": tables}


# ---- a hostile bundle through the loader and detection -----------------------------------------


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _hostile_bundle(root: Path) -> Path:
    exchanges = [
        json.dumps({"exchange_id": f"ex-{i}", "account_id": account, "ts": f"2025-04-02T10:{i % 60:02d}:00Z",
                    "ip": "203.0.113.7", "prompt": prompt})
        for i, (account, prompt) in enumerate((a, p) for a in ACCOUNTS for p in BUNDLE_PROMPTS)
    ]
    return write_bundle(root, {
        "accounts.csv": _csv(["account_id", "created_at", "signup_ip", "org_id"],
                             [[a, "2025-04-01T00:00:00Z", "203.0.113.7", "org\u202efarm"] for a in ACCOUNTS]),
        "exchanges.jsonl": "\n".join(exchanges) + "\n",
        "payments.csv": _csv(["account_id", "payment_id"], [[a, "pay-1"] for a in ACCOUNTS]),
        "devices.csv": _csv(["account_id", "device_id"], [[a, "dev-1"] for a in ACCOUNTS]),
    })


def test_exports_of_a_loaded_hostile_bundle_read_back(store: GraphStore, tmp_path: Path) -> None:
    bundle = _hostile_bundle(tmp_path / "bundle")
    ws = tmp_path / "ws"
    settings = Settings({"workspace": str(ws), "hash_salt": "hostile-test"}, environ={})
    loaded = load_bundle(bundle, settings, store).to_json()
    assert loaded["tables"]["exchanges"] == {"read": 48, "loaded": 48, "quarantined": 0, "duplicates": 0}
    assert loaded["tables"]["accounts"]["loaded"] == len(ACCOUNTS)
    run_detection(store, settings)
    got = _check_every_format(store, ws, tmp_path / "out", {p[:EXAMPLE_KEEP] for p in BUNDLE_PROMPTS})
    assert got["graphml"].nodes[f"Account:{HOSTILE_ACCOUNT}"]["org_id"] == "org\u202efarm"
    assert {n["id"] for n in got["json"]["nodes"]} >= {f"Account:{HOSTILE_ACCOUNT}"}
    assert "acct-5\\u202e\\u2066x" in got["md"] and "colour \\x1b\\[31mred\\x1b\\[0m" in got["md"]
    assert "\\u202eevil\\u202c" in got["md"] and "[2,000 characters in all]" in "".join(got["report"].text)
    users = {r["key"] for r in got["tables"]["csv"]["nodes_Account"]}
    assert HOSTILE_ACCOUNT in users


# ---- the evidence world, lone surrogates added -------------------------------------------------


def test_exports_of_the_evidence_world_with_lone_surrogates_read_back(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    store = EmbeddedStore(ws / "embedded")
    build_world(store)
    add_lone_surrogates(store)
    write_staging(ws)
    got = _check_every_format(store, ws, tmp_path / "out", {HOSTILE_PROMPT, LONG_PASTE, LONE_SURROGATE_PROMPT})
    surrogates = utf8_text(LONE_SURROGATE_PROMPT)
    assert surrogates == "a lone \ufffd high and \ufffd low surrogate, and a pair \U0001f600"
    tpl = next(n for n in got["json"]["nodes"] if n["id"] == "PromptTemplate:tpl-hi")
    assert tpl["example"] == surrogates and any(k.startswith("note\ufffd~") for k in tpl)
    assert got["graphml"].nodes["PromptTemplate:tpl-code-1"]["example"] == LONG_PASTE
    md = got["md"]
    assert "pasted: a lone \\ud800 high and \\udfff low surrogate" in md
    assert "Think step by step\\x0b about this: NUL\\x00 here, \\x1b\\[31mred" in md
    assert "\\[1,000,000 characters in all\\]" in md and len(md) < 100_000
    # the Parquet table keeps the whole paste, the CSV cell fits a spreadsheet and says so
    code = next(r for r in got["tables"]["parquet"]["nodes_PromptTemplate"] if r["key"] == "tpl-code-1")
    assert code["example"] == LONG_PASTE
    cell = next(r for r in got["tables"]["csv"]["nodes_PromptTemplate"] if r["key"] == "tpl-code-1")["example"]
    assert len(cell) <= text.CSV_CELL_CHARS and cell.endswith("… [1,000,000 characters in all]")


def test_cluster_table_and_graph_files_name_a_hostile_account_alike(tmp_path: Path) -> None:
    store = EmbeddedStore(None)
    build_world(store)
    odd = "acct-\x00nul-\ud800"
    # the contract refuses such a key; the store's own hooks stand for a workspace written before
    store._upsert_nodes(Label.ACCOUNT.value, "account_id", [{"key": odd, "props": {"created_at": "2025-04-22T10:00:00Z"}}])
    store._upsert_relationships(Rel.MEMBER_OF.value, Label.ACCOUNT.value, Label.CLUSTER.value, [{"start": odd, "end": "c-1", "props": {}}])
    write_clusters(store, tmp_path / "c.csv", "csv")
    write_clusters(store, tmp_path / "c.json", "json")
    raw = (tmp_path / "c.csv").read_bytes()
    assert b"\x00" not in raw
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    in_csv = {r["account_id"] for r in rows if r["cluster_id"] == "c-1"}
    members = _strict_json(tmp_path / "c.json")["clusters"][0]["members"]
    as_json = clean_key(odd, utf8_text)
    assert as_json == "acct-\x00nul-\ufffd~" + as_json.rsplit("~", 1)[1] and as_json in members
    assert clean_key(odd, csv_text) in in_csv and len(in_csv) == 5
    export_graph(store, tmp_path / "g.json", "json", cluster_ids=["c-1"])
    assert f"Account:{as_json}" in {n["id"] for n in _strict_json(tmp_path / "g.json")["nodes"]}
