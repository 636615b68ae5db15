"""The embedded store's file (graph.jsonl.gz) brings back exactly what was written, every
property type and hostile text included, and refuses a file that is not a whole graph."""

from __future__ import annotations

import gzip
import io
import json
import math
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from graph.schema import SchemaError
from graph.store import StoreError
from graph.stores import embedded_format
from graph.stores.embedded import GRAPH_FILE, EmbeddedStore
from graph.stores.embedded_format import GraphFileError, read_graph, write_graph
from tests.security.helpers import same

HOSTILE_TEXT = [
    "",
    "plain",
    "NUL\x00inside",
    "\x00",
    "bell\x07 backspace\x08 esc\x1b[31mred\x1b[0m del\x7f c1\x85\x9b",
    "line\nfeed\rcarriage\ttab\x0bvtab\x0cff",
    "sep\u2028para\u2029 bom\ufeff nonchar\uffff\ufffe bidi\u202eevil\u202c zw\u200b",
    'quote" backslash\\ slash/ \\u0000 literally',
    "Zürich ✓ 東京 \U0001f600 \U0010ffff",
    "a pair kept as two code points: \ud83d\ude00",
    "lone \ud800 high and \udfff low",
    "x" * 200_000,
]

# name -> value: every type the schema allows, at its edges
PROPERTIES: dict[str, Any] = {
    "int_zero": 0,
    "int_neg": -1,
    "int_2_53_plus_1": 2**53 + 1,
    "int_max": 2**63 - 1,
    "int_min": -(2**63),
    "float": 0.1,
    "float_neg_zero": -0.0,
    "float_max": 1.7976931348623157e308,
    "float_tiny": 5e-324,
    "float_2_53_plus_2": float(2**53 + 2),
    "float_inf": math.inf,
    "float_neg_inf": -math.inf,
    "float_nan": math.nan,
    "float_whole": 3.0,
    "true": True,
    "false": False,
    "list_empty": [],
    "list_str": ["a", "\x00", "\ud800", ""],
    "list_int": [1, -(2**63), 2**63 - 1],
    "list_float": [1.5, math.nan, -0.0, math.inf],
    "list_bool": [True, False],
    **{f"text_{i}": text for i, text in enumerate(HOSTILE_TEXT)},
}


def roundtrip(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    buf = io.BytesIO()
    write_graph(graph, buf)
    buf.seek(0)
    return read_graph(buf, "test")


def test_every_property_type_and_hostile_text_come_back_exactly(tmp_path: Path) -> None:
    directory = tmp_path / "embedded"
    store = EmbeddedStore(directory)
    contract_safe = {k: v for k, v in PROPERTIES.items() if not _has_lone_surrogate(v)}
    store.upsert_nodes("Account", [{"account_id": "a1", **contract_safe}])
    store.upsert_relationships("USED_IP", "Account", "IP", [{"start": "a1", "end": "10.0.0.1", **contract_safe}])
    # what the contract refuses but the store's hooks take (a workspace written before the check)
    odd_key, odd_name = "acct-\x00nul-\ud800\n", "note\ud800\x00"
    beyond = {"huge": 2**80, odd_name: "lone \udfff", **PROPERTIES}
    store._upsert_nodes("Account", "account_id", [{"key": odd_key, "props": beyond}])
    store._upsert_relationships("USED_IP", "Account", "IP", [{"start": odd_key, "end": "\ud800", "props": beyond}])

    reopened = EmbeddedStore(directory)
    a1 = reopened.get_node("Account", "a1")
    assert a1 is not None and same(a1.props, contract_safe)
    assert same(reopened.graph.nodes[("Account", odd_key)], beyond)
    rels = {r.end[1]: r.props for r in reopened.iter_relationships("USED_IP")}
    assert same(rels["10.0.0.1"], contract_safe) and same(rels["\ud800"], beyond)
    pair = reopened.graph.nodes[("Account", odd_key)]["text_9"]
    assert pair.endswith("\ud83d\ude00") and len(pair) == len(HOSTILE_TEXT[9])  # not joined into one


def _has_lone_surrogate(value: Any) -> bool:
    items = value if isinstance(value, list) else [value]
    return any(isinstance(v, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in v) for v in items)


def test_the_contract_still_refuses_lone_surrogates() -> None:
    with pytest.raises(SchemaError):
        EmbeddedStore(None).upsert_nodes("Account", [{"account_id": "a1", "text": PROPERTIES["text_10"]}])


def test_the_graph_read_is_the_graph_the_public_api_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded_format, "CHUNK_ROWS", 2)  # many chunks of every kind
    built = nx.MultiDiGraph()
    built.add_node(("Account", "lonely"), country="DE")
    built.add_node(("IP", "unused"))
    for a, b, rel in [("a1", "a2", "SAME_DEVICE"), ("a1", "a2", "SHARED_PAYMENT"), ("a2", "a1", "SAME_DEVICE"),
                      ("a3", "a3", "SAME_DEVICE"), ("a3", "a1", "SHARED_PAYMENT")]:
        built.add_edge(("Account", a), ("Account", b), key=rel, weight=len(a + b))
    built.add_edge(("Account", "a1"), ("IP", "10.0.0.1"), key="USED_IP")
    read = roundtrip(built)
    assert nx.utils.graphs_equal(read, built)
    assert sorted(read.edges(keys=True, data=True)) == sorted(built.edges(keys=True, data=True))
    assert sorted(read.in_edges(("Account", "a1"), keys=True)) == sorted(built.in_edges(("Account", "a1"), keys=True))
    assert read.degree(("Account", "a3")) == built.degree(("Account", "a3")) == 3
    # and it behaves as a graph afterwards: the store's writes and deletes work on it
    for graph in (read, built):
        graph.remove_node(("Account", "a2"))
        graph.add_edge(("Account", "a3"), ("IP", "unused"), key="USED_IP")
        graph.remove_edges_from([(("Account", "a3"), ("Account", "a3"), "SAME_DEVICE")])
    assert nx.utils.graphs_equal(read, built)
    assert sorted(read.pred[("IP", "unused")]) == [("Account", "a3")]
    assert roundtrip(nx.MultiDiGraph()).number_of_nodes() == 0


