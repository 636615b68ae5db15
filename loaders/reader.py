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

Hostile input, by construction:

- Only the table's contract columns are read when ``columns`` is given (the stager always gives
  them): an input column named like an internal one (``_row``, ``_error``, ``_raw``, ``_file``,
  ``_bundle``, ``_reason``, ``_digest``, ``_seq``, ``_v_*``, ``_t_*``, ``_d_*``…) can never reach
  the checks or the staging area. input-bundle.md says extra columns are "kept as properties
  where cheap, otherwise ignored, never an error", so such columns are ignored like every other
  extra column, not refused, and the load report lists them per file (``extra_columns``).
  Without ``columns`` every column is read except the provenance names, which stay ours.
- ``ReadLimits``: no line (JSONL) or CSV line/field longer than ``max_line_bytes`` is ever held
  (the Python paths read at most that much per line, the pyarrow paths use blocks no larger,
  so a longer row sends them to the Python path); no more than ``max_decompressed_bytes`` are
  decompressed from a ``.gz`` file or decoded from a Parquet file; JSON nested
  deeper than ``max_json_depth`` is a row fault. Each is a ``BundleError`` naming the file
  (and line) and the setting to raise.
- A lone UTF-16 surrogate in JSON (``"\\ud800"``, which no UTF-8 text can hold) is replaced by
  U+FFFD in the free-text columns given (prompts…) and quarantines the row in any other.
- A symbolic link among a bundle's table files whose target is outside the bundle is refused.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from graph.staging import TABLES, connect, sql_str
from loaders.errors import BundleError

EXTENSIONS = ("csv.gz", "jsonl.gz", "csv", "jsonl", "parquet")
CHUNK_ROWS = 262_144
PROVENANCE = ("_row", "_error", "_raw")
FAST_BLOCK_BYTES = 16 << 20
MAX_JSON_DEPTH = 100


@dataclass(frozen=True)
class ReadLimits:
    """How much one file may make the reader hold or decompress (settings ``max_line_bytes``,
    ``max_decompressed_bytes``; the defaults are theirs)."""

    max_line_bytes: int = 64 << 20
    max_decompressed_bytes: int = 200 << 30
    max_json_depth: int = MAX_JSON_DEPTH

    @property
    def block_bytes(self) -> int:
        """pyarrow's block size: a row must fit in one block, so a row longer than the line
        limit (or than 16 MiB) stops the fast path, and the Python path, which reads lines
        with the limit, either loads it or names the line."""
        return max(4096, min(FAST_BLOCK_BYTES, self.max_line_bytes + 1))

    def line_too_long(self, src: SourceFile, line: int) -> BundleError:
        return BundleError(
            f"{src.rel}: line {line} is longer than max_line_bytes ({self.max_line_bytes} bytes); "
            "raise SYBILSCOPE_MAX_LINE_BYTES to read it"
        )

    def too_much(self, src: SourceFile) -> BundleError:
        return BundleError(
            f"{src.rel}: decompresses to more than max_decompressed_bytes ({self.max_decompressed_bytes} bytes); "
            "raise SYBILSCOPE_MAX_DECOMPRESSED_BYTES to read it"
        )


DEFAULT_LIMITS = ReadLimits()


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


def _inside(path: Path, bundle: Path) -> None:
    """Refuse a symbolic link (or a path through one) that leads out of the bundle: a bundle
    is one directory, and a link to ``/etc`` or another user's files is not part of it."""
    target = path.resolve()
    if not target.is_relative_to(bundle):
        rel = path.relative_to(bundle).as_posix() if path.is_relative_to(bundle) else str(path)
        raise BundleError(f"{rel}: a symbolic link to {target}, outside the bundle; copy the file into the bundle instead")


