"""Separation: what any customer of a provider can share never makes two operators one.

Two kinds of evidence say nothing about *which* operator stands behind an account:

- Shared prompts alone. Popular templates are sent by strangers who share nothing else; an
  account whose only links are prompts is not shown to belong to anyone (``clustering_weights``
  drops such links before clustering). Co-activity counts with the prompts here: it is keyed
  by (time bucket, prompt template), so strangers who run one popular scheduled automation
  share it as surely as they share its wrapper. Only network, payment, device or e-mail
  evidence says two such accounts have one owner.
- Provider infrastructure. A proxy network's exits, a hosting range or a VPN serve every
  paying customer: two operators who buy from the same provider share its addresses, not their
  payment methods, devices, e-mail patterns, scripts or hours. ``split_on_provider`` rebuilds
  each cluster from its operator-specific evidence (every family, with the network family
  counting only non-provider values) and splits it where that evidence falls into separate
  groups; ``infrastructure_relations`` then records what the resulting clusters share as
  Cluster→Cluster relations (``SHARES_INFRASTRUCTURE``) instead of a merge.

The pieces one operator's groups come out in are joined again by what the prompts do show:
two clusters, each standing on other evidence, whose members mostly send the same prompts in
the same hours are one operator's (``join_lockstep``), and the stretches Leiden cuts a long
takeover campaign into are one campaign's (``join_campaigns``).

A cluster held together by provider addresses and nothing else (a farm seen only through its
proxy) is kept whole: there is no operator-specific evidence to split it by.

The other way round, a possession (one device, one payment instrument) is never a provider's:
``shares_possession`` tells clustering which links no stranger can have, so a member they hold
is not let go as one (``clustering.prune_single_signal``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graph import clustering
from graph.linkage.evidence import FAMILIES, Evidence, Pair, noisy_or
from graph.linkage.facts import Facts
from graph.linkage.network import network_props
from graph.schema import Label, Rel
from graph.store import GraphStore

# Network kinds any paying customer of the provider gets addresses of.
PROVIDER_KINDS = frozenset({"proxy", "residential-proxy", "residential_proxy", "vpn", "hosting", "tor"})
NETWORK = FAMILIES.index("network")
PROMPT = FAMILIES.index("prompt")
TIMING = FAMILIES.index("timing")
# Families that strangers sending the same prompts share without having anything else in
# common: the prompts, and co-activity (the same template in the same hours, timing.py).
PROMPT_DERIVED = (PROMPT, TIMING)
TRACE = clustering.TRACE_SCORE  # under this a family's score on a pair is a trace, not evidence
PART_MIN = 3  # accounts: a smaller group of operator-specific evidence is not a separate operator
# Of each of two clusters' members: acting in lock-step with the other's joins them
# (``join_lockstep``); a company's one automated account among its people is far from it.
JOIN_SHARE = 0.5


def is_provider_value(facts: Facts, label: str, key: str) -> bool:
    """Whether an IP or network belongs to a provider's shared pool (by its intel kind)."""
    if label not in (Label.IP.value, Label.NETWORK.value):
        return False
    return str(network_props(facts, label, key).get("kind") or "").lower() in PROVIDER_KINDS


# What one person holds: two accounts on one device id or one card are one hand (or one
# household), whoever else shares their addresses. Not a phone number (recycled, and sold to
# strangers by SMS-verification services), nor a client build or a card's BIN pattern.
POSSESSION_LABELS = frozenset({Label.DEVICE.value, Label.PAYMENT_METHOD.value})


def shares_possession(evidence: Evidence) -> Callable[[Pair], bool]:
    """Whether a pair's kept reasons include a shared possession (``POSSESSION_LABELS``)."""

    def shares(pair: Pair) -> bool:
        return any(r.label in POSSESSION_LABELS for r in evidence.reasons(pair))

    return shares


