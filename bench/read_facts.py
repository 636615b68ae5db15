"""Detection's read: the store's accounts, values and uses, then the takeover onsets, one
after the other (the baseline) and with the onsets read meanwhile on a thread
(``read_facts(onsets=True)``, what detection does), in one process, alternating:

    PYTHONPATH=$PWD .venv/bin/python bench/read_facts.py --workspace /tmp/ws --store bolt://127.0.0.1:7687 [--rounds 2]

Prints seconds per round and the ratio of the overlapped read to the sequential one, and
checks both read the same onsets.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from graph.linkage import read_facts
from graph.settings import Settings
from graph.stores import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--store", default="embedded")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    settings = Settings({"workspace": str(args.workspace), "store": args.store})
    seconds: dict[bool, list[float]] = {False: [], True: []}
    found: dict[bool, int] = {}
    with open_store(settings) as store:
        for _ in range(args.rounds):
            for meanwhile in (False, True):
                started = time.perf_counter()
                facts = read_facts(store, args.workspace, onsets=meanwhile)
                found[meanwhile] = len(facts.onsets())
                seconds[meanwhile].append(time.perf_counter() - started)
                print(f"{'meanwhile' if meanwhile else 'in turn':9s} {seconds[meanwhile][-1]:7.1f} s, "
                      f"{found[meanwhile]:,} onsets", flush=True)
                del facts
    if found[False] != found[True]:
        raise SystemExit("the two reads found different onsets")
    ratio = min(seconds[True]) / min(seconds[False])
    print(f"best of {args.rounds}: in turn {min(seconds[False]):.1f} s, meanwhile {min(seconds[True]):.1f} s, ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
