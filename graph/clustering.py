"""Clusters of accounts from the weighted link graph.

Two stages. Connected components over *strong* links (weight >= ``STRONG``) give candidate
groups: a weak link alone never joins two groups. Inside each candidate group, Leiden with the
Constant Potts Model (``leidenalg.CPMVertexPartition``) over all links splits groups that were
joined through a few bridges: CPM keeps a set of accounts together only while their internal
link density beats ``RESOLUTION`` (scaled down for groups above ``RESOLUTION_REFERENCE``
accounts, see ``scaled_resolution``), so two dense groups joined by a handful of links
separate, and a loosely attached account does not join a big group. Accounts with strong links into a
cluster other than their own are *bridges*, flagged on their membership. Given the signal
families of each link, the odd member held by a single family in a cluster held by several is
let go (``prune_single_signal``), unless it shares a possession (a device, a card) with a
member: strangers share an operator's addresses, never its machines.

Deterministic: vertices and edges are sorted, Leiden runs with a fixed seed. Given a
``worker_pool``, the big groups' Leiden runs go side by side in worker processes: the same
clusters, sooner.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from graph.linkage.evidence import FAMILIES, Pair

STRONG = 0.3
MIN_WEIGHT = 0.1
RESOLUTION = 0.03
RESOLUTION_REFERENCE = 2000  # accounts; see scaled_resolution
SEED = 42
LEIDEN_ITERATIONS = 2  # leidenalg's default; iterating to convergence took minutes on a 12,000-account group
SMALL_GROUP = 4
PARALLEL_LINKS = 50_000  # links from which a group's (or a stability rebuild's) Leiden goes to a worker
POOL_WORKERS = 4
PRUNE_MIN_SIZE = 5
SINGLE_SHARE = 0.97
PRUNE_MAX_SHARE = 0.2
TRACE_SCORE = 0.1  # a family scoring less than this on a pair is a trace, not a signal holding it


@dataclass
class Clustering:
    """Clusters (each a sorted member list, largest first) and the bridge accounts."""

    clusters: list[list[str]] = field(default_factory=list)
    bridges: set[str] = field(default_factory=set)

    def member_of(self) -> dict[str, int]:
        return {a: i for i, members in enumerate(self.clusters) for a in members}


def components(nodes: Iterable[str], edges: Iterable[Pair]) -> list[list[str]]:
    """Connected components (sorted members) by union-find."""
    parent: dict[str, str] = {n: n for n in nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for n in parent:
        groups.setdefault(find(n), []).append(n)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g[0]))


def scaled_resolution(resolution: float, group_size: int, reference: int = RESOLUTION_REFERENCE) -> float:
    """CPM's resolution for a candidate group of ``group_size`` accounts: ``resolution`` up to
    ``reference`` accounts, then falling as ``reference / group_size``.

    Why: CPM keeps a community together while its link density beats the resolution, but
    the hub cap bounds how many accounts one shared value links, so an operator's link
    density falls as it grows: at a fixed resolution, a 11,000-account farm breaks into
    dozens of pure pieces, each too small to score as what it is. Scaled, a member must have
    ``resolution * reference`` (60) worth of links into a big community instead of a share of
    it that grows without bound; a stranger with a few links to it still stays out."""
    return resolution * min(1.0, reference / max(1, group_size))


def leiden_split(size: int, a: np.ndarray, b: np.ndarray, weights: np.ndarray, resolution: float, seed: int,
                 iterations: int = LEIDEN_ITERATIONS) -> list[np.ndarray]:
    """Communities of one candidate group of ``size`` accounts by Leiden CPM over its internal
    links ``a[k]-b[k]`` (local indices, sorted; each community's indices ascending)."""
    import igraph as ig
    import leidenalg

    # igraph reads tuples of ints three times faster than rows of a NumPy array
    graph = ig.Graph(n=size, edges=list(zip(a.tolist(), b.tolist(), strict=True)))
    graph.es["weight"] = weights.tolist()
    partition = leidenalg.find_partition(
        graph, leidenalg.CPMVertexPartition, weights="weight", resolution_parameter=resolution, seed=seed, n_iterations=iterations
    )
    membership = np.asarray(partition.membership, dtype=np.int64)
    order = np.argsort(membership, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(membership[order])) + 1)


