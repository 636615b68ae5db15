"""Detection: links, clusters, scores, stability and attribution suggestions, written to the store.

``run_detection(store, settings)`` reads the graph the loader wrote (and the staging area for
timing, near-duplicate prompts and the prompt-template uses, when present), then replaces its
own earlier outputs while keeping everything an analyst decided. Account pairs whose combined
evidence stays under ``clustering.MIN_WEIGHT`` are dropped right after linking (they could
neither link nor cluster); ``pairs_considered`` in the summary counts every candidate pair,
``pairs_kept`` the rest. It returns a summary dict (``sybilscope detect`` prints
it as JSON).

What it writes — the property names the UI and the exports read:

``Cluster`` {cluster_id, score (0-1), flagged (score >= setting flag_threshold), size, exchanges,
  input_tokens, output_tokens, first_seen, last_seen (ISO UTC), status ('open' on creation; an
  analyst's status is never touched), indicators (JSON list of {name, value, contribution},
  strongest first; contributions sum to the score; names are scoring.WEIGHTS' keys plus the
  negative ``behaviour_only`` and ``clockwork_schedule`` and, on a takeover campaign,
  ``synchronised_takeover`` (see graph.takeover)), capability_profile (JSON {capability:
  share of the exchanges whose prompt text is readable}), stability (JSON {family: Jaccard of
  the membership rebuilt without that signal family vs the full one, "min": lowest, "weakest": family}; flagged clusters only,
  else "{}"), suggested_operator ('' when none), suggestion_confidence (0-1), bridges (int:
  members with strong links into another cluster), families (list: signal families among its
  internal links), detected_at (ISO UTC of the run), retired (bool: true on an
  analyst-touched cluster that no current cluster matches; it keeps its decisions but no
  members), superseded_by (on a retired cluster: the current cluster holding most of its old
  members, or ''), takeover_onset (ISO UTC of the earliest onset of its takeover campaign, ''
  when none), compromised_members (int: members in that campaign)}. A takeover campaign's
  members are scored on their activity from their onset on (graph.takeover).
  Cluster ids: a cluster whose membership matches a previous cluster's (Jaccard >= 0.5, best
  match first) keeps that id; otherwise ``cl-`` + 12 hex of a hash of its sorted members.
``(Account)-[MEMBER_OF {bridge: bool, compromised: bool (in the cluster's takeover campaign),
  onset: ISO UTC of its behaviour change, or ''}]->(Cluster)``.
``(Cluster)-[SHARES_INFRASTRUCTURE {weight (0-1: the strongest provider evidence of one pair
  across the two), accounts (of both clusters, sharing any of the values), values (JSON list of
  {label, key, accounts}: the provider IPs / networks shared, most shared first), families
  (list)}]->(Cluster)``, start id < end id: what two clusters share of a provider's pool (proxy,
  residential proxy, VPN, hosting, Tor exits), which never merges them (graph.separation).
  Prompt-only links (shared prompts and nothing else) never hold a member in a cluster either.
``(Account)-[LINKED {weight, families (list), reasons (JSON list)}]->(Account)``, start key <
  end key, weight >= clustering.MIN_WEIGHT: inside a cluster each member's ``links_per_account``
  (setting) strongest links, across clusters every strong one (``links_to_write``). A reason is {family, kind,
  entity: {label, key}, accounts (how many share it), weight, counts, first_seen, last_seen,
  ... kind-specific: time_overlap, example / examples + templates, jaccard + shared_slots;
  synchronised: true on a reason from an over-cap IP/network/device that its users moved onto
  together, which is linked instead of suppressed (see linkage.hubs)}.
  Families and kinds: network (shared_ip, shared_network, shared_asn), payment (shared_payment,
  card_pattern), device (shared_device, shared_client), email (shared_email_domain,
  email_pattern, shared_phone, creation_burst), prompt (shared_template,
  near_duplicate_template), timing (coactivity); network and device also synchronised_takeover
  (accounts whose behaviour changed onto one new network or client together, graph.takeover). ``entity.label`` is a schema label, or for
  derived values one of BillingPattern (key bin|country|postal|name hash), EmailPattern
  (domain/shape), Phone (phone hash), CreationBurst (domain@epoch of a 5-minute window),
  TemplateFamily (key: the family's first template id), TimeBuckets (co-activity).
``(Cluster)-[SUGGESTED_OPERATOR {confidence, indicators (JSON list of {indicator_id, type,
  value, source, confidence, coverage, strength})}]->(Operator)``.

Kept across re-runs: ATTRIBUTED_TO, status, notes / ``notes`` property and audit events of
clusters; analyst-only properties are never in the written rows. Everything else of detection
(LINKED, MEMBER_OF, SUGGESTED_OPERATOR, SHARES_INFRASTRUCTURE, untouched Cluster nodes) is deleted and rewritten, so a
re-run never duplicates. The run also writes ``<workspace>/detection/last_run.json`` (the
summary), ``<workspace>/detection/hubs.json`` (every suppressed hub) and
``<workspace>/detection/figures.npz`` (the figure context merges and splits refigure clusters
with: graph/saved_context.py; a cluster's figures are computed by graph/figures.py for both).

The analyst's merges and splits are kept as constraints (graph/decisions.py, read from the
audit trail), applied to what clustering and separation found: each analyst cluster is made
whole (must-link), no cluster holds accounts of two of them (cannot-link), and each keeps its
id (``assign_ids``). The summary's ``analyst_decisions`` lists the decisions ``kept``,
``superseded`` by later ones, and in ``conflicts`` any split that new evidence ties back
together (kept all the same, for review).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graph import attribution, clustering, decisions, saved_context, scoring, separation, takeover
from graph.engine import Engine, open_engine
from graph.figures import (
    ANALYST_STATUS_DEFAULT,
    ClusterOut,
    FigureContext,
    PairTable,
    ProviderPairs,
    cluster_row,
    figures_of,
)
from graph.figures import clustering_weights as figure_weights
from graph.figures import member_rows as member_rows_of
from graph.figures import stability as stability_of
from graph.linkage import FAMILIES, Evidence, Facts, Pair, read_facts
from graph.linkage.timing import read_minute_regularity, read_model_onsets
from graph.props import now_iso
from graph.schema import Label, Rel
from graph.settings import Settings
from graph.store import GraphStore, chunked
from graph.workspace import detection_dir, hubs_path, last_run_path

MATCH_JACCARD = 0.5
WRITE_CHUNK = 5000


# ---- previous run -----------------------------------------------------------------------------


@dataclass
class Previous:
    """Detection outputs and analyst decisions already in the store."""

    props: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, frozenset[str]] = field(default_factory=dict)
    attributed: dict[str, tuple[str, float]] = field(default_factory=dict)
    annotated: set[str] = field(default_factory=set)

    def analyst_touched(self, cluster_id: str) -> bool:
        status = str(self.props.get(cluster_id, {}).get("status") or ANALYST_STATUS_DEFAULT)
        return cluster_id in self.attributed or cluster_id in self.annotated or status != ANALYST_STATUS_DEFAULT or bool(
            self.props.get(cluster_id, {}).get("notes")
        )


def read_previous(store: GraphStore) -> Previous:
    prev = Previous()
    prev.props = {n.key: dict(n.props) for n in store.iter_nodes(Label.CLUSTER)}
    members: dict[str, set[str]] = {}
    for rel in store.iter_relationships(Rel.MEMBER_OF):
        members.setdefault(rel.end[1], set()).add(rel.start[1])
    prev.members = {k: frozenset(v) for k, v in members.items()}
    for rel in store.iter_relationships(Rel.ATTRIBUTED_TO):
        conf = rel.props.get("confidence")
        prev.attributed[rel.start[1]] = (rel.end[1], float(conf) if isinstance(conf, int | float) else 1.0)
    for rel in store.iter_relationships(Rel.ABOUT):
        if rel.end[0] == Label.CLUSTER.value:
            prev.annotated.add(rel.end[1])
    return prev


# ---- ids ----------------------------------------------------------------------------------------


def hashed_id(members: Sequence[str]) -> str:
    """``cl-`` + 12 hex digits of a hash of the sorted members."""
    digest = hashlib.sha1("\n".join(sorted(members)).encode(), usedforsecurity=False).hexdigest()
    return f"cl-{digest[:12]}"


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def assign_ids(clusters: Sequence[Sequence[str]], previous: Mapping[str, frozenset[str]],
               fixed: Mapping[int, str] | None = None) -> list[str]:
    """An id per cluster: ``fixed[i]`` for the analyst's clusters (graph/decisions.py), else the
    previous cluster it matches best (Jaccard >= MATCH_JACCARD, one-to-one, best pairs first,
    never an analyst cluster's id), else the hash of its members."""
    fixed = fixed or {}
    where: dict[str, list[str]] = {}
    for cid, old in previous.items():
        for a in old:
            where.setdefault(a, []).append(cid)
    candidates: list[tuple[float, int, str]] = []
    for i, members in enumerate(clusters):
        if i in fixed:
            continue
        mset = frozenset(members)
        touched = sorted({cid for a in members for cid in where.get(a, [])})
        for cid in touched:
            j = jaccard(mset, previous[cid])
            if j >= MATCH_JACCARD:
                candidates.append((-j, i, cid))
    ids: list[str | None] = [fixed.get(i) for i in range(len(clusters))]
    used: set[str] = set(fixed.values())
    for _, i, cid in sorted(candidates):
        if ids[i] is None and cid not in used:
            ids[i] = cid
            used.add(cid)
    return [ids[i] or hashed_id(members) for i, members in enumerate(clusters)]


# ---- stability ------------------------------------------------------------------------------------


def stability(members: Sequence[str], evidence: Evidence, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``figures.stability`` of a cluster's internal ``pairs`` as ``evidence`` scores them."""
    return stability_of(members, pairs, evidence.misses_of(pairs))


# ---- the run ---------------------------------------------------------------------------------------


def _internal_pairs(clusters: Sequence[Sequence[str]], evidence: Evidence) -> list[list[tuple[str, str]]]:
    where = {a: i for i, members in enumerate(clusters) for a in members}
    out: list[list[tuple[str, str]]] = [[] for _ in clusters]
    for pair in evidence.pairs():
        i = where.get(pair[0])
        if i is not None and i == where.get(pair[1]):
            out[i].append(pair)
    return out


def figure_context(facts: Facts, settings: Settings, previous: Previous, store: GraphStore) -> FigureContext:
    """What every cluster's figures are computed against (graph/figures.py): the accounts'
    profiles, the benign baseline, template popularity, the flag threshold, the operators'
    known and learned indicators, the analyst attributions of the previous run and the
    accounts' behaviour-change onsets (graph/takeover.py)."""
    profiles = scoring.account_profiles(facts, read_model_onsets(facts.workspace), read_minute_regularity(facts.workspace))
    cap = int(settings["hub_max_accounts"])
    indicators = attribution.known_indicators(store, facts)
    indicators += attribution.learned_indicators(facts, previous.attributed, {k: sorted(v) for k, v in previous.members.items()}, cap)
    prior = {
        cid: (op, conf, previous.members.get(cid, frozenset())) for cid, (op, conf) in previous.attributed.items()
    }
    return FigureContext(profiles=profiles, baseline=scoring.baseline(profiles.values()),
                         template_users=facts.template_table().sizes(), threshold=float(settings["flag_threshold"]),
                         indicators=indicators, usage=facts, prior=prior, onsets=dict(facts.onsets()))


@dataclass
class Analysis:
    """What ``analyse`` found: the clusters' figures, the clustering, the figure context and
    what became of the analyst's decisions."""

    results: list[ClusterOut]
    found: clustering.Clustering
    context: FigureContext
    decisions: dict[str, list[dict[str, Any]]]


def constrained_clusters(evidence: Evidence, facts: Facts, placements: decisions.Placements, previous: Previous,
                         pool: Executor | None = None,
                         ) -> tuple[clustering.Clustering, dict[int, str], dict[str, list[dict[str, Any]]]]:
    """Cluster the linked accounts without prompt-only links, split what only provider
    infrastructure held together and join the pieces of one operator that act in lock-step
    or of one takeover campaign (graph/separation.py), then keep the analyst's merges and
    splits (graph/decisions.py): each analyst cluster made whole, kept apart from the others,
    and its strong links across are bridges. Returns the clustering, the positions of the
    analyst clusters with their ids, and the report on the decisions."""
    weights, lockstep = separation.clustering_links(evidence)  # takeover campaigns are linked with the rest
    found = clustering.cluster_accounts(weights, family_scores=evidence.family_scores, scores_of=evidence.scores_of,
                                        shares_possession=separation.shares_possession(evidence),
                                        components=evidence.strong_components, pool=pool, corroborating=lockstep)
    campaigns = [accounts for _value, accounts in takeover.campaigns(facts.onsets())]
    found = separation.separate(found, weights, evidence, facts, lockstep, campaigns)
    del lockstep
    if not placements:
        return found, {}, decisions.report(placements, [], np.ones((0, len(FAMILIES))))
    clusters, fixed = decisions.reconcile(found.clusters, placements, previous.members, weights)
    apart = decisions.cannot_links(weights, placements)
    bridges = clustering.find_bridges(clusters, weights, clustering.STRONG)
    return clustering.Clustering(clusters, bridges), fixed, decisions.report(placements, apart, evidence.misses_of(apart))


def analyse(facts: Facts, evidence: Evidence, settings: Settings, previous: Previous, store: GraphStore,
            timings: dict[str, float], placements: decisions.Placements | None = None,
            phase: Callable[[str], None] | None = None) -> Analysis:
    """Cluster (keeping the analyst's ``placements``), score, measure stability and suggest
    operators (no writes); ``phase`` hears which of those it is doing."""
    with clustering.worker_pool() as pool:
        return _analyse(facts, evidence, settings, previous, store, timings, placements, pool, phase or (lambda _text: None))


def _analyse(facts: Facts, evidence: Evidence, settings: Settings, previous: Previous, store: GraphStore,
             timings: dict[str, float], placements: decisions.Placements | None, pool: Executor | None,
             say: Callable[[str], None]) -> Analysis:
    say(f"clustering {len(evidence):,} linked pairs")
    started = time.perf_counter()
    found, fixed, report = constrained_clusters(evidence, facts, placements or decisions.Placements(), previous, pool)
    timings["cluster"] = round(time.perf_counter() - started, 3)
    say(f"scoring {len(found.clusters):,} clusters, with the stability of each flagged one")
    started = time.perf_counter()
    ctx = figure_context(facts, settings, previous, store)
    internal = _internal_pairs(found.clusters, evidence)
    ids = assign_ids(found.clusters, previous.members, fixed)
    timings["score_prepare"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    clock: dict[str, float] = {}
    out = [
        figures_of(cid, members, pairs, evidence.misses_of(pairs), found.bridges, ctx, clock, pool)
        for cid, members, pairs in zip(ids, found.clusters, internal, strict=True)
    ]
    stab_time = clock.get("stability", 0.0)
    timings["score_attribute"] = round(time.perf_counter() - started - stab_time, 3)
    timings["stability"] = round(stab_time, 3)
    return Analysis(out, found, ctx, report)


def links_to_write(a: np.ndarray, b: np.ndarray, weights: np.ndarray, cluster: np.ndarray, per_account: int,
                   ties: np.ndarray | None = None) -> np.ndarray:
    """Which pairs ``a[k]-b[k]`` (account indices; ``cluster[i]`` account i's cluster number,
    -1 for none) become LINKED edges, as indices ascending: inside a cluster, each member's
    ``per_account`` strongest links (a pair stays when it is among either end's strongest);
    across clusters or out of them, every strong link, the bridges: ``ties`` (default
    ``weights``; detection passes the weights clustering saw, prompt-only pairs 0) of at least
    clustering.STRONG.

    Why not every pair above the minimum weight: at the seed scale that is millions of edges
    (an 11,000-account proxy farm alone links each member to hundreds), writing them took
    longer than all the rest of detection, and an investigator reads each account's strongest
    few; the evidence of any other pair is still shown from the shared values themselves.

    >>> links_to_write(np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([0.9, 0.4, 0.2]),
    ...                np.array([0, 0, -1]), per_account=1).tolist()
    [0, 1]
    """
    if not len(a):
        return np.zeros(0, dtype=np.int64)
    side_a, side_b = cluster[a], cluster[b]
    linked = weights >= clustering.MIN_WEIGHT
    inside = linked & (side_a == side_b) & (side_a >= 0)
    keep = linked & ~inside & ((weights if ties is None else ties) >= clustering.STRONG)
    rows = np.flatnonzero(inside)
    if rows.size:
        ends = np.column_stack((a[rows], b[rows])).ravel()
        pair_rows = np.repeat(rows, 2)
        order = np.lexsort((pair_rows, -weights[pair_rows], ends))  # by account, strongest first
        ends, pair_rows = ends[order], pair_rows[order]
        first = np.r_[0, np.flatnonzero(ends[1:] != ends[:-1]) + 1]
        rank = np.arange(ends.size) - np.repeat(first, np.diff(np.r_[first, ends.size]))
        keep[pair_rows[rank < per_account]] = True
    return np.flatnonzero(keep)


def cluster_numbers(names: Sequence[str], owner: Mapping[str, str]) -> np.ndarray:
    """Per account of ``names``, a number for its cluster in ``owner`` (-1: in none), as
    ``links_to_write`` takes them."""
    number = {cid: i for i, cid in enumerate(sorted(set(owner.values())))}
    return np.fromiter((number.get(owner.get(n, ""), -1) for n in names), dtype=np.int64, count=len(names))


def write_back(store: GraphStore, results: Sequence[ClusterOut], evidence: Evidence, previous: Previous,
               operators: set[str], per_account: int = 20, detected_at: str | None = None,
               on_reasons: Callable[[Pair, list[Any]], None] | None = None) -> dict[str, int]:
    """Replace detection outputs in one bulk write, keeping analyst decisions (an analyst
    cluster keeps its id: ``assign_ids``). ``on_reasons`` (if given) hears each LINKED pair's
    reasons, read once for its edge. Not atomic on Neo4j (half a million LINKED do not fit one
    transaction): after a failure, run it again."""
    detected_at = detected_at or now_iso()
    current = {c.cluster_id for c in results}
    owner: dict[str, str] = {a: c.cluster_id for c in results for a in c.members}
    stale = sorted(set(previous.props) - current)
    retired = [cid for cid in stale if previous.analyst_touched(cid)]
    dropped = [cid for cid in stale if not previous.analyst_touched(cid)]
    links = 0
    with store.bulk():
        for rel in (Rel.LINKED, Rel.MEMBER_OF, Rel.SUGGESTED_OPERATOR):
            store.delete_relationships(rel)
        if dropped:
            store.delete_nodes([(Label.CLUSTER.value, cid) for cid in dropped])
        rows = [cluster_row(c, detected_at, c.cluster_id not in previous.props) for c in results]
        for chunk in chunked(rows, WRITE_CHUNK):
            store.upsert_nodes(Label.CLUSTER, chunk)
        retired_rows = []
        for cid in retired:
            votes: dict[str, int] = {}
            for a in previous.members.get(cid, frozenset()):
                if a in owner:
                    votes[owner[a]] = votes.get(owner[a], 0) + 1
            heir = min(votes, key=lambda k: (-votes[k], k)) if votes else ""
            retired_rows.append({"cluster_id": cid, "retired": True, "flagged": False, "size": 0, "superseded_by": heir})
        store.upsert_nodes(Label.CLUSTER, retired_rows)
        member_rows = [row for c in results for row in member_rows_of(c)]
        for chunk in chunked(member_rows, WRITE_CHUNK):
            store.upsert_relationships(Rel.MEMBER_OF, Label.ACCOUNT, Label.CLUSTER, chunk)
        links = store.upsert_relationship_chunks(Rel.LINKED, Label.ACCOUNT, Label.ACCOUNT,
                                                 _link_rows(evidence, owner, per_account, on_reasons))
        suggestion_rows = [
            {"start": c.cluster_id, "end": c.suggestion.operator_id, "confidence": c.suggestion.confidence,
             "indicators": json.dumps(c.suggestion.indicators)}
            for c in results if c.suggestion is not None and c.suggestion.operator_id in operators
        ]
        store.upsert_relationships(Rel.SUGGESTED_OPERATOR, Label.CLUSTER, Label.OPERATOR, suggestion_rows)
    return {"links": links, "retired": len(retired), "dropped": len(dropped), "suggestions": len(suggestion_rows)}


def _link_rows(evidence: Evidence, owner: Mapping[str, str], per_account: int,
               on_reasons: Callable[[Pair, list[Any]], None] | None) -> Iterator[list[dict[str, Any]]]:
    """The LINKED rows ``links_to_write`` picks, in chunks of ``WRITE_CHUNK``, each pair's
    reasons read once (and handed to ``on_reasons``) as its chunk is made."""
    pairs = evidence.pairs()
    names, a, b = evidence.pair_indices()
    misses = evidence.misses()
    weights = 1.0 - misses.prod(axis=1)
    present = misses < 1.0
    alphabetical = sorted(range(len(FAMILIES)), key=lambda f: FAMILIES[f])
    chosen = links_to_write(a, b, weights, cluster_numbers(names, owner), per_account, ties=figure_weights(misses))
    for chunk in chunked(chosen.tolist(), WRITE_CHUNK):
        rows = []
        for i in chunk:
            pair = pairs[i]
            reasons = evidence.reasons(pair)
            if on_reasons is not None:
                on_reasons(pair, reasons)
            rows.append({
                "start": pair[0], "end": pair[1], "weight": round(float(weights[i]), 4),
                "families": [FAMILIES[f] for f in alphabetical if present[i, f]],
                "reasons": json.dumps([r.to_json() for r in reasons], default=str),
            })
        yield rows


def _hub_summary(evidence: Evidence, top: int = 20) -> dict[str, Any]:
    by_why: dict[str, int] = {}
    for hub in evidence.hubs:
        by_why[hub.why] = by_why.get(hub.why, 0) + 1
    biggest = sorted(evidence.hubs, key=lambda h: (-h.accounts, h.label, h.key))[:top]
    return {"total": len(evidence.hubs), "by_reason": dict(sorted(by_why.items())), "largest": [h.to_json() for h in biggest]}


def _save_reports(workspace: Path, summary: dict[str, Any], evidence: Evidence) -> None:
    detection_dir(workspace).mkdir(parents=True, exist_ok=True)
    hubs = sorted((h.to_json() for h in evidence.hubs), key=lambda h: (-h["accounts"], h["label"], h["key"]))
    hubs_path(workspace).write_text(json.dumps(hubs, indent=1))
    last_run_path(workspace).write_text(json.dumps(summary, indent=2))


def run_detection(store: GraphStore, settings: Settings, *, phase: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run detection over the store and write the results back; returns the summary.
    ``phase`` (if given) hears what the run is doing, for a progress display. The setting
    ``engine`` says where the pair stages run (graph/engine); the answer is the same."""
    with open_engine(settings) as engine:
        return _run_detection(store, settings, engine, phase)


def _run_detection(store: GraphStore, settings: Settings, engine: Engine, phase: Callable[[str], None] | None) -> dict[str, Any]:
    say = phase or (lambda _text: None)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    workspace = settings.workspace
    started = time.perf_counter()
    say("reading accounts, shared values and uses")
    facts = read_facts(store, workspace if workspace.exists() else None, onsets=True)
    previous = read_previous(store)
    placements = decisions.read(store, previous.members, facts.accounts)
    timings["read"] = round(time.perf_counter() - started, 3)
    evidence = engine.link_accounts(facts, int(settings["hub_max_accounts"]), timings, keep_floor=clustering.MIN_WEIGHT, phase=say)
    analysis = analyse(facts, evidence, settings, previous, store, timings, placements, phase=say)
    results, found = analysis.results, analysis.found
    say(f"writing {len(results):,} clusters and their links")
    started = time.perf_counter()
    detected_at = now_iso()
    operators = {n.key for n in store.iter_nodes(Label.OPERATOR)}
    owner = {a: c.cluster_id for c in results for a in c.members}
    collector = ProviderPairs.Collector(facts, owner)
    written = write_back(store, results, evidence, previous, operators, int(settings["links_per_account"]), detected_at,
                         on_reasons=collector.add)
    collector.add_network_pairs(evidence, owner)
    providers = collector.done()
    written["infrastructure"] = separation.write_relations(store, providers.relations(owner))
    timings["write"] = round(time.perf_counter() - started, 3)
    if workspace.exists():
        started = time.perf_counter()
        saved_context.save(workspace, detected_at, analysis.context, PairTable.from_evidence(evidence, owner), providers)
        timings["save_figure_context"] = round(time.perf_counter() - started, 3)
    timings["total"] = round(time.perf_counter() - t_all, 3)
    flagged = [c for c in results if c.flagged]
    summary = {
        "accounts": len(facts.accounts),
        "clusters": len(results),
        "flagged": len(flagged),
        "accounts_clustered": sum(len(c.members) for c in results),
        "accounts_flagged": sum(len(c.members) for c in flagged),
        "links": written["links"],
        "pairs_considered": evidence.candidate_pairs,
        "pairs_kept": len(evidence),
        "bridges": len(found.bridges),
        "suppressed_hubs": _hub_summary(evidence),
        "suggestions": written["suggestions"],
        "retired_clusters": written["retired"],
        "analyst_decisions": analysis.decisions,
        "shared_infrastructure": written["infrastructure"],
        "families": list(FAMILIES),
        "top_clusters": [
            {"cluster_id": c.cluster_id, "size": len(c.members), "score": c.score.score, "flagged": c.flagged,
             "suggested_operator": c.suggestion.operator_id if c.suggestion else "",
             "suggestion_confidence": c.suggestion.confidence if c.suggestion else 0.0}
            for c in sorted(results, key=lambda c: (-c.score.score, c.cluster_id))[:10]
        ],
        "timings": timings,
    }
    if workspace.exists():
        _save_reports(workspace, summary, evidence)
    return summary
