"""Benchmark of the loader: staging rows/s and peak RSS per table, commit and graph-write times.

Run by hand; prints figures, asserts nothing::

    .venv/bin/python bench/load.py --rows 3000000                 # a quick bundle made here
    .venv/bin/python bench/load.py --bundle /tmp/medium           # e.g. from `sybilscope generate`
    .venv/bin/python bench/load.py --rows 500000 --graph embedded --graph bolt://127.0.0.1:7702

A bolt:// target is written into as it is (MERGE): point it at a scratch server.

The quick bundle is made with vectorised pyarrow (no Python loop per row): accounts, a little
ip_intel, and exchanges as Parquet parts whose prompts are operator-style preamble + task body
or short benign templates with fills, so the prompt path does real work.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graph.settings import Settings  # noqa: E402
from graph.staging import connect  # noqa: E402
from graph.workspace import staging_dir  # noqa: E402
from loaders.graph_write import GraphWriter  # noqa: E402
from loaders.progress import LoadProgress  # noqa: E402
from loaders.stage import Stager  # noqa: E402

PREAMBLES = [
    "You are an autonomous software agent operating in a sandboxed environment. Plan the task, call tools as needed, and report every step.\nTask: ",
    "Think step by step, show all your reasoning before the final answer and explain every intermediate calculation.\nQuestion ",
]
BENIGN = ["what is the capital of ", "give me a recipe for ", "translate this into French: ", "is "]
WORDS = np.array(["river", "apple", "garden", "window", "market", "ticket", "cloud", "Lisbon", "Osaka", "budget"])


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PeakRss(LoadProgress):
    """Samples RSS every 50 ms; records the peak and the time of each table."""

    def __init__(self) -> None:
        self.peak: dict[str, float] = {}
        self.current = "setup"
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            self.peak[self.current] = max(self.peak.get(self.current, 0.0), rss_mb())
            time.sleep(0.05)

    def start_table(self, table: str, files: int) -> None:
        self.current = table

    def phase(self, text: str) -> None:
        self.current = text

    def close(self) -> None:
        self._stop = True


def make_bundle(out: Path, rows: int, accounts: int, seed: int = 1, text_every: int = 1) -> None:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    ids = pa.array([f"acc{i:07d}" for i in range(accounts)])
    created = pc.strftime(pa.array((1745280000 + rng.integers(0, 86400 * 30, accounts)).astype("datetime64[s]")),
                          format="%Y-%m-%dT%H:%M:%SZ")
    emails = pc.binary_join_element_wise(pa.array(WORDS[rng.integers(0, len(WORDS), accounts)]),
                                         pa.array(rng.integers(0, 9999, accounts)).cast(pa.string()), "@example.org", "")
    import pyarrow.csv as pcsv

    pcsv.write_csv(pa.table({"account_id": ids, "created_at": created, "email": emails}), out / "accounts.csv")
    intel = pa.table({"network": [f"10.{i}.0.0/16" for i in range(64)], "asn": [str(64500 + i) for i in range(64)],
                      "kind": ["hosting", "proxy", "residential", "mobile"] * 16})
    pcsv.write_csv(intel, out / "ip_intel.csv")
    parts = out / "exchanges"
    parts.mkdir(exist_ok=True)
    chunk = 500_000
    for n, start in enumerate(range(0, rows, chunk)):
        size = min(chunk, rows - start)
        acct = rng.integers(0, accounts, size)
        ip_int = (10 << 24) + rng.integers(0, 1 << 22, size)
        ip = pc.binary_join_element_wise(*[pa.array((ip_int >> s) & 255).cast(pa.string()) for s in (24, 16, 8, 0)], ".")
        attack = rng.random(size) < 0.4
        pre = pa.array(np.array(PREAMBLES)[rng.integers(0, len(PREAMBLES), size)])
        ben = pa.array(np.array(BENIGN)[rng.integers(0, len(BENIGN), size)])
        fill = pc.binary_join_element_wise(pa.array(WORDS[rng.integers(0, len(WORDS), size)]),
                                           pa.array(rng.integers(0, 100000, size)).cast(pa.string()), " ")
        prompt = pc.binary_join_element_wise(pc.if_else(pa.array(attack), pre, ben), fill, "")
        ts = pc.strftime(pa.array((1745280000 + rng.integers(0, 86400 * 40, size)).astype("datetime64[s]")),
                         format="%Y-%m-%dT%H:%M:%SZ")
        table = pa.table({
            "exchange_id": pa.array(np.arange(start, start + size)).cast(pa.string()),
            "account_id": ids.take(pa.array(acct)),
            "ts": ts, "ip": ip,
            "model": pa.array(np.array(["m-large", "m-small"])[rng.integers(0, 2, size)]),
            "input_tokens": pa.array(rng.integers(1, 4000, size)),
            "output_tokens": pa.array(rng.integers(1, 4000, size)),
            "prompt": prompt,
        })
        if text_every > 1:
            # like the seed-scale world: the text of most prompts withheld, their MD5 given
            con = connect()
            con.register("chunk", table)
            hashes = con.sql("SELECT md5(prompt) AS h FROM chunk").to_arrow_table().column("h")
            con.close()
            keep = pa.array(np.arange(start, start + size) % text_every == 0)
            table = table.append_column("prompt_hash", hashes)
            table = table.set_column(table.schema.get_field_index("prompt"), "prompt",
                                     pc.if_else(keep, table.column("prompt"), pa.scalar(None, pa.string())))
        pq.write_table(table, parts / f"part-{n:05d}.parquet", compression="zstd")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="an existing bundle directory")
    parser.add_argument("--rows", type=int, default=2_000_000, help="exchanges of the quick bundle")
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--text-every", type=int, default=1, help="keep prompt text on 1 row in N (others: hash only)")
    parser.add_argument("--graph", action="append", default=[], help="also write the graph: embedded or a bolt:// URI")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sybil-bench-load-"))
    try:
        bundle = args.bundle
        if bundle is None:
            bundle = root / "bundle"
            t = time.perf_counter()
            make_bundle(bundle, args.rows, args.accounts, text_every=args.text_every)
            print(f"made bundle: {args.rows:,} exchanges in {time.perf_counter() - t:.1f} s")
        ws = root / "ws"
        staging_dir(ws).mkdir(parents=True)
        sampler = PeakRss()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        stager = Stager(bundle, ws, "bench-salt", sampler)
        result = stager.stage()
        t1 = time.perf_counter()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        stager.commit()
        t2 = time.perf_counter()
        sampler.close()
        print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
        print(f"{'table':<12}{'read':>12}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>13}")
        for table, counts in result.tables().items():
            secs = result.seconds.get(table, 0.0)
            rate = counts["read"] / secs if secs else 0.0
            print(f"{table:<12}{counts['read']:>12,}{secs:>10.2f}{rate:>12,.0f}{sampler.peak.get(table, 0.0):>13.0f}")
        print(f"staging total {t1 - t0:.2f} s (templates + MinHash {sampler.peak.get('templates', 0):.0f} MB peak), "
              f"commit {t2 - t1:.2f} s")
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        rows = sum(c["read"] for c in result.tables().values())
        print(f"staging CPU {cpu:.1f} s for {rows:,} rows ({rows / max(t1 - t0, 1e-9):,.0f} rows/s wall, "
              f"{cpu / max(t1 - t0, 1e-9):.2f} cores busy on average)")
        for target in args.graph:
            settings = Settings({"workspace": str(ws), "store": target}, environ={})
            from graph.stores import open_store

            with open_store(settings) as store:
                t = time.perf_counter()
                counts = GraphWriter(ws, store).write()
                print(f"graph write to {target}: {time.perf_counter() - t:.2f} s, "
                      f"{sum(counts.values()):,} nodes+relationships, RSS now {rss_mb():.0f} MB")
                print("   " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