@contextmanager
def worker_pool() -> Iterator[Executor | None]:
    """Worker processes for Leiden runs (one per core this process may use, at most
    ``POOL_WORKERS``), or None on one core. Forkserver workers: forking the detection run
    itself would share its gigabytes page by page until the first write copies them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 2:
        yield None
        return
    context = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=min(cores, POOL_WORKERS), mp_context=context) as pool:
        yield pool


def cluster_indexed(
    size: int, a: np.ndarray, b: np.ndarray, w: np.ndarray, *,
    strong: float = STRONG, min_weight: float = MIN_WEIGHT, resolution: float = RESOLUTION,
    reference: int = RESOLUTION_REFERENCE, seed: int = SEED, iterations: int = LEIDEN_ITERATIONS,
    label: np.ndarray | None = None, pool: Executor | None = None,
) -> list[np.ndarray]:
    """Clusters (ascending index arrays, two members or more, in no particular order) of
    accounts ``0..size-1`` linked by ``a[k] < b[k]`` with weight ``w[k]``: components of the
    strong links, each split by Leiden CPM over all its links. With indices in name order this
    is exactly ``cluster_accounts`` without pruning, in arrays: the detection run and each
    stability rebuild hand over millions of links, too many to walk one by one. ``label``: the
    strong-link components (a label in ``0..size-1`` per account) when an engine computed them
    (graph/engine/spark.py); every strong link must lie inside one. ``pool``
    (``worker_pool``): groups of ``PARALLEL_LINKS`` links or more are split there."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keep = w >= min_weight
    a, b, w = a[keep], b[keep], w[keep]
    tie = w >= strong
    if label is None:
        graph = coo_matrix((np.ones(int(tie.sum()), dtype=np.int8), (a[tie], b[tie])), shape=(size, size))
        label = connected_components(graph, directed=False)[1].astype(np.int64)
    elif not (label[a[tie]] == label[b[tie]]).all():
        raise ValueError("the engine's strong-link components split a strong link")
    sizes = np.bincount(label, minlength=size)
    order = np.argsort(label, kind="stable")  # members of each component together, ascending
    groups = np.split(order, np.cumsum(sizes)[:-1])
    inside = label[a] == label[b]
    a, b, w = a[inside], b[inside], w[inside]
    by_group = np.lexsort((b, a, label[a]))
    a, b, w = a[by_group], b[by_group], w[by_group]
    bounds = np.r_[0, np.cumsum(np.bincount(label[a], minlength=size))]
    found: list[tuple[np.ndarray, list[np.ndarray] | Future[list[np.ndarray]] | None]] = []
    for g, members in enumerate(groups):
        if len(members) < 2:
            continue
        if len(members) <= SMALL_GROUP:
            found.append((members, None))
            continue
        lo, hi = bounds[g], bounds[g + 1]
        local_a, local_b = np.searchsorted(members, a[lo:hi]), np.searchsorted(members, b[lo:hi])
        job = (len(members), local_a, local_b, w[lo:hi], scaled_resolution(resolution, len(members), reference), seed, iterations)
        found.append((members, pool.submit(leiden_split, *job) if pool is not None and hi - lo >= PARALLEL_LINKS
                      else leiden_split(*job)))
    out: list[np.ndarray] = []
    for members, parts in found:
        if parts is None:
            out.append(members)
            continue
        done = parts.result() if isinstance(parts, Future) else parts
        out.extend(members[p] for p in done if len(p) >= 2)
    return out