def discover(bundle: Path) -> Discovery:
    """Map a bundle directory's entries to tables; file-level name faults raise BundleError.
    Hidden entries are skipped; entries matching no table, and ``_``-prefixed marker files
    inside a table directory, are listed in ``ignored`` (and never opened, so links among them
    do not matter); a table's file or directory that is a link out of the bundle is refused."""
    if not bundle.is_dir():
        raise BundleError(f"{bundle}: not a directory")
    bundle = bundle.resolve()
    found = Discovery()
    claims: dict[str, list[str]] = {}
    for entry in sorted(bundle.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if entry.name not in TABLES:
                found.ignored.append(entry.name + "/")
                continue
            _inside(entry, bundle)
            claims.setdefault(entry.name, []).append(entry.name + "/")
            parts = []
            for path in sorted(entry.rglob("*"), key=lambda p: p.as_posix()):
                if path.name.startswith("."):
                    continue
                if path.is_symlink():
                    _inside(path, bundle)
                if not path.is_file():
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
        _inside(entry, bundle)
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


def _binary_lines(src: SourceFile, fh: IO[bytes], limits: ReadLimits) -> Iterator[bytes]:
    """The file's lines (split on ``\\n``, terminator kept), never reading more than the line
    limit of one line: a longer line raises before it is held, and so does a ``.gz`` file
    decompressing past ``max_decompressed_bytes``."""
    cap = limits.max_line_bytes
    number = total = 0
    while True:
        line = fh.readline(cap + 2)
        if not line:
            return
        number += 1
        total += len(line)
        if src.gzip and total > limits.max_decompressed_bytes:
            raise limits.too_much(src)
        if len(line) - (2 if line.endswith(b"\r\n") else 1 if line.endswith(b"\n") else 0) > cap:
            raise limits.line_too_long(src, number)
        yield line


def _text_lines(src: SourceFile, fh: IO[bytes], limits: ReadLimits) -> Iterator[str]:
    """UTF-8 lines for Python's csv module (a BOM dropped; ``\\r``, ``\\n`` and ``\\r\\n`` end a
    line), with the limits of ``_binary_lines``: at most ``max_line_bytes`` characters are read
    per line and a line longer than that many bytes raises."""
    cap = limits.max_line_bytes
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    number = 0
    while True:
        line = text.readline(cap + 2)
        if not line:
            return
        number += 1
        if src.gzip and fh.tell() > limits.max_decompressed_bytes:
            raise limits.too_much(src)
        content = line.rstrip("\r\n")
        if len(content) > cap or (len(content) * 4 > cap and len(content.encode("utf-8", "surrogatepass")) > cap):
            raise limits.line_too_long(src, number)
        yield line


def _csv_field_limit(limits: ReadLimits) -> None:
    # the csv module's own default (128 KiB) would refuse fields the line limit allows
    csv.field_size_limit(limits.max_line_bytes)


def _csv_fault(src: SourceFile, exc: BaseException, record: int, limits: ReadLimits) -> BundleError:
    if isinstance(exc, csv.Error) and "field larger than field limit" in str(exc):
        return BundleError(
            f"{src.rel}: a field of record {record} is longer than max_line_bytes ({limits.max_line_bytes} bytes); "
            "raise SYBILSCOPE_MAX_LINE_BYTES to read it"
        )
    return _fault(src, exc)


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


def kept_columns(names: Sequence[str], columns: Collection[str] | None) -> list[str]:
    """Of a file's column names, those the reader yields: the contract ``columns`` when
    given, else every name but the provenance ones (which are the reader's own)."""
    if columns is not None:
        return [n for n in names if n in columns]
    return [n for n in names if n not in PROVENANCE]


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


def _value_bytes(table: pa.Table | pa.RecordBatch) -> int:
    """The bytes of a batch's string values plus one separator each: what was decompressed
    to produce it, give or take quotes and line ends."""
    total = table.num_rows * max(1, table.num_columns)
    for column in table.columns:
        length = pc.sum(pc.binary_length(column)).as_py()
        total += int(length or 0)
    return total


def _longest_value(table: pa.Table | pa.RecordBatch) -> int:
    longest = 0
    for column in table.columns:
        value = pc.max(pc.binary_length(column)).as_py()
        longest = max(longest, int(value or 0))
    return longest


# ---- CSV ---------------------------------------------------------------------------------------


def csv_header(src: SourceFile, limits: ReadLimits = DEFAULT_LIMITS) -> list[str] | None:
    """The header's column names, or None for an empty file (no bytes but a BOM/whitespace)."""
    _csv_field_limit(limits)
    try:
        with _open_binary(src) as fh:
            for row in csv.reader(_text_lines(src, fh, limits)):
                if row and any(cell.strip() for cell in row):
                    return [c.strip() for c in row]
                return None  # a blank first line: nothing usable in this file
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        raise _csv_fault(src, exc, 0, limits) from exc
    return None


def _csv_fast(src: SourceFile, header: list[str], chunk_rows: int, keep: list[str],
              limits: ReadLimits) -> Iterator[pa.Table]:
    bad: list[int] = []

    def on_invalid(row: Any) -> str:
        bad.append(1)
        return "error"

    # pyarrow reads every column it is told to include; with none it would read them all
    include = keep or header[:1]
    read_opts = pcsv.ReadOptions(column_names=header, skip_rows=1, block_size=limits.block_bytes)
    parse_opts = pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid)
    convert_opts = pcsv.ConvertOptions(
        column_types={c: pa.string() for c in include},
        include_columns=include,
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    check_length = limits.block_bytes > limits.max_line_bytes + 1
    row = 1
    decompressed = 0
    try:
        stream = pa.input_stream(str(src.path), compression="gzip" if src.gzip else None)
        reader = pcsv.open_csv(stream, read_options=read_opts, parse_options=parse_opts,
                               convert_options=convert_opts)
        for batch in reader:
            table = pa.Table.from_batches([batch])
            if src.gzip:
                decompressed += _value_bytes(table)
                if decompressed > limits.max_decompressed_bytes:
                    raise limits.too_much(src)
            if check_length and _longest_value(table) > limits.max_line_bytes:
                raise SlowPathNeeded(src.rel)  # names the record, exactly
            if not keep:
                table = table.select([])
            for start in range(0, table.num_rows, chunk_rows):
                part = table.slice(start, chunk_rows)
                yield _with_provenance(part, row)
                row += part.num_rows
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error) as exc:
        if bad or "straddl" in str(exc):
            # a malformed row, or one longer than a block: Python's csv reads it exactly
            raise SlowPathNeeded(src.rel) from exc
        if "Empty CSV file" in str(exc):
            return
        raise _fault(src, exc) from exc


