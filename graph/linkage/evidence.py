"""Reason records and the pair-evidence accumulator every signal family writes into.

A *reason* says why two accounts are linked: the signal family and kind, the shared entity
(label, key), how many accounts share it, the weight it contributed and details (counts,
first/last time, example prompts). The UI shows these verbatim under "why are these two linked?",
so they are plain JSON-able data.

Weights combine by noisy-OR: inside a family, ``1 - prod(1 - w)`` over its reasons (several
shared IPs are stronger than one, but never above 1), and across families the same way, so a
pair's weight stays in [0, 1] and one very strong reason is enough for a strong link.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from graph.linkage.hubs import ReasonFactory, WeightsOf
    from graph.linkage.uses import UseTable

FAMILIES = ("network", "payment", "device", "email", "prompt", "timing")
FAMILY_INDEX = {name: i for i, name in enumerate(FAMILIES)}

Pair = tuple[str, str]


def pair_of(a: str, b: str) -> Pair:
    """The canonical (smaller, larger) key of an unordered account pair."""
    return (a, b) if a < b else (b, a)


@dataclass(frozen=True, slots=True)
class Reason:
    """One piece of evidence linking a pair of accounts."""

    family: str
    kind: str
    label: str
    key: str
    accounts: int
    weight: float
    detail: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "kind": self.kind,
            "entity": {"label": self.label, "key": self.key},
            "accounts": self.accounts,
            "weight": round(self.weight, 4),
            **self.detail,
        }


@dataclass(frozen=True, slots=True)
class Hub:
    """A shared value left out as evidence, and why (``why`` names the rule)."""

    family: str
    label: str
    key: str
    accounts: int
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"family": self.family, "label": self.label, "key": self.key, "accounts": self.accounts, "why": self.why}


def rarity(n: int) -> float:
    """How much a value shared by ``n`` accounts says about any pair of them: 1 for up to four
    sharers, falling as 2/sqrt(n) so a value shared by 50 counts about a quarter."""
    return 1.0 if n <= 4 else 2.0 / math.sqrt(n)


def volume_factor(count_a: int, count_b: int, full: int = 5) -> float:
    """How much two accounts' use of a shared value counts, by the lighter user's volume:
    a one-off use (a stranger on a proxy exit once, a prompt pasted once) counts a fifth of
    sustained use by both."""
    return min(1.0, max(1, min(count_a, count_b)) / full)


def noisy_or(weights: Iterable[float]) -> float:
    """Combine independent evidence: 1 - prod(1 - w)."""
    miss = 1.0
    for w in weights:
        miss *= 1.0 - min(max(w, 0.0), 1.0)
    return 1.0 - miss


class Evidence:
    """Pairwise evidence: per pair, each family's combined score and the strongest reasons.

    Linkers add reasons one at a time (``add``) or, for the big shared-value groups, as NumPy
    columns with a function that builds any row's ``Reason`` on demand (``add_columns``).
    Everything lands in flat columns first; the first read combines them per pair (noisy-OR
    per family) and keeps the pairs whose combined weight reaches ``keep_floor``: at the seed
    scale tens of millions of candidate pairs share one popular prompt or a /24 once and
    nothing else, and could never become a link. Reasons of kept pairs stay references until
    ``reasons(pair)`` asks for them."""

    def __init__(self, max_reasons_per_pair: int = 8, keep_floor: float = 0.0) -> None:
        self.max_reasons = max_reasons_per_pair
        self.keep_floor = keep_floor
        self.hubs: list[Hub] = []
        self.candidate_reasons = 0
        self.candidate_pairs = 0
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._one: tuple[list[int], list[int], list[int], list[float]] = ([], [], [], [])
        self._one_reasons: list[Reason] = []
        self._columns: list[tuple[np.ndarray, np.ndarray, int, np.ndarray, int]] = []
        self._makers: list[Callable[[int], Reason]] = []
        self._row_maps: list[np.ndarray] = []
        self._values: list[tuple[str, Sequence[str], np.ndarray] | None] = []  # per column source
        self._lookups: dict[int, tuple[Sequence[str], np.ndarray]] = {}
        self._pending = False
        self._position: dict[Pair, int] = {}
        self._pairs: list[Pair] = []
        self._pair_a = self._pair_b = np.zeros(0, dtype=np.int64)
        self._miss = np.ones((0, len(FAMILIES)))
        self._ref_offsets = np.zeros(1, dtype=np.int64)
        self._ref_source = np.zeros(0, dtype=np.int32)
        self._ref_row = np.zeros(0, dtype=np.int64)

    # ---- adding ---------------------------------------------------------------------------------------

    def _indices(self, names: Sequence[str]) -> np.ndarray:
        out = np.empty(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            idx = self._index.get(name)
            if idx is None:
                idx = self._index[name] = len(self._names)
                self._names.append(name)
            out[i] = idx
        return out

    def add(self, a: str, b: str, reason: Reason) -> None:
        """Record ``reason`` for the pair (a, b); a self-pair is ignored."""
        if a == b or reason.weight <= 0:
            return
        ia, ib = self._indices([a, b]).tolist()
        self._one[0].append(ia)
        self._one[1].append(ib)
        self._one[2].append(FAMILY_INDEX[reason.family])
        self._one[3].append(min(reason.weight, 1.0))
        self._one_reasons.append(reason)
        self._pending = True

    def add_columns(self, family: str, names: Sequence[str], a: np.ndarray, b: np.ndarray, weights: np.ndarray,
                    reason_of: Callable[[int], Reason],
                    value_of: tuple[str, Sequence[str], np.ndarray] | None = None) -> int:
        """Record one reason per row: accounts ``names[a[i]]`` and ``names[b[i]]`` with weight
        ``weights[i]``; ``reason_of(i)`` builds row i's ``Reason`` when it is read. Rows with
        no weight or a self-pair are dropped. Returns the rows kept.

        ``value_of``: (label, keys, position per row) when each row's reason is the shared
        value ``(label, keys[position[i]])``, so ``value_weights`` can answer which values a
        pair shares without building its reasons."""
        keep = (weights > 0) & (a != b)
        rows = np.flatnonzero(keep)
        if rows.size == 0:
            return 0
        cached = self._lookups.get(id(names))
        if cached is None or cached[0] is not names:  # one table's names serve many calls
            cached = self._lookups[id(names)] = (names, self._indices(names))
        lookup = cached[1]
        self._makers.append(reason_of)
        self._columns.append((lookup[a[rows]].astype(np.int32), lookup[b[rows]].astype(np.int32), FAMILY_INDEX[family],
                              np.minimum(weights[rows].astype(np.float64), 1.0), len(self._makers) - 1))
        self._row_maps.append(rows.astype(np.int32))
        self._values.append(None if value_of is None else (value_of[0], value_of[1], value_of[2][rows].astype(np.int32)))
        self._pending = True
        return int(rows.size)

    def add_group(self, members: Sequence[str], reason_for: Callable[[str, str], Reason | None]) -> int:
        """Add a reason for every pair of ``members`` (the caller caps the group size first).
        Returns the number of pairs that got a reason."""
        ordered = sorted(set(members))
        added = 0
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                reason = reason_for(a, b)
                if reason is not None:
                    self.add(a, b, reason)
                    added += 1
        return added

    def suppress(self, hub: Hub) -> None:
        self.hubs.append(hub)

    # ---- engine seams: the local engine answers None to both (graph/engine) ---------------------

    def defer_shared_values(self, family: str, label: str, table: UseTable, positions: np.ndarray,
                            weights_of: WeightsOf, reason_for: ReasonFactory) -> int | None:
        """Take the pairs of the values at ``positions`` of ``table`` (hubs already left out)
        to make elsewhere, returning how many pairs they give; None: make them here
        (``hubs.link_shared_values`` does, with NumPy)."""
        return None

    def strong_components(self, names: Sequence[str]) -> np.ndarray | None:
        """A component label per account of ``names`` in the strong-link graph of the
        clustering weights, when this evidence's engine computed them; None: the clustering
        computes them itself."""
        return None

    # ---- combining --------------------------------------------------------------------------------------

    def _combine(self) -> None:
        """Fold every recorded reason into per-pair family scores; keep pairs >= keep_floor."""
        if not self._pending:
            return
        one = self._one
        parts_a = [np.asarray(one[0], dtype=np.int64)] + [c[0] for c in self._columns]
        parts_b = [np.asarray(one[1], dtype=np.int64)] + [c[1] for c in self._columns]
        parts_f = [np.asarray(one[2], dtype=np.int8)] + [np.full(c[0].size, c[2], dtype=np.int8) for c in self._columns]
        parts_w = [np.asarray(one[3], dtype=np.float64)] + [c[3] for c in self._columns]
        parts_s = [np.full(len(one[0]), -1, dtype=np.int32)] + [np.full(c[0].size, c[4], dtype=np.int32) for c in self._columns]
        parts_r = [np.arange(len(one[0]), dtype=np.int32)] + [np.arange(c[0].size, dtype=np.int32) for c in self._columns]
        a, b = np.concatenate(parts_a).astype(np.int64, copy=False), np.concatenate(parts_b).astype(np.int64, copy=False)
        fam, w = np.concatenate(parts_f), np.concatenate(parts_w)
        src, row = np.concatenate(parts_s), np.concatenate(parts_r)
        del parts_a, parts_b, parts_f, parts_w, parts_s, parts_r
        names = np.asarray(self._names, dtype=object)
        rank = np.empty(len(names), dtype=np.int64)
        rank[np.argsort(names, kind="stable")] = np.arange(len(names))
        swap = rank[a] > rank[b]
        a[swap], b[swap] = b[swap], a[swap]
        code = rank[a] * max(1, len(names)) + rank[b]
        del rank, swap
        order = np.lexsort((-w, code))  # by pair, strongest reason first
        # one column at a time: tens of millions of rows at the seed scale, and reordering them
        # all in one statement would hold every column twice at the memory peak of the run
        code = code[order]
        fam = fam[order]
        w = w[order]
        src = src[order]
        row = row[order]
        self.candidate_reasons = int(code.size)
        new_pair = np.r_[True, code[1:] != code[:-1]] if code.size else np.zeros(0, dtype=bool)
        pair_start = np.flatnonzero(new_pair)
        pair_of_row = np.cumsum(new_pair) - 1
        del code, new_pair
        self.candidate_pairs = int(pair_start.size)
        kept, self._miss = self._kept_misses(pair_start, pair_of_row, fam, w)
        del fam, w
        kept_mask = np.zeros(pair_start.size, dtype=bool)
        kept_mask[kept] = True
        # references to each kept pair's strongest max_reasons reasons
        within = np.arange(pair_of_row.size) - pair_start[pair_of_row]
        take = np.flatnonzero(kept_mask[pair_of_row] & (within < self.max_reasons))
        self._ref_source, self._ref_row = src[take], row[take].astype(np.int64)
        per_pair = np.bincount(pair_of_row[take], minlength=pair_start.size)[kept]
        self._ref_offsets = np.r_[0, np.cumsum(per_pair)].astype(np.int64)
        starts = order[pair_start[kept]]  # a and b stay in recorded order
        del order
        self._pair_a, self._pair_b = a[starts], b[starts]
        self._pairs = [(self._names[x], self._names[y]) for x, y in zip(self._pair_a.tolist(), self._pair_b.tolist(), strict=True)]
        self._position = {p: i for i, p in enumerate(self._pairs)}
        self._pending = False

    def _kept_misses(self, pair_start: np.ndarray, pair_of_row: np.ndarray, fam: np.ndarray,
                     w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pairs whose combined weight reaches ``keep_floor`` and their family misses, from
        reasons sorted by pair (``pair_start``, ``pair_of_row``), strongest first.

        A family's miss is the product of its reasons' ``1 - w`` in that order. A first pass
        multiplies each pair's reasons regardless of family, a different rounding of the same
        product, and leaves out the pairs clearly under the floor (most of them, at the seed
        scale); only the others get the exact per-family misses, so the (pairs x families)
        matrix is built for the kept pairs and not for every candidate."""
        if pair_start.size == 0:
            return np.zeros(0, dtype=np.int64), np.ones((0, len(FAMILIES)))
        approx = 1.0 - np.multiply.reduceat(1.0 - w, pair_start)
        maybe = np.flatnonzero(approx >= self.keep_floor - 1e-9)
        del approx
        slot = np.full(pair_start.size, -1, dtype=np.int64)
        slot[maybe] = np.arange(maybe.size)
        rows = np.flatnonzero(slot[pair_of_row] >= 0)
        miss = np.ones((maybe.size, len(FAMILIES)))
        np.multiply.at(miss, (slot[pair_of_row[rows]], fam[rows].astype(np.int64)), 1.0 - w[rows])
        del rows, slot
        weight = 1.0 - miss.prod(axis=1)
        exact = (weight > 0) & (weight >= self.keep_floor)
        return maybe[exact], miss[exact]

    def _ref_family(self, source: int, row: int) -> int:
        """The family index of a reference, without building its reason."""
        return self._one[2][row] if source < 0 else self._columns[source][2]

    def _ref_position(self, source: int, row: int) -> tuple[int, int] | None:
        """A reference's shared value as (column source, position in its keys), without
        building its reason, where its linker recorded it (``add_columns(value_of=...)``);
        else None."""
        if source < 0 or self._values[source] is None:
            return None
        return source, int(self._values[source][2][row])  # type: ignore[index]

    def _value_at(self, source: int, position: int) -> tuple[str, str]:
        label, keys, _positions = self._values[source]  # type: ignore[misc]
        return label, keys[position]

    def _reason_at(self, source: int, row: int) -> Reason:
        if source < 0:
            return self._one_reasons[row]
        return self._makers[source](int(self._row_maps[source][row]))

    # ---- reading ---------------------------------------------------------------------------------------

    def __len__(self) -> int:
        self._combine()
        return len(self._pairs)

    def pairs(self) -> list[Pair]:
        """Every kept pair, sorted."""
        self._combine()
        return list(self._pairs)  # combined in (rank a, rank b) order: already sorted

    def pair_indices(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """``pairs()`` as indices: every account named (in the order first recorded) and, per
        kept pair, the indices of its two accounts (``pairs()[k] == (names[a[k]], names[b[k]])``):
        a per-account lookup over millions of pairs is then one array index each."""
        self._combine()
        if self._pair_a.size == len(self._pairs):
            return list(self._names), self._pair_a.copy(), self._pair_b.copy()
        # combined elsewhere (graph/engine/spark.py), which hands back the pairs by name only
        index: dict[str, int] = {}
        a = np.fromiter((index.setdefault(x, len(index)) for x, _ in self._pairs), dtype=np.int64, count=len(self._pairs))
        b = np.fromiter((index.setdefault(y, len(index)) for _, y in self._pairs), dtype=np.int64, count=len(self._pairs))
        return list(index), a, b

    def misses(self) -> np.ndarray:
        """``misses_of(self.pairs())``, without looking each pair up."""
        self._combine()
        return self._miss.copy()

    def misses_of(self, pairs: Sequence[Pair]) -> np.ndarray:
        """Per family, 1 - the family's score, for each of ``pairs``: rows of a matrix with
        columns in ``FAMILIES`` order (ones for a pair without evidence)."""
        self._combine()
        out = np.ones((len(pairs), len(FAMILIES)))
        index = np.asarray([self._position.get(p, -1) for p in pairs], dtype=np.int64)
        known = index >= 0
        if known.any():
            out[known] = self._miss[index[known]]
        return out

    def scores_of(self, pairs: Sequence[Pair]) -> np.ndarray:
        """Family scores of ``pairs`` (see ``misses_of``)."""
        return 1.0 - self.misses_of(pairs)

    def weights_of(self, pairs: Sequence[Pair], exclude: frozenset[str] = frozenset()) -> np.ndarray:
        """The combined weight of each of ``pairs`` without the ``exclude``d families."""
        columns = [f for f, name in enumerate(FAMILIES) if name not in exclude]
        return 1.0 - self.misses_of(pairs)[:, columns].prod(axis=1)

    def family_scores(self, pair: Pair) -> dict[str, float]:
        self._combine()
        i = self._position.get(pair)
        if i is None:
            return {}
        return {FAMILIES[f]: 1.0 - float(m) for f, m in sorted(enumerate(self._miss[i]), key=lambda t: FAMILIES[t[0]])
                if m < 1.0}

    def weight(self, pair: Pair, exclude: frozenset[str] = frozenset()) -> float:
        """The pair's combined weight, optionally without some families (for stability)."""
        self._combine()
        i = self._position.get(pair)
        if i is None:
            return 0.0
        miss = 1.0
        for f, m in enumerate(self._miss[i].tolist()):
            if FAMILIES[f] not in exclude:
                miss *= m
        return 1.0 - miss

    def weights(self, exclude: frozenset[str] = frozenset(), minimum: float = 0.0) -> dict[Pair, float]:
        """Every pair's weight (without ``exclude``d families) that is at least ``minimum``."""
        self._combine()
        columns = [f for f, name in enumerate(FAMILIES) if name not in exclude]
        totals = 1.0 - self._miss[:, columns].prod(axis=1) if self._pairs else np.zeros(0)
        out = {}
        for i, w in enumerate(totals.tolist()):  # pairs are sorted, so is the result
            if w > 0 and w >= minimum:
                out[self._pairs[i]] = w
        return out

    def families(self, pair: Pair, minimum: float = 0.0) -> list[str]:
        return [f for f, s in self.family_scores(pair).items() if s > minimum]

    def reasons(self, pair: Pair, family: str | None = None) -> list[Reason]:
        """The pair's kept reasons, strongest first; ``family``: only that family's, without
        building the others (separation asks for the network reasons of every pair)."""
        self._combine()
        i = self._position.get(pair)
        if i is None:
            return []
        lo, hi = int(self._ref_offsets[i]), int(self._ref_offsets[i + 1])
        refs = zip(self._ref_source[lo:hi].tolist(), self._ref_row[lo:hi].tolist(), strict=True)
        if family is not None:
            wanted = FAMILY_INDEX[family]
            refs = ((s, r) for s, r in refs if self._ref_family(s, r) == wanted)  # type: ignore[assignment]
        kept = [self._reason_at(int(s), int(r)) for s, r in refs]
        kept.sort(key=lambda r: (-r.weight, r.family, r.kind, r.key))
        return kept[: self.max_reasons]

    def value_weights(self, pairs: Sequence[Pair], family: str) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]], np.ndarray]:
        """The shared values behind the kept ``family`` reasons of each of ``pairs``, as
        aligned columns: the row in ``pairs``, the value (an index into the list of distinct
        values (label, key) returned third) and the reason's weight, each pair's strongest
        first. The values ``reasons(pair, family)`` names, read from the columns where the
        linker recorded them: separation asks this of millions of pairs inside the biggest
        clusters, and building each reason (its detail, its users' times) would cost most of
        the run.

        >>> ev = Evidence()
        >>> ev.add("a", "b", Reason("network", "shared_ip", "IP", "10.0.0.1", 2, 0.4))
        >>> ev.value_weights([("a", "b"), ("a", "c")], "network")
        (array([0]), array([0]), [('IP', '10.0.0.1')], array([0.4]))
        """
        self._combine()
        index = np.fromiter((self._position.get(p, -1) for p in pairs), dtype=np.int64, count=len(pairs))
        rows = np.flatnonzero(index >= 0)
        lo, hi = self._ref_offsets[index[rows]], self._ref_offsets[index[rows] + 1]
        counts = hi - lo
        owner = np.repeat(rows, counts)
        refs = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        source, row = self._ref_source[refs].astype(np.int64), self._ref_row[refs].astype(np.int64)
        mine = self._ref_families(source, row) == FAMILY_INDEX[family]
        owner, source, row = owner[mine], source[mine], row[mine]
        weights = np.empty(owner.size)
        codes = np.empty(owner.size, dtype=np.int64)
        distinct: dict[tuple[str, str], int] = {}
        for s in np.unique(source).tolist():
            at = np.flatnonzero(source == s)
            columns = self._value_columns(s)
            if columns is None:  # no value columns: build each reason
                for k in at.tolist():
                    reason = self._reason_at(s, int(row[k]))
                    weights[k] = reason.weight
                    codes[k] = distinct.setdefault((reason.label, reason.key), len(distinct))
                continue
            label, keys, positions = columns
            weights[at] = self._columns[s][3][row[at]]
            used, back = np.unique(positions[row[at]], return_inverse=True)
            code_of = np.fromiter((distinct.setdefault((label, keys[q]), len(distinct)) for q in used.tolist()),
                                  dtype=np.int64, count=used.size)
            codes[at] = code_of[back]
        order = np.lexsort((-weights, owner))  # stable: references are kept strongest first already
        owner, codes, weights = owner[order], codes[order], weights[order]
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]) if owner.size else np.zeros(0, dtype=np.int64)
        rank = np.arange(owner.size) - np.repeat(starts, np.diff(np.r_[starts, owner.size]))
        top = rank < self.max_reasons
        owner, codes, weights = owner[top], codes[top], weights[top]
        # number the values in the order they are first named, as reading pair by pair would
        values = list(distinct)
        used, first = np.unique(codes, return_index=True)
        renumber = np.zeros(len(values), dtype=np.int64)
        renumber[used[np.argsort(first)]] = np.arange(used.size)
        named = [values[c] for c in used[np.argsort(first)].tolist()]
        return owner, renumber[codes], named, weights.astype(np.float64)

    def _value_columns(self, source: int) -> tuple[str, Sequence[str], np.ndarray] | None:
        """The value columns (label, keys, each row's position in keys) the linker recorded
        for column ``source``; None for single reasons and columns recorded without them."""
        return None if source < 0 else self._values[source]

    def _ref_families(self, source: np.ndarray, row: np.ndarray) -> np.ndarray:
        """The family index of each reference (column source, row), without building reasons."""
        per_column = np.asarray([c[2] for c in self._columns] or [0], dtype=np.int64)
        one = np.asarray(self._one[2] or [0], dtype=np.int64)
        single = source < 0
        return np.where(single, one[np.where(single, row, 0)], per_column[np.where(single, 0, source)])
