"""Analyst merges and splits as constraints every detection run keeps.

Where they are read from: the audit trail. Each merge and split (graph/cases.py) writes one audit
event naming the accounts it placed, and detection replays those events oldest first: an
account's *placement* is the analyst cluster the latest decision put it in (a merge places the
members of both clusters in the kept one; a split places the moved accounts in the new cluster
and the rest in the parent). Why the audit trail and not a property or relationship of its own:
it is append-only and detection never deletes it, so no failed or partial detection write
(write_back is not atomic on Neo4j) can lose a decision; every placement carries who made it,
when and why; and there is no second copy to fall out of step with the trail reviewers read.

The constraints act on what clustering found and the candidate pairs, never on the
exchanges (``reconcile``, after clustering):

- must-link: the accounts placed in one analyst cluster form that cluster, under its id;
- cannot-link: accounts placed in different analyst clusters never share one. A cluster
  detection found that holds placed accounts of one analyst cluster joins it (new accounts
  that link to an analyst's cluster follow it); one that holds placed accounts of several is
  divided, each unplaced account going to the analyst cluster it has the most link weight to;
  and the unplaced accounts of a found cluster that are themselves a cluster of the previous
  run stay apart (an operator that took in a stray placed account is not swallowed).

Clustering itself runs on the unchanged candidate graph: taking the cannot-link pairs out of it
would make Leiden partition the rest of their candidate group differently, so a re-run over the
same data would move accounts no analyst touched. This way a re-run over unchanged data writes
the analyst's clusters and every other cluster exactly as before. With placements, the cost is
a few passes over the linked pairs (``cannot_links``, the bridges, and the links inside found
clusters shared by several analyst clusters); without, nothing.

``report`` says what was kept: every decision still in force with how many of its accounts are
where it put them (``kept``), decisions all of whose accounts a later decision placed elsewhere
(``superseded``), and ``conflicts`` for review: a split whose two sides the evidence now ties
by more strong pairs than when the analyst split them, or strongly by a family that did not tie
them strongly then (``new_families``); and decisions whose accounts are all gone from the
store. A conflicting split is kept all the same: a decision is never silently undone.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graph import clustering
from graph.figures import ties
from graph.linkage import Pair
from graph.schema import Label
from graph.store import GraphStore

ACTIONS = ("merge", "split")
MATCH_JACCARD = 0.5  # as detection's id matching: a cluster of the previous run


@dataclass
class Decision:
    """One analyst merge or split, as its audit event recorded it."""

    event_id: str
    action: str
    cluster_id: str  # merge: the cluster kept; split: the new cluster
    other_id: str  # merge: the cluster absorbed; split: the cluster split from
    who: str
    at: str
    placed: dict[str, str]  # account -> the analyst cluster this decision put it in
    moved: frozenset[str] = frozenset()  # split: the accounts moved out
    stayed: frozenset[str] = frozenset()  # split: the accounts left in the parent
    ties_then: dict[str, Any] = field(default_factory=dict)  # split: graph.figures.ties at the time


@dataclass
class Placements:
    decisions: list[Decision] = field(default_factory=list)
    cluster_of: dict[str, str] = field(default_factory=dict)  # account -> analyst cluster (latest decision)
    missing: dict[str, int] = field(default_factory=dict)  # event id -> its accounts gone from the store

    def __bool__(self) -> bool:
        return bool(self.cluster_of)


def _json(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _names(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _decision(props: Mapping[str, Any], key: str, members_now: Mapping[str, frozenset[str]]) -> Decision | None:
    """The decision an audit event records, or None for an event that is no merge or split."""
    action = str(props.get("action") or "")
    target = str(props.get("target") or "")
    if action not in ACTIONS or not target.startswith(f"{Label.CLUSTER.value}:"):
        return None
    cluster = target.split(":", 1)[1]
    before, after = _json(props.get("before")), _json(props.get("after"))
    who, at = str(props.get("who") or ""), str(props.get("at") or "")
    if action == "merge":
        placed = dict.fromkeys(_names(before.get("members")) + _names(after.get("added")), cluster)
        return Decision(key, action, cluster, str(after.get("absorbed") or ""), who, at, placed)
    new = str(after.get("new_cluster") or "")
    if not new:
        return None
    moved = frozenset(_names(after.get("moved")))
    # splits recorded before "kept" was: the parent's members now, less the moved ones
    stayed = frozenset(_names(after["kept"])) if "kept" in after else members_now.get(cluster, frozenset()) - moved
    placed = {**dict.fromkeys(sorted(stayed), cluster), **dict.fromkeys(sorted(moved), new)}
    return Decision(key, action, new, cluster, who, at, placed, moved, stayed, _json(after.get("ties")))


def read(store: GraphStore, members_now: Mapping[str, frozenset[str]], accounts: Container[str]) -> Placements:
    """Every merge and split of the audit trail, replayed oldest first, over the accounts that
    still exist (``accounts``); ``members_now`` is each cluster's membership in the store."""
    events = sorted(
        (n for n in store.iter_nodes(Label.AUDIT_EVENT) if n.props.get("action") in ACTIONS),
        key=lambda n: (str(n.props.get("at") or ""), n.key),
    )
    out = Placements()
    for node in events:
        decision = _decision(node.props, node.key, members_now)
        if decision is None:
            continue
        out.decisions.append(decision)
        gone = 0
        for account, cluster in decision.placed.items():
            if account not in accounts:
                gone += 1
                continue
            out.cluster_of[account] = cluster
        if gone:
            out.missing[decision.event_id] = gone
    return out