def _csv_slow(src: SourceFile, header: list[str], chunk_rows: int, keep: list[str],
              limits: ReadLimits) -> Iterator[pa.Table]:
    """Python's csv module: exact record numbers even with malformed rows."""
    rows: list[dict[str, str | None]] = []
    lines: list[int] = []
    errors: list[str | None] = []
    raws: list[str | None] = []
    width = len(header)
    keep_set = set(keep)
    wanted = [(i, name) for i, name in enumerate(header) if name in keep_set]
    _csv_field_limit(limits)
    number = 0
    try:
        with _open_binary(src) as fh:
            reader = csv.reader(_text_lines(src, fh, limits), strict=False)
            next(reader, None)
            for record in reader:
                if not record:
                    continue  # blank line: not a row (pyarrow's fast path skips them too)
                number += 1
                if len(record) == width:
                    rows.append({name: record[i] for i, name in wanted})
                    errors.append(None)
                    raws.append(None)
                else:
                    rows.append({})
                    errors.append(f"expected {width} fields, got {len(record)}")
                    raws.append(",".join(record))
                lines.append(number)
                if len(rows) >= chunk_rows:
                    yield _rows_to_table(keep, rows, lines, errors, raws)
                    rows, lines, errors, raws = [], [], [], []
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        raise _csv_fault(src, exc, number + 1, limits) from exc
    if rows:
        yield _rows_to_table(keep, rows, lines, errors, raws)


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


_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone UTF-16 surrogate (JSON's ``"\\ud800"`` decodes to one;
    a valid pair decodes to a single code point): no UTF-8 writer can encode it."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def replace_surrogates(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text) if has_surrogate(text) else text


def json_too_deep(line: str, limit: int) -> bool:
    """Whether a JSON text nests arrays/objects deeper than ``limit`` (brackets inside strings
    do not count). Lines with fewer brackets than that are not scanned at all."""
    if line.count("[") + line.count("{") <= limit:
        return False
    depth = 0
    for match in _JSON_TOKEN.finditer(line):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


