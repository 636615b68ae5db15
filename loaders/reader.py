"""Finding a bundle's files and streaming their rows as all-string Arrow tables.

``discover`` maps the bundle's directory entries to tables (input-bundle.md) and raises
``BundleError`` for the file-level faults that can be seen from names alone. ``iter_chunks``
streams one file as pyarrow tables of string columns (empty strings kept; the validator decides
what "missing" means) plus three provenance columns:

- ``_row``   1-based data-row number in the file (JSONL: the line number);
- ``_error`` a parse fault of that row found by the reader (malformed JSON line, wrong number of
  CSV fields), else null: such rows are quarantined, not dropped;
- ``_raw``   the row's raw text when ``_error`` is set.

CSV goes through pyarrow's multi-threaded streaming reader; a CSV row with the wrong number of
fields makes the reader raise ``SlowPathNeeded`` so the caller discards that file's output and
re-reads it with Python's csv module, which numbers every record exactly (pyarrow cannot say
where in a block a skipped row sat). Parquet streams by row groups; JSONL line by line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from graph.staging import TABLES, connect, sql_str
from loaders.errors import BundleError

EXTENSIONS = ("csv.gz", "jsonl.gz", "csv", "jsonl", "parquet")
CHUNK_ROWS = 262_144
PROVENANCE = ("_row", "_error", "_raw")


@dataclass(frozen=True)
class SourceFile:
    """One file of one table."""

    table: str
    path: Path
    rel: str
    """Path relative to the bundle directory, with ``/`` separators: the ``_file`` value."""
    fmt: str
    """``csv``, ``jsonl`` or ``parquet``."""
    gzip: bool = False


@dataclass
class Discovery:
    files: dict[str, list[SourceFile]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


class SlowPathNeeded(Exception):
    """The fast CSV reader met a malformed row: re-read the file with ``fast=False``."""


def split_name(name: str) -> tuple[str, str | None]:
    """(table part, known extension or None) of a file name."""
    for ext in EXTENSIONS:
        if name.endswith("." + ext) and len(name) > len(ext) + 1:
            return name[: -len(ext) - 1], ext
    return name.split(".", 1)[0], None


def _source(table: str, path: Path, bundle: Path) -> SourceFile:
    rel = path.relative_to(bundle).as_posix()
    _stem, ext = split_name(path.name)
    if ext is None:
        raise BundleError(
            f"{rel}: unknown file type for table {table!r} (expected one of "
            f"{', '.join('.' + e for e in EXTENSIONS)})"
        )
    fmt = ext.removesuffix(".gz")
    return SourceFile(table=table, path=path, rel=rel, fmt=fmt, gzip=ext.endswith(".gz"))


def discover(bundle: Path) -> Discovery:
    """Map a bundle directory's entries to tables; file-level name faults raise BundleError.
    Hidden entries are skipped; entries matching no table, and ``_``-prefixed marker files
    inside a table directory, are listed in ``ignored``."""
    if not bundle.is_dir():
        raise BundleError(f"{bundle}: not a directory")
    found = Discovery()
    claims: dict[str, list[str]] = {}
    for entry in sorted(bundle.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if entry.name not in TABLES:
                found.ignored.append(entry.name + "/")
                continue
            claims.setdefault(entry.name, []).append(entry.name + "/")
            parts = []
            for path in sorted(entry.rglob("*"), key=lambda p: p.as_posix()):
                if not path.is_file() or path.name.startswith("."):
                    continue
                if path.name.startswith("_"):
                    # Hadoop/Spark markers (_SUCCESS, _committed_…) beside the data parts
                    found.ignored.append(path.relative_to(bundle).as_posix())
                    continue
                parts.append(_source(entry.name, path, bundle))
            found.files[entry.name] = parts
            continue
        stem, _ext = split_name(entry.name)
        if stem not in TABLES:
            found.ignored.append(entry.name)
            continue
        claims.setdefault(stem, []).append(entry.name)
        found.files[stem] = [_source(stem, entry, bundle)]
    for table, names in claims.items():
        if len(names) > 1:
            raise BundleError(f"{', '.join(names)}: two files for table {table!r}; keep one")
    if "accounts" not in found.files:
        raise BundleError(f"{bundle}: no accounts table (accounts.csv, .jsonl, .parquet, … or accounts/)")
    return found


# ---- opening -----------------------------------------------------------------------------------


def _fault(src: SourceFile, exc: BaseException) -> BundleError:
    """A one-line BundleError for a reading failure, naming the kind of fault."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    low = text.lower()
    if isinstance(exc, UnicodeDecodeError) or "utf8" in low or "utf-8" in low:
        what = "undecodable bytes (not UTF-8)"
    elif isinstance(exc, EOFError | zlib.error | gzip.BadGzipFile) or "gzip" in low or "compressed" in low:
        what = "truncated or corrupt gzip"
    elif src.fmt == "parquet":
        what = "unreadable Parquet"
    else:
        what = "unreadable file"
    return BundleError(f"{src.rel}: {what}: {text}")


