"""The import files of the bulk path (loaders/graph_csv.py) and the choice of path
(loaders/graph_import.py), without a server: files are read back with an RFC 4180 reader.
That Neo4j's importer reads them the same way is tests/neo4j/test_bulk_import.py."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from graph.schema import Label, Rel, SchemaError
from graph.stores.embedded import EmbeddedStore
from loaders.graph_csv import (
    ARRAY_DELIMITER,
    CsvFileGroup,
    CsvGraphSink,
    ImportPlan,
    field_text,
    value_type,
)
from loaders.graph_import import BATCHED, bulk_refusal, write_graph
from loaders.graph_sink import ArrowRows

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
    "rtl \u202eevil\u202c, \u200fmark\u200e and bidi isolate \u2067x\u2069",
    f"unit separator {ARRAY_DELIMITER} inside, and DEL \x7f",
    "crlf at the end\r\n",
    "a lone cr\r",
]


def _has_break(text: str) -> bool:
    return "\n" in text or "\r" in text


def _arrow(rows: list[dict[str, Any]], chunk: int = 3) -> ArrowRows:
    """The rows as the graph writer's queries hand them over: record batches of ``chunk`` rows."""
    return ArrowRows(lambda: pa.Table.from_pylist(rows).to_reader(max_chunksize=chunk))