def _json_row(obj: dict[Any, Any], keep: Collection[str] | None,
              free_text: Collection[str]) -> tuple[dict[str, str | None], str | None]:
    """A JSON object's values as text (the kept keys only), and the row fault if one holds a
    lone surrogate outside the free-text columns (there it becomes U+FFFD)."""
    row: dict[str, str | None] = {}
    for k, v in obj.items():
        key = replace_surrogates(str(k))
        if (keep is not None and key not in keep) or (keep is None and key in PROVENANCE):
            continue
        text = json_text(v)
        if text is not None and has_surrogate(text):
            if key not in free_text:
                return {}, f"invalid Unicode (lone surrogate) in {key}"
            text = replace_surrogates(text)
        row[key] = text
    return row, None


def _jsonl(src: SourceFile, chunk_rows: int, limits: ReadLimits = DEFAULT_LIMITS,
           keep: Collection[str] | None = None, free_text: Collection[str] = ()) -> Iterator[pa.Table]:
    rows: list[dict[str, str | None]] = []
    lines: list[int] = []
    errors: list[str | None] = []
    raws: list[str | None] = []
    columns: dict[str, None] = dict.fromkeys(keep) if keep is not None else {}
    nested = f"JSON nested deeper than {limits.max_json_depth} levels"
    try:
        with _open_binary(src) as fh:
            for number, raw in enumerate(_binary_lines(src, fh, limits), start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise BundleError(f"{src.rel}: undecodable bytes (not UTF-8) on line {number}") from exc
                if number == 1:
                    line = line.removeprefix("\ufeff")
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                error: str | None = None
                row: dict[str, str | None] = {}
                if json_too_deep(line, limits.max_json_depth):
                    error = nested
                else:
                    try:
                        obj = json.loads(line)
                    except RecursionError:
                        error = nested
                    except ValueError as exc:
                        error = f"malformed JSON: {exc}"
                    else:
                        if isinstance(obj, dict):
                            row, error = _json_row(obj, keep, free_text)
                        else:
                            error = "not a JSON object"
                if error is None:
                    if keep is None:
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


def _jsonl_fast(src: SourceFile, columns: Sequence[str], chunk_rows: int,
                limits: ReadLimits = DEFAULT_LIMITS) -> Iterator[pa.Table]:
    """JSONL through pyarrow (each line one field: the separator is a control character valid
    JSON never contains raw) and DuckDB's JSON functions: the contract ``columns`` only, every
    scalar as text. Any parse trouble (a lone surrogate, a line longer than a block…) raises
    ``SlowPathNeeded`` (the Python path then decides between a row fault and a file fault,
    with line numbers)."""
    import duckdb

    read_opts = pcsv.ReadOptions(column_names=["line"], block_size=limits.block_bytes)
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
    check_length = limits.block_bytes > limits.max_line_bytes + 1
    con = connect()
    row = 1
    decompressed = 0
    try:
        stream = pa.input_stream(str(src.path), compression="gzip" if src.gzip else None)
        reader = pcsv.open_csv(stream, read_options=read_opts, parse_options=parse_opts, convert_options=convert_opts)
        for batch in reader:
            if src.gzip:
                decompressed += _value_bytes(batch)
                if decompressed > limits.max_decompressed_bytes:
                    raise limits.too_much(src)
            if check_length and _longest_value(batch) > limits.max_line_bytes:
                raise SlowPathNeeded(src.rel)  # names the line, exactly
            for start in range(0, batch.num_rows, chunk_rows):
                part = batch.slice(start, chunk_rows)
                n = part.num_rows
                lines = pa.table({"line": part.column(0), "_row": pa.array(np.arange(row, row + n, dtype=np.int64))})
                row += n
                con.register("lines", lines)
                table = con.sql(sql).to_arrow_table()
                con.unregister("lines")
                if _python_disagrees(table, limits):
                    raise SlowPathNeeded(src.rel)
                if table.num_rows:
                    yield table
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error, duckdb.Error) as exc:
        if "Empty CSV file" in str(exc):
            return
        raise SlowPathNeeded(src.rel) from exc
    finally:
        con.close()


