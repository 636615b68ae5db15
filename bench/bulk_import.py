"""Benchmark of the graph write into a fresh Neo4j database: the bulk path (import files and
``neo4j-admin database import full``) against the batched path (UNWIND … MERGE), in one process,
on one generated bundle, each into an empty database of the same local server.

Run by hand; prints figures, asserts nothing::

    PYTHONPATH=$PWD .venv/bin/python bench/bulk_import.py --scale small --port 7741

Steps of the bulk path: rows (the graph writer's DuckDB queries), files (writing the import
files), stop, import (the importer's process; importer_reported: its own figure, without its
JVM's start), start, schema (constraints and indexes on the imported graph), replay (the rows
set after the import).

It starts its own local server in a temporary workspace on ``--port`` (stopped at the end).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import neo4j_local  # noqa: E402
from app.neo4j_local.importer import LocalGraphImport  # noqa: E402
from graph.settings import Settings  # noqa: E402
from graph.stores import open_store  # noqa: E402
from loaders.load import load_bundle  # noqa: E402
from loaders.synthetic import generate  # noqa: E402
from tests.conftest import clear_store  # noqa: E402


def _settings(workspace: Path, args: argparse.Namespace, **extra: Any) -> Settings:
    return Settings({"workspace": str(workspace), "store": f"bolt://127.0.0.1:{args.port}",
                     "neo4j_bolt_port": args.port, "neo4j_heap": args.heap, "neo4j_pagecache": args.pagecache,
                     "hash_salt": "bench", **extra}, environ={})


def _line(name: str, figures: dict[str, Any]) -> str:
    steps = " ".join(f"{k} {v:.1f}s" for k, v in figures.get("steps", {}).items())
    out = (f"{name:<12} {figures['relationships']:>10,} rels {figures['nodes']:>10,} nodes "
           f"{figures['seconds']:>8.1f} s  {figures['relationships_per_s'] or 0:>9,} rel/s (whole graph write)")
    if "import_relationships_per_s" in figures:
        out += f"  importer alone {figures['import_relationships_per_s'] or 0:,} rel/s"
    if "importer_reported_relationships_per_s" in figures:
        out += f" ({figures['importer_reported_relationships_per_s']:,} rel/s by its own report)"
    if figures.get("imported"):
        out += f"  replayed {figures['imported'].get('replayed', 0):,} rows"
    return out + (f"\n{'':<12} steps: {steps}" if steps else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", help="generator scale of the bundle")
    parser.add_argument("--bundle", type=Path, help="an existing bundle instead of a generated one")
    parser.add_argument("--port", type=int, default=7741, help="Bolt port of the benchmark's own server")
    parser.add_argument("--heap", default="1g")
    parser.add_argument("--pagecache", default="512m")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--bulk-only", action="store_true", help="skip the batched path (long at medium scale)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sybilscope-bulk-bench-"))
    bulk_settings = _settings(tmp / "ws-bulk", args)
    try:
        bundle = args.bundle
        if bundle is None:
            bundle = tmp / "bundle"
            began = time.perf_counter()
            generate(bundle, args.scale, 7)
            print(f"generated --scale {args.scale} in {time.perf_counter() - began:.1f} s")
        neo4j_local.start(bulk_settings, echo=lambda _t: None)
        with open_store(bulk_settings) as store:
            clear_store(store)
            report = load_bundle(bundle, bulk_settings, store,
                                 importer=LocalGraphImport(bulk_settings, store, echo=lambda _t: None))
            bulk = report.to_json()["graph_write"]
            print(_line(bulk["path"], bulk), flush=True)
            if not args.bulk_only:
                clear_store(store)
                batched_settings = _settings(tmp / "ws-batched", args, neo4j_bulk_import="off")
                batched = load_bundle(bundle, batched_settings, store).to_json()["graph_write"]
                print(_line(batched["path"], batched))
                if batched["seconds"] > 0 and bulk["seconds"] > 0:
                    print(f"bulk / batched speed: {batched['seconds'] / bulk['seconds']:.2f}x")
    finally:
        neo4j_local.stop(bulk_settings)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