def cannot_links(weights: Mapping[Pair, float], placements: Placements) -> list[Pair]:
    """The linked pairs of accounts placed in different analyst clusters (one pass)."""
    where = placements.cluster_of
    if not where:
        return []
    return [p for p in weights if (x := where.get(p[0])) is not None and (y := where.get(p[1])) is not None and x != y]


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def _a_previous_cluster(accounts: Sequence[str], previous: Mapping[str, frozenset[str]], analyst: Container[str],
                        where: Mapping[str, list[str]]) -> bool:
    mine = frozenset(accounts)
    touched = {cid for a in accounts for cid in where.get(a, []) if cid not in analyst}
    return any(_jaccard(mine, previous[cid]) >= MATCH_JACCARD for cid in sorted(touched))


def _by_links(members: Sequence[str], label: dict[str, str], links: Mapping[str, dict[str, float]]) -> dict[str, str]:
    """Each unplaced account of ``members`` labelled with the analyst cluster it has the most
    link weight to, in rounds (an account linked only to unplaced ones waits for them); the
    accounts left over go to the cluster holding most of the placed accounts."""
    label = dict(label)
    counts = Counter(label.values())
    largest = min(counts, key=lambda cid: (-counts[cid], cid))
    waiting = sorted(a for a in members if a not in label)
    while waiting:
        chosen: dict[str, str] = {}
        for a in waiting:
            pull: dict[str, float] = {}
            for b, w in links.get(a, {}).items():
                if b in label:
                    pull[label[b]] = pull.get(label[b], 0.0) + w
            if pull:
                chosen[a] = min(pull, key=lambda cid: (-pull[cid], cid))
        if not chosen:
            break
        label.update(chosen)
        waiting = [a for a in waiting if a not in chosen]
    label.update(dict.fromkeys(waiting, largest))
    return label