def _as_is(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return rows


FEEDS = pytest.mark.parametrize("feed", [_as_is, _arrow], ids=["rows", "arrow"])


def _read(group: CsvFileGroup) -> tuple[list[str], list[list[str]]]:
    header = next(csv.reader(group.header.open(encoding="utf-8", newline="")))
    with group.data.open(encoding="utf-8", newline="") as fh:
        return header, list(csv.reader(fh))


def _raw_fields(group: CsvFileGroup) -> list[str]:
    """The data file's rows as they are written (quotes kept), one string per row."""
    return group.data.read_text(encoding="utf-8").split("\n")


@FEEDS
def test_hostile_text_round_trips_quoted(tmp_path: Path, feed: Any) -> None:
    """Text with a line break is left out of the file (no file needs multi-line parsing) and
    set after the import; every other text is in the file as it is."""
    sink = CsvGraphSink(tmp_path / "csv")
    rows = [{"template_id": f"t{i}", "template": text, "example": text, "capability": "code", "cot": i % 2 == 0}
            for i, text in enumerate(HOSTILE)]
    assert sink.nodes(Label.PROMPT_TEMPLATE, feed(rows)) == len(HOSTILE)
    plan = sink.finish()
    [group] = plan.nodes
    header, data = _read(group)
    assert header == ["template_id:ID(PromptTemplate)", "template:string", "example:string",
                      "capability:string", "cot:boolean"]
    assert [r[1] for r in data] == ["" if _has_break(t) else t for t in HOSTILE]
    assert [r[4] for r in data] == ["true" if i % 2 == 0 else "false" for i in range(len(HOSTILE))]
    assert not group.multiline and group.rows == len(HOSTILE)
    assert "\n" not in group.data.read_text(encoding="utf-8").rstrip("\n").replace("\n\"t", "")
    assert "\r" not in group.data.read_text(encoding="utf-8")
    assert plan.replay_nodes == [(Label.PROMPT_TEMPLATE, [
        {"template_id": f"t{i}", "template": t, "example": t} for i, t in enumerate(HOSTILE) if _has_break(t)])]
    # Every string is quoted, so the empty template is "" (a value) and never a missing field,
    # and a left-out one is an empty unquoted field (no value: the importer sets nothing).
    text = group.data.read_text(encoding="utf-8")
    assert '"t9","","","code",false' in text
    assert '"t1",,,"code",false' in text


def _typed(group: CsvFileGroup) -> tuple[list[str], list[list[Any]]]:
    """A file read back with its header's types applied to the fields (doubles as floats: both
    writers print the shortest text that reads back the same double, not always the same text)."""
    header, data = _read(group)
    doubles = [i for i, name in enumerate(header) if name.endswith(":double")]
    return header, [[float(f) if i in doubles and f else f for i, f in enumerate(r)] for r in data]


def _files(plan: ImportPlan) -> dict[str, Any]:
    return {"nodes": [(g.name, _typed(g), g.multiline) for g in plan.nodes],
            "rels": [(g.name, _typed(g), g.multiline) for g in plan.relationships],
            "replay_nodes": plan.replay_nodes, "replay_rels": plan.replay_relationships}


def _write_world(sink: CsvGraphSink, feed: Any) -> ImportPlan:
    sink.nodes(Label.ACCOUNT, feed([
        {"account_id": f"a{i}", "country": text, "exchanges": i, "score": 0.1 * i, "webmail": i % 3 == 0,
         "models": [["m1", text], [], None, ["x", ""], [f"a{ARRAY_DELIMITER}b"], ["ok"]][i % 6]}
        for i, text in enumerate(HOSTILE)]))
    sink.nodes(Label.ACCOUNT, feed([{"account_id": "a1", "country": "again"}, {"account_id": "b1", "country": None}]))
    # another type than the column's (a batch of its own, as from another query)
    sink.nodes(Label.ACCOUNT, feed([{"account_id": "b2", "country": None, "exchanges": 2.5, "score": None,
                                     "webmail": None, "models": None}]))
    sink.nodes(Label.INDICATOR, feed([{"indicator_id": "i1", "confidence": float("inf")},
                                      {"indicator_id": "i2", "confidence": 1e-300}]))
    sink.relationships(Rel.SENT_TEMPLATE, Label.ACCOUNT, Label.PROMPT_TEMPLATE, feed([
        {"start": f"a{i % 4}", "end": f"t{i}", "count": i, "first_seen": text} for i, text in enumerate(HOSTILE)]))
    sink.relationships(Rel.SENT_TEMPLATE, Label.ACCOUNT, Label.PROMPT_TEMPLATE, feed([
        {"start": "a0", "end": "t0", "count": 99, "first_seen": "later"}, {"start": "z9", "end": "t0", "count": 1, "first_seen": None}]))
    return sink.finish()


def test_record_batches_make_the_files_rows_make(tmp_path: Path) -> None:
    """The batch path (Arrow's CSV writer) and the row path give the same files and replays,
    repeats, left-out values, type changes and non-finite doubles included."""
    by_rows = _files(_write_world(CsvGraphSink(tmp_path / "rows"), _as_is))
    by_batches = _files(_write_world(CsvGraphSink(tmp_path / "arrow"), _arrow))
    assert by_batches == by_rows
    replayed = [row for label, rows in by_rows["replay_nodes"] if label == Label.ACCOUNT for row in rows]
    breaks = [i for i, text in enumerate(HOSTILE) if _has_break(text)]
    by_id: dict[str, list[dict[str, Any]]] = {}
    for row in replayed:
        by_id.setdefault(row["account_id"], []).append(row)
    for i, text in enumerate(HOSTILE):
        models = [["m1", text], [], None, ["x", ""], [f"a{ARRAY_DELIMITER}b"], ["ok"]][i % 6]
        expected = {"country": text} if _has_break(text) else {}
        if models is not None and (models in ([], ["x", ""], [f"a{ARRAY_DELIMITER}b"]) or (i % 6 == 0 and _has_break(text))):
            expected["models"] = models
        got = [r for r in by_id.get(f"a{i}", []) if r.get("country") != "again"]
        assert got == ([{"account_id": f"a{i}", **expected}] if expected else []), i
    assert {"account_id": "a1", "country": "again"} in replayed
    assert {"account_id": "b2", "exchanges": 2.5} in replayed
    [(_, _, _, rels)] = by_rows["replay_rels"]
    assert rels[-1] == {"start": "a0", "end": "t0", "count": 99, "first_seen": "later"}
    assert rels[:-1] == [{"start": f"a{i % 4}", "end": f"t{i}", "first_seen": HOSTILE[i]} for i in breaks]
    # z9 is named by a relationship only; i1's infinite confidence is written as Java reads it.
    indicator = next(g for g in by_rows["nodes"] if g[0] == "Indicator")
    assert indicator[1][1] == [["i1", float("inf")], ["i2", 1e-300]]


def test_a_key_with_a_line_break_makes_its_file_multi_line(tmp_path: Path) -> None:
    for name, feed in (("rows", _as_is), ("arrow", _arrow)):
        sink = CsvGraphSink(tmp_path / name)
        sink.nodes(Label.DEVICE, feed([{"device_id": "d\n1"}, {"device_id": "d2"}]))
        sink.nodes(Label.IP, feed([{"ip": "10.0.0.1"}]))
        plan = sink.finish()
        assert [g.multiline for g in plan.nodes] == [True, False]
        assert _read(plan.nodes[0])[1] == [["d\n1"], ["d2"]]


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
    # A lone surrogate cannot be sent to Neo4j as UTF-8: both paths refuse it (and DuckDB's
    # text, hence a record batch, cannot hold one).
    with pytest.raises(SchemaError, match="not valid Unicode"):
        sink.nodes(Label.ACCOUNT, [{"account_id": "c", "country": "x\ud800y"}])
    with pytest.raises(SchemaError, match="not valid Unicode"):
        EmbeddedStore(tmp_path / "embedded").upsert_nodes(Label.ACCOUNT, [{"account_id": "a", "country": "x\ud800y"}])
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