def _python_disagrees(table: pa.Table, limits: ReadLimits) -> bool:
    """Whether a line DuckDB called malformed is JSON to Python (a lone surrogate escape,
    which DuckDB refuses): then the Python path must read the file, to keep such rows (or
    quarantine them with the right reason). Malformed lines are rare; only they are re-parsed."""
    malformed = pc.equal(table["_error"], "malformed JSON")
    if not pc.any(malformed).as_py():
        return False
    for line in table.filter(malformed)["_raw"].to_pylist():
        if line is None or json_too_deep(line, limits.max_json_depth):
            continue
        try:
            json.loads(line)
        except (ValueError, RecursionError):
            continue
        return True
    return False


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


def _parquet(src: SourceFile, chunk_rows: int, limits: ReadLimits = DEFAULT_LIMITS,
             columns: Collection[str] | None = None) -> Iterator[pa.Table]:
    row = 1
    try:
        parquet = pq.ParquetFile(src.path)
        meta = parquet.metadata
        declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if declared > limits.max_decompressed_bytes:
            raise limits.too_much(src)
        keep = kept_columns(parquet.schema_arrow.names, columns)
        decoded = 0
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=keep):
            table = pa.table({name: _as_string(batch.column(name)) for name in keep})
            if not keep:
                table = pa.table({"_": pa.nulls(batch.num_rows)}).select([])
            # dictionary and run-length pages declare little and decode to much: count both
            decoded += _value_bytes(table)
            if decoded > limits.max_decompressed_bytes:
                raise limits.too_much(src)
            yield _with_provenance(table, row)
            row += table.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise _fault(src, exc) from exc


# ---- the entry point ---------------------------------------------------------------------------


def file_columns(src: SourceFile, limits: ReadLimits = DEFAULT_LIMITS) -> list[str] | None:
    """The column names a CSV or Parquet file declares (None: empty file, or JSONL)."""
    if src.fmt == "csv":
        return csv_header(src, limits)
    if src.fmt == "parquet":
        return parquet_columns(src)
    return None


def first_object_keys(src: SourceFile, limits: ReadLimits = DEFAULT_LIMITS) -> list[str]:
    """The keys of a JSONL file's first line that is a JSON object (what the load report can
    say about a JSONL file's extra columns without reading it all); [] when there is none."""
    try:
        with _open_binary(src) as fh:
            for raw in _binary_lines(src, fh, limits):
                line = raw.decode("utf-8", "replace").removeprefix("\ufeff").strip()
                if not line:
                    continue
                if json_too_deep(line, limits.max_json_depth):
                    return []
                try:
                    obj = json.loads(line)
                except (ValueError, RecursionError):
                    return []
                return [replace_surrogates(str(k)) for k in obj] if isinstance(obj, dict) else []
    except (OSError, EOFError, zlib.error) as exc:
        raise _fault(src, exc) from exc
    return []


def iter_chunks(src: SourceFile, *, fast: bool = True, chunk_rows: int = CHUNK_ROWS,
                columns: Sequence[str] | None = None, limits: ReadLimits = DEFAULT_LIMITS,
                free_text: Collection[str] = ()) -> Iterator[pa.Table]:
    """Stream a file as string tables with ``_row``, ``_error`` and ``_raw`` (see module doc).
    With ``columns`` (the table's contract columns) only those are read, whatever else the file
    holds, and JSONL takes the vectorised fast path; without it every column but the
    provenance names is. ``free_text`` names the columns where a lone surrogate is replaced
    rather than a row fault."""
    if src.fmt == "csv":
        header = csv_header(src, limits)
        if header is None:
            return iter(())
        keep = kept_columns(header, columns)
        return (_csv_fast if fast else _csv_slow)(src, header, chunk_rows, keep, limits)
    if src.fmt == "jsonl":
        if fast and columns:
            return _jsonl_fast(src, columns, chunk_rows, limits)
        return _jsonl(src, chunk_rows, limits, columns, free_text)
    return _parquet(src, chunk_rows, limits, columns)
