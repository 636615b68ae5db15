"""Staging a bundle: read and check every file, classify every row, then commit atomically.

Everything is built in ``staging/.tmp-<bundle_id>/`` and only moved into place (``commit``) once
every file passed the file-level checks, so a failed or killed load leaves the staging area as it
was (a kill during ``commit`` itself leaves this bundle's own files half-replaced, which the next
run of the same bundle replaces again). Per table:

1. each file is streamed in chunks; Python derives the enrichment columns per distinct value
   (``loaders.derive``) and DuckDB applies the row rules (``loaders.validate``), writing a
   *checked* Parquet per file with ``_reason`` (row fault or null) and ``_digest``;
2. DuckDB applies the table rules over all checked files: unknown ``account_id`` (accounts of
   this bundle and of bundles staged before), then duplicates on the table's key among the rows
   still good: the first by (file, row) is kept, later identical rows count as duplicates,
   later different rows are quarantined;
3. the good rows go to ``final/<table>/<bundle_id>-0000.parquet``, faults to the quarantine
   JSONL (raw rows re-read from the source file for table-rule faults), counts per file.

Personal data at rest: the quarantine keeps each faulty row's table, file, row number, reason
and raw values, but e-mail, phone and billing name only as their keyed hashes
(``loaders.enrich.redact_personal``). The staging area and the quarantine are owner-only (0700
directories, 0600 files, ``graph.private_files``), and ``bundles.json`` records the hash
scheme and a fingerprint of the key, so a load never mixes hashes that cannot match
(``check_hash_scheme``).

A load is finished only once the graph is written: ``commit`` first writes the marker
``staging/.graph-pending.json`` and the loader removes it after the graph write succeeded
(``finish_graph``). A graph write that fails or is killed leaves it, and detection refuses a
staging area with the marker (``require_finished_load``): the graph holds part of what staging
says. Running the load again rewrites every aggregate from the staging area and removes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from graph.private_files import open_private, private_dir, private_file, write_private_text
from graph.staging import (
    MINHASH_PERMUTATIONS,
    TABLES,
    connect,
    mark_graph_pending,
    read_bundles,
    sql_list,
    sql_str,
    staged_files,
    table_dir,
)
from graph.workspace import (
    bundles_path,
    quarantine_path,
    stage_tmp_dir,
    staging_dir,
    templates_path,
)
from loaders import derive, prompts
from loaders.enrich import (
    HASH_SCHEME,
    LEGACY_HASH_SCHEME,
    IntelIndex,
    IpResolver,
    key_check,
    mask_card_numbers,
    redact_personal,
)
from loaders.errors import BundleError, WorkspaceError
from loaders.progress import LoadProgress
from loaders.reader import (
    DEFAULT_LIMITS,
    Discovery,
    ReadLimits,
    SlowPathNeeded,
    SourceFile,
    check_columns,
    discover,
    file_columns,
    first_object_keys,
    has_surrogate,
    iter_chunks,
)
from loaders.validate import TABLE_SPECS, TableSpec, row_check_sql

# ip_intel first (exchanges are matched against it), accounts before the tables that name them.
TABLE_ORDER = ("ip_intel", "accounts", "operators", "payments", "devices", "labels", "exchanges")
COUNT_KEYS = ("read", "loaded", "quarantined", "duplicates")


@dataclass
class FileCounts:
    table: str
    read: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates: int = 0
    extra_columns: list[str] = field(default_factory=list)
    """Columns beyond the contract, ignored (input-bundle.md); names the loader uses itself
    (``_row``, ``_reason``…) land here too, never in the checks (JSONL: the first object's)."""

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in COUNT_KEYS}


