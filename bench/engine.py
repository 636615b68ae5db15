"""Detection on the local engine against the Spark engine (local mode), in one process (#17).

Run by hand; prints figures and whether both engines found the same clusters, asserts nothing::

    .venv/bin/python bench/engine.py                        # generates a small world (seed 1)
    .venv/bin/python bench/engine.py --scale tiny --master 'local[2]'
    .venv/bin/python bench/engine.py --bundle /tmp/w        # a bundle `sybilscope generate` wrote

The bundle is loaded once into a fresh embedded workspace; ``run_detection`` then runs on that
store with ``engine = local`` and with ``engine = spark``, each timed by wall clock from the call
to its return (for Spark: starting the session, the Parquet hand-over, every Spark job and the
session's stop). The Spark JVM is a child process, so this process's CPU time leaves it out:
wall clock is the figure, with the machine's load average beside it (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graph.detection import run_detection  # noqa: E402
from graph.schema import Label, Rel  # noqa: E402
from graph.settings import Settings  # noqa: E402
from graph.stores.embedded import EmbeddedStore  # noqa: E402
from graph.workspace import embedded_dir  # noqa: E402
from loaders.load import load_bundle  # noqa: E402
from loaders.synthetic import generate  # noqa: E402

STAGES = ("link_network", "link_payment", "link_device", "link_email", "link_prompt", "link_timing", "link_combine",
          "cluster", "write", "total")


def detection_outputs(store: EmbeddedStore) -> tuple[dict[str, Any], dict[tuple[str, str], float]]:
    """Clusters (members, score, flagged) and LINKED weights, to compare the two runs."""
    members: dict[str, list[str]] = {}
    for rel in store.iter_relationships(Rel.MEMBER_OF):
        members.setdefault(rel.end[1], []).append(rel.start[1])
    clusters = {n.key: (sorted(members.get(n.key, [])), n.props.get("score"), n.props.get("flagged"))
                for n in store.iter_nodes(Label.CLUSTER)}
    links = {(r.start[1], r.end[1]): float(r.props["weight"]) for r in store.iter_relationships(Rel.LINKED)}
    return clusters, links


def timed_detection(store: EmbeddedStore, settings: Settings) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    summary = run_detection(store, settings)
    wall = time.perf_counter() - started
    return {"wall_s": round(wall, 2), "load_avg_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            "pairs": summary["pairs_considered"], "pairs_kept": summary["pairs_kept"], "clusters": summary["clusters"],
            "links": summary["links"], "stages": {k: summary["timings"].get(k) for k in STAGES}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=None, help="a generated bundle (else one is generated)")
    parser.add_argument("--scale", default="small", choices=("tiny", "small"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--master", default="local[2]", help="spark_master for the Spark run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        bundle = args.bundle
        if bundle is None:
            bundle = Path(tmp) / "bundle"
            generate(bundle, args.scale, args.seed)
        workspace = Path(tmp) / "ws"
        base = {"workspace": str(workspace), "hash_salt": "bench-engine-salt", "spark_master": args.master}
        store = EmbeddedStore(embedded_dir(workspace))
        load_bundle(bundle, Settings(base, environ={}), store)
        runs, outputs = {}, {}
        for engine in ("local", "spark"):
            runs[engine] = timed_detection(store, Settings({**base, "engine": engine}, environ={}))
            outputs[engine] = detection_outputs(store)
        ratio = runs["spark"]["wall_s"] / max(runs["local"]["wall_s"], 1e-9)
        print(json.dumps({"bundle": str(args.bundle or f"generated {args.scale} seed {args.seed}"), "master": args.master,
                          "cores": os.cpu_count(), "local": runs["local"], "spark": runs["spark"],
                          "same_clusters": outputs["spark"][0] == outputs["local"][0],
                          "same_links": outputs["spark"][1] == outputs["local"][1],
                          "spark_over_local": round(ratio, 2)}, indent=1))


if __name__ == "__main__":
    main()