def _open_binary(src: SourceFile) -> IO[bytes]:
    handle = gzip.open(src.path, "rb") if src.gzip else open(src.path, "rb")  # noqa: SIM115
    return cast(IO[bytes], handle)


def check_columns(src: SourceFile, columns: list[str], required: tuple[str, ...]) -> None:
    """File-level column checks: no duplicate names, every required column present."""
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise BundleError(f"{src.rel}: duplicate column {name!r}")
        seen.add(name)
    missing = [c for c in required if c not in seen]
    if missing:
        raise BundleError(f"{src.rel}: missing required column(s) {', '.join(missing)}")


def _with_provenance(table: pa.Table, first_row: int) -> pa.Table:
    n = table.num_rows
    table = table.append_column("_row", pa.array(np.arange(first_row, first_row + n, dtype=np.int64)))
    table = table.append_column("_error", pa.nulls(n, pa.string()))
    return table.append_column("_raw", pa.nulls(n, pa.string()))


def _rows_to_table(columns: list[str], rows: list[dict[str, str | None]], lines: list[int],
                   errors: list[str | None], raws: list[str | None]) -> pa.Table:
    data = {c: pa.array([r.get(c) for r in rows], pa.string()) for c in columns}
    data["_row"] = pa.array(lines, pa.int64())
    data["_error"] = pa.array(errors, pa.string())
    data["_raw"] = pa.array(raws, pa.string())
    return pa.table(data)


# ---- CSV ---------------------------------------------------------------------------------------


def csv_header(src: SourceFile) -> list[str] | None:
    """The header's column names, or None for an empty file (no bytes but a BOM/whitespace)."""
    try:
        with _open_binary(src) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
            for row in csv.reader(text):
                if row and any(cell.strip() for cell in row):
                    return [c.strip() for c in row]
                return None  # a blank first line: nothing usable in this file
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        raise _fault(src, exc) from exc
    return None


def _csv_fast(src: SourceFile, columns: list[str], chunk_rows: int) -> Iterator[pa.Table]:
    bad: list[int] = []

    def on_invalid(row: Any) -> str:
        bad.append(1)
        return "error"

    read_opts = pcsv.ReadOptions(column_names=columns, skip_rows=1, block_size=16 << 20)
    parse_opts = pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid)
    convert_opts = pcsv.ConvertOptions(
        column_types={c: pa.string() for c in columns},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    row = 1
    try:
        stream = pa.input_stream(str(src.path), compression="gzip" if src.gzip else None)
        reader = pcsv.open_csv(stream, read_options=read_opts, parse_options=parse_opts,
                               convert_options=convert_opts)
        for batch in reader:
            table = pa.Table.from_batches([batch])
            for start in range(0, table.num_rows, chunk_rows):
                part = table.slice(start, chunk_rows)
                yield _with_provenance(part, row)
                row += part.num_rows
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error) as exc:
        if bad:
            raise SlowPathNeeded(src.rel) from exc
        if "Empty CSV file" in str(exc):
            return
        raise _fault(src, exc) from exc


