"""The evidence graph as tables: one file per node label and one per relationship type, CSV or
Parquet, for analysts who live in spreadsheets and notebooks.

``nodes_<Label>.<ext>`` has ``key`` then the label's properties; ``edges_<TYPE>.<ext>`` has
``start_label, start, end_label, end`` then properties. Lists are ``;``-joined in CSV and kept
as JSON text in Parquet (one column type per file). A folded graph's groups list their members
in ``group_members.<ext>`` (``group, account_id``), not in a cell of ``nodes_MemberGroup``. Text follows graph/export/text.py: both are
strict UTF-8 (lone surrogates become U+FFFD); CSV is for spreadsheets, so its cells hold no NUL
(U+FFFD too) and at most ``CSV_CELL_CHARS`` characters, a longer text cut saying how long it
was; Parquet keeps every text whole."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from graph.evidence import MEMBER_GROUP
from graph.export.graphfiles import flatten
from graph.export.selection import EvidenceGraph
from graph.export.text import CSV_CELL_CHARS, clean_graph, csv_text, fit, utf8_text

FORMATS = ("csv", "parquet")


def _tables(graph: EvidenceGraph) -> dict[str, tuple[list[str], list[dict[str, Any]]]]:
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    fixed: dict[str, list[str]] = {}
    for node in graph.nodes:
        name = f"nodes_{node.label}"
        fixed[name] = ["key"]
        if node.label == MEMBER_GROUP:  # a folded graph's groups: who is in each, one row per member
            fixed["group_members"] = ["group", "account_id"]
            rows["group_members"] += [{"group": node.key, "account_id": a} for a in node.props.get("account_ids") or []]
            rows[name].append({"key": node.key, **{k: v for k, v in node.props.items() if k != "account_ids"}})
            continue
        rows[name].append({"key": node.key, **node.props})
    for rel in graph.relationships:
        name = f"edges_{rel.type}"
        fixed[name] = ["start_label", "start", "end_label", "end"]
        rows[name].append(
            {"start_label": rel.start[0], "start": rel.start[1], "end_label": rel.end[0], "end": rel.end[1], **rel.props}
        )
    out = {}
    for name, items in sorted(rows.items()):
        extra = sorted({k for r in items for k in r} - set(fixed[name]))
        out[name] = (fixed[name] + extra, items)
    return out


def _cell(value: Any, fmt: str) -> Any:
    if value is None:
        return None
    if isinstance(value, list | tuple | dict):
        value = flatten(value) if fmt == "csv" and not isinstance(value, dict) else json.dumps(value)
    return fit(value, CSV_CELL_CHARS) if fmt == "csv" and isinstance(value, str) else value


def write_tables(graph: EvidenceGraph, directory: Path, fmt: str = "csv") -> list[Path]:
    """Write every table of ``graph`` into ``directory``; returns the files written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r}; one of {', '.join(FORMATS)}")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    clean = clean_graph(graph, csv_text if fmt == "csv" else utf8_text)
    for name, (columns, items) in _tables(clean).items():
        path = directory / f"{name}.{fmt}"
        if fmt == "csv":
            with open(path, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(columns)
                for item in items:
                    writer.writerow(["" if (v := _cell(item.get(c), fmt)) is None else v for c in columns])
        else:
            data = {c: [_cell(item.get(c), fmt) for item in items] for c in columns}
            pq.write_table(pa.table({c: _column(v) for c, v in data.items()}), path)
        written.append(path)
    return written


def _column(values: list[Any]) -> pa.Array:
    """One Arrow column; values of mixed types are written as text."""
    kinds = {type(v) for v in values if v is not None}
    if len(kinds) > 1 and not kinds <= {int, float}:
        values = [None if v is None else str(v) for v in values]
    elif kinds == {int, float}:
        values = [None if v is None else float(v) for v in values]
    return pa.array(values)
