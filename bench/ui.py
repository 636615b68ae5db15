"""Latency of the store calls behind the UI's interactive actions: expand, evidence, path, and
the first view of the largest cluster's canvas.

Run by hand on a workspace that has been loaded and detected (or with ``--fixture N`` to build
the hand-made test world with an N-account ring in a temporary workspace):

    .venv/bin/python bench/ui.py --workspace /tmp/ws --store embedded --samples 200
    .venv/bin/python bench/ui.py --fixture 400

    .venv/bin/python bench/ui.py --workspace /tmp/ws --merge-to 1000 --samples 20

Prints p50 / p95 / max in milliseconds per action. ``evidence`` is the whole evidence panel of
a LINKED pair (store calls plus the DuckDB source-row queries); ``evidence_store`` the store
calls alone (detector reasons and shared infrastructure). ``canvas`` is opening the largest
cluster's canvas: its evidence graph (``canvas_evidence``, the store calls), the canvas state
(groups, layout) and what the browser receives, everything but the browser's own drawing;
measured ``--canvas-samples`` times, each from nothing; ``canvas_cpu`` is its CPU time. ``--merge-to N`` first copies the
workspace and merges its largest clusters (the analyst's merge) until one holds N accounts, so
a world without a cluster that big can measure one.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import canvas  # noqa: E402
from graph import cases  # noqa: E402
from graph.cases import members as cluster_members  # noqa: E402
from graph.evidence import build_evidence  # noqa: E402
from graph.investigate import evidence, paths, triage  # noqa: E402
from graph.schema import Label, Rel  # noqa: E402
from graph.settings import Settings  # noqa: E402
from graph.store import GraphStore  # noqa: E402
from graph.stores import open_store  # noqa: E402


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def _summary(name: str, values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return f"{name:16s} n={len(values):4d}  p50={statistics.median(values):8.1f} ms  p95={p95:8.1f} ms  max={values[-1]:8.1f} ms"


def run(store: GraphStore, workspace: Path, samples: int, degree_cap: int, hub_cap: int, seed: int) -> dict[str, list[float]]:
    rng = random.Random(seed)
    clusters = sorted(triage.load_clusters(store), key=lambda c: -c["score"])[:20]
    if not clusters:
        raise SystemExit("no clusters in this store: run load and detect first (or use --fixture)")
    members = {c["cluster_id"]: cluster_members(store, c["cluster_id"]) for c in clusters}
    links = [r for r in store.iter_relationships(Rel.LINKED)]
    every = [a for accts in members.values() for a in accts]
    out: dict[str, list[float]] = {"cluster_view": [], "expand": [], "evidence_store": [], "evidence": [], "path": []}
    for i in range(samples):
        cid = clusters[i % len(clusters)]["cluster_id"]
        accts = members[cid] or every
        if i < len(clusters):
            out["cluster_view"].append(_time(partial(canvas.cluster_view, store, cid, degree_cap=degree_cap, hub_cap=hub_cap)))
        acct = rng.choice(accts)
        out["expand"].append(_time(partial(
            store.neighbours, [(Label.ACCOUNT.value, acct)], list(canvas.EXPAND_RELS), limit=degree_cap, degree_cap=degree_cap)))
        if links:
            rel = rng.choice(links)
            a, b = rel.start[1], rel.end[1]
            out["evidence_store"].append(_time(partial(_evidence_store, store, a, b, hub_cap)))
            if i < max(20, samples // 5):
                out["evidence"].append(_time(partial(evidence.pair_evidence, store, workspace, a, b, hub_cap=hub_cap)))
        x, y = rng.choice(every), rng.choice(every)
        out["path"].append(_time(partial(paths.path_with_evidence, store, x, y, max_hops=6)))
    return {k: v for k, v in out.items() if v}


def run_canvas(store: GraphStore, workspace: Path, samples: int, degree_cap: int, links_per_account: int) -> dict[str, list[float]]:
    """Open the largest cluster's canvas ``samples`` times: the evidence graph alone, and the
    whole first view (evidence, canvas state, the component's data)."""
    biggest = max(triage.load_clusters(store), key=lambda c: (c["size"], c["cluster_id"]))
    cid = biggest["cluster_id"]
    print(f"canvas of {cid}: {len(cluster_members(store, cid)):,} accounts")
    out: dict[str, list[float]] = {"canvas_evidence": [], "canvas": [], "canvas_cpu": []}
    for _ in range(samples):
        out["canvas_evidence"].append(_time(partial(
            build_evidence, store, [cid], workspace=workspace, degree_cap=degree_cap, links_per_account=links_per_account)))

        def first_view() -> None:
            state = canvas.cluster_view(store, cid, degree_cap=degree_cap, workspace=workspace, links_per_account=links_per_account)
            canvas.canvas_data(state)

        cpu = time.process_time()
        out["canvas"].append(_time(first_view))
        # CPU time of the same: what the wall time is on an idle machine (one thread), when
        # the machine measured on is shared.
        out["canvas_cpu"].append((time.process_time() - cpu) * 1000.0)
    return out


def merge_to(store: GraphStore, size: int, settings: Settings) -> None:
    """Merge the largest clusters into the largest until it holds ``size`` accounts (refigured
    with the workspace's settings, as the UI does, so the figures are detection's)."""
    clusters = sorted(triage.load_clusters(store), key=lambda c: (-c["size"], c["cluster_id"]))
    keep, total = clusters[0]["cluster_id"], len(cluster_members(store, clusters[0]["cluster_id"]))
    for other in clusters[1:]:
        if total >= size:
            break
        cases.merge_clusters(store, keep, other["cluster_id"], who="bench", rationale=f"bench/ui.py --merge-to {size}",
                             settings=settings)
        total = len(cluster_members(store, keep))
    print(f"merged into {keep}: {total:,} accounts")


def _evidence_store(store: GraphStore, a: str, b: str, hub_cap: int) -> None:
    evidence.link_reasons(store, a, b)
    evidence.shared_entities(store, a, b, hub_cap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--store", default=None)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fixture", type=int, default=0, help="build the test world with an N-account ring")
    parser.add_argument("--merge-to", type=int, default=0, help="on a copy of the workspace, merge clusters until one has N accounts")
    parser.add_argument("--canvas-samples", type=int, default=5)
    args = parser.parse_args()
    if args.merge_to and args.store not in (None, "embedded"):
        parser.error("--merge-to copies an embedded store's workspace; it cannot copy a Neo4j database")
    if args.fixture:
        from tests.worlds.ui import build_world

        tmp = Path(tempfile.mkdtemp(prefix="bench-ui-"))
        settings = Settings({"workspace": str(tmp), "store": args.store})
        store = open_store(settings)
        build_world(store, tmp, ring=args.fixture)
    elif args.merge_to:
        tmp = Path(tempfile.mkdtemp(prefix="bench-ui-")) / "ws"
        shutil.copytree(Settings({"workspace": args.workspace}).workspace, tmp)
        settings = Settings({"workspace": str(tmp), "store": args.store})
        store = open_store(settings)
        merge_to(store, args.merge_to, settings)
    else:
        settings = Settings({"workspace": args.workspace, "store": args.store})
        store = open_store(settings)
    counts = store.counts()
    print(f"store {settings['store']} at {settings.workspace}: {sum(counts['nodes'].values()):,} nodes, "
          f"{sum(counts['relationships'].values()):,} relationships")
    results = run(store, settings.workspace, args.samples, int(settings["ui_degree_cap"]), int(settings["hub_max_accounts"]), args.seed)
    results.update(run_canvas(store, settings.workspace, args.canvas_samples, int(settings["ui_degree_cap"]),
                              int(settings["evidence_links_per_account"])))
    for name, values in results.items():
        print(_summary(name, values))
    store.close()


if __name__ == "__main__":
    main()
