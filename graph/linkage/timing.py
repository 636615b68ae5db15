"""Timing evidence: accounts active in the same hours, SynchroTrap-style.

Each account's activity is the set of three-hour buckets it sent exchanges in (counted by DuckDB from
``staging/exchanges``, never loaded row by row). Operators drive their accounts in lock-step
bursts, so their bucket sets overlap far more than two humans' daily rhythms do. Candidate
pairs come from MinHash-LSH over the bucket sets (banding); a band bucket holding more accounts
than the cap links each member to its next few neighbours in signature order instead of to all,
which keeps a 10,000-account lock-step group connected with a linear number of pairs. The exact
Jaccard of each candidate decides the weight.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from graph.linkage.evidence import Evidence, Pair, Reason, pair_of
from graph.staging import WITHHELD_PREFIX, connect, has_table, table_glob

FAMILY = "timing"
BUCKET_S = 3 * 3600
MIN_BUCKETS = 6
MIN_JACCARD = 0.1
FULL_JACCARD = 0.3
TIMING_BASE = 0.7
PERMUTATIONS = 32
BANDS = 16
RING_NEIGHBOURS = 8


class Buckets(dict[str, np.ndarray]):
    """``read_buckets``' answer: account -> sorted activity keys, and what a key is."""

    keyed_by_template: bool = False

    @property
    def slot(self) -> str:
        """What one activity key stands for, as a co-activity reason says it."""
        hours = f"{BUCKET_S // 3600}h bucket"
        return f"{hours} x prompt template" if self.keyed_by_template else hours


