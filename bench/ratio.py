"""Side-by-side ratios: ``load`` and ``detect`` of one bundle against a bare DuckDB scan of the
same bundle's exchanges, in one run, on the embedded store and (with ``--neo4j``) on Neo4j.

Run by hand; prints figures, asserts nothing::

    .venv/bin/sybilscope generate /tmp/w --scale small --scenario real-text
    .venv/bin/python bench/ratio.py --bundle /tmp/w
    .venv/bin/python bench/ratio.py --bundle /tmp/w --neo4j bolt://127.0.0.1:7742 --clear-neo4j
    .venv/bin/python bench/ratio.py --bundle /tmp/w --jsonl      # exchanges as one exchanges.jsonl.gz

or let it generate the world (``--scale small``, the default, into a temporary directory).

The scan is what "just reading the data" costs: every exchanges file of the bundle read by
DuckDB (Parquet, JSON lines or CSV, gzipped or not), counted and grouped by account with the
token sums, the way the loader's aggregates group them. ``load`` is ``load_bundle`` into a fresh
workspace (staging plus the graph write) and ``detect`` is ``run_detection`` on that store, both
timed in this process after the store is open. Neo4j is written into as it is: a database that
is not empty is refused unless ``--clear-neo4j`` (which deletes every node first) is given.
Prints one JSON line per store and a table of the ratios, by wall clock and by this process's
CPU time (the fairer figure on a shared machine; it leaves out the Neo4j server's own work).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graph.detection import run_detection  # noqa: E402
from graph.schema import Label  # noqa: E402
from graph.settings import Settings  # noqa: E402
from graph.staging import connect, sql_list, sql_str  # noqa: E402
from graph.stores import open_store  # noqa: E402
from loaders.load import load_bundle  # noqa: E402
from loaders.reader import discover, split_name  # noqa: E402

_READERS = {
    "parquet": "read_parquet({files}, union_by_name = true)",
    "jsonl": "read_json({files}, format = 'newline_delimited', union_by_name = true)",
    "csv": "read_csv({files}, union_by_name = true, header = true)",
}


def exchange_files(bundle: Path) -> dict[str, list[str]]:
    """The bundle's exchanges files by format (parquet, jsonl, csv), as the loader finds them."""
    out: dict[str, list[str]] = {}
    for src in discover(bundle).files.get("exchanges", []):
        out.setdefault(src.fmt, []).append(str(src.path))
    return out


