"""The import files of the bulk path (loaders/graph_csv.py) and the choice of path
(loaders/graph_import.py), without a server: files are read back with an RFC 4180 reader.
That Neo4j's importer reads them the same way is tests/neo4j/test_bulk_import.py."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from graph.schema import Label, Rel, SchemaError
from graph.stores.embedded import EmbeddedStore
from loaders.graph_csv import ARRAY_DELIMITER, CsvFileGroup, CsvGraphSink, field_text, value_type
from loaders.graph_import import BATCHED, bulk_refusal, write_graph

HOSTILE = [
    'he said "hi", then left',
    "line one\nline two\r\nline three\rend",
    "tab\tand control \x01\x02\x1b and NUL \x00",
    "  leading and trailing spaces  ",
    '""',
    '"',
    ",,,",
    "\\\" backslash quote",
    "ünïcødé ✓ 漢字 🙂",
    "",
]


def _read(group: CsvFileGroup) -> tuple[list[str], list[list[str]]]:
    header = next(csv.reader(group.header.open(encoding="utf-8", newline="")))
    with group.data.open(encoding="utf-8", newline="") as fh:
        return header, list(csv.reader(fh))


def _raw_fields(group: CsvFileGroup) -> list[str]:
    """The data file's rows as they are written (quotes kept), one string per row."""
    return group.data.read_text(encoding="utf-8").split("\n")


def test_hostile_text_round_trips_quoted(tmp_path: Path) -> None:
    sink = CsvGraphSink(tmp_path / "csv")
    rows = [{"template_id": f"t{i}", "template": text, "example": text, "capability": "code", "cot": i % 2 == 0}
            for i, text in enumerate(HOSTILE)]
    assert sink.nodes(Label.PROMPT_TEMPLATE, rows) == len(HOSTILE)
    plan = sink.finish()
    [group] = plan.nodes
    header, data = _read(group)
    assert header == ["template_id:ID(PromptTemplate)", "template:string", "example:string",
                      "capability:string", "cot:boolean"]
    assert [r[1] for r in data] == HOSTILE
    assert [r[4] for r in data] == ["true" if i % 2 == 0 else "false" for i in range(len(HOSTILE))]
    assert group.multiline and group.rows == len(HOSTILE)
    assert plan.replay_count == 0
    # Every string is quoted, so the empty template is "" (a value) and never a missing field.
    assert '"t9","","","code",false' in group.data.read_text(encoding="utf-8")


def test_types_nulls_and_lists(tmp_path: Path) -> None:
    sink = CsvGraphSink(tmp_path / "csv")
    sink.nodes(Label.ACCOUNT, [
        {"account_id": "a1", "exchanges": 3, "score": 0.1, "country": None, "models": ["m-1", "m 2"]},
        {"account_id": "a2", "exchanges": -(2**63), "score": float("inf"), "country": "PT", "models": ["x"]},
    ])
    [group] = sink.finish().nodes
    header, data = _read(group)
    assert header == ["account_id:ID(Account)", "exchanges:long", "score:double", "country:string",
                      "models:string[]"]
    assert data[0] == ["a1", "3", "0.1", "", f"m-1{ARRAY_DELIMITER}m 2"]
    assert data[1] == ["a2", str(-(2**63)), "Infinity", "PT", "x"]
    # A missing value is an empty unquoted field, unlike an empty string.
    assert _raw_fields(group)[0] == f'"a1",3,0.1,,"m-1{ARRAY_DELIMITER}m 2"'


def test_values_csv_cannot_carry_are_replayed(tmp_path: Path) -> None:
    """Empty lists, elements holding the delimiter or empty, a type that differs from the
    column's: the field is left empty and the value MERGEd after the import."""
    sink = CsvGraphSink(tmp_path / "csv")
    sink.nodes(Label.ACCOUNT, [
        {"account_id": "a1", "exchanges": 1, "models": ["m"]},
        {"account_id": "a2", "exchanges": 2, "models": []},
        {"account_id": "a3", "exchanges": 2.5, "models": [f"a{ARRAY_DELIMITER}b"]},
        {"account_id": "a4", "exchanges": 4, "models": ["", "x"]},
    ])
    plan = sink.finish()
    _, data = _read(plan.nodes[0])
    assert [r[1:] for r in data] == [["1", "m"], ["2", ""], ["", ""], ["4", ""]]
    assert plan.replay_nodes == [(Label.ACCOUNT, [
        {"account_id": "a2", "models": []},
        {"account_id": "a3", "exchanges": 2.5, "models": [f"a{ARRAY_DELIMITER}b"]},
        {"account_id": "a4", "models": ["", "x"]},
    ])]


