"""Detection's pair stages in Spark SQL, with the same answers as the local engine (#17).

``SparkBackend`` owns one ``SparkSession`` (like Splink's database API owns its connection) and
a scratch directory of Parquet files. ``SparkBackend.link_accounts`` runs the usual linkers
(graph/linkage) into a ``SparkEvidence``; what each stage does, and where:

On the driver (unchanged local code):
  * reading the facts, the per-value account sets of every family and hub suppression
    (``hubs.link_shared_values``: over-cap values, shared-egress kinds, webmail domains);
  * the value factor of every non-hub value, ``weights_of`` evaluated once per value on a
    neutral pair (``value_factors``): the network bases from IP intel, a template's
    independent sharers (graph/linkage/prompt.py), ``rarity(n)``;
  * the evidence that is not a shared value's pairs, added one reason at a time: timing
    co-activity (MinHash-LSH over activity buckets), the synchronised over-cap rings
    (linkage.hubs) and takeover-campaign links (graph/takeover.py);
  * the near-duplicate template families (MinHash LSH, linkage.prompt): found locally, their
    pairs then made in Spark like any other value's;
  * reasons' detail records (counts, first/last seen, template text and examples): Spark
    picks each kept pair's strongest ``max_reasons`` reasons and the driver builds only those,
    with the linkers' own ``reason_for``;
  * Leiden inside each strong-link component, pruning, separation, scoring, writing.

In Spark SQL (``combine``): every non-hub value's candidate pairs (a self-join of its users),
each pair reason's weight (value factor x time overlap x volume, the column-wise formulas of
linkage.network and linkage.hubs, declared per label in ``PAIR_TERMS``), the union with the
driver's reasons, the per-family noisy-OR, the cross-family combine, the minimum-weight cut
(``keep_floor``, clustering.MIN_WEIGHT in a detection run), the choice of each kept pair's
strongest reasons, and the connected components of the strong-link graph of the clustering
weights (``strong_components``; weight >= clustering.STRONG, prompt-only pairs left out as in
separation.clustering_weights).

Same answers, to the bit: a family's miss is the product of ``1 - w`` over its reasons in the
local engine's order (strongest first, then the order they were recorded in), folded with
Spark's ``aggregate`` over the sorted reasons, not ``1 - exp(sum(log(1 - w)))``: the logarithm
form differs in the last bits, and weights sit exactly on the thresholds (an ASN's 0.1 is
clustering.MIN_WEIGHT), where a last-bit difference drops or keeps a pair. The families then
multiply left to right, as NumPy's ``prod`` does. The driver checks, per label, that the local
``weights_of`` still factors as ``PAIR_TERMS`` says (``check_pair_terms``).

Connected components: an iterative min-label propagation in Spark SQL (each account takes the
smallest label among itself and its strong neighbours, then its label's label, until nothing
changes; a few joins and one aggregate per round, about log(diameter) rounds thanks to the
shortcut: the synchronised rings and takeover chains are long paths), not GraphFrames: GraphFrames is
a Spark package (a jar resolved from spark-packages at session start, not on PyPI), which a
locked-down cluster or CI may not reach, and its ``connectedComponents`` needs a checkpoint
directory on shared storage; the SQL iteration runs anywhere Spark SQL does.

The kept pairs (with their family misses), their strongest reasons' references and the
component labels come back to the driver (they are what the rest of detection reads, a small
part of the candidates), installed into the ``Evidence`` the other stages use unchanged.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from graph import clustering, separation
from graph.linkage import FAMILIES, Evidence, Facts, Reason, link_accounts
from graph.linkage.evidence import FAMILY_INDEX
from graph.linkage.hubs import ReasonFactory, WeightsOf, volume_factors
from graph.linkage.network import OVERLAP_FADE_DAYS, OVERLAP_FLOOR, time_overlaps
from graph.linkage.uses import NO_TIME, UseTable
from graph.schema import Label

# label -> (time overlap, volume): which pair terms multiply a value's factor in its family's
# weights_of (linkage.network: every network label fades with the time between the two uses,
# an IP also with the lighter user's volume; linkage.prompt: both template kinds by volume).
PAIR_TERMS: dict[str, tuple[bool, bool]] = {
    Label.IP.value: (True, True),
    Label.NETWORK.value: (True, False),
    Label.ASN.value: (True, False),
    Label.PROMPT_TEMPLATE.value: (False, True),
    "TemplateFamily": (False, True),
    Label.PAYMENT_METHOD.value: (False, False),
    "BillingPattern": (False, False),
    Label.DEVICE.value: (False, False),
    Label.CLIENT_FINGERPRINT.value: (False, False),
    Label.EMAIL_DOMAIN.value: (False, False),
    "EmailPattern": (False, False),
    "Phone": (False, False),
    "CreationBurst": (False, False),
}
VOLUME_FULL = 5  # linkage.evidence.volume_factor's ``full``
NEUTRAL_COUNT = 1 << 40  # a use count at which every volume factor is 1
CHECK_VALUES = 8  # values per label whose pairs check_pair_terms compares
MAX_ROUNDS = 10_000  # of the component propagation: a chain of strong links this long is a bug

MEMBER_SCHEMA = pa.schema([
    ("seq", pa.int32()), ("fam", pa.int32()), ("pos", pa.int64()), ("n", pa.int64()), ("vf", pa.float64()),
    ("ov", pa.bool_()), ("vol", pa.bool_()), ("ra", pa.int64()), ("acct", pa.string()), ("cnt", pa.int64()),
    ("t0", pa.int64()), ("t1", pa.int64()),
])
LOCAL_SCHEMA = pa.schema([("a", pa.string()), ("b", pa.string()), ("fam", pa.int32()), ("w", pa.float64()), ("idx", pa.int64())])


# ---- the driver's side of a shared value family -------------------------------------------------


def value_factors(table: UseTable, positions: np.ndarray, weights_of: WeightsOf) -> np.ndarray:
    """Per value at ``positions``, its pair weight's factor that does not depend on the pair:
    ``weights_of`` on a neutral pair (times unknown, so the overlap is 1; a huge count, so the
    volume is 1), multiplied as the local engine multiplies it."""
    neutral = UseTable(table.values_sorted, np.zeros(len(table.values_sorted) + 1, dtype=np.int64), [""],
                       np.zeros(1, dtype=np.int32), np.full(1, NEUTRAL_COUNT), np.full(1, NO_TIME), np.full(1, NO_TIME))
    zeros = np.zeros(positions.size, dtype=np.int32)
    sizes = table.sizes()[positions].astype(np.int64)
    return np.asarray(weights_of(neutral, zeros, zeros, positions.astype(np.int32), sizes), dtype=np.float64)


def pair_terms(label: str) -> tuple[bool, bool]:
    """``PAIR_TERMS[label]``, or a clear error for a label no one declared."""
    try:
        return PAIR_TERMS[label]
    except KeyError:
        raise ValueError(f"no Spark SQL form of the pair weight of {label!r} values: declare it in "
                         "graph/engine/spark.py PAIR_TERMS") from None


def factored_weights(table: UseTable, rows_a: np.ndarray, rows_b: np.ndarray, factor: np.ndarray,
                     terms: tuple[bool, bool]) -> np.ndarray:
    """The weights Spark's SQL gives: ``factor`` x time overlap x volume (the terms ``terms``
    names), in NumPy."""
    out = factor * (time_overlaps(table, rows_a, rows_b) if terms[0] else 1.0)
    return out * (volume_factors(table.count[rows_a], table.count[rows_b], VOLUME_FULL) if terms[1] else 1.0)


def check_pair_terms(label: str, table: UseTable, positions: np.ndarray, factors: np.ndarray, weights_of: WeightsOf,
                     terms: tuple[bool, bool]) -> None:
    """Raise unless ``weights_of`` gives every pair of the first ``CHECK_VALUES`` values what
    the factored form gives: a linker whose weight formula changed must change PAIR_TERMS too."""
    rows_a: list[np.ndarray] = []
    rows_b: list[np.ndarray] = []
    which: list[np.ndarray] = []
    for k, pos in enumerate(positions[:CHECK_VALUES].tolist()):
        lo, n = int(table.offsets[pos]), int(table.offsets[pos + 1] - table.offsets[pos])
        upper_i, upper_j = np.triu_indices(n, 1)
        rows_a.append(lo + upper_i)
        rows_b.append(lo + upper_j)
        which.append(np.full(upper_i.size, k))
    if not rows_a:
        return
    ra, rb, k_of = np.concatenate(rows_a).astype(np.int32), np.concatenate(rows_b).astype(np.int32), np.concatenate(which)
    key_pos = positions[k_of].astype(np.int32)
    sizes = table.sizes()[key_pos].astype(np.int64)
    local = np.asarray(weights_of(table, ra, rb, key_pos, sizes), dtype=np.float64)
    factored = factored_weights(table, ra, rb, factors[k_of], terms)
    if not np.allclose(local, factored, rtol=1e-12, atol=0.0):
        raise ValueError(f"the weights of {label!r} pairs no longer factor as graph/engine/spark.py PAIR_TERMS "
                         f"says ({terms}): update it with the linker")


@dataclass
class DeferredValues:
    """One ``link_shared_values`` call's non-hub values, whose pairs Spark makes."""

    family: str
    label: str
    table: UseTable
    reason_for: ReasonFactory

    def reason(self, pos: int, row_a: int, row_b: int) -> Reason:
        """The reason the local engine would record for rows ``row_a`` < ``row_b`` of value
        ``pos``, with its detail."""
        table = self.table
        a, b = table.names[int(table.account[row_a])], table.names[int(table.account[row_b])]
        n = int(table.offsets[pos + 1] - table.offsets[pos])
        reason = self.reason_for(table.values_sorted[pos], a, b, {a: table.use(row_a), b: table.use(row_b)}, n)
        if reason is None:
            raise ValueError(f"no reason for a weighted pair of {table.values_sorted[pos]}")
        return reason


