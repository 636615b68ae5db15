"""A cluster's figures from its members: the one computation detection and the analyst's merges
and splits share.

A cluster's row (size, exchanges, tokens, first/last seen, score, indicators, flag, capability
profile, stability, families, bridges, suggested operator) is a function of its members and a
``FigureContext``: what the members did (their ``scoring.AccountProfile``), the benign baseline
and the template popularity they are compared with, the flag threshold, the known and learned
operator indicators, and the pair evidence between accounts (``PairTable``: each linked pair's
per-family misses). Detection builds the context from the whole store and staging; a merge or
split reads the one the last detection run saved (graph/saved_context.py), so a re-run of
detection over the same membership writes exactly the figures the analyst's action wrote.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graph import attribution, clustering, scoring
from graph.linkage import FAMILIES, Evidence, Pair

FAMILY_MIN = 0.1  # a family counts as holding a pair together from this score up
ANALYST_STATUS_DEFAULT = "open"
# Each stability rebuild asks whether a cluster holds together without one family, not for the
# best partition of what is left: one Leiden iteration answers that (a second one only
# refines the pieces of a cluster that falls apart) at half the cost, six rebuilds per cluster.
STABILITY_ITERATIONS = 1


@dataclass
class ClusterOut:
    cluster_id: str
    members: list[str]
    score: scoring.ClusterScore
    flagged: bool
    bridges: set[str]
    families: list[str]
    stability: dict[str, Any]
    suggestion: attribution.Suggestion | None


@dataclass
class FigureContext:
    """Everything a cluster's figures depend on besides its members and their pairs."""

    profiles: Mapping[str, scoring.AccountProfile]
    baseline: scoring.Baseline
    template_users: np.ndarray | Mapping[Any, int]
    threshold: float
    indicators: Sequence[attribution.Indicator]
    usage: attribution.AccountsUsing
    prior: Mapping[str, tuple[str, float, frozenset[str]]] = field(default_factory=dict)