def prompt_only(misses: np.ndarray) -> np.ndarray:
    """Per pair (rows of ``Evidence.misses``): True when shared prompts are all there is.

    That is: every family but ``PROMPT_DERIVED`` scores under ``TRACE``, and either
    co-activity does too, or there is nothing at all besides the prompts and co-activity in
    them. Co-activity is keyed by (time bucket, template), so strangers who run one popular
    scheduled automation share it as surely as its wrapper: with nothing else in common it
    proves nothing. Where network, payment, device or e-mail evidence is there but weak (an
    exit forty of a farm's accounts rotate through), acting in lock-step still ties the pair.

    >>> m = np.ones((3, len(FAMILIES))); m[:, PROMPT_DERIVED] = 0.2
    >>> m[1, NETWORK] = 0.5  # a real network link
    >>> m[2, NETWORK] = 0.95  # a trace of one, with the lock-step
    >>> prompt_only(m).tolist()
    [True, False, False]
    """
    if not len(misses):
        return np.zeros(0, dtype=bool)
    independent = (1.0 - np.delete(misses, PROMPT_DERIVED, axis=1)).max(axis=1, initial=0.0)
    lockstep = 1.0 - misses[:, TIMING]
    return (independent < TRACE) & ((independent <= 0.0) | (lockstep < TRACE))


def clustering_links(evidence: Evidence) -> tuple[dict[Pair, float], list[Pair]]:
    """What clustering is given: every pair's combined weight without the prompt-only pairs
    (``prompt_only``), and the prompt-only pairs acted on in lock-step (co-activity at least
    ``TRACE``). The lock-step pairs make no one a member, but a member already tied to a
    cluster by other links shows its operator's script and hours in them: pruning counts them
    as its second signal (``clustering.cluster_accounts(corroborating=...)``) and
    ``join_lockstep`` joins the pieces of one operator by them. One pass over the misses,
    since the seed world's are half a gigabyte."""
    pairs = evidence.pairs()
    misses = evidence.misses()
    if not len(misses):
        return {}, []
    weights = 1.0 - misses.prod(axis=1)
    only = prompt_only(misses)
    keep = ~only & (weights > 0)
    lockstep = only & (1.0 - misses[:, TIMING] >= TRACE)
    return ({pairs[i]: float(weights[i]) for i in np.flatnonzero(keep).tolist()},
            [pairs[i] for i in np.flatnonzero(lockstep).tolist()])


def clustering_weights(evidence: Evidence) -> dict[Pair, float]:
    """Every pair's combined weight for clustering, without the prompt-only pairs."""
    return clustering_links(evidence)[0]


def lockstep_prompt_pairs(evidence: Evidence) -> list[Pair]:
    """The prompt-only pairs acted on in lock-step (see ``clustering_links``)."""
    return clustering_links(evidence)[1]


def join_lockstep(clusters: Sequence[Sequence[str]], lockstep: Iterable[Pair], share: float = JOIN_SHARE,
                  least: int = PART_MIN) -> list[list[str]]:
    """Clusters joined where most members of each send the same prompts as members of the
    other, in the same hours (``lockstep``: pairs from ``clustering_links``); sorted largest
    first like ``clustering.Clustering.clusters``.

    Each cluster already stands on network, payment, device or e-mail evidence; what a
    shared script run in lock-step adds is that two such groups have one operator. An
    operator whose groups share nothing else (a lab of cloned machines per room behind a
    university's egress; a farm whose exits Leiden cuts into neighbourhoods) is then one
    cluster, not fifty. It takes most of *both* groups (``share`` of each, joined
    transitively) and groups of ``least`` members or more: a company whose one job account
    runs a popular scheduled automation is not joined to the next company running it.

    >>> join_lockstep([["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]], [("a", "d"), ("b", "e"), ("c", "g")])
    [['a', 'b', 'c', 'd', 'e', 'f'], ['g', 'h', 'i']]
    """
    where = {a: i for i, members in enumerate(clusters) for a in members}
    toward: dict[tuple[int, int], set[str]] = {}
    for a, b in lockstep:
        i, j = where.get(a), where.get(b)
        if i is None or j is None or i == j:
            continue
        toward.setdefault((i, j), set()).add(a)
        toward.setdefault((j, i), set()).add(b)
    joins = [(i, j) for (i, j), covered in toward.items()
             if i < j and min(len(clusters[i]), len(clusters[j])) >= least
             and len(covered) >= share * len(clusters[i]) and len(toward[(j, i)]) >= share * len(clusters[j])]
    return _joined(clusters, joins)