def _csv_slow(src: SourceFile, columns: list[str], chunk_rows: int) -> Iterator[pa.Table]:
    """Python's csv module: exact record numbers even with malformed rows."""
    rows: list[dict[str, str | None]] = []
    lines: list[int] = []
    errors: list[str | None] = []
    raws: list[str | None] = []
    width = len(columns)
    try:
        with _open_binary(src) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
            reader = csv.reader(text, strict=False)
            next(reader, None)
            number = 0
            for record in reader:
                if not record:
                    continue  # blank line: not a row (pyarrow's fast path skips them too)
                number += 1
                if len(record) == width:
                    rows.append(dict(zip(columns, record, strict=True)))
                    errors.append(None)
                    raws.append(None)
                else:
                    rows.append({})
                    errors.append(f"expected {width} fields, got {len(record)}")
                    raws.append(",".join(record))
                lines.append(number)
                if len(rows) >= chunk_rows:
                    yield _rows_to_table(columns, rows, lines, errors, raws)
                    rows, lines, errors, raws = [], [], [], []
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        raise _fault(src, exc) from exc
    if rows:
        yield _rows_to_table(columns, rows, lines, errors, raws)


# ---- JSONL -------------------------------------------------------------------------------------


def json_text(value: Any) -> str | None:
    """A JSON value as the string the validator sees (nested values as compact JSON)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _jsonl(src: SourceFile, chunk_rows: int) -> Iterator[pa.Table]:
    rows: list[dict[str, str | None]] = []
    lines: list[int] = []
    errors: list[str | None] = []
    raws: list[str | None] = []
    columns: dict[str, None] = {}
    try:
        with _open_binary(src) as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise BundleError(f"{src.rel}: undecodable bytes (not UTF-8) on line {number}") from exc
                if number == 1:
                    line = line.removeprefix("\ufeff")
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                error: str | None
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    obj, error = None, f"malformed JSON: {exc}"
                else:
                    error = None if isinstance(obj, dict) else "not a JSON object"
                if error is None and isinstance(obj, dict):
                    row = {str(k): json_text(v) for k, v in obj.items()}
                    for key in row:
                        columns.setdefault(key, None)
                    rows.append(row)
                    raws.append(None)
                else:
                    rows.append({})
                    raws.append(line)
                errors.append(error)
                lines.append(number)
                if len(rows) >= chunk_rows:
                    yield _rows_to_table(list(columns), rows, lines, errors, raws)
                    rows, lines, errors, raws = [], [], [], []
    except (OSError, EOFError, zlib.error) as exc:
        raise _fault(src, exc) from exc
    if rows:
        yield _rows_to_table(list(columns), rows, lines, errors, raws)


def _jsonl_fast(src: SourceFile, columns: Sequence[str], chunk_rows: int) -> Iterator[pa.Table]:
    """JSONL through pyarrow (each line one field: the separator is a control character valid
    JSON never contains raw) and DuckDB's JSON functions: the contract ``columns`` only, every
    scalar as text. Any parse trouble raises ``SlowPathNeeded`` (the Python path then decides
    between a row fault and a file fault, with line numbers)."""
    import duckdb

    read_opts = pcsv.ReadOptions(column_names=["line"], block_size=16 << 20)
    parse_opts = pcsv.ParseOptions(delimiter="\x1f", quote_char=False, escape_char=False,
                                   newlines_in_values=False, ignore_empty_lines=False)
    convert_opts = pcsv.ConvertOptions(column_types={"line": pa.string()}, strings_can_be_null=False)
    # one parse per line: all paths at once, then the list's elements
    paths = "[" + ", ".join(sql_str("$." + json.dumps(c)) for c in columns) + "]"
    fields = ", ".join(f"_vals[{i + 1}] AS {_sql_ident(c)}" for i, c in enumerate(columns))
    sql = (
        "SELECT _row, _error, _raw, " + fields + " FROM (SELECT _row, "  # noqa: S608 - columns from the spec
        "CASE WHEN NOT _valid THEN 'malformed JSON' WHEN NOT _obj THEN 'not a JSON object' END AS _error, "
        f"CASE WHEN NOT _obj THEN line END AS _raw, CASE WHEN _obj THEN json_extract_string(line, {paths}) END AS _vals "
        "FROM (SELECT line, _row, json_valid(line) AS _valid, "
        "json_valid(line) AND starts_with(ltrim(line), '{') AS _obj "
        "FROM lines WHERE trim(line) <> ''))"
    )
    con = connect()
    row = 1
    try:
        stream = pa.input_stream(str(src.path), compression="gzip" if src.gzip else None)
        reader = pcsv.open_csv(stream, read_options=read_opts, parse_options=parse_opts, convert_options=convert_opts)
        for batch in reader:
            for start in range(0, batch.num_rows, chunk_rows):
                part = batch.slice(start, chunk_rows)
                n = part.num_rows
                lines = pa.table({"line": part.column(0), "_row": pa.array(np.arange(row, row + n, dtype=np.int64))})
                row += n
                con.register("lines", lines)
                table = con.sql(sql).to_arrow_table()
                con.unregister("lines")
                if table.num_rows:
                    yield table
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error, duckdb.Error) as exc:
        if "Empty CSV file" in str(exc):
            return
        raise SlowPathNeeded(src.rel) from exc
    finally:
        con.close()


def _sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---- Parquet -----------------------------------------------------------------------------------


def _as_string(column: pa.ChunkedArray | pa.Array) -> pa.Array | pa.ChunkedArray:
    """Any Arrow column as strings; timestamps as ISO-8601 UTC so the validator can parse them."""
    typ = column.type
    if pa.types.is_dictionary(typ):
        column = column.cast(typ.value_type)
        typ = column.type
    if pa.types.is_string(typ):
        return column
    if pa.types.is_timestamp(typ):
        import pyarrow.compute as pc

        # naive means UTC; an instant in another zone is the same instant in UTC
        column = column.cast(pa.timestamp(typ.unit, tz="UTC"))
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
    if pa.types.is_boolean(typ):
        import pyarrow.compute as pc

        return pc.if_else(column, "true", "false")
    if pa.types.is_nested(typ):
        return pa.array([json_text(v) for v in column.to_pylist()], pa.string())
    return column.cast(pa.string())


def parquet_columns(src: SourceFile) -> list[str]:
    try:
        return list(pq.ParquetFile(src.path).schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        raise _fault(src, exc) from exc


def _parquet(src: SourceFile, chunk_rows: int) -> Iterator[pa.Table]:
    row = 1
    try:
        parquet = pq.ParquetFile(src.path)
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            table = pa.table({name: _as_string(batch.column(name)) for name in batch.schema.names})
            yield _with_provenance(table, row)
            row += table.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise _fault(src, exc) from exc


# ---- the entry point ---------------------------------------------------------------------------


def file_columns(src: SourceFile) -> list[str] | None:
    """The column names a CSV or Parquet file declares (None: empty file, or JSONL)."""
    if src.fmt == "csv":
        return csv_header(src)
    if src.fmt == "parquet":
        return parquet_columns(src)
    return None


def iter_chunks(src: SourceFile, *, fast: bool = True, chunk_rows: int = CHUNK_ROWS,
                columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
    """Stream a file as string tables with ``_row``, ``_error`` and ``_raw`` (see module doc).
    For JSONL, ``columns`` (the table's contract columns) enables the vectorised fast path,
    which yields just those columns; without it every key becomes a column."""
    if src.fmt == "csv":
        columns = csv_header(src)
        if columns is None:
            return iter(())
        return (_csv_fast if fast else _csv_slow)(src, columns, chunk_rows)
    if src.fmt == "jsonl":
        if fast and columns:
            return _jsonl_fast(src, columns, chunk_rows)
        return _jsonl(src, chunk_rows)
    return _parquet(src, chunk_rows)
