"""Batched upsert throughput of a GraphStore: nodes/s, relationships/s, peak RSS.

Run by hand, one store per process so peak RSS belongs to that store:

    .venv/bin/python bench/store_write.py --store embedded --relationships 1000000
    .venv/bin/python bench/store_write.py --store bolt://127.0.0.1:7687 --relationships 1000000 \
        --server-pid "$(cat WORKSPACE/neo4j/neo4j.pid)"

Writes a synthetic account/IP graph (accounts = rels/5, IPs = rels/10) into a scratch
workspace, twice: the second pass measures the MERGE-on-existing (re-load) path. On Neo4j the
database is emptied first. Prints one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graph.schema import Label
from graph.settings import Settings
from graph.store import GraphStore
from graph.stores import open_store


def accounts(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"account_id": f"acct-{i:08d}", "country": "DE", "exchanges": i % 1000, "created_at": "2025-04-22T00:00:00Z"}


def used_ip(n_rels: int, n_accounts: int, n_ips: int) -> Iterator[dict[str, Any]]:
    for i in range(n_rels):
        # the k-th relationship of an account shifts its IP by 31*k, so every pair is distinct
        ip = (i * 7919 + (i // n_accounts) * 31) % n_ips
        yield {
            "start": f"acct-{i % n_accounts:08d}",
            "end": f"10.{ip // 65536}.{ip // 256 % 256}.{ip % 256}",
            "count": i % 50 + 1,
            "first_seen": "2025-04-22T00:00:00Z",
            "last_seen": "2025-06-05T00:00:00Z",
        }


def server_cpu_s(pid: int | None) -> float:
    """User+system CPU seconds the server process has used so far (0 without a pid): unlike
    wall time, the server's CPU per row barely moves when other programs load the machine."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_peak_rss_mib(pid: int | None) -> int | None:
    """The server's peak resident set (VmHWM), MiB."""
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return None


def write_pass(store: GraphStore, n_rels: int, chunk: int, server_pid: int | None) -> dict[str, Any]:
    n_accounts, n_ips = n_rels // 5, n_rels // 10
    load_before = os.getloadavg()[0]
    c0 = server_cpu_s(server_pid)
    t0 = time.perf_counter()
    with store.bulk():
        rows = list(accounts(n_accounts))
        for i in range(0, len(rows), chunk):
            store.upsert_nodes("Account", rows[i : i + chunk])
        t1 = time.perf_counter()
        c1 = server_cpu_s(server_pid)
        batch: list[dict[str, Any]] = []
        for row in used_ip(n_rels, n_accounts, n_ips):
            batch.append(row)
            if len(batch) == chunk:
                store.upsert_relationships("USED_IP", "Account", "IP", batch)
                batch = []
        if batch:
            store.upsert_relationships("USED_IP", "Account", "IP", batch)
        t2 = time.perf_counter()
        c2 = server_cpu_s(server_pid)
    t3 = time.perf_counter()  # bulk exit: the embedded store's one file write
    figures: dict[str, Any] = {
        "nodes": n_accounts,
        "relationships": n_rels,
        "nodes_per_s": round(n_accounts / (t1 - t0)),
        "relationships_per_s": round(n_rels / (t2 - t1)),
        "commit_s": round(t3 - t2, 2),
        "total_s": round(t3 - t0, 2),
        "load_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    if server_pid is not None:
        figures["server_cpu_us_per_node"] = round((c1 - c0) / n_accounts * 1e6, 1)
        figures["server_cpu_us_per_relationship"] = round((c2 - c1) / n_rels * 1e6, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="embedded")
    parser.add_argument("--relationships", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=50_000, help="rows handed to one upsert call")
    parser.add_argument("--batch-size", type=int, default=2_000, help="rows per UNWIND on Neo4j")
    parser.add_argument("--server-pid", type=int, help="local server pid: report its CPU per row and peak RSS")
    args = parser.parse_args()

    workspace = Path(tempfile.mkdtemp(prefix="bench-store-"))
    settings = Settings({"workspace": str(workspace), "store": args.store, "batch_size": args.batch_size})
    store = open_store(settings)
    for label in Label:
        store.delete_label(label)
    first = write_pass(store, args.relationships, args.chunk, args.server_pid)
    again = write_pass(store, args.relationships, args.chunk, args.server_pid)
    counts = store.counts()
    store.close()
    print(
        json.dumps(
            {
                "store": store.name,
                "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores",
                "first_load": first,
                "reload_same_rows": again,
                "counts": counts,
                "peak_rss_mib_python": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "peak_rss_mib_server": server_peak_rss_mib(args.server_pid),
            }
        )
    )


if __name__ == "__main__":
    main()