def join_campaigns(clusters: Sequence[Sequence[str]], campaigns: Iterable[Sequence[str]], share: float = JOIN_SHARE,
                   least: int = PART_MIN) -> list[list[str]]:
    """Clusters joined where most members of each (``share``, in groups of ``least`` or
    more) belong to one takeover campaign (``campaigns``: the accounts of each, as
    graph/takeover.py ``campaigns`` finds them); sorted largest first.

    A campaign's accounts are linked each to its next few in onset order (a chain: the
    whole of it would be quadratic), and Leiden cuts a long chain into stretches; but the
    campaign is one finding (accounts that moved onto one new client or network together,
    their use changing with it), so its stretches are one cluster again.

    >>> join_campaigns([["a", "b", "c"], ["d", "e", "f"], ["g", "h", "x"]], [["a", "b", "c", "d", "e", "g"]])
    [['a', 'b', 'c', 'd', 'e', 'f'], ['g', 'h', 'x']]
    """
    where = {a: i for i, members in enumerate(clusters) for a in members}
    joins: list[tuple[int, int]] = []
    for accounts in campaigns:
        held = Counter(i for a in accounts if (i := where.get(a)) is not None)
        mostly = [i for i, n in held.items() if len(clusters[i]) >= least and n >= share * len(clusters[i])]
        joins.extend(zip(mostly, mostly[1:], strict=False))
    return _joined(clusters, joins)


