"""Detection over a loaded workspace: seconds per stage, pairs, clusters, peak RSS.

Run by hand on a workspace that ``sybilscope load`` filled (one store per process, so peak RSS
belongs to this run):

    .venv/bin/sybilscope generate /tmp/w --scale medium --seed 1
    .venv/bin/sybilscope load /tmp/w --workspace /tmp/ws
    .venv/bin/python bench/detect.py --workspace /tmp/ws [--store bolt://127.0.0.1:7687] [--labels /tmp/w/labels.csv]

Prints one JSON line: the detection summary's counts and timings, peak RSS, and with
``--labels`` the evaluation's precision/recall/F1 beside the baselines'.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

from graph.detection import run_detection
from graph.settings import Settings
from graph.stores import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--store", default="embedded")
    parser.add_argument("--labels", type=Path, default=None)
    args = parser.parse_args()
    settings = Settings({"workspace": str(args.workspace), "store": args.store})
    started = time.perf_counter()
    with open_store(settings) as store:
        summary = run_detection(store, settings)
        figures = {
            "store": args.store,
            "machine": platform.machine(),
            "accounts": summary["accounts"],
            "pairs": summary["pairs_considered"],
            "pairs_kept": summary["pairs_kept"],
            "links": summary["links"],
            "clusters": summary["clusters"],
            "flagged": summary["flagged"],
            "accounts_flagged": summary["accounts_flagged"],
            "hubs": summary["suppressed_hubs"]["total"],
            "timings": summary["timings"],
            "wall_s": round(time.perf_counter() - started, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        if args.labels is not None:
            from graph.evaluation import evaluate

            report = evaluate(store, args.labels)
            figures["evaluation"] = {
                name: {k: m[k] for k in ("precision", "recall", "f1", "ari", "purity")}
                for name, m in (("detection", report["detection"]), *report["baselines"].items())
            }
            figures["evaluation"]["attribution_accuracy"] = report["detection"]["attribution"]["accuracy"]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