def find_bridges(clusters: list[list[str]], weights: Mapping[Pair, float], strong: float) -> set[str]:
    """Accounts with a strong link to a member of another cluster."""
    where = {a: i for i, members in enumerate(clusters) for a in members}
    out: set[str] = set()
    for (a, b), w in weights.items():
        if w < strong or a not in where or b not in where or where[a] == where[b]:
            continue
        out.update((a, b))
    return out


def prune_single_signal(
    clusters: list[list[str]], weights: Iterable[Pair], family_scores: Callable[[Pair], Mapping[str, float]],
    shares_possession: Callable[[Pair], bool] | None = None,
    scores_of: Callable[[Sequence[Pair]], np.ndarray] | None = None,
) -> list[list[str]]:
    """Let go of the odd members held by one signal family alone; ``weights``: the linked
    pairs (a mapping's keys will do).

    A member is *single-signal* when at least ``SINGLE_SHARE`` of its link weight inside the
    cluster comes from one family. In a cluster held together by two or more families, such a
    member is dropped when few members (under ``PRUNE_MAX_SHARE``) are held that way by the
    same family: a stranger who used some of an operator's proxy exits shares its addresses,
    not its devices, phones, scripts or timing. When many members are held by one family
    (an operator seen through timing alone), that is the cluster's nature and nobody goes.
    A family scoring under ``TRACE_SCORE`` on a pair (one popular prompt both sent once) is
    not counted: such traces would otherwise make a proxy stranger look multi-signal.

    By that same reasoning a member that shares a possession with another member
    (``shares_possession`` of their pair: one device, one card) is no stranger and stays,
    however few signals hold it: an operator's accounts on one cloned machine image may share
    nothing else the linkers can see (their common addresses and e-mail domain over the hub
    cap), and a stranger never has the operator's machine or card.

    ``scores_of`` (optional) gives the family scores of many pairs at once, columns in
    ``FAMILIES`` order (``Evidence.scores_of``); the detection run hands over millions of
    links inside its biggest clusters, too many to ask ``family_scores`` one by one."""
    where = {a: i for i, members in enumerate(clusters) for a in members}
    internal = [pair for pair in weights if (i := where.get(pair[0])) is not None and i == where.get(pair[1])]
    names, matrix = _family_matrix(internal, family_scores, scores_of)
    accounts = {a: k for k, a in enumerate(where)}
    ends = np.asarray([accounts[x] for pair in internal for x in pair], dtype=np.int64)  # a, b of each pair in turn
    held = np.zeros((len(accounts), len(names)))
    for f in range(len(names)):
        score = np.repeat(matrix[:, f], 2)
        counted = score >= TRACE_SCORE
        held[:, f] = np.bincount(ends[counted], weights=score[counted], minlength=len(accounts))  # in pair order
    alphabetical = np.asarray(sorted(range(len(names)), key=lambda f: names[f]), dtype=np.int64)
    odd_of: list[set[str]] = []
    for members in clusters:
        odd: set[str] = set()
        if len(members) >= PRUNE_MIN_SIZE:
            rows = held[[accounts[a] for a in members]]
            present = (rows > 0).sum(axis=0)
            if int((present >= 0.5 * len(members)).sum()) >= 2:
                total = rows.sum(axis=1)
                top = alphabetical[np.argmax(rows[:, alphabetical], axis=1)]  # the first family, by name, of the largest
                single = (total > 0) & (rows[np.arange(len(members)), top] >= SINGLE_SHARE * total)
                per_family = np.bincount(top[single], minlength=len(names))
                odd = {a for a, is_single, fam in zip(members, single.tolist(), top.tolist(), strict=True)
                       if is_single and per_family[fam] < PRUNE_MAX_SHARE * len(members)}
        odd_of.append(odd)
    if shares_possession is not None and any(odd_of):
        kept = _possessing(internal, where, odd_of, shares_possession)
        odd_of = [odd - kept for odd in odd_of]
    out = []
    for members, odd in zip(clusters, odd_of, strict=True):
        members = [a for a in members if a not in odd]
        if len(members) >= 2:
            out.append(members)
    return out