def _joined(clusters: Sequence[Sequence[str]], joins: Iterable[tuple[int, int]]) -> list[list[str]]:
    """``clusters`` with every pair of positions in ``joins`` made one (transitively), each
    sorted, largest first."""
    parent = list(range(len(clusters)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in joins:
        parent[root(i)] = root(j)
    joined: dict[int, list[str]] = {}
    for i, members in enumerate(clusters):
        joined.setdefault(root(i), []).extend(members)
    out = [sorted(members) for members in joined.values()]
    out.sort(key=lambda g: (-len(g), g[0]))
    return out


def provider_values(facts: Facts) -> frozenset[tuple[str, str]]:
    """Every IP and network of ``facts`` that ``is_provider_value``: asked once per run, since
    separation looks up millions of (label, key) values, a set lookup each instead of two
    property reads."""
    return frozenset(
        (label, key) for label in (Label.IP.value, Label.NETWORK.value)
        for key in facts.entities.get(label, {}) if is_provider_value(facts, label, key)
    )


def operator_misses(evidence: Evidence, facts: Facts, pairs: Sequence[Pair],
                    providers: frozenset[tuple[str, str]] | None = None) -> np.ndarray:
    """``evidence.misses_of(pairs)`` with the network family counting only values that are not
    a provider's (its strongest reasons, as kept by the evidence, recombined). ``providers``:
    ``provider_values(facts)``, when the caller asks for many clusters."""
    misses = evidence.misses_of(pairs)
    rows = np.flatnonzero(misses[:, NETWORK] < 1.0)
    if rows.size == 0:
        return misses
    at, codes, values, weights = evidence.value_weights([pairs[i] for i in rows.tolist()], "network")
    pool = provider_values(facts) if providers is None else providers
    provider = np.fromiter((v in pool for v in values), dtype=bool, count=len(values))
    own = ~provider[codes] if codes.size else np.zeros(0, dtype=bool)
    miss = np.ones(rows.size)
    np.multiply.at(miss, at[own], 1.0 - np.clip(weights[own], 0.0, 1.0))  # in order: noisy_or's product
    misses[rows, NETWORK] = 1.0 - (1.0 - miss)  # what 1 - noisy_or(...) rounds to
    return misses


def _strong_parts(members: Sequence[str], pairs: Sequence[Pair], weights: np.ndarray) -> list[list[str]]:
    """Components of the strong links among ``members``, largest first."""
    strong = [p for p, w in zip(pairs, weights.tolist(), strict=True) if w >= clustering.STRONG]
    return clustering.components(members, strong)


def split_cluster(members: Sequence[str], pairs: Sequence[Pair], full: np.ndarray, own: np.ndarray) -> list[list[str]]:
    """One cluster's members as one or more clusters: the strong components of its
    operator-specific links (``own``); when two or more hold ``PART_MIN`` accounts, each is a
    cluster and every other member joins the one its links (``full``) weigh most towards (none:
    it is let go). Otherwise the cluster stays as it is."""
    parts = [p for p in _strong_parts(members, pairs, own) if len(p) >= PART_MIN]
    if len(parts) < 2:
        return [list(members)]
    part_of = {a: i for i, part in enumerate(parts) for a in part}
    pull: dict[str, np.ndarray] = {}
    for (a, b), w in zip(pairs, full.tolist(), strict=True):
        for x, y in ((a, b), (b, a)):
            if x not in part_of and y in part_of:
                pull.setdefault(x, np.zeros(len(parts)))[part_of[y]] += w
    out = [list(p) for p in parts]
    for a in sorted(pull):
        toward = pull[a]
        if toward.max() > 0:
            out[int(np.argmax(toward))].append(a)
    return [sorted(p) for p in out]


def split_on_provider(clusters: Sequence[Sequence[str]], evidence: Evidence, facts: Facts) -> list[list[str]]:
    """Every cluster split where only provider infrastructure held its parts together (see
    ``split_cluster``); sorted largest first like ``clustering.Clustering.clusters``."""
    where = {a: i for i, members in enumerate(clusters) for a in members}
    internal: list[list[Pair]] = [[] for _ in clusters]
    for pair in evidence.pairs():
        i = where.get(pair[0])
        if i is not None and i == where.get(pair[1]):
            internal[i].append(pair)
    out: list[list[str]] = []
    providers = provider_values(facts)
    for members, pairs in zip(clusters, internal, strict=True):
        if len(members) < 2 * PART_MIN or not pairs:
            out.append(sorted(members))
            continue
        full = 1.0 - evidence.misses_of(pairs).prod(axis=1)
        own = 1.0 - operator_misses(evidence, facts, pairs, providers).prod(axis=1)
        out.extend(p for p in split_cluster(members, pairs, full, own) if len(p) >= 2)
    out.sort(key=lambda g: (-len(g), g[0]))
    return out


@dataclass
class Relation:
    """What two clusters share of provider infrastructure."""

    start: str
    end: str
    weight: float = 0.0
    accounts: set[str] = field(default_factory=set)
    values: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        ranked = sorted(self.values.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        values = [{"label": lab, "key": key, "accounts": len(users)} for (lab, key), users in ranked]
        return {"start": self.start, "end": self.end, "weight": round(self.weight, 4), "accounts": len(self.accounts),
                "values": json.dumps(values), "families": ["network"]}


def infrastructure_relations(owner: Mapping[str, str], evidence: Evidence, facts: Facts) -> list[dict[str, Any]]:
    """``SHARES_INFRASTRUCTURE`` rows (start cluster id < end) between clusters whose members
    share provider values: weight (the strongest provider evidence of one cross pair),
    accounts (of both clusters, sharing any of them), values (JSON-able list of {label, key,
    accounts}, most shared first), families. ``owner`` maps each member to its cluster id."""
    found: dict[tuple[str, str], Relation] = {}
    pairs = evidence.pairs()
    misses = evidence.misses()
    for i in np.flatnonzero(misses[:, NETWORK] < 1.0).tolist():
        a, b = pairs[i]
        ca, cb = owner.get(a), owner.get(b)
        if ca is None or cb is None or ca == cb:
            continue
        shared = [r for r in evidence.reasons(pairs[i], family="network") if is_provider_value(facts, r.label, r.key)]
        if not shared:
            continue
        key = (ca, cb) if ca < cb else (cb, ca)
        rel = found.setdefault(key, Relation(*key))
        rel.weight = max(rel.weight, noisy_or(r.weight for r in shared))
        rel.accounts.update((a, b))
        for r in shared:
            rel.values.setdefault((r.label, r.key), set()).update((a, b))
    return [found[k].row() for k in sorted(found)]


def separate(found: clustering.Clustering, weights: Mapping[Pair, float], evidence: Evidence, facts: Facts,
             lockstep: Iterable[Pair] = (), campaigns: Iterable[Sequence[str]] = ()) -> clustering.Clustering:
    """``found`` with its clusters split on provider infrastructure (``split_on_provider``),
    the pieces of one operator joined by their ``lockstep`` prompts (``join_lockstep``) and
    the stretches of one takeover campaign by its accounts (``join_campaigns``), and its
    bridges found again over ``weights``."""
    clusters = join_campaigns(join_lockstep(split_on_provider(found.clusters, evidence, facts), lockstep), campaigns)
    return clustering.Clustering(clusters=clusters, bridges=clustering.find_bridges(clusters, weights, clustering.STRONG))


def write_relations(store: GraphStore, rows: Sequence[Mapping[str, Any]]) -> int:
    """Replace every ``SHARES_INFRASTRUCTURE`` relation with ``rows``; returns how many."""
    with store.bulk():
        store.delete_relationships(Rel.SHARES_INFRASTRUCTURE)
        return store.upsert_relationships(Rel.SHARES_INFRASTRUCTURE, Label.CLUSTER, Label.CLUSTER, rows) if rows else 0
