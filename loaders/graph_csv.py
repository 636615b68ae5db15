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
  differs from the column's. Its column is left empty in the file and the value replayed.

A relationship whose end (or start) node was never written as a node gets a key-only node, as
MERGE would create it. Types follow what the driver sends: ``int`` as long, ``float`` as double,
``bool`` as boolean, ``str`` as string, a list as an array of its element type. Every string is
quoted (RFC 4180, quotes doubled), so an empty string stays one and only an empty unquoted field
is a missing value; a file with a line break inside a field is flagged (the importer then reads
multi-line fields).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from graph.cypher import property_name
from graph.schema import Label, Rel, SchemaError, check_property_value, key_of

# Between the elements of a list value (--array-delimiter): the ASCII unit separator, which
# prompt text does not carry; an element that does is replayed instead.
ARRAY_DELIMITER = "\x1f"
WRITE_BUFFER = 1 << 20

_SCALAR_TYPES: dict[type, str] = {bool: "boolean", int: "long", float: "double", str: "string"}


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
    items: list[str] = []
    for item in value:
        text = item if isinstance(item, str) else (field_text(item) or "")
        if text == "" or ARRAY_DELIMITER in text:
            return None
        items.append(text)
    return quote(ARRAY_DELIMITER.join(items))


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
        self.out: IO[str] = open(self.data, "w", encoding="utf-8", newline="", buffering=WRITE_BUFFER)  # noqa: SIM115

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
            kind = value_type(value)
            text = field_text(value) if kind is not None else None
            if kind is None or text is None or (self.types[i] is not None and self.types[i] != kind):
                left_out[column] = value
                fields.append("")
                continue
            self.types[i] = kind
            if kind.startswith("string"):
                self.longest = max(self.longest, len(text))
                if "\n" in text or "\r" in text:
                    self.multiline = True
            fields.append(text)
        self.out.write(",".join(fields))
        self.out.write("\n")
        self.rows += 1
        for node_key in ids:
            self.longest = max(self.longest, len(node_key))
            if "\n" in node_key or "\r" in node_key:
                self.multiline = True
        return left_out

    def close(self) -> CsvFileGroup:
        self.out.close()
        names = [f"{c}:{t or 'string'}" for c, t in zip(self.columns, self.types, strict=True)]
        self.header.write_text(",".join([*self.id_columns, *names]) + "\n", encoding="utf-8")
        return CsvFileGroup(self.name, self.header, self.data, self.rows, self.multiline, self.longest)


@dataclass
class _Seen:
    """What has been written, to find repeats and nodes only relationships name."""

    keys: dict[Label, set[str]] = field(default_factory=dict)
    referenced: dict[Label, set[str]] = field(default_factory=dict)
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

    @contextmanager
    def session(self) -> Iterator[CsvGraphSink]:
        yield self

    def _path(self, kind: str, name: str) -> Path:
        self._files += 1
        return self.directory / f"{self._files:03d}-{kind}-{name}"

    def nodes(self, label: Label, rows: Iterable[dict[str, Any]]) -> int:
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
            columns = tuple(c for c in row if c != key)
            writer = self._nodes.get((label, columns))
            if writer is None:
                writer = _FileWriter(label.value, self._path("nodes", label.value),
                                     [f"{key}:ID({label.value})"], columns)
                self._nodes[(label, columns)] = writer
            left_out = writer.write([node_key], (row[c] for c in columns))
            if left_out:
                self._replay_nodes.setdefault(label, []).append({key: node_key, **left_out})
        return n

    def relationships(self, rel: Rel, start: Label, end: Label, rows: Iterable[dict[str, Any]]) -> int:
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
            columns = tuple(c for c in row if c not in ("start", "end"))
            writer = self._rels.get((rel, start, end, columns))
            if writer is None:
                writer = _FileWriter(rel.value, self._path("rels", rel.value),
                                     [f":START_ID({start.value})", f":END_ID({end.value})"], columns)
                self._rels[(rel, start, end, columns)] = writer
            left_out = writer.write([s, e], (row[c] for c in columns))
            if left_out:
                self._replay_rels.setdefault((rel, start, end), []).append({"start": s, "end": e, **left_out})
        return n

    def _reference(self, label: Label, node_key: str) -> None:
        if node_key not in self._seen.keys.get(label, ()):
            self._seen.referenced.setdefault(label, set()).add(node_key)

    def finish(self) -> ImportPlan:
        """Write the key-only nodes and every header, close the files; the plan to import."""
        for label, referenced in sorted(self._seen.referenced.items()):
            missing = sorted(referenced - self._seen.keys.get(label, set()))
            if missing:
                # Named by a relationship only: MERGE would create the node with its key alone.
                self.nodes(label, ({key_of(label): k} for k in missing))
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