def _family_matrix(pairs: Sequence[Pair], family_scores: Callable[[Pair], Mapping[str, float]],
                   scores_of: Callable[[Sequence[Pair]], np.ndarray] | None) -> tuple[list[str], np.ndarray]:
    """Family names and each pair's score per family (a row per pair)."""
    if scores_of is not None:
        return list(FAMILIES), np.asarray(scores_of(pairs), dtype=np.float64).reshape(len(pairs), len(FAMILIES))
    scores = [family_scores(pair) for pair in pairs]
    names = sorted({f for row in scores for f in row})
    matrix = np.zeros((len(pairs), len(names)))
    for i, row in enumerate(scores):
        for f, name in enumerate(names):
            matrix[i, f] = row.get(name, 0.0)
    return names, matrix


def _possessing(internal: Sequence[Pair], where: Mapping[str, int], odd_of: Sequence[set[str]],
                shares_possession: Callable[[Pair], bool]) -> set[str]:
    """The odd members (``odd_of``, per cluster) with a link inside their cluster
    (``internal``: pairs within one cluster) that shares a possession."""
    out: set[str] = set()
    for pair in internal:
        odd = odd_of[where[pair[0]]]
        open_ends = [x for x in pair if x in odd and x not in out]
        if open_ends and shares_possession(pair):
            out.update(open_ends)
    return out


def cluster_accounts(
    weights: Mapping[Pair, float],
    *,
    family_scores: Callable[[Pair], Mapping[str, float]] | None = None,
    shares_possession: Callable[[Pair], bool] | None = None,
    strong: float = STRONG,
    min_weight: float = MIN_WEIGHT,
    resolution: float = RESOLUTION,
    reference: int = RESOLUTION_REFERENCE,
    seed: int = SEED,
    components: Callable[[list[str]], np.ndarray | None] | None = None,
    scores_of: Callable[[Sequence[Pair]], np.ndarray] | None = None,
    pool: Executor | None = None,
    corroborating: Iterable[Pair] = (),
) -> Clustering:
    """Cluster the accounts of ``weights`` (pair -> weight); singletons are not clusters.
    ``reference``: the group size above which the resolution is scaled down. Given
    ``family_scores``, single-signal members are pruned (``prune_single_signal``, which keeps
    those ``shares_possession`` ties to a member). ``components`` (if given) labels the sorted
    accounts by strong-link component when an engine computed them
    (``Evidence.strong_components``), else None. ``scores_of``: see ``prune_single_signal``.
    ``pool``: see ``cluster_indexed``. ``corroborating``: pairs that pruning counts as a
    member's links besides ``weights`` but that cluster no one (shared prompts acted on in
    lock-step: ``separation.lockstep_prompt_pairs``)."""
    # the detection run hands over millions of pairs, all above min_weight: no copy then
    kept = weights if all(w >= min_weight for w in weights.values()) else {p: w for p, w in weights.items() if w >= min_weight}
    names = sorted({x for pair in kept for x in pair})
    index = {name: i for i, name in enumerate(names)}
    a = np.fromiter((index[p[0]] for p in kept), dtype=np.int64, count=len(kept))
    b = np.fromiter((index[p[1]] for p in kept), dtype=np.int64, count=len(kept))
    w = np.fromiter(kept.values(), dtype=np.float64, count=len(kept))
    found = cluster_indexed(len(names), a, b, w, strong=strong, min_weight=min_weight, resolution=resolution,
                            reference=reference, seed=seed, label=components(names) if components else None, pool=pool)
    clusters = [[names[i] for i in members.tolist()] for members in found]
    if family_scores is not None:
        clusters = prune_single_signal(clusters, itertools.chain(kept, corroborating), family_scores, shares_possession, scores_of)
    clusters.sort(key=lambda g: (-len(g), g[0]))
    return Clustering(clusters=clusters, bridges=find_bridges(clusters, kept, strong))