def test_the_file_is_gzip_json_lines_with_a_header(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    store.upsert_relationships("USED_IP", "Account", "IP", [{"start": "a1", "end": "10.0.0.1", "count": 2}])
    lines = gzip.decompress((tmp_path / GRAPH_FILE).read_bytes()).splitlines()
    assert json.loads(lines[0]) == {"format": "sybilscope-embedded-graph", "version": 1, "nodes": 2, "relationships": 1}
    assert [json.loads(line)[0] for line in lines[1:]] == ["N", "N", "R"]


def _file(tmp_path: Path, lines: list[Any]) -> Path:
    directory = tmp_path / "embedded"
    directory.mkdir()
    text = "".join(json.dumps(line) + "\n" for line in lines).encode()
    (directory / GRAPH_FILE).write_bytes(gzip.compress(text))
    return directory


HEADER = {"format": "sybilscope-embedded-graph", "version": 1, "nodes": 1, "relationships": 0}


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ([{"format": "something-else"}], "header"),
        ([{**HEADER, "version": 2}], "version 2; this sybilscope reads version 1"),
        ([HEADER], "holds 0 nodes and 0 relationships where its header promises 1 and 0"),
        ([HEADER, ["N", "Account", [["a1", {}], ["a1", {}]]]], "repeated node row"),
        ([HEADER, ["N", "Account", [["a1", ["not", "props"]]]]], "bad or repeated node row"),
        ([{**HEADER, "relationships": 1}, ["N", "Account", [["a1", {}]]], ["R", "USED_IP", [[0, -1, {}]]]], "bad USED_IP row"),
        ([{**HEADER, "relationships": 1}, ["N", "Account", [["a1", {}]]], ["R", "USED_IP", [[0, 5, {}]]]], "IndexError"),
        ([HEADER, ["X", "Account", []]], "unknown chunk kind"),
        ([HEADER, ["N", 7, [["a1", {}]]]], "names 7 as its label"),
    ],
    ids=["format", "version", "short", "repeated", "props", "negative", "index", "kind", "label"],
)
def test_a_file_that_is_not_a_whole_graph_is_refused(tmp_path: Path, lines: list[Any], reason: str) -> None:
    directory = _file(tmp_path, lines)
    with pytest.raises(GraphFileError, match="is not a readable embedded graph") as refused:
        EmbeddedStore(directory)
    assert str(directory / GRAPH_FILE) in str(refused.value) and reason in str(refused.value)


def test_a_file_cut_short_or_garbled_is_refused(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    store.upsert_nodes("Account", [{"account_id": f"a{i}", "text": f"row {i} " * 50} for i in range(2000)])
    path = tmp_path / GRAPH_FILE
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(GraphFileError, match="corrupt or cut short"):
        EmbeddedStore(tmp_path)
    with pytest.raises(StoreError, match="corrupt or cut short"):  # and for the instance already open
        store.get_node("Account", "a1")
    path.write_bytes(b"\x80\x05not gzip at all")
    with pytest.raises(GraphFileError, match="corrupt or cut short"):
        EmbeddedStore(tmp_path)