def cpu_s() -> float:
    """CPU seconds this process has used (every thread: DuckDB's too), user plus system."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def as_jsonl(bundle: Path, out: Path) -> Path:
    """A copy of ``bundle`` whose exchanges are one ``exchanges.jsonl.gz`` (the form real
    exports often take, and the issue's 0.78 s scan): the other tables are copied as they are."""
    out.mkdir(parents=True)
    for entry in bundle.iterdir():
        if entry.name.startswith(".") or split_name(entry.name)[0] == "exchanges":
            continue
        (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, out / entry.name)
    files = exchange_files(bundle)
    with connect() as con:
        for fmt, paths in sorted(files.items()):
            target = out / f"exchanges-{fmt}.jsonl.gz" if len(files) > 1 else out / "exchanges.jsonl.gz"
            # paths from the bundle listing, quoted as SQL literals
            con.execute(f"COPY (SELECT * FROM {_READERS[fmt].format(files=sql_list(paths))}) TO {sql_str(str(target))} "  # noqa: S608
                        "(FORMAT JSON, COMPRESSION GZIP)")
    if len(files) > 1:
        raise SystemExit("--jsonl wants a bundle whose exchanges are in one format")
    return out


def bare_scan(bundle: Path) -> dict[str, Any]:
    """Seconds for DuckDB to read every exchange of ``bundle`` and group them by account
    (exchanges and token sums per account): the floor any load sits on."""
    files = exchange_files(bundle)
    if not files:
        raise SystemExit(f"{bundle}: no exchanges table")
    started, cpu = time.perf_counter(), cpu_s()
    rows = accounts = 0
    with connect() as con:
        for fmt, paths in sorted(files.items()):
            # File names come from the bundle's own listing, quoted as SQL literals.
            source = _READERS[fmt].format(files=sql_list(paths))
            n, a = con.execute(
                f"SELECT sum(n)::BIGINT, count(*) FROM (SELECT account_id, count(*) AS n, "  # noqa: S608
                f"sum(TRY_CAST(input_tokens AS BIGINT)) AS i, sum(TRY_CAST(output_tokens AS BIGINT)) AS o "
                f"FROM {source} GROUP BY account_id)"
            ).fetchone() or (0, 0)
            rows, accounts = rows + int(n or 0), accounts + int(a or 0)
    return {"seconds": round(time.perf_counter() - started, 3), "cpu_s": round(cpu_s() - cpu, 3),
            "exchanges": rows, "accounts": accounts,
            "files": {k: len(v) for k, v in files.items()}}


def run_store(bundle: Path, store_uri: str, workspace: Path, clear: bool) -> dict[str, Any]:
    """Load and detect ``bundle`` on one store, in a fresh workspace: seconds of each and the
    graph's node and relationship counts."""
    settings = Settings({"workspace": str(workspace), "store": store_uri})
    with open_store(settings) as store:
        before = store.counts()
        if sum(before.get("nodes", {}).values()):
            if not clear:
                raise SystemExit(f"{store_uri} is not empty; give --clear-neo4j to delete its nodes first")
            for label in Label:
                store.delete_label(label)
        started, cpu0 = time.perf_counter(), cpu_s()
        report = load_bundle(bundle, settings, store)
        loaded, cpu1 = time.perf_counter(), cpu_s()
        summary = run_detection(store, settings)
        detected, cpu2 = time.perf_counter(), cpu_s()
        counts = store.counts()
    return {
        "store": "embedded" if store_uri == "embedded" else "neo4j",
        "load_s": round(loaded - started, 3),
        "detect_s": round(detected - loaded, 3),
        "load_cpu_s": round(cpu1 - cpu0, 3),
        "detect_cpu_s": round(cpu2 - cpu1, 3),
        "exchanges_loaded": report.tables.get("exchanges", {}).get("loaded"),
        "clusters": summary["clusters"],
        "nodes": sum(counts.get("nodes", {}).values()),
        "relationships": sum(counts.get("relationships", {}).values()),
        "counts": counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=None, help="A bundle directory (default: generate one).")
    parser.add_argument("--scale", default="small", choices=["tiny", "small", "medium", "seed"])
    parser.add_argument("--scenario", default="real-text", help="Generator scenario when generating (default real-text).")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--neo4j", default=None, metavar="URI", help="Also run on this Neo4j server (bolt://…).")
    parser.add_argument("--clear-neo4j", action="store_true", help="Delete every node of the Neo4j database first.")
    parser.add_argument("--jsonl", action="store_true", help="Load and scan a copy of the bundle with exchanges.jsonl.gz.")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="sybilscope-ratio-"))
    try:
        bundle = args.bundle
        if bundle is None:
            from loaders.synthetic import generate

            bundle = scratch / "bundle"
            generate(bundle, args.scale, args.seed, scenarios=args.scenario.split(","))
        if args.jsonl:
            bundle = as_jsonl(bundle, scratch / "bundle-jsonl")
        scan = bare_scan(bundle)
        print(json.dumps({"scan": scan}))
        results: list[dict[str, Any]] = []
        for uri in ["embedded", *([args.neo4j] if args.neo4j else [])]:
            result = run_store(bundle, uri, scratch / f"ws-{len(results)}", args.clear_neo4j)
            print(json.dumps({k: v for k, v in result.items() if k != "counts"}))
            results.append(result)
        print(f"\nbare DuckDB scan of {scan['exchanges']:,} exchanges ({', '.join(scan['files'])}): "
              f"{scan['seconds']:.2f} s wall, {scan['cpu_s']:.2f} s CPU")
        print(f"{'store':<10} {'clock':<5} {'load s':>8} {'detect s':>9} {'load/scan':>10} {'detect/scan':>12} {'(load+detect)/scan':>19}")
        for r in results:
            for clock, load_s, detect_s, base in (("wall", r["load_s"], r["detect_s"], scan["seconds"]),
                                                  ("cpu", r["load_cpu_s"], r["detect_cpu_s"], scan["cpu_s"])):
                base = max(base, 1e-6)
                print(f"{r['store']:<10} {clock:<5} {load_s:>8.2f} {detect_s:>9.2f} {load_s / base:>9.1f}x "
                      f"{detect_s / base:>11.1f}x {(load_s + detect_s) / base:>18.1f}x")
        print("(cpu: this process only; on Neo4j the server's own CPU is not in it)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