class PairTable:
    """Linked account pairs as columns: ``names`` sorted, ``a[k] < b[k]`` indices into it,
    rows in (a, b) order (the order ``Evidence.pairs`` gives), ``misses[k]`` one minus each
    family's score (columns in ``FAMILIES`` order)."""

    def __init__(self, names: Sequence[str], a: np.ndarray, b: np.ndarray, misses: np.ndarray) -> None:
        self.names = list(names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.a, self.b, self.misses = a, b, misses
        self._weights: np.ndarray | None = None

    @classmethod
    def from_evidence(cls, evidence: Evidence, accounts: Iterable[str] | None = None) -> PairTable:
        """The pairs of ``evidence`` whose two accounts are both among ``accounts`` (default:
        every linked account), indexed into ``accounts`` sorted."""
        pairs = evidence.pairs()
        names = sorted(set(accounts) if accounts is not None else {x for p in pairs for x in p})
        index = {name: i for i, name in enumerate(names)}
        rows: list[int] = []
        a: list[int] = []
        b: list[int] = []
        for k, (x, y) in enumerate(pairs):
            ix = index.get(x)
            if ix is None:
                continue
            iy = index.get(y)
            if iy is None:
                continue
            rows.append(k)
            a.append(ix)
            b.append(iy)
        misses = evidence.misses()[np.asarray(rows, dtype=np.int64)] if rows else np.ones((0, len(FAMILIES)))
        return cls(names, np.asarray(a, dtype=np.int32), np.asarray(b, dtype=np.int32), misses)

    def _mask(self, accounts: Iterable[str]) -> np.ndarray:
        inside = np.zeros(len(self.names), dtype=bool)
        inside[[self.index[a] for a in accounts if a in self.index]] = True
        return inside

    def within(self, members: Iterable[str]) -> tuple[list[Pair], np.ndarray]:
        """The pairs with both accounts among ``members`` (sorted) and their misses."""
        inside = self._mask(members)
        rows = np.flatnonzero(inside[self.a] & inside[self.b])
        pairs = [(self.names[x], self.names[y]) for x, y in zip(self.a[rows].tolist(), self.b[rows].tolist(), strict=True)]
        return pairs, self.misses[rows]

    def strong_across(self, members: Iterable[str]) -> list[Pair]:
        """Pairs with exactly one account among ``members`` and a weight of at least
        ``clustering.STRONG`` (the member first)."""
        inside = self._mask(members)
        if self._weights is None:
            self._weights = 1.0 - self.misses.prod(axis=1)
        rows = np.flatnonzero((inside[self.a] != inside[self.b]) & (self._weights >= clustering.STRONG))
        out = []
        for x, y in zip(self.a[rows].tolist(), self.b[rows].tolist(), strict=True):
            out.append((self.names[x], self.names[y]) if inside[x] else (self.names[y], self.names[x]))
        return out


def stability(members: Sequence[str], pairs: Sequence[Pair], misses: np.ndarray) -> dict[str, Any]:
    """For each signal family present, the Jaccard between the cluster and the best cluster
    rebuilt from its own members' links without that family (1: the family is not needed).
    ``pairs`` are the cluster's internal pairs (sorted) and ``misses`` their misses."""
    present = sorted(FAMILIES[f] for f in np.flatnonzero((misses < 1.0).any(axis=0)).tolist()) if len(pairs) else []
    index = {name: i for i, name in enumerate(sorted(members))}
    a = np.fromiter((index[p[0]] for p in pairs), dtype=np.int64, count=len(pairs))
    b = np.fromiter((index[p[1]] for p in pairs), dtype=np.int64, count=len(pairs))
    out: dict[str, Any] = {}
    for family in present:
        without = 1.0 - np.delete(misses, FAMILIES.index(family), axis=1).prod(axis=1)
        rebuilt = clustering.cluster_indexed(len(index), a, b, without, iterations=STABILITY_ITERATIONS)
        # every rebuilt cluster lies inside the members, so its Jaccard with them is its share
        out[family] = round(max((len(c) / len(index) for c in rebuilt), default=0.0), 4)
    if present:
        weakest = min(present, key=lambda f: (out[f], f))
        out["min"], out["weakest"] = out[weakest], weakest
    return out


def figures_of(cluster_id: str, members: Sequence[str], pairs: Sequence[Pair], misses: np.ndarray, bridges: set[str],
               ctx: FigureContext, clock: dict[str, float] | None = None) -> ClusterOut:
    """Score one cluster, measure its stability (flagged clusters only) and suggest an operator.
    ``pairs``/``misses``: its internal pairs, sorted; ``bridges``: its members with strong
    links into another cluster; ``clock`` (if given) adds the seconds stability took under
    ``"stability"``."""
    scores = 1.0 - misses
    timed = np.flatnonzero(scores[:, FAMILIES.index("timing")] > 0).tolist() if len(pairs) else []
    lockstep = {a for i in timed for a in pairs[i]}
    families = sorted(FAMILIES[f] for f in np.flatnonzero((scores > FAMILY_MIN).any(axis=0)).tolist()) if len(pairs) else []
    score = scoring.score_cluster(members, ctx.profiles, ctx.baseline, ctx.template_users, len(lockstep), families)
    flagged = score.score >= ctx.threshold
    started = time.perf_counter()
    stab = stability(members, pairs, misses) if flagged else {}
    if clock is not None:
        clock["stability"] = clock.get("stability", 0.0) + time.perf_counter() - started
    suggestion = attribution.suggest(members, ctx.usage, ctx.indicators, ctx.prior)
    return ClusterOut(cluster_id, list(members), score, flagged, bridges & set(members), families, stab, suggestion)


def cluster_row(c: ClusterOut, detected_at: str, is_new: bool) -> dict[str, Any]:
    """The Cluster node's properties detection owns (analyst properties are never here)."""
    row: dict[str, Any] = {
        "cluster_id": c.cluster_id,
        "score": c.score.score,
        "flagged": c.flagged,
        "size": len(c.members),
        "exchanges": c.score.exchanges,
        "input_tokens": c.score.input_tokens,
        "output_tokens": c.score.output_tokens,
        "first_seen": c.score.first_seen,
        "last_seen": c.score.last_seen,
        "indicators": json.dumps(c.score.indicators),
        "capability_profile": json.dumps(c.score.capability_profile, sort_keys=True),
        "stability": json.dumps(c.stability, sort_keys=True),
        "suggested_operator": c.suggestion.operator_id if c.suggestion else "",
        "suggestion_confidence": c.suggestion.confidence if c.suggestion else 0.0,
        "bridges": len(c.bridges),
        "families": c.families,
        "detected_at": detected_at,
        "retired": False,
        "superseded_by": "",
    }
    if is_new:
        row["status"] = ANALYST_STATUS_DEFAULT
    return row


def empty_row(cluster_id: str) -> dict[str, Any]:
    """The figures of a cluster left without members (merged into another): nothing, so no
    stale size, volume or flag outlives its accounts."""
    return {
        "cluster_id": cluster_id, "score": 0.0, "flagged": False, "size": 0, "exchanges": 0, "input_tokens": 0,
        "output_tokens": 0, "first_seen": "", "last_seen": "", "indicators": "[]", "capability_profile": "{}",
        "stability": "{}", "suggested_operator": "", "suggestion_confidence": 0.0, "bridges": 0, "families": [],
    }


def ties(pairs: Sequence[Pair], misses: np.ndarray, side: Iterable[str]) -> dict[str, Any]:
    """How strongly the pairs crossing between ``side`` and the other accounts of ``pairs`` tie
    them: ``strong_pairs`` (weight >= clustering.STRONG), ``max_weight`` and each family's
    strongest score (``families``). A split records this so a later detection run can tell new
    evidence from what the analyst already saw."""
    chosen = set(side)
    rows = [k for k, (x, y) in enumerate(pairs) if (x in chosen) != (y in chosen)]
    if not rows:
        return {"strong_pairs": 0, "max_weight": 0.0, "families": {}}
    cross = misses[np.asarray(rows, dtype=np.int64)]
    weights = 1.0 - cross.prod(axis=1)
    best = (1.0 - cross).max(axis=0)
    return {
        "strong_pairs": int((weights >= clustering.STRONG).sum()),
        "max_weight": round(float(weights.max()), 4),
        "families": {FAMILIES[f]: round(float(s), 4) for f, s in enumerate(best.tolist()) if s > 0},
    }