@dataclass
class StageResult:
    bundle_id: str
    bundle_path: str
    files: dict[str, FileCounts] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    quarantine_path: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    def tables(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for counts in self.files.values():
            into = out.setdefault(counts.table, dict.fromkeys(COUNT_KEYS, 0))
            for k in COUNT_KEYS:
                into[k] += getattr(counts, k)
        return {t: out[t] for t in TABLE_ORDER if t in out}


def prefetch(chunks: Iterator[pa.Table], depth: int = 2) -> Iterator[pa.Table]:
    """Read the next chunks in a background thread while this one is being checked (Arrow's
    readers release the GIL, so decoding overlaps with the Python and DuckDB work). Reader
    exceptions are re-raised here, in order."""
    done = object()
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        box.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            box.put(exc)

    thread = threading.Thread(target=work, name="sybilscope-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def fingerprint(discovery: Discovery) -> str:
    """The bundle id: a hash of every table file's relative path, size and content."""
    digest = hashlib.sha256()
    for table in sorted(discovery.files):
        for src in discovery.files[table]:
            digest.update(f"{src.rel}\0{src.path.stat().st_size}\0".encode())
            with open(src.path, "rb") as fh:
                digest.update(hashlib.file_digest(fh, "sha1").digest())
    return digest.hexdigest()[:20]


class Stager:
    """Stages one bundle into a workspace (see the module docstring)."""

    def __init__(self, bundle: Path, workspace: Path, salt: str, progress: LoadProgress | None = None,
                 limits: ReadLimits = DEFAULT_LIMITS) -> None:
        self.bundle = bundle.resolve()
        self.workspace = workspace
        self.salt = salt
        self.progress = progress or LoadProgress()
        self.limits = limits
        self.discovery = discover(self.bundle)
        self.extra_columns: dict[str, list[str]] = {}
        self._check_headers()
        self.bundle_id = fingerprint(self.discovery)
        self.tmp = stage_tmp_dir(workspace, self.bundle_id)
        self.result = StageResult(self.bundle_id, str(self.bundle), ignored=list(self.discovery.ignored))
        self.slow_files: set[str] = set()
        self.templates = derive.TemplateCollector()
        self.template_parts = 0
        self.resolver = IpResolver(IntelIndex([]))

    # ---- the steps -----------------------------------------------------------------------------

    def _check_headers(self) -> None:
        for table, files in self.discovery.files.items():
            spec = TABLE_SPECS[table]
            for src in files:
                columns = file_columns(src, self.limits)
                if columns is not None:
                    check_columns(src, columns, spec.required)
                else:
                    columns = first_object_keys(src, self.limits) if src.fmt == "jsonl" else []
                self.extra_columns[src.rel] = [c for c in columns if c not in spec.columns]

    def stage(self) -> StageResult:
        """Read, check and classify every table into the temporary directory."""
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        private_dir(staging_dir(self.workspace))
        private_dir(self.tmp / "duckdb")
        open_private(self.tmp / "quarantine.jsonl").close()
        self.con = connect(temp_directory=self.tmp / "duckdb", preserve_insertion_order=False)
        try:
            for table in TABLE_ORDER:
                files = self.discovery.files.get(table)
                if files is None:
                    if table == "ip_intel":
                        self._build_resolver(None)
                    if table == "accounts":
                        raise BundleError(f"{self.bundle}: no accounts table")
                    continue
                started = time.perf_counter()
                self._stage_table(TABLE_SPECS[table], files)
                self.result.seconds[table] = time.perf_counter() - started
            self.progress.phase("templates")
            self._finish_templates()
        finally:
            self.con.close()
        return self.result

    def _stage_table(self, spec: TableSpec, files: list[SourceFile]) -> None:
        self.progress.start_table(spec.name, len(files))
        checked_dir = self.tmp / "checked" / spec.name
        checked_dir.mkdir(parents=True)
        checked: list[Path] = []
        for i, src in enumerate(files):
            self.result.files[src.rel] = FileCounts(spec.name, extra_columns=self.extra_columns.get(src.rel, []))
            out = checked_dir / f"{i:05d}.parquet"
            if self._check_file(src, spec, out):
                checked.append(out)
        self.progress.finish_table(spec.name)
        self.progress.phase(f"checking {spec.name}")
        final = self.tmp / "final" / spec.name / f"{self.bundle_id}-0000.parquet"
        final.parent.mkdir(parents=True)
        if checked:
            self._classify(spec, checked, final, {s.rel: s for s in files})
        if spec.name == "ip_intel":
            self._build_resolver(final if final.exists() else None)
        if spec.name == "accounts":
            self._build_known(final if final.exists() else None)

    def _check_file(self, src: SourceFile, spec: TableSpec, out: Path) -> bool:
        """Stream one file through derive + row rules into ``out``; False when it has no rows."""
        try:
            return self._check_pass(src, spec, out, fast=True)
        except SlowPathNeeded:
            out.unlink(missing_ok=True)
            self.slow_files.add(src.rel)
            return self._check_pass(src, spec, out, fast=False)

    def _check_pass(self, src: SourceFile, spec: TableSpec, out: Path, *, fast: bool) -> bool:
        sql = f"SELECT *, CAST($file AS VARCHAR) AS _file FROM ({row_check_sql(spec)})"  # noqa: S608 - from the spec
        writer: pq.ParquetWriter | None = None
        rows = 0
        try:
            chunks = iter_chunks(src, fast=fast, columns=spec.columns, limits=self.limits, free_text=spec.free_text)
            for chunk in prefetch(chunks):
                prepared = self._derive(spec, derive.ensure_columns(chunk, spec))
                self.con.register("chunk", prepared)
                result = self.con.sql(sql, params={"file": src.rel}).to_arrow_table()
                self.con.unregister("chunk")
                if writer is None:
                    writer = pq.ParquetWriter(out, result.schema, compression="lz4")
                writer.write_table(result.cast(writer.schema))
                rows += chunk.num_rows
                self.progress.advance(spec.name, chunk.num_rows)
                self._drain_templates()
        except SlowPathNeeded:
            self.progress.advance(spec.name, -rows)
            raise
        finally:
            if writer is not None:
                writer.close()
        return writer is not None

    def _derive(self, spec: TableSpec, chunk: pa.Table) -> pa.Table:
        if spec.name == "accounts":
            return derive.derive_accounts(chunk, self.resolver, self.salt)
        if spec.name == "exchanges":
            return derive.derive_exchanges(chunk, self.resolver, self.templates)
        if spec.name == "payments":
            return derive.derive_payments(chunk, self.salt)
        if spec.name == "ip_intel":
            return derive.derive_ip_intel(chunk)
        return chunk

    def _build_resolver(self, final: Path | None) -> None:
        """Intel of this bundle (winning) and of bundles staged before, for the IP match."""
        rows: list[dict[str, Any]] = []
        for path in staged_files(self.workspace, "ip_intel", exclude_bundle=self.bundle_id):
            rows.extend(pq.read_table(path).to_pylist())
        if final is not None:
            rows.extend(pq.read_table(final).to_pylist())
        self.resolver = IpResolver(IntelIndex(rows))

    def _build_known(self, final: Path | None) -> None:
        files = staged_files(self.workspace, "accounts", exclude_bundle=self.bundle_id)
        if final is not None:
            files.append(final)
        if files:
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE known AS SELECT DISTINCT account_id FROM read_parquet({sql_list(files)})"  # noqa: S608
            )
        else:
            self.con.execute("CREATE OR REPLACE TEMP TABLE known (account_id VARCHAR)")

    # ---- table rules -------------------------------------------------------------------------

    def _classify(self, spec: TableSpec, checked: list[Path], final: Path, sources: dict[str, SourceFile]) -> None:
        con = self.con
        con.execute(f"CREATE OR REPLACE TEMP VIEW chk AS SELECT * FROM read_parquet({sql_list(checked)})")  # noqa: S608
        keys = ", ".join(f'"{k}"' for k in spec.key)
        known = " AND account_id IN (SELECT account_id FROM known)" if spec.account_ref else ""
        if spec.account_ref:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE bad_acct AS SELECT _file, _row FROM chk "
                "WHERE _reason IS NULL AND account_id NOT IN (SELECT account_id FROM known)"
            )
        else:
            con.execute("CREATE OR REPLACE TEMP TABLE bad_acct (_file VARCHAR, _row BIGINT)")
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE dup AS
            WITH ok AS (SELECT {keys}, _file, _row, _digest FROM chk WHERE _reason IS NULL{known}),
            k AS (SELECT {keys} FROM ok GROUP BY ALL HAVING count(*) > 1),
            ranked AS (
                SELECT _file, _row, _digest,
                       row_number() OVER w AS rn, first_value(_digest) OVER w AS first_digest
                FROM ok SEMI JOIN k USING ({keys})
                WINDOW w AS (PARTITION BY {keys} ORDER BY _file, _row))
            SELECT _file, _row, _digest = first_digest AS exact FROM ranked WHERE rn > 1"""  # noqa: S608
        )
        conflict = sql_str(f"duplicate {'+'.join(spec.key)} with conflicting values")
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE verdict AS
            SELECT _file, _row, _reason AS reason, _raw AS raw, false AS dup FROM chk WHERE _reason IS NOT NULL
            UNION ALL SELECT _file, _row, 'unknown account_id', NULL, false FROM bad_acct
            UNION ALL SELECT _file, _row, CASE WHEN exact THEN NULL ELSE {conflict} END, NULL, exact FROM dup"""  # noqa: S608
        )
        for rel, read in con.execute("SELECT _file, count(*) FROM chk GROUP BY 1").fetchall():
            self.result.files[rel].read = int(read)
        for rel, bad, dups in con.execute(
            "SELECT _file, count(*) FILTER (WHERE NOT dup), count(*) FILTER (WHERE dup) FROM verdict GROUP BY 1"
        ).fetchall():
            self.result.files[rel].quarantined = int(bad)
            self.result.files[rel].duplicates = int(dups)
        for rel in sources:
            counts = self.result.files[rel]
            counts.loaded = counts.read - counts.quarantined - counts.duplicates
        con.execute(
            f"""COPY (SELECT * EXCLUDE (_reason, _raw, _digest), {sql_str(self.bundle_id)} AS _bundle
                FROM chk ANTI JOIN verdict USING (_file, _row))
            TO {sql_str(str(final))} (FORMAT PARQUET, COMPRESSION ZSTD, ROW_GROUP_SIZE 262144)"""  # noqa: S608
        )
        self._write_quarantine(spec, sources)

    def _write_quarantine(self, spec: TableSpec, sources: dict[str, SourceFile]) -> None:
        rows = self.con.execute(
            "SELECT _file, _row, reason, raw FROM verdict WHERE reason IS NOT NULL ORDER BY _file, _row"
        ).fetchall()
        if not rows:
            return
        missing: dict[str, set[int]] = {}
        for rel, row, _reason, raw in rows:
            if raw is None:
                missing.setdefault(rel, set()).add(int(row))
        raws = {rel: self._raw_rows(sources[rel], wanted) for rel, wanted in missing.items()}
        with open_private(self.tmp / "quarantine.jsonl", "a") as fh:
            for rel, row, reason, raw in rows:
                if raw is None:
                    value: Any = raws[rel].get(int(row))
                else:
                    try:
                        value = json.loads(raw)
                    except (ValueError, RecursionError):
                        value = raw  # a malformed JSON line: kept as its text
                value = redact_personal(mask_card_numbers(value), spec.personal, self.salt)
                record = {"table": spec.name, "file": rel, "row": int(row), "reason": reason, "raw": value}
                fh.write(json_line(record))

    def _raw_rows(self, src: SourceFile, wanted: set[int]) -> dict[int, dict[str, Any]]:
        """The raw values of some rows of a file, read again (only table-rule faults need this)."""
        out: dict[int, dict[str, Any]] = {}
        targets = pa.array(sorted(wanted), pa.int64())
        columns = TABLE_SPECS[src.table].columns
        spec = TABLE_SPECS[src.table]
        chunks = iter_chunks(src, fast=src.rel not in self.slow_files, columns=columns, limits=self.limits,
                             free_text=spec.free_text)
        for chunk in chunks:
            picked = chunk.filter(pc.is_in(chunk["_row"], value_set=targets))
            for record in picked.to_pylist():
                row = int(record.pop("_row"))
                record.pop("_error", None)
                record.pop("_raw", None)
                out[row] = record
        return out

    # ---- templates ---------------------------------------------------------------------------

    def _drain_templates(self) -> None:
        table = self.templates.drain()
        if table is None:
            return
        directory = self.tmp / "templates"
        directory.mkdir(exist_ok=True)
        table = table.append_column("_seq", pa.array([self.template_parts] * table.num_rows, pa.int64()))
        pq.write_table(table, directory / f"{self.template_parts:06d}.parquet")
        self.template_parts += 1

    def _finish_templates(self) -> None:
        """New templates (first occurrence wins) with their MinHash, for the commit to merge."""
        self._drain_templates()
        directory = self.tmp / "templates"
        if not directory.is_dir():
            return
        existing = templates_path(self.workspace)
        skip = ""
        if existing.exists():
            skip = f"WHERE template_id NOT IN (SELECT template_id FROM read_parquet({sql_str(str(existing))}))"  # noqa: S608
        reader = self.con.sql(
            f"""SELECT template_id, template, example, capability, cot FROM (
                    SELECT DISTINCT ON (template_id) * FROM read_parquet({sql_str(str(directory / '*.parquet'))})
                    ORDER BY template_id, _seq) {skip} ORDER BY template_id"""  # noqa: S608
        ).to_arrow_reader(50_000)
        writer: pq.ParquetWriter | None = None
        try:
            for batch in reader:
                table = pa.Table.from_batches([batch])
                texts = [t or "" for t in table.column("template").to_pylist()]
                matrix = prompts.minhash_matrix(texts, MINHASH_PERMUTATIONS)
                flat = pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), MINHASH_PERMUTATIONS)
                sigs = flat.cast(pa.list_(pa.uint32()))
                table = table.append_column("minhash", sigs)
                if writer is None:
                    writer = pq.ParquetWriter(self.tmp / "templates_new.parquet", table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()

    # ---- commit ------------------------------------------------------------------------------

    def commit(self) -> None:
        """Mark the graph as pending, move the staged files into place (each narrowed to 0600
        first), merge templates, record the bundle."""
        mark_graph_pending(self.workspace, self.bundle_id, self.result.bundle_path)
        for table in TABLES:
            final = self.tmp / "final" / table / f"{self.bundle_id}-0000.parquet"
            dest = table_dir(self.workspace, table)
            for old in dest.glob(f"{self.bundle_id}-*.parquet") if dest.is_dir() else []:
                old.unlink()
            if final.exists():
                private_dir(dest)
                os.replace(private_file(final), dest / final.name)
        self._merge_templates()
        qpath = quarantine_path(self.workspace, self.bundle_id)
        private_dir(qpath.parent)
        os.replace(private_file(self.tmp / "quarantine.jsonl"), qpath)
        self.result.quarantine_path = str(qpath)
        self._record_bundle()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _merge_templates(self) -> None:
        new = self.tmp / "templates_new.parquet"
        if not new.exists():
            return
        path = templates_path(self.workspace)
        parts = [sql_str(str(new))]
        if path.exists():
            parts.insert(0, sql_str(str(path)))
        tmp = path.with_name(f".templates.{self.bundle_id}.parquet")
        self.con = connect(temp_directory=self.tmp / "duckdb", preserve_insertion_order=False)
        try:
            self.con.execute(
                f"""COPY (SELECT DISTINCT ON (template_id) template_id, template, example, capability, cot, minhash
                    FROM read_parquet([{', '.join(parts)}]) ORDER BY template_id)
                TO {sql_str(str(tmp))} (FORMAT PARQUET, COMPRESSION ZSTD)"""  # noqa: S608
            )
        finally:
            self.con.close()
        os.replace(private_file(tmp), path)

    def _record_bundle(self) -> None:
        path = bundles_path(self.workspace)
        bundles = read_bundles(self.workspace)
        entry = next((b for b in bundles if b["bundle_id"] == self.bundle_id), None)
        if entry is None:
            entry = {"bundle_id": self.bundle_id, "seq": 1 + max((b.get("seq", 0) for b in bundles), default=0)}
            bundles.append(entry)
        entry.update(
            path=self.result.bundle_path,
            loaded_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            tables=self.result.tables(),
            ignored_files=self.result.ignored,
            quarantine_path=self.result.quarantine_path,
        )
        tmp = path.with_name(f".bundles.{self.bundle_id}.json")
        document = {"hash_scheme": HASH_SCHEME, "key_check": key_check(self.salt), "bundles": bundles}
        write_private_text(tmp, json.dumps(document, indent=2))
        os.replace(tmp, path)


_SURROGATE_CHAR = re.compile("[\ud800-\udfff]")
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def json_line(record: dict[str, Any]) -> str:
    """One JSONL line: UTF-8 kept readable, but the Unicode line breaks JSON leaves raw are
    escaped so that no line-splitting reader breaks a record in two, and so are lone
    surrogates (a quarantined ``"\\ud800"``), which UTF-8 cannot hold: the line reads back
    to the same strings."""
    text = json.dumps(record, ensure_ascii=False).translate(_LINE_BREAKS)
    if has_surrogate(text):
        text = _SURROGATE_CHAR.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text + "\n"


def _read_document(workspace: Path) -> dict[str, Any] | None:
    path = bundles_path(workspace)
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def check_hash_scheme(workspace: Path, salt: str) -> None:
    """Refuse a load whose hashes could not match the ones staged before: a staging area made
    with another hash scheme (before ``hash_scheme`` was recorded: ``LEGACY_HASH_SCHEME``) or
    another key. Hashes cannot be remade without the raw values, which staging never kept, so
    the way out is a fresh workspace (or the original key)."""
    data = _read_document(workspace)
    if not data or not data.get("bundles"):
        return
    scheme = data.get("hash_scheme", LEGACY_HASH_SCHEME)
    if scheme != HASH_SCHEME:
        raise WorkspaceError(
            f"workspace {workspace}: its staged e-mail, phone and billing-name hashes use the scheme {scheme!r}, "
            f"this version writes {HASH_SCHEME!r}, and the two never match; load the bundles again into a "
            "fresh workspace (--workspace NEW_DIR)"
        )
    recorded = data.get("key_check")
    if recorded and recorded != key_check(salt):
        raise WorkspaceError(
            f"workspace {workspace}: its staged hashes were made with another hashing key (setting hash_salt "
            "or <workspace>/salt changed), and the two never match; load with the original key, or load the "
            "bundles again into a fresh workspace (--workspace NEW_DIR)"
        )
