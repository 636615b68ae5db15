"""Evidence exports of one large cluster: seconds and bytes per format, with and without
``--redact``, against the time to build the evidence graph in the same process.

Run by hand on a workspace that ``sybilscope generate`` → ``load`` → ``detect`` filled:

    .venv/bin/sybilscope generate /tmp/w --scale medium --seed 7
    .venv/bin/sybilscope load /tmp/w --workspace /tmp/ws --store embedded
    .venv/bin/sybilscope detect --workspace /tmp/ws --store embedded
    .venv/bin/python bench/export.py --workspace /tmp/ws [--cluster ID] [--full-size]

Without ``--cluster`` it takes the largest flagged cluster of at least ``--min-size`` (1,000)
accounts. Each export is timed end to end as ``export_graph`` runs it (evidence graph built
again each time; the fastest of ``--repeat`` runs, as other work shares the machine), then the ratio to the build alone, the bytes written (a directory: all its
files), the estimate the UI shows before it runs, and redacted / plain time. ``--full-size``
also reads one hop of everything around the cluster (the ``--full`` export) and prints its
size, for comparison. ``--keep DIR`` keeps the exports. A cluster of more than the
``evidence_fold_members`` setting is exported folded (graph/evidence_fold.py); set
``SYBILSCOPE_EVIDENCE_FOLD_MEMBERS`` lower to time the folded path on a smaller cluster. Targets: each export <= 5 s, redacted <= 2x plain, GraphML / GEXF / JSON
<= 10 MB, the HTML graph <= 5 MB, the report directory <= 10 MB.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

from graph.export.run import GRAPH_FORMATS, export_graph
from graph.export.selection import evidence_for, select
from graph.export.size import estimate_bytes, human_bytes
from graph.schema import Label
from graph.settings import Settings
from graph.store import GraphStore
from graph.stores import open_store

TARGET_SECONDS = 5.0
# The kept files open by double-click: a browser shows ``html`` without a suffix as text.
FILE_SUFFIX = {"graphml": ".graphml", "gexf": ".gexf", "json": ".json", "stix": ".stix.json", "html": ".html"}
TARGET_BYTES = {"graphml": 10e6, "gexf": 10e6, "json": 10e6, "html": 5e6, "report": 10e6}


def bytes_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def largest_flagged(store: GraphStore, min_size: int) -> str:
    flagged = [c for c in store.iter_nodes(Label.CLUSTER) if c.props.get("flagged") is True]
    big = sorted(flagged, key=lambda c: (-int(c.props.get("size") or 0), c.key))
    if not big or int(big[0].props.get("size") or 0) < min_size:
        raise SystemExit(f"no flagged cluster of {min_size} accounts or more; generate a larger world")
    return big[0].key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--store", default="embedded")
    parser.add_argument("--cluster", default=None)
    parser.add_argument("--min-size", type=int, default=1000)
    parser.add_argument("--formats", default=",".join(GRAPH_FORMATS))
    parser.add_argument("--full-size", action="store_true", help="Also read the one-hop (--full) export and print its size.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each export; the fastest counts (the machine is shared).")
    parser.add_argument("--keep", type=Path, default=None, help="Write the exports here and keep them (default: a temporary directory).")
    args = parser.parse_args()
    settings = Settings({"workspace": str(args.workspace), "store": args.store})
    out_root = args.keep or Path(tempfile.mkdtemp(prefix="sybilscope-bench-export-"))
    out_root.mkdir(parents=True, exist_ok=True)
    t_open = time.perf_counter()
    with open_store(settings) as store:
        store.counts()  # loads the embedded store's file, so the build below is timed alone
        opened = time.perf_counter() - t_open
        cluster = args.cluster or largest_flagged(store, args.min_size)
        degree_cap = int(settings["ui_degree_cap"])
        started, cpu = time.perf_counter(), time.process_time()
        graph = evidence_for(store, [cluster], workspace=settings.workspace, degree_cap=degree_cap,
                             links_per_account=int(settings["evidence_links_per_account"]))
        build, build_cpu = time.perf_counter() - started, time.process_time() - cpu
        members = graph.member_count()
        print(f"cluster {cluster}: {members:,} members; evidence graph {len(graph.nodes):,} nodes, "
              f"{len(graph.relationships):,} relationships in {build:.2f} s, CPU {build_cpu:.2f} s (store opened in {opened:.1f} s)")
        if graph.folded:
            print(f"folded: {graph.fold_note()}")
        print(f"left out: {json.dumps(graph.left_out)}; hubs: {len(graph.hubs)}")
        if args.full_size:
            started = time.perf_counter()
            full = select(store, [cluster], degree_cap=degree_cap)
            print(f"one hop (--full): {len(full.nodes):,} nodes, {len(full.relationships):,} relationships, "
                  f"read in {time.perf_counter() - started:.1f} s")
        rows = []
        for fmt in args.formats.split(","):
            timings = {}
            for redact in (False, True):
                target = out_root / f"{fmt}{'-redacted' if redact else ''}{FILE_SUFFIX.get(fmt, '')}"
                runs = []
                for _ in range(max(1, args.repeat)):
                    shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
                    started, cpu = time.perf_counter(), time.process_time()
                    export_graph(store, target, fmt, cluster_ids=[cluster], redact=redact, workspace=settings.workspace,
                                 degree_cap=degree_cap)
                    runs.append((time.perf_counter() - started, time.process_time() - cpu))
                seconds, cpu_seconds = min(runs)
                timings[redact] = seconds
                size = bytes_of(target)
                rows.append({
                    "format": fmt, "redact": redact, "seconds": round(seconds, 2), "cpu": round(cpu_seconds, 2),
                    "x_build": round(seconds / build, 1),
                    "bytes": size, "estimate": estimate_bytes(graph, fmt),
                    "redact_ratio": round(timings[True] / timings[False], 2) if redact else None,
                    "within_targets": seconds <= TARGET_SECONDS and size <= TARGET_BYTES.get(fmt, float("inf"))
                    and (not redact or timings[True] <= 2 * timings[False]),
                })
        print("| format | --redact | seconds | CPU s | × build | size | estimate | redact / plain | targets met |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print(f"| {r['format']} | {'yes' if r['redact'] else 'no'} | {r['seconds']:.2f} | {r['cpu']:.2f} | {r['x_build']} | "
                  f"{human_bytes(r['bytes'])} | {human_bytes(r['estimate'])} | {r['redact_ratio'] or ''} | "
                  f"{'yes' if r['within_targets'] else 'NO'} |")
        print(json.dumps({"machine": platform.machine(), "cluster": cluster, "members": members,
                          "evidence_nodes": len(graph.nodes), "evidence_relationships": len(graph.relationships),
                          "build_s": round(build, 3), "build_cpu_s": round(build_cpu, 3), "folded": graph.fold, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
    if args.keep is None:
        shutil.rmtree(out_root, ignore_errors=True)


if __name__ == "__main__":
    main()
