"""The folded evidence graph of a big cluster: members grouped by what they share.

Member by member, an evidence graph costs about 3 kB per member in the XML formats (its
account, its uses, its link), so a 5,000-member cluster is 13 – 17 MB of GraphML or GEXF and
the seed world's 11,000-member clusters more than twice that. Above the
``evidence_fold_members`` setting ``build_evidence`` folds the graph (``fold_evidence``):

- members who use the same set of shared values (and belong to the same chosen clusters) form
  one **group** (``MEMBER_GROUP``, keys ``g001``, ``g002``… largest first) carrying
  ``members`` (how many), ``account_ids`` (who, sorted), ``shared_values`` (how many values
  all of them use), their activity summed (``exchanges``, ``input_tokens``,
  ``output_tokens``), their span (``first_seen``/``last_seen``, ``created_from``/
  ``created_to``), ``bridges`` and ``compromised`` counts, and the links among themselves
  (``links_inside``, ``weight_inside`` the strongest);
- members whose signature fewer than ``min_group`` (3) members have form one group of the
  rest per set of clusters (``rest``: true; its ``shared_values`` is what all of them use);
- when that leaves more than ``max_groups`` groups, or more than ``REST_SHARE`` (10 %) of the
  members in the rest, the signature is coarsened: the least
  telling values are set aside, weakest kind first (prompt templates, e-mail domains,
  addresses, networks, client fingerprints, devices, billing patterns, payment instruments),
  within a kind those fewest members use, as few as needed (a binary search: setting more
  aside never makes more groups). So the groups stay bounded by ``max_groups`` whatever the
  cluster's size (beyond it only if the selection's clusters overlap in more ways than that);
  a group's uses still say how many of its members use each value;
- one use per (group, value), of the use's type, with ``members``, summed ``count`` (and
  ``ips``, ``instruments``) and the time span; one ``MEMBER_OF`` per (group, cluster) with
  ``members``;
- one ``LINKED`` per pair of groups with ``links`` (how many of detection's links join their
  members: all of them, not only the capped ones the unfolded graph keeps), ``weight`` (the
  strongest), ``weight_mean`` and ``families``;
- everything else as it was: the shared values (all of them, each still used by two or more
  members), hubs collapsed, ``SHARES_INFRASTRUCTURE``, operators and indicators.

The result says it is folded (``EvidenceGraph.fold``, ``fold_note``: every writer carries it,
GraphML and JSON as a graph property, GEXF in its description, STIX in the cluster's
grouping, the HTML page and the report in their text) and keeps the graph it came from
(``unfolded``), whose members and strongest links the report writes to members.csv and
links.csv.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from graph.evidence import MEMBER_GROUP, EvidenceGraph
from graph.schema import Label, Rel
from graph.store import Node, NodeKey, Relationship

DROP_ORDER = (Label.PROMPT_TEMPLATE.value, Label.EMAIL_DOMAIN.value, Label.IP.value, Label.NETWORK.value,
              Label.CLIENT_FINGERPRINT.value, Label.DEVICE.value, "BillingPattern", Label.PAYMENT_METHOD.value)
"""Kinds of value, the least telling first: the order they are set aside in when the members'
full signatures make too many groups."""
SUMMED = ("exchanges", "input_tokens", "output_tokens")
MIN_GROUP = 3
"""Members whose set of shared values fewer than this many members have join one group of the
rest (per set of clusters): a folded 2,200-member cluster had 97 groups of one member."""
REST_SHARE = 0.1
"""At most this share of the members go to the groups of the rest: more, and values are set
aside until their members fall into groups (with every prompt template in the signature, all
but 206 of that cluster's 2,200 members were left over)."""
USE_SUMS = ("count", "ips", "instruments")


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _span(items: Iterable[dict[str, Any]], first: str = "first_seen", last: str = "last_seen") -> tuple[str, str]:
    lo, hi = "", ""
    for p in items:
        a, b = str(p.get(first) or ""), str(p.get(last) or p.get(first) or "")
        if a and (not lo or a < lo):
            lo = a
        if b and b > hi:
            hi = b
    return lo, hi


def _signatures(values_of: dict[NodeKey, list[tuple[int, NodeKey]]], clusters_of: dict[NodeKey, tuple[str, ...]],
                dropped: int) -> dict[NodeKey, tuple[Any, ...]]:
    """Each member's signature with the ``dropped`` least telling values set aside (a value's
    rank is its place in the drop order)."""
    return {m: (clusters_of[m], tuple(v for rank, v in vals if rank >= dropped)) for m, vals in values_of.items()}


def _grouped(signatures: dict[NodeKey, tuple[Any, ...]], min_group: int) -> dict[tuple[Any, ...], list[NodeKey]]:
    """Members by signature; those whose signature fewer than ``min_group`` members have go
    to one group of the rest per set of clusters (signature ``(clusters, None)``)."""
    by: dict[tuple[Any, ...], list[NodeKey]] = defaultdict(list)
    for m, sig in signatures.items():
        by[sig].append(m)
    out: dict[tuple[Any, ...], list[NodeKey]] = defaultdict(list)
    for sig, accts in by.items():
        out[sig if len(accts) >= min_group else (sig[0], None)].extend(accts)
    return out


def coarsest_needed(values_of: dict[NodeKey, list[tuple[int, NodeKey]]], clusters_of: dict[NodeKey, tuple[str, ...]],
                    ranked: int, max_groups: int, min_group: int = 1, rest_share: float = 1.0) -> int:
    """The fewest values to set aside (by rank) so that at most ``max_groups`` groups are left
    and the groups of the rest hold at most ``rest_share`` of the members (or as few as
    setting every value aside leaves), found by bisection: setting more aside merges
    signatures, so there are fewer groups and fewer members left over (with ``min_group`` a
    merge can also lift a few into a group of their own, so this is only nearly monotone; the
    answer found meets both bounds all the same)."""
    most_rest = max(min_group, int(rest_share * len(values_of)))

    def fits(k: int) -> bool:
        grouped = _grouped(_signatures(values_of, clusters_of, k), min_group)
        rest = sum(len(a) for sig, a in grouped.items() if sig[1] is None)
        return len(grouped) <= max_groups and rest <= most_rest

    if fits(0):
        return 0
    lo, hi = 0, ranked  # fits(lo) is false; hi: every value set aside, the fewest groups there can be
    if not fits(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return hi


def fold_evidence(graph: EvidenceGraph, *, max_groups: int = 200, min_group: int = MIN_GROUP,
                  rest_share: float = REST_SHARE, all_links: Sequence[Relationship] | None = None) -> EvidenceGraph:
    """``graph`` with its members folded into groups (see the module docstring).
    ``all_links``: every LINKED among the members (the graph holds the capped ones); the
    groups' links count these."""
    members = graph.members()
    mset = set(members)
    clusters: dict[NodeKey, set[str]] = defaultdict(set)
    member_of: dict[NodeKey, list[Relationship]] = defaultdict(list)
    uses: dict[NodeKey, list[Relationship]] = defaultdict(list)
    kept_rels: list[Relationship] = []
    for rel in graph.relationships:
        if rel.start in mset and rel.type == Rel.MEMBER_OF:
            clusters[rel.start].add(rel.end[1])
            member_of[rel.start].append(rel)
        elif rel.start in mset and rel.type == Rel.LINKED:
            continue
        elif rel.start in mset and rel.end not in mset:
            uses[rel.start].append(rel)
        elif rel.start not in mset and rel.end not in mset:
            kept_rels.append(rel)
    nodes = graph.node_map()
    value_members: dict[NodeKey, int] = defaultdict(int)
    for rels in uses.values():
        for v in {r.end for r in rels}:
            value_members[v] += 1
    kind_rank = {k: i for i, k in enumerate(DROP_ORDER)}
    # A value every member uses splits nothing: never set aside (nor named as set aside).
    order = sorted((v for v, n in value_members.items() if n < len(members)),
                   key=lambda v: (kind_rank.get(v[0], -1), value_members[v], v))
    rank = {v: i for i, v in enumerate(order)}
    rank.update({v: len(order) for v, n in value_members.items() if n >= len(members)})
    values_of = {m: sorted({(rank[r.end], r.end) for r in uses.get(m, [])}, reverse=True) for m in members}
    clusters_of = {m: tuple(sorted(clusters[m])) for m in members}
    dropped = coarsest_needed(values_of, clusters_of, len(order), max_groups, min_group, rest_share)
    by_signature = _grouped(_signatures(values_of, clusters_of, dropped), min_group)
    # the rest last, the others largest first
    ordered = sorted(((sig, sorted(accts)) for sig, accts in by_signature.items()),
                     key=lambda kv: (kv[0][1] is None, -len(kv[1]), kv[1][0]))
    width = max(3, len(str(len(ordered))))
    group_of: dict[NodeKey, NodeKey] = {}
    groups: list[tuple[NodeKey, tuple[Any, ...], list[NodeKey]]] = []
    for i, (sig, accts) in enumerate(ordered, start=1):
        ref: NodeKey = (MEMBER_GROUP, f"g{i:0{width}d}")
        groups.append((ref, sig, accts))
        for a in accts:
            group_of[a] = ref
    links = list(all_links) if all_links is not None else [r for r in graph.relationships if r.type == Rel.LINKED]
    between: dict[tuple[NodeKey, NodeKey], list[Relationship]] = defaultdict(list)
    for rel in links:
        ga, gb = group_of.get(rel.start), group_of.get(rel.end)
        if ga is None or gb is None:
            continue
        between[(ga, gb) if ga <= gb else (gb, ga)].append(rel)
    group_nodes, group_rels = [], []
    for ref, sig, accts in groups:
        common = set.intersection(*({v for _rank, v in values_of[a]} for a in accts)) if accts else set()
        props: dict[str, Any] = {"members": len(accts), "account_ids": [a[1] for a in accts],
                                 "shared_values": len(common)}
        if sig[1] is None:
            props["rest"] = True  # members whose values fewer than min_group others share
        account_props = [nodes[a].props if a in nodes else {} for a in accts]
        for name in SUMMED:
            total = sum(_num(p.get(name)) for p in account_props)
            if total:
                props[name] = int(total)
        first, last = _span(account_props)
        created_from, created_to = _span(account_props, "created_at", "created_at")
        props.update({k: v for k, v in (("first_seen", first), ("last_seen", last), ("created_from", created_from),
                                         ("created_to", created_to)) if v})
        inside = between.pop((ref, ref), [])
        props["links_inside"] = len(inside)
        if inside:
            props["weight_inside"] = round(max(_num(r.props.get("weight")) for r in inside), 4)
        memberships: dict[NodeKey, list[Relationship]] = defaultdict(list)
        for a in accts:
            for rel in member_of[a]:
                memberships[rel.end].append(rel)
        for cluster, rels in sorted(memberships.items()):
            mp = {"members": len(rels), "bridges": sum(1 for r in rels if r.props.get("bridge") is True),
                  "compromised": sum(1 for r in rels if r.props.get("compromised") is True)}
            group_rels.append(Relationship(Rel.MEMBER_OF.value, ref, cluster, mp))
        props["bridges"] = sum(1 for a in accts for r in member_of[a] if r.props.get("bridge") is True)
        props["compromised"] = sum(1 for a in accts for r in member_of[a] if r.props.get("compromised") is True)
        per_value: dict[tuple[str, NodeKey], list[Relationship]] = defaultdict(list)
        for a in accts:
            for rel in uses.get(a, []):
                per_value[(rel.type, rel.end)].append(rel)
        for (rel_type, value), rels in sorted(per_value.items()):
            up: dict[str, Any] = {"members": len({r.start for r in rels})}
            for name in USE_SUMS:
                total = sum(_num(r.props.get(name)) for r in rels)
                if total:
                    up[name] = int(total)
            f, la = _span(r.props for r in rels)
            up.update({k: v for k, v in (("first_seen", f), ("last_seen", la)) if v})
            group_rels.append(Relationship(rel_type, ref, value, up))
        group_nodes.append(Node(ref[0], ref[1], props))
    for (a, b), rels in sorted(between.items()):
        weights = [_num(r.props.get("weight")) for r in rels]
        families = sorted({str(f) for r in rels for f in (r.props.get("families") or [])
                           if isinstance(r.props.get("families"), list)})
        lp: dict[str, Any] = {"links": len(rels), "weight": round(max(weights), 4),
                              "weight_mean": round(sum(weights) / len(weights), 4), "families": families}
        group_rels.append(Relationship(Rel.LINKED.value, a, b, lp))
    left_out = {k: v for k, v in graph.left_out.items() if k != "LINKED over the cap"}
    left_out["member accounts folded into groups"] = len(members)
    left_out["LINKED between members, counted in links between groups"] = len(links)
    if dropped:
        kinds = sorted({v[0] for v in order[:dropped]}, key=lambda k: (kind_rank.get(k, -1), k))
        signature = (f"the shared values they use but the {dropped:,} least shared ({', '.join(kinds)}), set aside "
                     f"to keep at most about {max_groups:,} groups and {rest_share:.0%} of the members in the rest")
    else:
        signature = "the shared values they use"
    kept_nodes = [n for n in graph.nodes if n.ref not in mset]
    return EvidenceGraph(
        nodes=sorted([*kept_nodes, *group_nodes], key=lambda n: n.ref),
        relationships=sorted([*kept_rels, *group_rels], key=lambda r: r.ref),
        cluster_ids=list(graph.cluster_ids),
        hubs=dict(graph.hubs),
        left_out=dict(sorted(left_out.items())),
        truncated=graph.truncated,
        fold={"members": len(members), "groups": len(groups), "links": len(links), "signature": signature,
              "values_set_aside": dropped},
        unfolded=graph,
    )
