"""The graph writer's rows as import files for ``neo4j-admin database import full``.

``CsvGraphSink`` is a ``GraphSink``: it takes the very rows the batched path MERGEs and writes,
per label or relationship type and set of columns, a data file and (once every row is seen, so
the column types are known) a header file. ``finish()`` returns the ``ImportPlan``: the files and
the few rows that must still be MERGEd once the server runs on the imported database, because
the importer cannot give them what a MERGE would:

* a node key seen twice, or a relationship (start, type, end) seen twice: MERGE keeps one and
  lets the later properties win, the importer would refuse the node or write a second
  relationship. The later row is replayed instead (relationships are recognised by a 64-bit
  hash of their keys: a false match is only replayed, and MERGE writes it all the same);
* a value CSV cannot carry as the batched path stores it: an empty list (the importer stores
  nothing), a list element holding the array delimiter or an empty string, a value whose type
  differs from the column's, and text holding a line break (CR or LF: the importer reads
  multi-line fields only by giving up its parallel parsing, for every file). Its column is left
  empty in the file and the value replayed (set on the imported node or relationship).

A relationship whose end (or start) node was never written as a node gets a key-only node, as
MERGE would create it. Types follow what the driver sends: ``int`` as long, ``float`` as double,
``bool`` as boolean, ``str`` as string, a list as an array of its element type. Every string is
quoted (RFC 4180, quotes doubled), so an empty string stays one and only an empty unquoted field
is a missing value. Only a node key can put a line break into a file (a key is never replayed):
its file is flagged and the importer then reads multi-line fields.

Rows that come as ``ArrowRows`` (the graph writer's queries) are written a record batch at a
time by Arrow's CSV writer, with the same fields the row path writes; a batch that needs the
row path's per-value care (a repeat, a key to refuse, a type the batch path does not write) is
written row by row instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from graph.cypher import property_name
from graph.schema import Label, Rel, SchemaError, check_property_value, key_of
from loaders.graph_sink import ArrowRows

# Between the elements of a list value (--array-delimiter): the ASCII unit separator, which
# prompt text does not carry; an element that does is replayed instead.
ARRAY_DELIMITER = "\x1f"
WRITE_BUFFER = 1 << 20
KEY_ONLY_BATCH = 50_000

LINE_BREAK = r"[\r\n]"

_SCALAR_TYPES: dict[type, str] = {bool: "boolean", int: "long", float: "double", str: "string"}
# The Arrow types a batch is written with as they are, and the importer's name for each.
_ARROW_KINDS: dict[pa.DataType, str] = {
    pa.bool_(): "boolean", pa.int8(): "long", pa.int16(): "long", pa.int32(): "long", pa.int64(): "long",
    pa.uint8(): "long", pa.uint16(): "long", pa.uint32(): "long", pa.float64(): "double",
    pa.string(): "string", pa.large_string(): "string",
}  # fmt: skip
_CSV_OPTIONS = pa_csv.WriteOptions(include_header=False, quoting_style="needed", batch_size=4096)


@dataclass
class CsvFileGroup:
    """One ``--nodes`` or ``--relationships`` source: a header file and a data file."""

    name: str  # the label or relationship type
    header: Path
    data: Path
    rows: int
    multiline: bool  # some field holds a line break
    longest: int  # characters in the longest text field


@dataclass
class ImportPlan:
    """The import files of one graph write and the rows to MERGE after the import."""

    directory: Path
    nodes: list[CsvFileGroup]
    relationships: list[CsvFileGroup]
    replay_nodes: list[tuple[Label, list[dict[str, Any]]]]
    replay_relationships: list[tuple[Rel, Label, Label, list[dict[str, Any]]]]

    @property
    def node_count(self) -> int:
        return sum(g.rows for g in self.nodes)

    @property
    def relationship_count(self) -> int:
        return sum(g.rows for g in self.relationships)

    @property
    def replay_count(self) -> int:
        return sum(len(rows) for _, rows in self.replay_nodes) + sum(len(r) for *_, r in self.replay_relationships)


def quote(text: str) -> str:
    """A CSV string field: always quoted, inner quotes doubled (RFC 4180)."""
    return '"' + text.replace('"', '""') + '"'


def _float_text(value: float) -> str:
    """A double as Java's Double.parseDouble reads it, exactly (repr round-trips)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _scalar_type(value: Any) -> str | None:
    return _SCALAR_TYPES.get(type(value))


