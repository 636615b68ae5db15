"""Prompt linkage's near-duplicate template search, as first written (every template's
signature read as a Python list, every row sorted on every band, union-find in Python: the
baseline) against the current one (``read_minhash_matrix`` + ``near_duplicate_groups``:
column-wise read, rows sharing a band bucket found by hash, packed sort keys, connected
components), on one workspace's staged templates, in one process:

    PYTHONPATH=$PWD .venv/bin/python bench/near_duplicates.py --workspace /tmp/ws [--rounds 1]

Prints seconds for the read and the search of each, their ratios (current / baseline), and
checks both find the same families.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from graph.linkage.prompt import (
    LSH_BANDS,
    NEAR_DUP_THRESHOLD,
    SORT_VALUES,
    near_duplicate_groups,
    read_minhash_matrix,
)
from graph.workspace import templates_path


def baseline_read(workspace: Path) -> dict[str, np.ndarray]:
    table = pq.read_table(templates_path(workspace), columns=["template_id", "minhash"])
    ids = table.column("template_id").to_pylist()
    sigs = table.column("minhash").to_pylist()
    return {str(t): np.asarray(s, dtype=np.uint64) for t, s in zip(ids, sigs, strict=True) if s}


def baseline_families(signatures: Mapping[str, np.ndarray], threshold: float = NEAR_DUP_THRESHOLD) -> list[list[str]]:
    ids = sorted(t for t, s in signatures.items() if len(s))
    if len(ids) < 2:
        return []
    width = min(len(signatures[t]) for t in ids)
    matrix = np.stack([np.asarray(signatures[t][:width], dtype=np.uint64) for t in ids])
    rows = max(1, width // LSH_BANDS)
    parent = np.arange(len(ids))

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = int(parent[root])
        while parent[x] != root:
            parent[x], x = root, int(parent[x])
        return root

    for band in range(width // rows):
        lo, hi = band * rows, (band + 1) * rows
        rest = np.roll(matrix, -hi, axis=1)[:, : min(SORT_VALUES, width - rows)]
        order = np.lexsort(tuple(rest[:, k] for k in range(rest.shape[1] - 1, -1, -1)) + tuple(
            matrix[:, k] for k in range(hi - 1, lo - 1, -1)))
        band_sorted = matrix[order, lo:hi]
        same = np.all(band_sorted[1:] == band_sorted[:-1], axis=1)
        left, right = order[:-1][same], order[1:][same]
        if left.size == 0:
            continue
        similar = (matrix[left] == matrix[right]).mean(axis=1) >= threshold
        for x, y in zip(left[similar].tolist(), right[similar].tolist(), strict=True):
            rx, ry = find(x), find(y)
            if rx != ry:
                parent[max(rx, ry)] = min(rx, ry)
    groups: dict[int, list[str]] = {}
    for index, tid in enumerate(ids):
        groups.setdefault(find(index), []).append(tid)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if not templates_path(args.workspace).exists():
        raise SystemExit(f"no staged templates under {args.workspace}: run `sybilscope load` first")
    best: dict[str, float] = {}
    found: dict[str, list[list[str]]] = {}

    def lap(name: str, started: float) -> float:
        seconds = time.perf_counter() - started
        best[name] = min(best.get(name, seconds), seconds)
        return seconds

    for _ in range(args.rounds):
        started = time.perf_counter()
        signatures = baseline_read(args.workspace)
        read_old = lap("baseline read", started)
        started = time.perf_counter()
        found["baseline"] = baseline_families(signatures)
        search_old = lap("baseline search", started)
        del signatures
        started = time.perf_counter()
        ids, matrix = read_minhash_matrix(args.workspace)
        read_new = lap("current read", started)
        started = time.perf_counter()
        found["current"] = near_duplicate_groups(ids, matrix)
        search_new = lap("current search", started)
        del ids, matrix
        print(f"{len(found['current']):,} families; read {read_old:.2f} -> {read_new:.2f} s, "
              f"search {search_old:.2f} -> {search_new:.2f} s", flush=True)
    if found["baseline"] != found["current"]:
        raise SystemExit("the baseline and the current search found different families")
    print(f"best of {args.rounds}: read ratio {best['current read'] / best['baseline read']:.3f}, "
          f"search ratio {best['current search'] / best['baseline search']:.3f}, "
          f"together {(best['current read'] + best['current search']) / (best['baseline read'] + best['baseline search']):.3f}")


if __name__ == "__main__":
    main()