def reconcile(clusters: Sequence[Sequence[str]], placements: Placements, previous: Mapping[str, frozenset[str]],
              weights: Mapping[Pair, float]) -> tuple[list[list[str]], dict[int, str]]:
    """The clusters with every analyst cluster made whole and kept apart from the others (see
    the module doc), largest first, and which of them (by position) carry an analyst cluster's
    id. A cluster of one account is kept when an analyst made it."""
    where_placed = placements.cluster_of
    analyst = set(where_placed.values())
    groups: dict[str, set[str]] = {}
    for account, cid in where_placed.items():
        groups.setdefault(cid, set()).add(account)
    where: dict[str, list[str]] = {}
    for cid, old in previous.items():
        for a in old:
            where.setdefault(a, []).append(cid)
    free: list[list[str]] = []
    shared: list[Sequence[str]] = []  # found clusters holding accounts of several analyst clusters
    for members in clusters:
        placed = Counter(where_placed[a] for a in members if a in where_placed)
        rest = [a for a in members if a not in where_placed]
        if not placed:
            free.append(list(members))
        elif rest and _a_previous_cluster(rest, previous, analyst, where):
            if len(rest) >= 2:
                free.append(rest)
        elif rest and len(placed) == 1:
            groups[next(iter(placed))].update(rest)
        elif rest:
            shared.append(members)
    if shared:
        inside = {a for members in shared for a in members}
        links: dict[str, dict[str, float]] = {}
        for (x, y), w in weights.items():
            if x in inside and y in inside:
                links.setdefault(x, {})[y] = w
                links.setdefault(y, {})[x] = w
        for members in shared:
            label = {a: where_placed[a] for a in members if a in where_placed}
            for a, cid in _by_links(members, label, links).items():
                groups[cid].add(a)
    labelled = [(sorted(g), cid) for cid, g in groups.items() if g] + [(sorted(m), "") for m in free]
    labelled.sort(key=lambda t: (-len(t[0]), t[0][0]))
    return [m for m, _ in labelled], {i: cid for i, (_, cid) in enumerate(labelled) if cid}


def _entry(d: Decision, **extra: Any) -> dict[str, Any]:
    where = {"absorbed": d.other_id} if d.action == "merge" else {"split_from": d.other_id}
    return {"event_id": d.event_id, "action": d.action, "cluster_id": d.cluster_id, **where, "by": d.who, "at": d.at, **extra}


def report(placements: Placements, apart: Sequence[Pair], apart_misses: np.ndarray) -> dict[str, list[dict[str, Any]]]:
    """``kept``, ``superseded`` and ``conflicts`` (see the module doc) for the run's summary;
    ``apart`` are the ``cannot_links`` pairs and ``apart_misses`` their misses."""
    where = placements.cluster_of
    out: dict[str, list[dict[str, Any]]] = {"kept": [], "superseded": [], "conflicts": []}
    for d in placements.decisions:
        gone = placements.missing.get(d.event_id, 0)
        if gone == len(d.placed):
            out["conflicts"].append(_entry(d, reason="accounts_gone", accounts=gone))
            continue
        extra = {"missing_accounts": gone} if gone else {}
        holding = sum(1 for a, cid in d.placed.items() if where.get(a) == cid)
        if holding:
            out["kept"].append(_entry(d, accounts=holding, **extra))
        else:
            out["superseded"].append(_entry(d))
        if d.action != "split":
            continue
        moved = {a for a in d.moved if a in where}
        stayed = {a for a in d.stayed if a in where}
        rows = [k for k, (x, y) in enumerate(apart) if (x in moved and y in stayed) or (x in stayed and y in moved)]
        if not rows:
            continue
        pairs = [apart[k] for k in rows]
        now = ties(pairs, apart_misses[np.asarray(rows, dtype=np.int64)], moved)
        then_families = _json(d.ties_then.get("families"))
        then_strong = int(d.ties_then.get("strong_pairs") or 0)
        new_families = sorted(f for f, s in now["families"].items()
                              if s >= clustering.STRONG and float(then_families.get(f) or 0.0) < clustering.STRONG)
        if now["strong_pairs"] > then_strong or new_families:
            out["conflicts"].append(_entry(
                d, reason="new_evidence", kept=True, strong_pairs=now["strong_pairs"], strong_pairs_at_split=then_strong,
                new_families=new_families, max_weight=now["max_weight"], families=now["families"],
            ))
    return out
