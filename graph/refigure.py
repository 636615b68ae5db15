"""New figures for the clusters an analyst's merge or split changed, computed by detection's code.

``Refigure.of(store, settings, clusters)`` finds the figure context (graph/figures.py) those
clusters were computed in: the one the last detection run saved (graph/saved_context.py), when
it is that of the run the clusters carry in ``detected_at``; otherwise it builds one from the
store and staging exactly as detection does (graph/detection.py ``figure_context``: it reads and
links every account, so it is slower, but the figures are right either way). ``changes``
then gives each changed cluster's properties, its members' MEMBER_OF rows (bridge flag,
takeover campaign), its suggested operator and the SHARES_INFRASTRUCTURE relations it has
with any cluster; ``ties`` what holds the two sides of a split together.

The figures of a cluster are those detection computes for the same members: a re-run of
detection over unchanged data writes them again unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graph import clustering, detection, saved_context
from graph.figures import (
    PairTable,
    ProviderPairs,
    cluster_row,
    empty_row,
    figures_of,
    member_rows,
    ties,
)
from graph.linkage import link_accounts, read_facts
from graph.saved_context import SavedContext
from graph.schema import Label, Rel
from graph.settings import Settings
from graph.store import GraphStore

ALL = 10**9


def rebuild(store: GraphStore, settings: Settings | None) -> SavedContext:
    """The figure context built from the store (and staging, when the workspace has it) the
    way detection builds it; ``settings`` None: the defaults, store only."""
    settings = settings or Settings({}, environ={})
    workspace = settings.workspace if settings.workspace.exists() else None
    facts = read_facts(store, workspace)
    evidence = link_accounts(facts, int(settings["hub_max_accounts"]), keep_floor=clustering.MIN_WEIGHT)
    ctx = detection.figure_context(facts, settings, detection.read_previous(store), store)
    return SavedContext("", ctx, PairTable.from_evidence(evidence, facts.accounts),
                        ProviderPairs.from_evidence(evidence, facts, facts.accounts))


@dataclass
class Refigure:
    """The figure context of a store's clusters, ready to refigure any membership of them."""

    store: GraphStore
    saved: SavedContext
    source: str  # "saved" (the last detection run's) or "rebuilt"

    @classmethod
    def of(cls, store: GraphStore, settings: Settings | None, clusters: Iterable[str], accounts: Iterable[str]) -> Refigure:
        """The context for refiguring ``clusters`` (ids of existing clusters) over ``accounts``
        (every account they will hold)."""
        stamps = set()
        for cid in clusters:
            node = store.get_node(Label.CLUSTER, cid)
            if node is not None and node.props.get("size"):
                stamps.add(str(node.props.get("detected_at") or ""))
        workspace = settings.workspace if settings is not None else None
        saved = saved_context.load(workspace)
        if saved is not None and stamps <= {saved.detected_at} and all(a in saved.context.profiles for a in accounts):
            return cls(store, saved, "saved")
        return cls(store, rebuild(store, settings), "rebuilt")

    def ties(self, members: Sequence[str], side: Iterable[str]) -> dict[str, Any]:
        """``figures.ties`` between ``side`` and the rest of ``members``."""
        pairs, misses = self.saved.pairs.within(members)
        return ties(pairs, misses, side)

    def _clusters_of(self, accounts: Sequence[str]) -> dict[str, str]:
        """The cluster each of ``accounts`` is a member of in the store."""
        if not accounts:
            return {}
        wanted = set(accounts)
        sub = self.store.neighbours([(Label.ACCOUNT.value, a) for a in accounts], [Rel.MEMBER_OF], limit=ALL)
        return {r.start[1]: r.end[1] for r in sub.relationships
                if r.type == Rel.MEMBER_OF and r.start[0] == Label.ACCOUNT and r.start[1] in wanted}

    def changes(self, memberships: Mapping[str, Sequence[str]]) -> Changes:
        """The new figures for ``memberships`` (cluster id -> its members after the change; an
        empty list gives ``figures.empty_row``)."""
        owner = {a: cid for cid, members in memberships.items() for a in members}
        strong = {cid: self.saved.pairs.strong_across(members) for cid, members in memberships.items() if members}
        partners = sorted({y for pairs in strong.values() for _, y in pairs} - set(owner))
        owner.update({a: cid for a, cid in self._clusters_of(partners).items() if a not in owner})
        out = Changes()
        for cid, members in memberships.items():
            if not members:
                out.clusters.append(empty_row(cid))
                continue
            bridges = {x for x, y in strong[cid] if owner.get(y, cid) != cid}
            ordered = sorted(members)
            pairs, misses = self.saved.pairs.within(ordered)
            figures = figures_of(cid, ordered, pairs, misses, bridges, self.saved.context)
            row = cluster_row(figures, "", is_new=False)
            row.pop("detected_at")
            out.clusters.append(row)
            out.members += member_rows(figures)
            if figures.suggestion is not None:
                s = figures.suggestion
                out.suggestions.append({"start": cid, "end": s.operator_id, "confidence": s.confidence,
                                        "indicators": json.dumps(s.indicators)})
        out.infrastructure = self._infrastructure(memberships)
        return out

    def _infrastructure(self, memberships: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
        """The SHARES_INFRASTRUCTURE rows with an end among the clusters of ``memberships``,
        their other ends where the store has their accounts now."""
        providers = self.saved.providers
        owner = {a: cid for cid, members in memberships.items() for a in members}
        partners = sorted(providers.partners(owner) - set(owner))
        owner.update({a: cid for a, cid in self._clusters_of(partners).items() if a not in owner})
        return providers.relations(owner, touching=memberships)


@dataclass
class Changes:
    """What to write for the refigured clusters: Cluster rows (detection's properties, less
    ``detected_at`` and ``status``), MEMBER_OF rows (bridge flag, takeover campaign), the
    SUGGESTED_OPERATOR rows (before checking the operator exists) and the SHARES_INFRASTRUCTURE
    rows of every relation with an end among them (which replace all they had)."""

    clusters: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    infrastructure: list[dict[str, Any]] = field(default_factory=list)

    def figures(self, cluster_id: str) -> dict[str, Any]:
        """The headline figures of one refigured cluster, for its audit event."""
        row = next(r for r in self.clusters if r["cluster_id"] == cluster_id)
        return {k: row[k] for k in ("size", "exchanges", "score", "flagged")}