@contextmanager
def _staged_exchanges(workspace: Path | None) -> Iterator[tuple[Any, str, set[str]] | None]:
    """A DuckDB connection over the staged exchanges, with their glob and column names; None
    when nothing is staged (detection then runs on store signals alone)."""
    if workspace is None or not has_table(workspace, "exchanges"):
        yield None
        return
    con = connect(threads=2)
    try:
        glob = table_glob(workspace, "exchanges")
        columns = {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet($g)", {"g": glob}).fetchall()}
        yield con, glob, columns
    finally:
        con.close()


def _has_readable_prompts(con: Any, glob: str) -> bool:
    """Whether any staged exchange has a template read from its text (not only a hash)."""
    found = con.execute(
        "SELECT 1 FROM read_parquet($g) WHERE NOT starts_with(template_id, $w) LIMIT 1",
        {"g": glob, "w": WITHHELD_PREFIX},
    ).fetchone()
    return found is not None


def read_buckets(workspace: Path | None, min_buckets: int = MIN_BUCKETS) -> Buckets:
    """account -> sorted distinct activity keys for accounts with at least ``min_buckets`` of
    them; empty when no exchanges are staged. A key is (time bucket, prompt template) hashed
    to an integer, or the bucket alone when templates are not staged: SynchroTrap's "same
    action at the same time", which sets an operator's accounts (same script, same bursts)
    apart from other operators bursting at overlapping hours and from humans' daily rhythm.

    An exchange whose text is withheld is left out: its hash names the exact filled-in text,
    not the template, so two accounts running one script almost never share it in a bucket,
    and where 95% of texts are withheld those one-off slots would dilute every Jaccard
    twentyfold. The readable exchanges are a sample of the same bursts and carry the timing.
    When no text is readable at all, the bucket alone is the key."""
    out = Buckets()
    with _staged_exchanges(workspace) as staged:
        if staged is None:
            return out
        con, glob, columns = staged
        bucket = "CAST(floor(epoch(ts) / $b) AS BIGINT)"
        key, readable = bucket, ""
        out.keyed_by_template = "template_id" in columns and _has_readable_prompts(con, glob)
        if out.keyed_by_template:
            key = f"CAST(hash({bucket}, coalesce(template_id, '')) >> 1 AS BIGINT)"
            readable = "AND NOT starts_with(coalesce(template_id, ''), $w)"
        # key and readable are built from fixed text above, never from input
        rows = con.execute(
            f"""
            SELECT account_id, list(DISTINCT {key}) AS keys
            FROM read_parquet($glob) WHERE ts IS NOT NULL {readable}
            GROUP BY account_id HAVING count(DISTINCT {key}) >= $m
            """,  # noqa: S608
            {"glob": glob, "b": BUCKET_S, "m": min_buckets} | ({"w": WITHHELD_PREFIX} if readable else {}),
        ).fetchall()
    out.update((str(a), np.unique(np.asarray(b, dtype=np.int64))) for a, b in rows)
    return out


def signatures(buckets: Mapping[str, np.ndarray], seed: int = 7) -> dict[str, np.ndarray]:
    """A ``PERMUTATIONS``-value MinHash of each account's bucket set. Each permutation is a
    splitmix-style 64-bit mix of (bucket + salt): a plain linear hash of consecutive bucket
    numbers is monotone, and its minimum would just be the earliest bucket."""
    rng = np.random.default_rng(seed)
    salts = rng.integers(0, 1 << 62, size=PERMUTATIONS, dtype=np.int64).astype(np.uint64)
    out = {}
    with np.errstate(over="ignore"):
        for account in sorted(buckets):
            h = buckets[account].astype(np.uint64)[None, :] + salts[:, None]
            h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h = h ^ (h >> np.uint64(31))
            out[account] = h.min(axis=1)
    return out


def _rotated(signature: np.ndarray, start: int) -> bytes:
    return np.roll(signature, -start).tobytes()


def candidate_pairs(sigs: Mapping[str, np.ndarray], cap: int, bands: int = BANDS) -> set[Pair]:
    """Pairs that agree on all rows of at least one band; oversized band buckets are linked as
    a ring lattice (each member to its next ``RING_NEIGHBOURS``) to stay linear."""
    rows = PERMUTATIONS // bands
    out: set[Pair] = set()
    for band in range(bands):
        buckets: dict[bytes, list[str]] = {}
        for account in sorted(sigs):
            key = sigs[account][band * rows : (band + 1) * rows].tobytes()
            buckets.setdefault(key, []).append(account)
        for members in buckets.values():
            if len(members) < 2:
                continue
            if len(members) <= cap:
                out.update(pair_of(x, y) for i, x in enumerate(members) for y in members[i + 1 :])
            else:
                # Oversized bucket: order members by the rest of their signature (rotated per
                # band) so accounts agreeing on more values sit next to each other, then link
                # each to its next few: similar accounts meet, and the union over bands mixes.
                start = (band + 1) * rows
                members = sorted(members, key=lambda m: _rotated(sigs[m], start))
                n = len(members)
                for i, x in enumerate(members):
                    for step in range(1, RING_NEIGHBOURS + 1):
                        out.add(pair_of(x, members[(i + step) % n]))
    return out


def jaccard(x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """Exact Jaccard of two sorted unique arrays and the size of their intersection."""
    shared = int(np.intersect1d(x, y, assume_unique=True).size)
    union = int(x.size + y.size - shared)
    return (shared / union if union else 0.0), shared


def coactivity_reason(a: np.ndarray, b: np.ndarray, group: int,
                      slot: str = f"{BUCKET_S // 3600}h bucket x prompt template") -> Reason | None:
    """The co-activity reason for two activity-key sets (keys of ``slot``: ``Buckets.slot``),
    or None below ``MIN_JACCARD``."""
    j, shared = jaccard(a, b)
    if j < MIN_JACCARD:
        return None
    weight = TIMING_BASE * min(1.0, j / FULL_JACCARD)
    detail = {
        "jaccard": round(j, 3),
        "shared_slots": shared,
        "active_slots": [int(a.size), int(b.size)],
        "slot": slot,
    }
    return Reason(FAMILY, "coactivity", "TimeBuckets", f"{BUCKET_S}s", group, weight, detail)


def shared_keys(buckets: Mapping[str, np.ndarray], names: Sequence[str], a: np.ndarray, b: np.ndarray,
                chunk: int = 200_000) -> np.ndarray:
    """Per pair ``names[a[k]]-names[b[k]]``, how many activity keys the two share: the sizes
    of ``np.intersect1d`` of their key sets, counted as sparse row products in chunks (one
    intersect per pair cost most of timing's half minute at the seed scale).

    >>> shared_keys({"x": np.array([1, 5, 9]), "y": np.array([5, 9]), "z": np.array([2])},
    ...             ["x", "y", "z"], np.array([0, 0]), np.array([1, 2])).tolist()
    [2, 0]
    """
    from scipy.sparse import csr_matrix

    if not len(a):
        return np.zeros(0, dtype=np.int64)
    sizes = np.fromiter((buckets[n].size for n in names), dtype=np.int64, count=len(names))
    keys, column = np.unique(np.concatenate([buckets[n] for n in names]), return_inverse=True)
    matrix = csr_matrix((np.ones(column.size, dtype=np.int32), column, np.r_[0, np.cumsum(sizes)]),
                        shape=(len(names), keys.size))
    out = np.empty(len(a), dtype=np.int64)
    for lo in range(0, len(a), chunk):
        hi = min(lo + chunk, len(a))
        out[lo:hi] = np.asarray(matrix[a[lo:hi]].multiply(matrix[b[lo:hi]]).sum(axis=1)).ravel()
    return out


def link_timing(evidence: Evidence, workspace: Path | None, cap: int) -> int:
    """Add co-activity reasons from staged exchanges; nothing when staging is absent. The
    candidates' Jaccards are computed column-wise and each reason (``coactivity_reason``) is
    built only when read (``Evidence.add_columns``)."""
    buckets = read_buckets(workspace)
    if len(buckets) < 2:
        return 0
    names = sorted(buckets)
    index = {name: i for i, name in enumerate(names)}
    pairs = sorted(candidate_pairs(signatures(buckets), cap))
    a = np.fromiter((index[x] for x, _ in pairs), dtype=np.int64, count=len(pairs))
    b = np.fromiter((index[y] for _, y in pairs), dtype=np.int64, count=len(pairs))
    shared = shared_keys(buckets, names, a, b)
    sizes = np.fromiter((buckets[n].size for n in names), dtype=np.int64, count=len(names))
    union = sizes[a] + sizes[b] - shared
    jaccard_of = np.divide(shared, union, out=np.zeros(len(pairs)), where=union > 0)
    linked = np.flatnonzero(jaccard_of >= MIN_JACCARD)
    a, b, shared, jaccard_of = a[linked], b[linked], shared[linked], jaccard_of[linked]
    weights = TIMING_BASE * np.minimum(1.0, jaccard_of / FULL_JACCARD)
    slot = buckets.slot

    def reason_of(k: int) -> Reason:
        reason = coactivity_reason(buckets[names[a[k]]], buckets[names[b[k]]], 2, slot)
        assert reason is not None  # its Jaccard passed MIN_JACCARD above
        return reason

    return evidence.add_columns(FAMILY, names, a, b, weights, reason_of)


def read_model_onsets(workspace: Path | None) -> dict[str, float]:
    """account -> epoch of its first exchange with the newest model (the model whose first
    appearance in the data is latest, among models with at least 0.5% of the rows): the
    synchronised model switch. Empty when no exchanges are staged."""
    with _staged_exchanges(workspace) as staged:
        if staged is None:
            return {}
        con, glob, columns = staged
        if "model" not in columns:
            return {}
        newest = con.execute(
            """
            WITH m AS (SELECT model, min(ts) AS first, count(*) AS n FROM read_parquet($g)
                       WHERE model IS NOT NULL AND model <> '' GROUP BY model)
            SELECT model FROM m WHERE n >= 0.005 * (SELECT sum(n) FROM m) ORDER BY first DESC, model LIMIT 1
            """,
            {"g": glob},
        ).fetchone()
        if newest is None:
            return {}
        rows = con.execute(
            "SELECT account_id, epoch(min(ts)) FROM read_parquet($g) WHERE model = $m GROUP BY account_id",
            {"g": glob, "m": newest[0]},
        ).fetchall()
    return {str(a): float(t) for a, t in rows}


def read_minute_regularity(workspace: Path | None, min_exchanges: int = 20) -> dict[str, tuple[int, int]]:
    """account -> (exchanges in its busiest minute-of-the-hour, all its exchanges), for
    accounts with at least ``min_exchanges``. A scheduled job (cron at five past the hour)
    puts nearly everything in one minute; humans and operators' bursts spread over all 60.
    Empty when no exchanges are staged."""
    with _staged_exchanges(workspace) as staged:
        if staged is None:
            return {}
        con, glob, _ = staged
        rows = con.execute(
            """
            WITH m AS (SELECT account_id, minute(ts) AS mi, count(*) AS n FROM read_parquet($g)
                       WHERE ts IS NOT NULL GROUP BY 1, 2)
            SELECT account_id, max(n), sum(n) FROM m GROUP BY 1 HAVING sum(n) >= $k
            """,
            {"g": glob, "k": min_exchanges},
        ).fetchall()
    return {str(a): (int(top), int(total)) for a, top, total in rows}
