"""Latency of each store call behind the cluster page's canvas: the evidence graph and canvas
state of the ``--clusters`` largest clusters, every ``GraphStore`` read timed on its own.

``bench/ui.py`` times whole actions (a canvas first view is dozens of store calls); the
issue's "store calls behind each page at p95 <= 300 ms" is about the calls, so this wraps the
store's read methods and prints p50 / p95 / max over all of them and per method, then each
page's total. Run by hand on a loaded and detected workspace; prints figures, asserts nothing::

    .venv/bin/python bench/ui_calls.py --workspace WS --store bolt://127.0.0.1:7741
    .venv/bin/python bench/ui_calls.py --workspace WS --store embedded --clusters 20
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import canvas  # noqa: E402
from graph.investigate import triage  # noqa: E402
from graph.settings import Settings  # noqa: E402
from graph.store import GraphStore  # noqa: E402
from graph.stores import open_store  # noqa: E402

READS = ("neighbours", "subgraph", "degrees", "relationships_between", "ip_uses", "users_among", "find_nodes",
         "get_node", "shared_values", "shortest_path")


def time_reads(store: GraphStore) -> dict[str, list[float]]:
    """Wrap the store's read methods so each call's milliseconds land in the returned lists."""
    calls: dict[str, list[float]] = defaultdict(list)
    for name in READS:
        method = getattr(store, name, None)
        if method is None:
            continue

        def timed(*args: Any, _method: Callable[..., Any] = method, _name: str = name, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                calls[_name].append((time.perf_counter() - started) * 1000.0)

        setattr(store, name, timed)
    return calls


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile by the nearest rank of the sorted values.

    >>> quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5)
    3.0
    """
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--store", default="embedded")
    parser.add_argument("--clusters", type=int, default=20, help="How many of the largest clusters to open.")
    args = parser.parse_args()
    settings = Settings({"workspace": str(args.workspace), "store": args.store})
    store = open_store(settings)
    store.counts()  # the embedded store reads its file here, not inside the first timed call
    calls = time_reads(store)
    clusters = sorted(triage.load_clusters(store), key=lambda c: (-c["size"], c["cluster_id"]))[: args.clusters]
    calls.clear()
    pages = []
    for cluster in clusters:
        started = time.perf_counter()
        state = canvas.cluster_view(store, cluster["cluster_id"], degree_cap=int(settings["ui_degree_cap"]),
                                    workspace=settings.workspace,
                                    links_per_account=int(settings["evidence_links_per_account"]))
        canvas.canvas_data(state)
        pages.append((cluster["size"], (time.perf_counter() - started) * 1000.0))
        so_far = [ms for values in calls.values() for ms in values] or [0.0]
        # a page at a time, so a run stopped early (the seed world's biggest pages take minutes) still reports
        print(f"page {len(pages)} of {len(clusters)}: {cluster['size']:,} accounts, {pages[-1][1]:,.0f} ms; "
              f"{len(so_far):,} store calls so far, p95 {quantile(so_far, .95):.1f} ms, max {max(so_far):.1f} ms",
              file=sys.stderr, flush=True)
    every = [ms for values in calls.values() for ms in values]
    print(f"store {settings['store']}: {len(clusters)} cluster pages")
    print(f"all store calls  n={len(every):5}  p50={quantile(every, .5):8.1f}  p95={quantile(every, .95):8.1f}  "
          f"max={max(every):8.1f} ms")
    for name, values in sorted(calls.items()):
        print(f"  {name:22} n={len(values):5}  p50={quantile(values, .5):8.1f}  p95={quantile(values, .95):8.1f}  "
              f"max={max(values):8.1f} ms")
    for size, ms in pages:
        print(f"  page of a {size:,}-account cluster: {ms:,.0f} ms")


if __name__ == "__main__":
    main()