def member_rows(seq: int, family: str, table: UseTable, positions: np.ndarray, factors: np.ndarray,
                terms: tuple[bool, bool]) -> pa.Table:
    """The users of the values at ``positions`` as Parquet rows for Spark: the source's
    sequence number, family, value position and size, value factor, pair terms, and per use
    its row, account, count and first/last use (epoch seconds, null when unknown)."""
    sizes = table.sizes()[positions].astype(np.int64)
    starts = table.offsets[positions].astype(np.int64)
    total = int(sizes.sum())
    before = np.r_[0, np.cumsum(sizes)[:-1]]
    rows = np.repeat(starts - before, sizes) + np.arange(total, dtype=np.int64)
    names = np.asarray(table.names, dtype=object)
    return pa.table({
        "seq": pa.array(np.full(total, seq, dtype=np.int32)),
        "fam": pa.array(np.full(total, FAMILY_INDEX[family], dtype=np.int32)),
        "pos": pa.array(np.repeat(positions.astype(np.int64), sizes)),
        "n": pa.array(np.repeat(sizes, sizes)),
        "vf": pa.array(np.repeat(factors, sizes)),
        "ov": pa.array(np.full(total, terms[0])),
        "vol": pa.array(np.full(total, terms[1])),
        "ra": pa.array(rows),
        "acct": pa.array(names[table.account[rows]].tolist(), type=pa.string()),
        "cnt": pa.array(table.count[rows]),
        "t0": pa.array(table.first[rows], mask=table.first[rows] == NO_TIME),
        "t1": pa.array(table.last[rows], mask=table.last[rows] == NO_TIME),
    }, schema=MEMBER_SCHEMA)


