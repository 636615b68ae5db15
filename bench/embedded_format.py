"""Save and load time of the embedded store's file (graph.jsonl.gz) against the pickle it replaced.

Run by hand (one process, both formats on the same graph, alternating, best of ``--repeat``):

    .venv/bin/python bench/embedded_format.py --relationships 1000000

Builds a synthetic account/IP graph shaped like bench/store_write.py's (accounts = rels/5,
IPs = rels/10, a few properties of each schema type, timestamps distinct per relationship), then for each format writes the file as
the store does (temporary file, fsync, rename) and reads it back. Prints one JSON line: wall
and CPU seconds per step, file sizes, and the ratio new / pickle (below 1: the new format is
faster). Wall time moves with the machine's load; CPU time much less.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx

from graph.stores.embedded import GRAPH_FILE, read_graph_file, write_graph_file


def synthetic_graph(n_rels: int) -> nx.MultiDiGraph:
    """Accounts and IPs with USED_IP relationships, every relationship a distinct pair."""
    n_accounts, n_ips = n_rels // 5, n_rels // 10
    graph = nx.MultiDiGraph()
    for i in range(n_accounts):
        graph.add_node(
            ("Account", f"acct-{i:08d}"),
            country="DE", exchanges=i % 1000, created_at="2025-04-22T00:00:00Z",
            score=i / 7, flagged=i % 3 == 0, models=["m1", "m2"],
        )
    for i in range(n_rels):
        ip = (i * 7919 + (i // n_accounts) * 31) % n_ips
        graph.add_edge(
            ("Account", f"acct-{i % n_accounts:08d}"),
            ("IP", f"10.{ip // 65536}.{ip // 256 % 256}.{ip % 256}"),
            key="USED_IP",
            # timestamps of their own, as loaded data has: one shared string object would let
            # pickle write it once and flatter it
            count=i % 50 + 1, first_seen=f"2025-04-{22 + i % 9:02d}T{i % 24:02d}:{i % 60:02d}:{i // 60 % 60:02d}Z",
            last_seen=f"2025-06-0{1 + i % 5}T{i % 23:02d}:{i % 59:02d}:{i // 59 % 60:02d}Z",
        )
    return graph


def save_pickle(directory: Path, graph: nx.MultiDiGraph) -> None:
    """What the store did before: pickle to a temporary file, fsync, rename."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".graph-", suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        pickle.dump(graph, fh, protocol=pickle.HIGHEST_PROTOCOL)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, directory / "graph.pickle")


def load_pickle(directory: Path) -> nx.MultiDiGraph:
    with open(directory / "graph.pickle", "rb") as fh:
        graph: nx.MultiDiGraph = pickle.load(fh)  # the bench's own file, written just above
    return graph


def load_new(directory: Path) -> nx.MultiDiGraph:
    found = read_graph_file(directory)
    assert found is not None
    return found[0]


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--relationships", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs per step; the best is reported")
    args = parser.parse_args()

    graph = synthetic_graph(args.relationships)
    directory = Path(tempfile.mkdtemp(prefix="bench-embedded-format-"))
    steps: dict[str, Callable[[], Any]] = {
        "pickle_save": lambda: save_pickle(directory, graph),
        "pickle_load": lambda: load_pickle(directory),
        "new_save": lambda: write_graph_file(directory, graph),
        "new_load": lambda: load_new(directory),
    }
    best: dict[str, tuple[float, float]] = {}
    load_before = os.getloadavg()[0]
    try:
        for _ in range(args.repeat):
            for name, fn in steps.items():  # alternating, so load spikes hit both formats
                wall, cpu, result = timed(fn)
                if name.endswith("_load"):
                    assert (result.number_of_nodes(), result.number_of_edges()) == (
                        graph.number_of_nodes(), graph.number_of_edges())
                    del result
                old = best.get(name, (float("inf"), float("inf")))
                best[name] = (min(old[0], wall), min(old[1], cpu))
        sizes = {
            "pickle_mb": round((directory / "graph.pickle").stat().st_size / 1e6, 1),
            "new_mb": round((directory / GRAPH_FILE).stat().st_size / 1e6, 1),
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    def ratio(step: str, i: int) -> float:
        return round(best[f"new_{step}"][i] / best[f"pickle_{step}"][i], 2)

    print(json.dumps({
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores",
        "nodes": graph.number_of_nodes(),
        "relationships": graph.number_of_edges(),
        "wall_s": {k: round(v[0], 2) for k, v in best.items()},
        "cpu_s": {k: round(v[1], 2) for k, v in best.items()},
        "ratio_new_over_pickle": {
            "save_wall": ratio("save", 0), "save_cpu": ratio("save", 1),
            "load_wall": ratio("load", 0), "load_cpu": ratio("load", 1),
        },
        "file": sizes,
        "load_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
