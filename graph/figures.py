"""A cluster's figures from its members: the one computation detection and the analyst's merges
and splits share.

A cluster's row (size, exchanges, tokens, first/last seen, score, indicators, flag, capability
profile, stability, families, bridges, suggested operator) is a function of its members and a
``FigureContext``: what the members did (their ``scoring.AccountProfile``), the benign baseline
and the template popularity they are compared with, the flag threshold, the known and learned
operator indicators, the accounts' behaviour-change onsets (a takeover campaign among the
members is scored on its post-onset activity and marks them compromised: graph/takeover.py),
and the pair evidence between accounts (``PairTable``: each linked pair's per-family misses).
What clusters share of a provider's infrastructure (``SHARES_INFRASTRUCTURE``,
graph/separation.py) is a function of who is in which cluster and ``ProviderPairs``: each pair's
provider evidence. Detection builds the context from the whole store and staging; a merge or
split reads the one the last detection run saved (graph/saved_context.py), so a re-run of
detection over the same membership writes exactly the figures the analyst's action wrote.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graph import attribution, clustering, scoring, separation, takeover
from graph.linkage import FAMILIES, Evidence, Facts, Pair
from graph.linkage.evidence import noisy_or

FAMILY_MIN = 0.1  # a family counts as holding a pair together from this score up
ANALYST_STATUS_DEFAULT = "open"
# Each stability rebuild asks whether a cluster holds together without one family, not for the
# best partition of what is left: one Leiden iteration answers that (a second one only
# refines the pieces of a cluster that falls apart) at half the cost, six rebuilds per cluster.
STABILITY_ITERATIONS = 1
PARALLEL_PAIRS = clustering.PARALLEL_LINKS  # internal pairs from which a cluster's rebuilds run side by side


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
    compromised: dict[str, str] = field(default_factory=dict)  # member -> takeover onset (ISO)


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
    onsets: Mapping[str, takeover.Onset] = field(default_factory=dict)


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
        """Pairs with exactly one account among ``members`` and a clustering weight (prompt-only
        pairs count 0: ``clustering_weights``) of at least ``clustering.STRONG``, the member
        first: the links that make a member a bridge, as detection finds them."""
        inside = self._mask(members)
        if self._weights is None:
            self._weights = clustering_weights(self.misses)
        rows = np.flatnonzero((inside[self.a] != inside[self.b]) & (self._weights >= clustering.STRONG))
        out = []
        for x, y in zip(self.a[rows].tolist(), self.b[rows].tolist(), strict=True):
            out.append((self.names[x], self.names[y]) if inside[x] else (self.names[y], self.names[x]))
        return out


def clustering_weights(misses: np.ndarray) -> np.ndarray:
    """Each pair's weight as clustering sees it (graph/separation.py ``clustering_weights``):
    its combined weight, 0 for a pair that shares prompts and nothing else."""
    weights = 1.0 - misses.prod(axis=1)
    weights[separation.prompt_only(misses)] = 0.0
    return weights


class ProviderPairs:
    """Linked pairs whose accounts share provider infrastructure (graph/separation.py
    ``is_provider_value``): ``names`` sorted, ``a[k] < b[k]`` indices into it, ``weight[k]`` the
    combined weight of the shared provider values, ``codes[offsets[k]:offsets[k+1]]`` indices
    into ``values`` ((label, key) of each value). Who is in which cluster then gives the
    ``SHARES_INFRASTRUCTURE`` rows (``relations``), in detection and after a merge or split.

    Detection collects them (``Collector``) from the pairs across clusters, every one, as
    graph/separation.py ``infrastructure_relations`` reads them, and from the pairs inside a
    cluster whose reasons it reads anyway to write their LINKED edge. Reading the reasons of
    every pair inside the clusters would cost more than all the rest of detection at scale, so
    after a split the relation between its two sides counts the pairs that had a LINKED edge
    (every pair of a cluster of up to ``links_per_account`` + 1 accounts, the strongest ones of a
    larger cluster); every relation to a third cluster, and everything after a merge, is exact."""

    def __init__(self, names: Sequence[str], a: np.ndarray, b: np.ndarray, weight: np.ndarray,
                 values: Sequence[tuple[str, str]], codes: np.ndarray, offsets: np.ndarray) -> None:
        self.names = list(names)
        self.a, self.b, self.weight = a, b, weight
        self.values = [(str(label), str(key)) for label, key in values]
        self.codes, self.offsets = codes, offsets

    class Collector:
        """Builds ``ProviderPairs`` over ``accounts`` from pairs and their reasons."""

        def __init__(self, facts: Facts, accounts: Iterable[str]) -> None:
            self.facts = facts
            self.names = sorted(set(accounts))
            self.index = {name: i for i, name in enumerate(self.names)}
            self.provider: dict[tuple[str, str], bool] = {}
            self.values: dict[tuple[str, str], int] = {}
            self.seen: set[Pair] = set()
            self.a: list[int] = []
            self.b: list[int] = []
            self.weight: list[float] = []
            self.codes: list[int] = []
            self.offsets = [0]

        def _is_provider(self, label: str, key: str) -> bool:
            known = self.provider.get((label, key))
            if known is None:
                known = self.provider[(label, key)] = separation.is_provider_value(self.facts, label, key)
            return known

        def add(self, pair: Pair, reasons: Sequence[Any]) -> None:
            """One pair (sorted) and its reasons (``Evidence.reasons``): kept when both accounts
            are among the collector's and some network reason is a provider value."""
            if pair in self.seen:
                return
            self.seen.add(pair)
            x, y = self.index.get(pair[0]), self.index.get(pair[1])
            if x is None or y is None:
                return
            shared = [r for r in reasons if r.family == "network" and self._is_provider(r.label, r.key)]
            if not shared:
                return
            self.a.append(x)
            self.b.append(y)
            self.weight.append(noisy_or(r.weight for r in shared))
            self.codes += [self.values.setdefault((r.label, r.key), len(self.values)) for r in shared]
            self.offsets.append(len(self.codes))

        def add_network_pairs(self, evidence: Evidence, owner: Mapping[str, str] | None = None) -> None:
            """Every pair of ``evidence`` with network evidence not added yet; with ``owner``
            (account -> cluster id), only those across two clusters."""
            pairs = evidence.pairs()
            if not pairs:
                return
            for i in np.flatnonzero(evidence.misses()[:, separation.NETWORK] < 1.0).tolist():
                x, y = pairs[i]
                if owner is not None and ((cx := owner.get(x)) is None or (cy := owner.get(y)) is None or cx == cy):
                    continue
                if pairs[i] not in self.seen and x in self.index and y in self.index:
                    self.add(pairs[i], evidence.reasons(pairs[i]))

        def done(self) -> ProviderPairs:
            return ProviderPairs(self.names, np.asarray(self.a, dtype=np.int32), np.asarray(self.b, dtype=np.int32),
                                 np.asarray(self.weight, dtype=np.float64), list(self.values),
                                 np.asarray(self.codes, dtype=np.int64), np.asarray(self.offsets, dtype=np.int64))

    @classmethod
    def from_evidence(cls, evidence: Evidence, facts: Facts, accounts: Iterable[str]) -> ProviderPairs:
        """The provider evidence of every pair of ``evidence`` between two of ``accounts``
        (the whole of it: for a figure context rebuilt from the store)."""
        collector = cls.Collector(facts, accounts)
        collector.add_network_pairs(evidence)
        return collector.done()

    def partners(self, members: Iterable[str]) -> set[str]:
        """The accounts not among ``members`` that share provider values with one of them."""
        inside = np.zeros(len(self.names), dtype=bool)
        index = {name: i for i, name in enumerate(self.names)}
        inside[[index[m] for m in members if m in index]] = True
        rows = np.flatnonzero(inside[self.a] != inside[self.b])
        return {self.names[x] for x in np.r_[self.a[rows], self.b[rows]].tolist() if not inside[x]}

    def relations(self, owner: Mapping[str, str], touching: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The ``SHARES_INFRASTRUCTURE`` rows (start id < end) between the clusters of
        ``owner`` (account -> cluster id), as graph/separation.py ``infrastructure_relations``
        makes them; with ``touching``, only those with an end among those cluster ids."""
        wanted = None if touching is None else set(touching)
        found: dict[tuple[str, str], separation.Relation] = {}
        for k, (x, y) in enumerate(zip(self.a.tolist(), self.b.tolist(), strict=True)):
            a, b = self.names[x], self.names[y]
            ca, cb = owner.get(a), owner.get(b)
            if ca is None or cb is None or ca == cb or (wanted is not None and ca not in wanted and cb not in wanted):
                continue
            key = (ca, cb) if ca < cb else (cb, ca)
            rel = found.setdefault(key, separation.Relation(*key))
            rel.weight = max(rel.weight, float(self.weight[k]))
            rel.accounts.update((a, b))
            for code in self.codes[self.offsets[k] : self.offsets[k + 1]].tolist():
                rel.values.setdefault(self.values[code], set()).update((a, b))
        return [found[k].row() for k in sorted(found)]


def rebuilt_share(size: int, a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> float:
    """The share of ``size`` members in the largest cluster rebuilt from their links ``a-b``
    with ``weights`` (``clustering.cluster_indexed``, one Leiden iteration): every rebuilt
    cluster lies inside the members, so this is its Jaccard with them.

    >>> rebuilt_share(3, np.array([0, 1]), np.array([1, 2]), np.array([0.9, 0.9]))
    1.0
    >>> rebuilt_share(4, np.array([0]), np.array([1]), np.array([0.9]))
    0.5
    """
    rebuilt = clustering.cluster_indexed(size, a, b, weights, iterations=STABILITY_ITERATIONS)
    return round(max((len(c) / size for c in rebuilt), default=0.0), 4)


def stability(members: Sequence[str], pairs: Sequence[Pair], misses: np.ndarray, pool: Executor | None = None) -> dict[str, Any]:
    """For each signal family present, the Jaccard between the cluster and the best cluster
    rebuilt from its own members' links without that family (1: the family is not needed).
    ``pairs`` are the cluster's internal pairs (sorted) and ``misses`` their misses. With a
    ``pool`` (``clustering.worker_pool``), a cluster of ``PARALLEL_PAIRS`` pairs or more rebuilds its
    families side by side in it: the same answers, in a fraction of the time on a big
    cluster (the seed world's 11,000-member farms spent two minutes here)."""
    present = sorted(FAMILIES[f] for f in np.flatnonzero((misses < 1.0).any(axis=0)).tolist()) if len(pairs) else []
    index = {name: i for i, name in enumerate(sorted(members))}
    a = np.fromiter((index[p[0]] for p in pairs), dtype=np.int64, count=len(pairs))
    b = np.fromiter((index[p[1]] for p in pairs), dtype=np.int64, count=len(pairs))

    def without(family: str) -> np.ndarray:
        return 1.0 - np.delete(misses, FAMILIES.index(family), axis=1).prod(axis=1)

    out: dict[str, Any]
    if pool is not None and len(pairs) >= PARALLEL_PAIRS and len(present) > 1:
        futures = {f: pool.submit(rebuilt_share, len(index), a, b, without(f)) for f in present}
        out = {f: future.result() for f, future in futures.items()}
    else:
        out = {f: rebuilt_share(len(index), a, b, without(f)) for f in present}
    if present:
        weakest = min(present, key=lambda f: (out[f], f))
        out["min"], out["weakest"] = out[weakest], weakest
    return out


def figures_of(cluster_id: str, members: Sequence[str], pairs: Sequence[Pair], misses: np.ndarray, bridges: set[str],
               ctx: FigureContext, clock: dict[str, float] | None = None, pool: Executor | None = None) -> ClusterOut:
    """Score one cluster, measure its stability (flagged clusters only) and suggest an operator.
    A takeover campaign among the members (graph/takeover.py) is scored on its post-onset
    activity and adds ``synchronised_takeover``. ``pairs``/``misses``: its internal pairs,
    sorted; ``bridges``: its members with strong links into another cluster; ``clock`` (if
    given) adds the seconds stability took under ``"stability"``; ``pool``: see ``stability``."""
    scores = 1.0 - misses
    timed = np.flatnonzero(scores[:, FAMILIES.index("timing")] > 0).tolist() if len(pairs) else []
    lockstep = {a for i in timed for a in pairs[i]}
    families = sorted(FAMILIES[f] for f in np.flatnonzero((scores > FAMILY_MIN).any(axis=0)).tolist()) if len(pairs) else []
    changed = takeover.campaign(members, ctx.onsets)
    profiles = takeover.post_onset_profiles(ctx.profiles, ctx.onsets, members, changed) if changed else ctx.profiles
    score = scoring.score_cluster(members, profiles, ctx.baseline, ctx.template_users, len(lockstep), families)
    if changed:
        score = takeover.with_takeover(score, len(changed), len(members))
    flagged = score.score >= ctx.threshold
    started = time.perf_counter()
    stab = stability(members, pairs, misses, pool) if flagged else {}
    if clock is not None:
        clock["stability"] = clock.get("stability", 0.0) + time.perf_counter() - started
    suggestion = attribution.suggest(members, ctx.usage, ctx.indicators, ctx.prior)
    return ClusterOut(cluster_id, list(members), score, flagged, bridges & set(members), families, stab, suggestion,
                      {a: ctx.onsets[a].iso for a in changed})


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
        "takeover_onset": min(c.compromised.values(), default=""),
        "compromised_members": len(c.compromised),
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
        "takeover_onset": "", "compromised_members": 0,
    }


def member_rows(c: ClusterOut) -> list[dict[str, Any]]:
    """The MEMBER_OF rows of a cluster: bridge flag, and whether the member is in its
    takeover campaign with its onset."""
    return [{"start": a, "end": c.cluster_id, "bridge": a in c.bridges, "compromised": a in c.compromised,
             "onset": c.compromised.get(a, "")} for a in c.members]


def ties(pairs: Sequence[Pair], misses: np.ndarray, side: Iterable[str]) -> dict[str, Any]:
    """How strongly the pairs crossing between ``side`` and the other accounts of ``pairs`` tie
    them: ``strong_pairs`` (weight >= clustering.STRONG), ``max_weight`` and each family's
    strongest score (``families``); pairs that share prompts and nothing else tie nothing, as
    in clustering. A split records this so a later detection run can tell new
    evidence from what the analyst already saw."""
    chosen = set(side)
    shared_prompts_only = separation.prompt_only(misses)
    rows = [k for k, (x, y) in enumerate(pairs) if (x in chosen) != (y in chosen) and not shared_prompts_only[k]]
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