# ---- the evidence -----------------------------------------------------------------------------------


@dataclass
class Combined:
    """What ``SparkBackend.combine`` brings back to the driver."""

    pairs: list[tuple[str, str]]
    misses: np.ndarray  # per kept pair, per family
    ref_offsets: np.ndarray  # kept pair i's references: ref_offsets[i]:ref_offsets[i + 1]
    ref_seq: np.ndarray  # -1: a reason added on the driver (index ref_ra); else a DeferredValues
    ref_pos: np.ndarray
    ref_ra: np.ndarray
    ref_rb: np.ndarray
    candidate_pairs: int
    candidate_reasons: int
    components: dict[str, str]  # account -> the smallest account of its strong-link component


class SparkEvidence(Evidence):
    """``Evidence`` whose shared values' pairs, combine, cut and strong-link components are
    computed by a ``SparkBackend``; reasons added one at a time stay on the driver and are
    shipped with each combine. Reads work as on the local ``Evidence``."""

    def __init__(self, backend: SparkBackend, max_reasons_per_pair: int = 8, keep_floor: float = 0.0) -> None:
        super().__init__(max_reasons_per_pair=max_reasons_per_pair, keep_floor=keep_floor)
        self.backend = backend
        self.deferred: list[DeferredValues] = []
        self._combined: Combined | None = None

    def defer_shared_values(self, family: str, label: str, table: UseTable, positions: np.ndarray,
                            weights_of: WeightsOf, reason_for: ReasonFactory) -> int | None:
        """Write the values' users to Parquet for Spark; returns the pairs they give."""
        positions = positions[table.sizes()[positions] >= 2] if positions.size else positions
        if positions.size == 0:
            return 0
        terms = pair_terms(label)
        factors = value_factors(table, positions, weights_of)
        check_pair_terms(label, table, positions, factors, weights_of, terms)
        seq = len(self.deferred)
        self.deferred.append(DeferredValues(family, label, table, reason_for))
        self.backend.write_members(seq, member_rows(seq, family, table, positions, factors, terms))
        self._pending = True
        sizes = table.sizes()[positions].astype(np.int64)
        return int((sizes * (sizes - 1) // 2).sum())

    def add_columns(self, family: str, names: Sequence[str], a: np.ndarray, b: np.ndarray, weights: np.ndarray,
                    reason_of: Callable[[int], Reason],
                    value_of: tuple[str, Sequence[str], np.ndarray] | None = None) -> int:
        """Pairs that are not shared values (timing's co-activity) are recorded one by one and
        go to Spark with the other single reasons; shared values come through
        ``defer_shared_values``."""
        if value_of is not None:
            raise TypeError("SparkEvidence takes shared values through defer_shared_values, not pair columns")
        added = 0
        for k in np.flatnonzero((weights > 0) & (a != b)).tolist():
            self.add(names[a[k]], names[b[k]], reason_of(k))
            added += 1
        return added

    def _local_rows(self) -> pa.Table:
        ia, ib, fam, w = self._one
        names = self._names
        return pa.table({"a": pa.array([names[i] for i in ia], type=pa.string()),
                         "b": pa.array([names[i] for i in ib], type=pa.string()),
                         "fam": pa.array(fam, type=pa.int32()), "w": pa.array(w, type=pa.float64()),
                         "idx": pa.array(np.arange(len(ia), dtype=np.int64))}, schema=LOCAL_SCHEMA)

    def _combine(self) -> None:
        if not self._pending:
            return
        got = self.backend.combine(self._local_rows(), self.keep_floor, self.max_reasons)
        self._combined = got
        self._pairs = got.pairs
        self._position = {p: i for i, p in enumerate(got.pairs)}
        self._miss = got.misses
        self._ref_offsets = got.ref_offsets
        self._ref_source = got.ref_seq
        self._ref_row = np.arange(got.ref_seq.size, dtype=np.int64)  # index into got's reference columns
        self.candidate_pairs = got.candidate_pairs
        self.candidate_reasons = got.candidate_reasons
        self._pending = False

    def _ref_family(self, source: int, row: int) -> int:
        got = self._combined
        assert got is not None  # references exist only after a combine
        return self._one[2][int(got.ref_ra[row])] if source < 0 else FAMILY_INDEX[self.deferred[source].family]

    def _ref_families(self, source: np.ndarray, row: np.ndarray) -> np.ndarray:
        got = self._combined
        assert got is not None  # references exist only after a combine
        one = np.asarray(self._one[2] or [0], dtype=np.int64)
        deferred = np.asarray([FAMILY_INDEX[d.family] for d in self.deferred] or [0], dtype=np.int64)
        single = source < 0
        ra = np.asarray(got.ref_ra, dtype=np.int64)[row]
        return np.where(single, one[np.where(single, ra, 0)], deferred[np.where(single, 0, source)])

    def _ref_position(self, source: int, row: int) -> tuple[int, int] | None:
        return None  # the reference's weight is Spark's: build the reason

    def _value_columns(self, source: int) -> tuple[str, Sequence[str], np.ndarray] | None:
        return None  # the reference's weight is Spark's: build the reason

    def _reason_at(self, source: int, row: int) -> Reason:
        got = self._combined
        assert got is not None  # references exist only after a combine
        if source < 0:
            return self._one_reasons[int(got.ref_ra[row])]
        return self.deferred[source].reason(int(got.ref_pos[row]), int(got.ref_ra[row]), int(got.ref_rb[row]))

    def strong_components(self, names: Sequence[str]) -> np.ndarray | None:
        """Labels ``0..len(names)-1`` of ``names`` by Spark's strong-link components (an
        account without a strong link is a component of its own)."""
        self._combine()
        assert self._combined is not None
        roots = self._combined.components
        ids: dict[str, int] = {}
        return np.fromiter((ids.setdefault(roots.get(n, n), len(ids)) for n in names), dtype=np.int64, count=len(names))


# ---- the backend -----------------------------------------------------------------------------------

# Spark SQL double literals carry a D: a bare 1.0 is a DECIMAL there.
CANDIDATES_SQL = f"""
SELECT x.acct AS a, y.acct AS b, x.fam AS fam,
       least(x.vf
             * CASE WHEN NOT x.ov OR x.t0 IS NULL OR x.t1 IS NULL OR y.t0 IS NULL OR y.t1 IS NULL
                    THEN 1.0D
                    ELSE greatest({OVERLAP_FLOOR!r}D,
                                  1.0D - (CAST(greatest(y.t0 - x.t1, x.t0 - y.t1, 0) AS DOUBLE) / 86400.0D) / {OVERLAP_FADE_DAYS!r}D)
               END
             * CASE WHEN x.vol THEN least(1.0D, CAST(greatest(1, least(x.cnt, y.cnt)) AS DOUBLE) / {float(VOLUME_FULL)!r}D)
                    ELSE 1.0D END,
             1.0D) AS w,
       x.seq AS seq, x.n AS k1, x.pos AS k2, x.ra AS k3, y.ra AS k4
FROM members x JOIN members y ON x.seq = y.seq AND x.pos = y.pos AND x.ra < y.ra
"""  # noqa: S608 - module constants only

REASONS_SQL = f"""
SELECT * FROM ({CANDIDATES_SQL}) WHERE w > 0.0D
UNION ALL
SELECT least(a, b) AS a, greatest(a, b) AS b, fam, w, -1 AS seq, CAST(0 AS BIGINT) AS k1, CAST(0 AS BIGINT) AS k2,
       idx AS k3, CAST(0 AS BIGINT) AS k4
FROM local_rows WHERE a <> b AND w > 0.0D
"""  # noqa: S608 - module constants only

# one family's miss: 1 - w multiplied in the local engine's order (strongest first, then as recorded)
FAMILY_MISS_SQL = """
SELECT a, b, fam,
       aggregate(array_sort(collect_list(struct(-w AS nw, seq, k1, k2, k3, k4, w))), 1.0D,
                 (m, r) -> m * (1.0D - r.w)) AS miss
FROM reasons GROUP BY a, b, fam
"""

PAIRS_SQL = "SELECT a, b, {columns}, 1.0D - {product} AS weight FROM family_miss GROUP BY a, b".format(  # noqa: S608 - fixed names
    columns=", ".join(f"coalesce(max(CASE WHEN fam = {f} THEN miss END), 1.0D) AS m{f}" for f in range(len(FAMILIES))),
    product=" * ".join(f"coalesce(max(CASE WHEN fam = {f} THEN miss END), 1.0D)" for f in range(len(FAMILIES))),
)

REFS_SQL = """
SELECT a, b, seq, k2, k3, k4, r FROM (
  SELECT a, b, seq, k2, k3, k4,
         row_number() OVER (PARTITION BY a, b ORDER BY w DESC, seq, k1, k2, k3, k4) AS r
  FROM reasons) ranked
JOIN kept USING (a, b)
WHERE r <= :max_reasons
"""

# the clustering's strong links (separation.clustering_weights, then clustering.STRONG): not
# prompt-only (separation.prompt_only): some family but separation.PROMPT_DERIVED scores at
# least separation.TRACE, or scores at all while co-activity scores at least TRACE
STRONG_SQL = (  # noqa: S608 - fixed names
    "SELECT a, b FROM kept WHERE weight >= :strong AND (greatest({others}) >= :trace "
    "OR (greatest({others}) > 0.0D AND 1.0D - m{timing} >= :trace))"
).format(
    others=", ".join(["0.0D"] + [f"1.0D - m{f}" for f in range(len(FAMILIES)) if f not in separation.PROMPT_DERIVED]),
    timing=separation.TIMING,
)


# one round of the strong-link components: the smallest label among an account and its
# neighbours, then that label's own label (shortcutting)
COMPONENT_ROUND_SQL = """
WITH neighbours AS (
  SELECT e.dst AS v, min(s.label) AS label FROM edges_both e JOIN labels s ON s.v = e.src GROUP BY e.dst
), stepped AS (
  SELECT l.v, l.label AS old, least(l.label, coalesce(n.label, l.label)) AS label
  FROM labels l LEFT JOIN neighbours n ON n.v = l.v
)
SELECT s.v, least(s.label, coalesce(j.label, s.label)) AS label, least(s.label, coalesce(j.label, s.label)) < s.old AS moved
FROM stepped s LEFT JOIN stepped j ON j.v = s.label
"""


class SparkBackend:
    """One SparkSession and a scratch directory of Parquet files for one detection run."""

    def __init__(self, master: str, scratch_parent: Path | None = None, app_name: str = "sybilscope-detect") -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise RuntimeError("engine 'spark' needs pyspark: pip install -e '.[spark]' (make setup installs it)") from exc

        builder = (SparkSession.builder.master(master).appName(app_name)
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                   .config("spark.sql.ansi.enabled", "false"))
        if master.startswith("local"):
            # a partition per core: Spark's default 200 is for clusters, and every task costs
            builder = builder.config("spark.sql.shuffle.partitions", str(local_cores(master)))
            builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        try:
            self.spark: Any = builder.getOrCreate()
        except Exception as exc:  # pyspark reports a missing or wrong Java as a bare gateway error
            raise RuntimeError(f"could not start Spark at {master!r} (engine 'spark' needs Java 17 on PATH or "
                               f"JAVA_HOME): {exc}") from exc
        self.spark.sparkContext.setLogLevel("WARN")
        if scratch_parent is not None:
            scratch_parent.mkdir(parents=True, exist_ok=True)
        self.scratch = Path(tempfile.mkdtemp(prefix="spark-scratch-", dir=scratch_parent))
        (self.scratch / "members").mkdir()
        self._combines = 0
        self.rounds = 0  # of the last components run

    def close(self) -> None:
        self.spark.stop()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def link_accounts(self, facts: Facts, cap: int, timings: dict[str, float], keep_floor: float,
                      phase: Callable[[str], None] | None) -> Evidence:
        """``linkage.link_accounts`` into a ``SparkEvidence``."""
        return link_accounts(facts, cap, timings, keep_floor=keep_floor, phase=phase,
                             evidence=SparkEvidence(self, keep_floor=keep_floor))

    def write_members(self, seq: int, rows: pa.Table) -> None:
        pq.write_table(rows, self.scratch / "members" / f"part-{seq:05d}.parquet")

    def combine(self, local_rows: pa.Table, keep_floor: float, max_reasons: int) -> Combined:
        """Candidate pairs, family misses, the cut at ``keep_floor``, each kept pair's
        strongest ``max_reasons`` reason references and the strong-link components."""
        spark = self.spark
        self._combines += 1
        local_path = self.scratch / f"local-{self._combines}.parquet"
        pq.write_table(local_rows, local_path)
        members_dir = self.scratch / "members"
        if not any(members_dir.iterdir()):
            pq.write_table(MEMBER_SCHEMA.empty_table(), members_dir / "part-empty.parquet")
        spark.read.parquet(str(members_dir)).createOrReplaceTempView("members")
        spark.read.parquet(str(local_path)).createOrReplaceTempView("local_rows")
        reasons = spark.sql(REASONS_SQL).persist()
        reasons.createOrReplaceTempView("reasons")
        spark.sql(FAMILY_MISS_SQL).createOrReplaceTempView("family_miss")
        pairs = spark.sql(PAIRS_SQL).persist()
        pairs.createOrReplaceTempView("pairs")
        kept = spark.sql("SELECT * FROM pairs WHERE weight > 0.0D AND weight >= :floor", args={"floor": float(keep_floor)}).persist()
        kept.createOrReplaceTempView("kept")
        counts = spark.sql("SELECT (SELECT count(*) FROM pairs) AS p, (SELECT count(*) FROM reasons) AS r").collect()[0]
        kept_rows = kept.orderBy("a", "b").toPandas()
        refs = spark.sql(REFS_SQL, args={"max_reasons": int(max_reasons)}).orderBy("a", "b", "r").toPandas()
        components = self.components(spark.sql(STRONG_SQL, args={"strong": float(clustering.STRONG), "trace": float(separation.TRACE)}))
        for frame in (reasons, pairs, kept):
            frame.unpersist()
        misses = kept_rows[[f"m{f}" for f in range(len(FAMILIES))]].to_numpy(dtype=np.float64).reshape(-1, len(FAMILIES))
        pair_list = list(zip(kept_rows["a"].tolist(), kept_rows["b"].tolist(), strict=True))
        index = {p: i for i, p in enumerate(pair_list)}
        per_pair = np.bincount(np.asarray([index[p] for p in zip(refs["a"].tolist(), refs["b"].tolist(), strict=True)],
                                          dtype=np.int64), minlength=len(pair_list))
        return Combined(
            pairs=pair_list, misses=misses, ref_offsets=np.r_[0, np.cumsum(per_pair)].astype(np.int64),
            ref_seq=refs["seq"].to_numpy(dtype=np.int32), ref_pos=refs["k2"].to_numpy(dtype=np.int64),
            ref_ra=refs["k3"].to_numpy(dtype=np.int64), ref_rb=refs["k4"].to_numpy(dtype=np.int64),
            candidate_pairs=int(counts["p"]), candidate_reasons=int(counts["r"]), components=components,
        )

    def components(self, edges: Any) -> dict[str, str]:
        """account -> the smallest account of its connected component in ``edges`` (a, b),
        by min-label propagation with shortcutting: every account starts as its own label; each
        round it takes the smallest label among itself and its neighbours, then its label's
        label (a label is always an account of the same component, so this jumps along
        chains: a path of n links settles in about log n rounds, not n), until none changes."""
        spark = self.spark
        both = edges.selectExpr("a AS src", "b AS dst").union(edges.selectExpr("b AS src", "a AS dst")).localCheckpoint()
        both.createOrReplaceTempView("edges_both")
        labels = spark.sql("SELECT src AS v, src AS label FROM edges_both GROUP BY src")
        self.rounds = 0
        for _ in range(MAX_ROUNDS):
            labels.createOrReplaceTempView("labels")
            step = spark.sql(COMPONENT_ROUND_SQL).localCheckpoint()
            self.rounds += 1
            moved = step.where("moved").limit(1).count()
            labels = step.select("v", "label")
            if not moved:
                break
        else:
            raise RuntimeError(f"strong-link components did not settle in {MAX_ROUNDS} rounds")
        frame = labels.toPandas()
        return dict(zip(frame["v"].astype(str).tolist(), frame["label"].astype(str).tolist(), strict=True))


def local_cores(master: str) -> int:
    """The worker threads of a ``local``, ``local[n]`` or ``local[*]`` master (``local[n, retries]``
    too)."""
    import os

    inside = master.removeprefix("local").strip("[]").split(",")[0].strip()
    if inside == "*":
        return max(1, os.cpu_count() or 1)
    return int(inside) if inside.isdigit() and int(inside) > 0 else 1