def value_type(value: Any) -> str | None:
    """The importer's type name for a value the CSV can carry as the driver would send it, or
    None when it cannot (an empty list, a list of mixed or unknown element types)."""
    if isinstance(value, list | tuple):
        if not value:
            return None
        kinds = {_scalar_type(v) for v in value}
        if len(kinds) != 1 or None in kinds:
            return None
        return f"{kinds.pop()}[]"
    return _scalar_type(value)


def field_text(value: Any) -> str | None:
    """The CSV field of a value whose ``value_type`` is known; None when a list cannot be
    written so that the importer reads back the same elements."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, str):
        return quote(value)
    text = list_text(value)
    return None if text is None else quote(text)


def list_text(value: Iterable[Any]) -> str | None:
    """A list's elements joined by the array delimiter (unquoted); None when the importer would
    not read back the same elements (an empty element, or one holding the delimiter)."""
    items: list[str] = []
    for item in value:
        text = item if isinstance(item, str) else (field_text(item) or "")
        if text == "" or ARRAY_DELIMITER in text:
            return None
        items.append(text)
    return ARRAY_DELIMITER.join(items)


def has_line_break(text: str) -> bool:
    return "\n" in text or "\r" in text


def _arrow_kind(array: pa.Array) -> str | None:
    """The importer's type of an Arrow column the batch path writes as it is; "" for a column
    of nulls only; None when the batch must take the row path."""
    if pa.types.is_null(array.type):
        return ""
    kind = _ARROW_KINDS.get(array.type)
    if kind == "double" and array.null_count < len(array):
        # Arrow writes inf and nan, which Java does not read: those batches take the row path.
        finite = pc.min(pc.is_finite(array)).as_py()
        return kind if finite else None
    return kind


def _any(mask: pa.Array) -> bool:
    return bool(pc.any(mask).as_py())


def _longest(array: pa.Array) -> int:
    """The longest text of a column in bytes (at least its characters), for the read buffer."""
    if array.null_count == len(array):
        return 0
    return int(pc.max(pc.binary_length(array)).as_py() or 0)


class _FileWriter:
    """The data file of one group; the header is written at the end, when the types are known."""

    def __init__(self, name: str, path: Path, id_columns: list[str], columns: tuple[str, ...]) -> None:
        for column in columns:
            property_name(column)  # a property name the schema accepts, so never a header injection
        self.name = name
        self.data = path.with_suffix(".csv")
        self.header = path.with_suffix(".header.csv")
        self.id_columns = id_columns
        self.columns = columns
        self.types: list[str | None] = [None] * len(columns)
        self.rows = 0
        self.multiline = False
        self.longest = 0
        self.out: IO[bytes] = open(self.data, "wb", buffering=WRITE_BUFFER)  # noqa: SIM115

    def _carried(self, i: int, value: Any) -> tuple[str | None, str | None]:
        """The kind and text of a value the file can carry in column ``i``, or (None, None)."""
        kind = value_type(value)
        text = field_text(value) if kind is not None else None
        if kind is None or text is None or (self.types[i] is not None and self.types[i] != kind):
            return None, None
        if kind.startswith("string") and has_line_break(text):
            return None, None
        return kind, text

    def write(self, ids: list[str], values: Iterable[Any]) -> dict[str, Any]:
        """Write one row; returns the values the file could not carry (their fields left empty)."""
        fields = [quote(i) for i in ids]
        left_out: dict[str, Any] = {}
        for i, value in enumerate(values):
            if value is None:
                fields.append("")
                continue
            column = self.columns[i]
            check_property_value(column, value)
            kind, text = self._carried(i, value)
            if kind is None or text is None:
                left_out[column] = value
                fields.append("")
                continue
            self.types[i] = kind
            if kind.startswith("string"):
                self.longest = max(self.longest, len(text))
            fields.append(text)
        self.out.write((",".join(fields) + "\n").encode("utf-8"))
        self.rows += 1
        for node_key in ids:
            self.longest = max(self.longest, len(node_key) + 2)
            if has_line_break(node_key):
                self.multiline = True
        return left_out

    def write_columns(self, ids: list[pa.Array], columns: list[pa.Array]) -> dict[int, dict[str, Any]] | None:
        """Write a batch (key columns, then ``self.columns``); the values left out, by row. None,
        writing nothing, when the batch must take the row path: a column of a type this path does
        not write, or of another type than the column had so far."""
        kinds = [_arrow_kind(a) for a in columns]
        for i, (array, kind) in enumerate(zip(columns, kinds, strict=True)):
            if not pa.types.is_list(array.type) and (
                kind is None or (kind and self.types[i] is not None and self.types[i] != kind)
            ):
                return None
        left_out: dict[int, dict[str, Any]] = {}
        fields: list[pa.Array] = []
        for i, (array, kind) in enumerate(zip(columns, kinds, strict=True)):
            if pa.types.is_list(array.type):
                array = self._list_column(i, array, left_out)
            elif kind == "string":
                array = self._text_column(i, array, left_out)
            if kind and array.null_count < len(array):
                self.types[i] = kind
            fields.append(array)
        for array in ids:
            self.longest = max(self.longest, _longest(array) + 2)
            if _any(pc.match_substring_regex(array, LINE_BREAK)):
                self.multiline = True
        table = pa.Table.from_arrays([*ids, *fields], names=[f"c{i}" for i in range(len(ids) + len(fields))])
        pa_csv.write_csv(table, self.out, _CSV_OPTIONS)
        self.rows += len(table)
        return left_out

    def _text_column(self, i: int, array: pa.Array, left_out: dict[int, dict[str, Any]]) -> pa.Array:
        """A string column with the values holding a line break left out (null in the file)."""
        breaks = pc.match_substring_regex(array, LINE_BREAK)
        if _any(breaks):
            for row in pc.indices_nonzero(pc.fill_null(breaks, False)).to_pylist():
                left_out.setdefault(row, {})[self.columns[i]] = array[row].as_py()
            array = pc.if_else(breaks, pa.scalar(None, array.type), array)
        self.longest = max(self.longest, _longest(array) + 2)
        return array

    def _list_column(self, i: int, array: pa.Array, left_out: dict[int, dict[str, Any]]) -> pa.Array:
        """A list column as the row path writes it (lists are short and few: value by value)."""
        column = self.columns[i]
        texts: list[str | None] = []
        for row, value in enumerate(array.to_pylist()):
            if value is None:
                texts.append(None)
                continue
            check_property_value(column, value)
            kind, text = self._carried(i, value)
            if kind is None or text is None:
                left_out.setdefault(row, {})[column] = value
                texts.append(None)
                continue
            self.types[i] = kind
            self.longest = max(self.longest, len(text))
            texts.append(list_text(value))
        return pa.array(texts, pa.string())

    def close(self) -> CsvFileGroup:
        self.out.close()
        names = [f"{c}:{t or 'string'}" for c, t in zip(self.columns, self.types, strict=True)]
        self.header.write_text(",".join([*self.id_columns, *names]) + "\n", encoding="utf-8")
        return CsvFileGroup(self.name, self.header, self.data, self.rows, self.multiline, self.longest)


def _clean_keys(array: pa.Array) -> bool:
    """Every key of the batch is text that is not empty (else the row path refuses the row)."""
    if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
        return False
    return array.null_count == 0 and not _any(pc.equal(pc.utf8_length(array), 0))


@dataclass
class _Seen:
    """What has been written, to find repeats and nodes only relationships name."""

    keys: dict[Label, set[str]] = field(default_factory=dict)
    referenced: dict[Label, set[str]] = field(default_factory=dict)
    # the distinct keys of each batch's start or end column, looked up once at the end
    referenced_batches: dict[Label, list[pa.Array]] = field(default_factory=dict)
    pairs: dict[Rel, set[int]] = field(default_factory=dict)


class CsvGraphSink:
    """A ``GraphSink`` writing import files into ``directory`` (which it creates)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._nodes: dict[tuple[Label, tuple[str, ...]], _FileWriter] = {}
        self._rels: dict[tuple[Rel, Label, Label, tuple[str, ...]], _FileWriter] = {}
        self._seen = _Seen()
        self._replay_nodes: dict[Label, list[dict[str, Any]]] = {}
        self._replay_rels: dict[tuple[Rel, Label, Label], list[dict[str, Any]]] = {}
        self._files = 0
        self.writing_seconds = 0.0  # spent in this sink (writing files), for the load's figures

    @contextmanager
    def session(self) -> Iterator[CsvGraphSink]:
        yield self

    def _path(self, kind: str, name: str) -> Path:
        self._files += 1
        return self.directory / f"{self._files:03d}-{kind}-{name}"

    def _node_writer(self, label: Label, columns: tuple[str, ...]) -> _FileWriter:
        writer = self._nodes.get((label, columns))
        if writer is None:
            writer = _FileWriter(label.value, self._path("nodes", label.value),
                                 [f"{key_of(label)}:ID({label.value})"], columns)
            self._nodes[(label, columns)] = writer
        return writer

    def _rel_writer(self, rel: Rel, start: Label, end: Label, columns: tuple[str, ...]) -> _FileWriter:
        writer = self._rels.get((rel, start, end, columns))
        if writer is None:
            writer = _FileWriter(rel.value, self._path("rels", rel.value),
                                 [f":START_ID({start.value})", f":END_ID({end.value})"], columns)
            self._rels[(rel, start, end, columns)] = writer
        return writer

    def nodes(self, label: Label, rows: Iterable[dict[str, Any]]) -> int:
        if isinstance(rows, ArrowRows):
            return sum(self._timed(self._node_batch, label, batch) for batch in rows.batches())
        return self._timed(self._node_rows, label, rows)

    def relationships(self, rel: Rel, start: Label, end: Label, rows: Iterable[dict[str, Any]]) -> int:
        if isinstance(rows, ArrowRows):
            return sum(self._timed(self._rel_batch, rel, start, end, batch) for batch in rows.batches())
        return self._timed(self._rel_rows, rel, start, end, rows)

    def _timed(self, write: Any, *args: Any) -> int:
        """Run one write, adding its time to ``writing_seconds`` (rows given as an iterator are
        built while they are written, so their time counts here too)."""
        began = time.perf_counter()
        try:
            return int(write(*args))
        finally:
            self.writing_seconds += time.perf_counter() - began

    def _node_rows(self, label: Label, rows: Iterable[dict[str, Any]]) -> int:
        key = key_of(label)
        keys = self._seen.keys.setdefault(label, set())
        n = 0
        for row in rows:
            raw = row.get(key)
            if raw in (None, ""):
                raise SchemaError(f"{label} row without its key property {key!r}: {dict(row)!r}")
            node_key = str(raw)
            check_property_value(key, node_key)
            n += 1
            if node_key in keys:
                self._replay_nodes.setdefault(label, []).append(dict(row))
                continue
            keys.add(node_key)
            writer = self._node_writer(label, tuple(c for c in row if c != key))
            left_out = writer.write([node_key], (row[c] for c in writer.columns))
            if left_out:
                self._replay_nodes.setdefault(label, []).append({key: node_key, **left_out})
        return n

    def _node_batch(self, label: Label, batch: pa.RecordBatch) -> int:
        """A batch of node rows written whole, or row by row when it holds a key to refuse, a
        repeated key, or a column the batch path does not write."""
        key = key_of(label)
        names = batch.schema.names
        if key not in names or not _clean_keys(batch.column(key)):
            return self._node_rows(label, batch.to_pylist())
        keys = batch.column(key).to_pylist()
        seen = self._seen.keys.setdefault(label, set())
        if len(set(keys)) != len(keys) or not seen.isdisjoint(keys):
            return self._node_rows(label, batch.to_pylist())
        writer = self._node_writer(label, tuple(c for c in names if c != key))
        left_out = writer.write_columns([batch.column(key)], [batch.column(c) for c in writer.columns])
        if left_out is None:
            return self._node_rows(label, batch.to_pylist())
        seen.update(keys)
        if left_out:
            replay = self._replay_nodes.setdefault(label, [])
            replay.extend({key: keys[row], **left_out[row]} for row in sorted(left_out))
        return len(keys)

    def _rel_rows(self, rel: Rel, start: Label, end: Label, rows: Iterable[dict[str, Any]]) -> int:
        pairs = self._seen.pairs.setdefault(rel, set())
        n = 0
        for row in rows:
            s, e = row.get("start"), row.get("end")
            if s in (None, "") or e in (None, ""):
                raise SchemaError(f"{rel} row without start or end key: {dict(row)!r}")
            s, e = str(s), str(e)
            check_property_value("start", s)
            check_property_value("end", e)
            n += 1
            pair = hash((start.value, s, end.value, e))
            if pair in pairs:
                self._replay_rels.setdefault((rel, start, end), []).append(dict(row))
                continue
            pairs.add(pair)
            self._reference(start, s)
            self._reference(end, e)
            writer = self._rel_writer(rel, start, end, tuple(c for c in row if c not in ("start", "end")))
            left_out = writer.write([s, e], (row[c] for c in writer.columns))
            if left_out:
                self._replay_rels.setdefault((rel, start, end), []).append({"start": s, "end": e, **left_out})
        return n

    def _rel_batch(self, rel: Rel, start: Label, end: Label, batch: pa.RecordBatch) -> int:
        """A batch of relationship rows written whole, or row by row (as ``_node_batch``)."""
        names = batch.schema.names
        if "start" not in names or "end" not in names or not (
            _clean_keys(batch.column("start")) and _clean_keys(batch.column("end"))
        ):
            return self._rel_rows(rel, start, end, batch.to_pylist())
        s, e = batch.column("start").to_pylist(), batch.column("end").to_pylist()
        hashes = set(map(hash, zip(repeat(start.value), s, repeat(end.value), e)))
        pairs = self._seen.pairs.setdefault(rel, set())
        if len(hashes) != len(s) or not pairs.isdisjoint(hashes):
            return self._rel_rows(rel, start, end, batch.to_pylist())
        writer = self._rel_writer(rel, start, end, tuple(c for c in names if c not in ("start", "end")))
        left_out = writer.write_columns([batch.column("start"), batch.column("end")],
                                        [batch.column(c) for c in writer.columns])
        if left_out is None:
            return self._rel_rows(rel, start, end, batch.to_pylist())
        pairs |= hashes
        for label, column in ((start, "start"), (end, "end")):
            self._seen.referenced_batches.setdefault(label, []).append(pc.unique(batch.column(column)).cast(pa.string()))
        if left_out:
            replay = self._replay_rels.setdefault((rel, start, end), [])
            replay.extend({"start": s[row], "end": e[row], **left_out[row]} for row in sorted(left_out))
        return len(s)

    def _reference(self, label: Label, node_key: str) -> None:
        """Note a key a relationship row names that no node row has written (yet)."""
        if node_key not in self._seen.keys.get(label, ()):
            self._seen.referenced.setdefault(label, set()).add(node_key)

    def finish(self) -> ImportPlan:
        """Write the key-only nodes and every header, close the files; the plan to import."""
        for label, arrays in self._seen.referenced_batches.items():
            keys = pc.unique(pa.chunked_array(arrays, pa.string())).to_pylist()
            self._seen.referenced.setdefault(label, set()).update(keys)
        for label, referenced in sorted(self._seen.referenced.items()):
            missing = sorted(referenced - self._seen.keys.get(label, set()))
            if missing:
                # Named by a relationship only: MERGE would create the node with its key alone.
                for at in range(0, len(missing), KEY_ONLY_BATCH):
                    chunk = pa.record_batch({key_of(label): pa.array(missing[at:at + KEY_ONLY_BATCH], pa.string())})
                    self._timed(self._node_batch, label, chunk)
        self._seen = _Seen()
        return ImportPlan(
            directory=self.directory,
            nodes=[w.close() for w in self._nodes.values()],
            relationships=[w.close() for w in self._rels.values()],
            replay_nodes=list(self._replay_nodes.items()),
            replay_relationships=[(r, s, e, rows) for (r, s, e), rows in self._replay_rels.items()],
        )

    def close(self) -> None:
        """Close files left open by a write that failed (the directory is the caller's)."""
        for writer in [*self._nodes.values(), *self._rels.values()]:
            writer.out.close()