def test_repeats_are_replayed_and_referenced_nodes_created(tmp_path: Path) -> None:
    sink = CsvGraphSink(tmp_path / "csv")
    sink.nodes(Label.IP, [{"ip": "10.0.0.1", "kind": "a"}, {"ip": "10.0.0.1", "kind": "b"}])
    sink.relationships(Rel.USED_IP, Label.ACCOUNT, Label.IP, [
        {"start": "acc1", "end": "10.0.0.1", "count": 1},
        {"start": "acc1", "end": "10.0.0.1", "count": 2},
        {"start": "acc2", "end": "10.0.0.9", "count": 3},
    ])
    sink.nodes(Label.ACCOUNT, [{"account_id": "acc2", "status": "active"}])
    plan = sink.finish()
    assert plan.replay_nodes == [(Label.IP, [{"ip": "10.0.0.1", "kind": "b"}])]
    assert plan.replay_relationships == [
        (Rel.USED_IP, Label.ACCOUNT, Label.IP, [{"start": "acc1", "end": "10.0.0.1", "count": 2}])]
    files = {(g.name, _read(g)[0][0]): _read(g)[1] for g in plan.nodes}
    # acc1 and 10.0.0.9 are named by a relationship only: key-only nodes, as MERGE makes them.
    assert files[("Account", "account_id:ID(Account)")] in ([["acc2", "active"]], [["acc1"]])
    key_only = [rows for (name, _), rows in files.items() if rows and len(rows[0]) == 1]
    assert sorted(r[0] for rows in key_only for r in rows) == ["10.0.0.9", "acc1"]
    [rels] = plan.relationships
    assert _read(rels) == ([":START_ID(Account)", ":END_ID(IP)", "count:long"],
                           [["acc1", "10.0.0.1", "1"], ["acc2", "10.0.0.9", "3"]])
    assert plan.node_count == 4 and plan.relationship_count == 2


def test_rows_with_other_columns_go_to_their_own_file(tmp_path: Path) -> None:
    sink = CsvGraphSink(tmp_path / "csv")
    sink.nodes(Label.PROMPT_TEMPLATE, [{"template_id": "w1", "template": "", "hashed": True}])
    sink.nodes(Label.PROMPT_TEMPLATE, [{"template_id": "t1", "template": "x"}])
    plan = sink.finish()
    assert sorted(_read(g)[0][-1] for g in plan.nodes) == ["hashed:boolean", "template:string"]


def test_bad_rows_are_refused_like_the_store_refuses_them(tmp_path: Path) -> None:
    sink = CsvGraphSink(tmp_path / "csv")
    with pytest.raises(SchemaError, match="key property"):
        sink.nodes(Label.ACCOUNT, [{"account_id": ""}])
    with pytest.raises(SchemaError, match="beyond 64 bits"):
        sink.nodes(Label.ACCOUNT, [{"account_id": "a", "exchanges": 2**64}])
    with pytest.raises(SchemaError, match="start or end"):
        sink.relationships(Rel.USED_IP, Label.ACCOUNT, Label.IP, [{"start": "a"}])
    with pytest.raises(ValueError, match="invalid property name"):
        sink.nodes(Label.ACCOUNT, [{"account_id": "b", "bad:name": 1}])
    sink.close()


@pytest.mark.parametrize(("value", "kind", "text"), [
    (True, "boolean", "true"), (7, "long", "7"), (1.25, "double", "1.25"), (float("nan"), "double", "NaN"),
    ("a\"b", "string", '"a""b"'), ([1, 2], "long[]", f'"1{ARRAY_DELIMITER}2"'), ([True], "boolean[]", '"true"'),
])
def test_field_text(value: Any, kind: str, text: str) -> None:
    assert value_type(value) == kind
    assert field_text(value) == text


class _Importer:
    def __init__(self, refusal: str | None) -> None:
        self.reason = refusal
        self.ran = False

    def refusal(self) -> str | None:
        return self.reason

    def run(self, plan: Any) -> dict[str, float]:
        self.ran = True
        return {}


def test_the_batched_path_runs_unless_everything_allows_the_import(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "embedded")
    assert bulk_refusal(store, None, "auto") == "the embedded store takes no import"
    assert bulk_refusal(store, _Importer(None), "off") == "neo4j_bulk_import is off"
    assert bulk_refusal(store, _Importer("remote server"), "auto") == "remote server"
    assert bulk_refusal(store, _Importer(None), "auto") is None
    store.upsert_nodes(Label.ACCOUNT, [{"account_id": "a"}])
    assert bulk_refusal(store, _Importer(None), "auto") == "the database already holds a graph"
    with pytest.raises(ValueError, match="auto, off"):
        bulk_refusal(store, _Importer(None), "sometimes")
    importer = _Importer(None)
    outcome = write_graph(tmp_path / "ws", store, lambda _t: None, importer=importer)
    assert outcome.path == BATCHED and not importer.ran
    assert outcome.to_json()["batched_because"] == "the database already holds a graph"
