"""The evidence graph of a cluster: what links its members, and nothing that does not.

Every evidence export (graph files, STIX, the HTML graph, the report) and the UI's cluster
canvas draw the same graph, built here by ``build_evidence(store, cluster_ids)``:

- the clusters, their members (``MEMBER_OF``) and the operators they are attributed
  (``ATTRIBUTED_TO``) or suggested (``SUGGESTED_OPERATOR``) to;
- the **shared values** that link two or more members: payment instruments, BIN + billing
  patterns (``BILLING_PATTERN`` nodes: different cards bought together, see
  graph.linkage.payment), devices, client fingerprints, e-mail domains, prompt templates and
  IP addresses. A network where the members used ``fold_ips`` or more addresses is shown as
  the network instead of its addresses; elsewhere a shared address is shown with its
  network, and a member's unshared addresses in a shown network become one use of the
  network. Each value carries ``members`` (how many members use it), ``accounts`` (how many
  accounts use it overall, where the store can say) and ``first_seen``/``last_seen``;
- one use per (account, value) with ``count`` and ``first_seen``/``last_seen`` (a folded
  network's use sums its addresses' and says how many in ``ips``);
- **hubs**, values more than ``degree_cap`` accounts use overall (a carrier-NAT address) among
  those that could be evidence (any address; any other value two or more members use), as
  one ``HUB`` node per label with how many hubs and members, joined to the cluster by
  ``HAS_HUB``; the values themselves are left out (``EvidenceGraph.hubs`` lists them). A hub
  template the graph holds without its uses (``uses_staged``, see loaders/graph_write.py) is
  counted by its node's ``accounts``, and the members' uses of it are read from staging (with
  ``workspace``; without one such templates are not seen);
- ``LINKED`` among members with their reasons, at most ``links_per_account`` per member, the
  strongest (see ``cap_links``);
- ``SHARES_INFRASTRUCTURE`` to other clusters, where detection wrote it;
- the operators' indicators that match: those the detector's suggestion names, or whose
  value is a node of this graph (joined to it by ``MATCHES``).

No node links fewer than two members, but for hub summaries, operator indicators, the
clusters and operators. A value used by one member only says nothing about a link, and was
most of what a one-hop export held (50,000 templates one account sent).

A cluster (or selection) of more than ``fold_members`` members (the ``evidence_fold_members``
setting) is **folded** (graph/evidence_fold.py): its members are grouped by the shared values
they use (``MEMBER_GROUP`` nodes with their member count and list), one use per (group,
value), links between groups aggregated; ``EvidenceGraph.fold`` says so and ``unfolded``
keeps the graph it was folded from, whose members and links the report's tables list.

Address uses are read already aggregated (``store.ip_uses``): the store sums each member's
uses per network, leaves out the hubs, and sends address-level uses only for the addresses
shown (shared ones outside a folded network), so a proxy pool's 200,000 uses cross as a few
thousand. The other uses are read per batch of members (``store.neighbours`` with a limit
and the degree cap; a batch that hits the limit is split), never one hop of everything at
once: a value over the cap is left out by the store, and ``store.users_among`` says which
members use it (a campaign's popular templates, 97,000 uses of a 2,200-member cluster).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.investigate.search import USES_STAGED, staged_uses
from graph.linkage.payment import billing_pattern
from graph.props import loads
from graph.schema import INFRASTRUCTURE_RELS, USE_REL_OF, Label, Rel, primary_source
from graph.settings import Settings
from graph.store import GraphStore, IpUses, Node, NodeKey, Relationship, Subgraph
from graph.workspace import hubs_path

BILLING_PATTERN = "BillingPattern"
"""A BIN + billing pattern (key ``bin|country|postal|name hash``) two members' cards share."""
HUB = "Hub"
"""The hubs of one label, summarised (key: the label)."""
HAS_HUB = "HAS_HUB"
"""(Cluster)-[HAS_HUB {members}]->(Hub): how many of the cluster's members use those hubs."""
MEMBER_GROUP = "MemberGroup"
"""Members of a folded evidence graph who share the same shared values (key ``g001``…)."""
MATCHES = "MATCHES"
"""(Indicator)-[MATCHES]->(value): an operator indicator naming a value of this graph."""
EVIDENCE_LABELS = (BILLING_PATTERN, HUB, MEMBER_GROUP)

FOLD_IPS = 5
MEMBER_BATCH = 500
READ_LIMIT = 200_000
ALL = 10**9
OPERATOR_RELS = (Rel.ATTRIBUTED_TO.value, Rel.SUGGESTED_OPERATOR.value)
CLUSTER_RELS = (Rel.MEMBER_OF.value, *OPERATOR_RELS, Rel.SHARES_INFRASTRUCTURE.value)
USE_TYPES = tuple(r.value for r in INFRASTRUCTURE_RELS)
# Read per relationship; address uses come aggregated from ``store.ip_uses``.
PLAIN_USE_TYPES = tuple(t for t in USE_TYPES if t != Rel.USED_IP)
USE_OF = USE_REL_OF
VALUE_LABELS = (*USE_OF, Label.NETWORK.value, BILLING_PATTERN)
# Labels an operator indicator type names directly.
INDICATOR_LABEL = {
    "ip": Label.IP.value, "network": Label.NETWORK.value, "payment": Label.PAYMENT_METHOD.value,
    "email_domain": Label.EMAIL_DOMAIN.value, "device": Label.DEVICE.value,
    "client_fingerprint": Label.CLIENT_FINGERPRINT.value, "prompt_template": Label.PROMPT_TEMPLATE.value,
}


@dataclass
class EvidenceGraph:
    """The nodes and relationships an export writes (sorted, so files are reproducible).

    ``hubs``: the values left out as hubs, with how many accounts use each. ``left_out``:
    what was not included, by kind (``single-member <Label>``, ``LINKED over the cap``,
    ``unmatched indicators``). ``full``: a one-hop export (``select``), not the evidence graph.
    ``truncated``: a member's neighbourhood exceeded the read limit and was cut.
    ``fold``: empty, or how the members were folded into groups (``members``, ``groups``,
    ``links``, ``signature``: see graph/evidence_fold.py); ``unfolded``: the evidence graph
    before folding (the report's member and link tables are its), never written as it is."""

    nodes: list[Node] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)
    cluster_ids: list[str] = field(default_factory=list)
    hubs: dict[NodeKey, int] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)
    full: bool = False
    truncated: bool = False
    fold: dict[str, Any] = field(default_factory=dict)
    unfolded: EvidenceGraph | None = None

    @property
    def folded(self) -> bool:
        return bool(self.fold)

    def member_count(self) -> int:
        """How many member accounts the graph stands for (a folded graph's are in its groups)."""
        return int(self.fold["members"]) if self.fold else len(self.members())

    def fold_note(self) -> str:
        """What a folded graph is, in one sentence every writer carries ("" when not folded)."""
        if not self.fold:
            return ""
        f = self.fold
        return (f"{int(f['members']):,} members folded into {int(f['groups']):,} groups by {f['signature']}; "
                f"each group lists its members (account_ids), links between groups count the "
                f"{int(f['links']):,} links between their members; every member is a row of the report's "
                f"members.csv and each member's strongest links are rows of its links.csv")

    def node_map(self) -> dict[NodeKey, Node]:
        return {n.ref: n for n in self.nodes}

    def members(self, cluster_id: str | None = None) -> list[NodeKey]:
        """The member accounts (of one cluster, or of all), sorted: none in a folded graph,
        whose members are in its groups (``member_count``)."""
        return sorted({r.start for r in self.relationships if r.type == Rel.MEMBER_OF and r.start[0] == Label.ACCOUNT
                       and (cluster_id is None or r.end[1] == cluster_id)})

    def shared_values(self) -> list[Node]:
        """The value nodes, most members first."""
        values = [n for n in self.nodes if n.label in VALUE_LABELS]
        return sorted(values, key=lambda n: (-int(n.props.get("members") or 0), n.label, n.key))

    def edges_of(self, ref: NodeKey) -> list[Relationship]:
        return [r for r in self.relationships if ref in (r.start, r.end)]

    def size(self) -> tuple[int, int]:
        return len(self.nodes), len(self.relationships)


# ---- reading -----------------------------------------------------------------------------------


@dataclass
class _Uses:
    """What the member batches read: per value, each member's use (relationship properties)."""

    uses: dict[NodeKey, dict[NodeKey, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    ip_network: dict[str, str] = field(default_factory=dict)
    payment_props: dict[str, dict[str, Any]] = field(default_factory=dict)
    hubs: dict[NodeKey, int] = field(default_factory=dict)
    hub_users: dict[NodeKey, set[NodeKey]] = field(default_factory=lambda: defaultdict(set))
    label_hub_users: dict[str, set[NodeKey]] = field(default_factory=lambda: defaultdict(set))
    degrees: dict[NodeKey, int] = field(default_factory=dict)
    capped: dict[NodeKey, int] = field(default_factory=dict)
    truncated: bool = False


def _read_batch(store: GraphStore, batch: Sequence[NodeKey], limit: int, degree_cap: int | None, out: _Uses) -> None:
    """One batch's uses; a batch whose neighbours exceed ``limit`` is read in halves. Values
    over ``degree_cap`` are left out by the store (``out.capped``, see ``_read_capped``):
    a campaign's popular templates were 97,000 of a 2,200-member cluster's 103,000 uses."""
    sub = store.neighbours(batch, list(PLAIN_USE_TYPES), limit=limit, degree_cap=degree_cap)
    if sub.truncated and len(batch) > 1:
        half = len(batch) // 2
        _read_batch(store, batch[:half], limit, degree_cap, out)
        _read_batch(store, batch[half:], limit, degree_cap, out)
        return
    out.truncated |= sub.truncated
    out.capped.update(sub.hubs)
    for node in sub.nodes:
        if node.label == Label.PAYMENT_METHOD:
            out.payment_props[node.key] = dict(node.props)
    for rel in sub.relationships:
        out.uses[rel.end][rel.start] = rel.props


def _read_staged_templates(store: GraphStore, workspace: Path | None, members: Sequence[NodeKey],
                           read: _Uses) -> dict[NodeKey, int]:
    """The members' uses of the templates whose uses stay in staging (``uses_staged``: hub
    templates, written without SENT_TEMPLATE), read from staging into ``read``; returns how many
    accounts send each such template overall, from its node (``store.degrees`` would count
    only the relationships, none or the few written before it became a hub)."""
    source = primary_source(Label.PROMPT_TEMPLATE.value)
    if workspace is None or source is None or not members:
        return {}
    nodes = store.find_nodes(Label.PROMPT_TEMPLATE, {USES_STAGED: True})
    counted = {n.ref: int(n.props["accounts"]) for n in nodes if isinstance(n.props.get("accounts"), int)}
    if not counted:
        return {}
    uses = staged_uses(workspace, source, sorted(ref[1] for ref in counted), [m[1] for m in members])
    for template_id, users in uses.items():
        ref: NodeKey = (Label.PROMPT_TEMPLATE.value, template_id)
        for account, use in users.items():
            read.uses[ref][(Label.ACCOUNT.value, account)] = use
    return counted


def _read_capped(store: GraphStore, members: Sequence[NodeKey], read: _Uses, degree_cap: int | None, chunk: int,
                 known: Mapping[NodeKey, tuple[int, str]]) -> None:
    """The values the batches left out as over the degree cap: one two or more members use is
    a hub (at detection's count if ``known`` has it, as in ``_find_hubs``), with who uses it
    (``store.users_among``, no relationship read); one a single member uses is no hub and
    counts as a single-member value, a payment instrument's use then read for its billing
    pattern."""
    capped = sorted(read.capped)
    accounts = [key for _label, key in members]
    users: dict[NodeKey, list[str]] = {}
    for start in range(0, len(capped), chunk):
        users.update(store.users_among(capped[start : start + chunk], accounts, list(PLAIN_USE_TYPES)))
    alone: list[NodeKey] = []
    for value, who in users.items():
        refs = {(Label.ACCOUNT.value, a) for a in who}
        if len(refs) >= 2:
            over = degree_cap is not None and value in known and known[value][0] > degree_cap
            degree = known[value][0] if over else read.capped[value]
            read.hubs[value] = read.degrees[value] = degree
            read.hub_users[value] = refs
        elif value[0] == Label.PAYMENT_METHOD:
            alone += [value, *refs]
        else:
            read.uses[value] = {ref: {} for ref in refs}
    if alone:
        sub = store.subgraph(sorted(set(alone)), [Rel.PAID_WITH.value])
        read.payment_props.update({n.key: dict(n.props) for n in sub.nodes if n.label == Label.PAYMENT_METHOD})
        for rel in sub.relationships:
            read.uses[rel.end][rel.start] = rel.props


def _find_hubs(store: GraphStore, read: _Uses, degree_cap: int | None, chunk: int,
               known: Mapping[NodeKey, tuple[int, str]], counted: Mapping[NodeKey, int] | None = None) -> None:
    """How many accounts use each value that could be evidence (any value but an address two
    or more members use: ``store.ip_uses`` counts the addresses); those above ``degree_cap``
    are hubs, taken out of the uses. A value one member uses is never shown, so its degree is not
    asked for (most of a campaign's templates are sent by one account each). A value
    detection already counted as a hub above the cap (``known``, from its hubs.json) is taken
    at that count: counting the 20,000 users of each popular template again took seconds. A
    value whose node counts its accounts (``counted``: a template whose uses stay in staging)
    is taken at that count."""
    by_type: dict[str, list[NodeKey]] = defaultdict(list)
    counted = counted or {}
    for value, users in read.uses.items():
        if len(users) < 2:
            continue
        if value in counted:
            read.degrees[value] = counted[value]
        elif degree_cap is not None and value in known and known[value][0] > degree_cap:
            read.degrees[value] = known[value][0]
        else:
            by_type[USE_OF[value[0]]].append(value)
    for rel_type, group in sorted(by_type.items()):
        group.sort()
        for start in range(0, len(group), chunk):
            read.degrees.update(store.degrees(group[start : start + chunk], [rel_type]))
    if degree_cap is None:
        return
    for value, degree in read.degrees.items():
        if degree > degree_cap and value not in read.hubs:
            read.hubs[value] = degree
            read.hub_users[value] = set(read.uses.pop(value, {}))


def _read_addresses(store: GraphStore, members: Sequence[NodeKey], read: _Uses, degree_cap: int | None,
                    fold_ips: int, known: Mapping[NodeKey, tuple[int, str]], watch: Sequence[str]) -> IpUses:
    """The members' address uses, aggregated by the store (``store.ip_uses``), with its hubs
    and the accounts that use them added to ``read``. A hub detection counted above the cap
    (``known``) stays one at that count, as for the other values; ``watch``: the addresses
    operator indicators name, whose networks go to ``read.ip_network``."""
    ip = Label.IP.value
    forced = sorted(key for (label, key), (count, _why) in known.items()
                    if label == ip and degree_cap is not None and count > degree_cap)
    uses = store.ip_uses([key for _label, key in members], degree_cap, fold_ips, hubs=forced, watch=watch)
    for address, degree in uses.hubs.items():
        ref: NodeKey = (ip, address)
        read.hubs[ref] = read.degrees[ref] = known[ref][0] if address in forced else degree
    read.label_hub_users[ip] = {(Label.ACCOUNT.value, a) for a in uses.hub_users}
    for shown in uses.addresses:
        read.degrees[(ip, shown.address)] = shown.accounts
    read.ip_network.update(uses.networks_of)
    return uses


def _span(uses: Iterable[Mapping[str, Any]]) -> tuple[str | None, str | None]:
    """Earliest first and latest last time of some uses (ISO text sorts as time)."""
    uses = list(uses)
    firsts = [str(u[k]) for u in uses for k in ("first_seen",) if u.get(k)]
    lasts = [str(u[k]) for u in uses for k in ("last_seen", "first_seen") if u.get(k)]
    return (min(firsts) if firsts else None), (max(lasts) if lasts else None)


def _aggregate(uses: Sequence[Mapping[str, Any]], **extra: Any) -> dict[str, Any]:
    """Several uses of one account as one: counts summed, the time span covering them all."""
    first, last = _span(uses)
    counts = [u["count"] for u in uses if isinstance(u.get("count"), int | float)]
    out: dict[str, Any] = {**extra}
    if counts:
        out["count"] = int(sum(counts))
    if first:
        out["first_seen"] = first
    if last:
        out["last_seen"] = last
    if any(u.get("signup") is True for u in uses):
        out["signup"] = True
    return out


def _value_props(users: Mapping[Any, Mapping[str, Any]], accounts: int | None = None) -> dict[str, Any]:
    first, last = _span(users.values())
    props: dict[str, Any] = {"members": len(users)}
    if accounts is not None:
        props["accounts"] = accounts
    if first:
        props["first_seen"] = first
    if last:
        props["last_seen"] = last
    return props


# ---- the shared values --------------------------------------------------------------------------


@dataclass
class _Values:
    """Shared values chosen so far: their properties, and the uses joining members to them."""

    props: dict[NodeKey, dict[str, Any]] = field(default_factory=dict)
    uses: list[Relationship] = field(default_factory=list)
    extra_rels: list[Relationship] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _plain_values(read: _Uses, chosen: _Values) -> None:
    """Every non-IP value two or more members use, with each member's use."""
    for value, users in read.uses.items():
        if value[0] == Label.IP:
            continue
        if len(users) < 2:
            chosen.left_out[f"single-member {value[0]}"] += 1
            continue
        chosen.props[value] = _value_props(users)
        rel_type = USE_OF[value[0]]
        chosen.uses += [Relationship(rel_type, account, value, dict(use)) for account, use in users.items()]


def _network_values(uses: IpUses, chosen: _Values) -> None:
    """Addresses and networks from the store's aggregated uses (see the module docstring for
    when a network is folded): a network two or more members use with its members' summed
    uses, each shown address with its members' uses and its network."""
    single, folded = f"single-member {Label.IP.value}", f"{Label.IP.value} folded into networks"
    shown_in: dict[str, list[Any]] = defaultdict(list)
    for address in uses.addresses:
        shown_in[address.network].append(address)
    for net in uses.networks:
        chosen.left_out[single] += net.addresses - net.shared
        net_ref: NodeKey = (Label.NETWORK.value, net.network)
        as_network = bool(net.network) and net.members >= 2
        if as_network:
            chosen.props[net_ref] = {
                "members": net.members, "member_ips": net.addresses, "folded": net.folded,
                **({"first_seen": net.first_seen} if net.first_seen else {}),
                **({"last_seen": net.last_seen} if net.last_seen else {})}
            if net.folded:
                chosen.left_out[folded] += net.shared
        for address in sorted(shown_in.get(net.network, []), key=lambda a: a.address):
            ref: NodeKey = (Label.IP.value, address.address)
            chosen.props[ref] = _value_props(address.uses)
            chosen.uses += [Relationship(Rel.USED_IP.value, (Label.ACCOUNT.value, a), ref, dict(u))
                            for a, u in address.uses.items()]
            if as_network:
                chosen.extra_rels.append(Relationship(Rel.IN_NETWORK.value, ref, net_ref, {}))
        if as_network:
            chosen.uses += [Relationship(Rel.USED_IP.value, (Label.ACCOUNT.value, a), net_ref, dict(u))
                            for a, u in sorted(net.uses.items())]


def _billing_patterns(read: _Uses, chosen: _Values) -> None:
    """BIN + billing patterns shared by two or more members through two or more instruments."""
    instruments: dict[str, set[str]] = defaultdict(set)
    users: dict[str, dict[NodeKey, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for payment_id, props in read.payment_props.items():
        pattern = billing_pattern(props)
        ref: NodeKey = (Label.PAYMENT_METHOD.value, payment_id)
        if pattern is None or ref not in read.uses:
            continue
        instruments[pattern].add(payment_id)
        for account, use in read.uses[ref].items():
            users[pattern][account].append(use)
    for pattern, accounts in sorted(users.items()):
        if len(accounts) < 2 or len(instruments[pattern]) < 2:
            continue
        ref = (BILLING_PATTERN, pattern)
        bin_, country, postal, name_hash = pattern.split("|")
        props = _value_props({a: _aggregate(u) for a, u in accounts.items()})
        props.update(instruments=len(instruments[pattern]), card_bin=bin_, billing_country=country,
                     billing_postal=postal, billing_name_hash=name_hash)
        chosen.props[ref] = props
        chosen.uses += [Relationship(Rel.PAID_WITH.value, a, ref, _aggregate(u, instruments=len(u)))
                        for a, u in sorted(accounts.items())]


def _hub_summaries(read: _Uses, memberships: Mapping[NodeKey, set[str]], known: Mapping[NodeKey, tuple[int, str]]) -> tuple[
        list[Node], list[Relationship]]:
    """One HUB node per label of the hubs the members use, and per cluster how many use them."""
    by_label: dict[str, list[NodeKey]] = defaultdict(list)
    for hub in read.hubs:
        by_label[hub[0]].append(hub)
    nodes, rels = [], []
    for label, hubs in sorted(by_label.items()):
        users = set().union(*(read.hub_users.get(h, set()) for h in hubs), read.label_hub_users.get(label, set()))
        biggest = sorted(hubs, key=lambda h: (-read.hubs[h], h[1]))
        reasons: dict[str, int] = defaultdict(int)
        for h in hubs:
            reasons[known[h][1] if h in known and known[h][1] else "over the degree cap"] += 1
        nodes.append(Node(HUB, label, {
            "kind": label, "hubs": len(hubs), "members": len(users), "accounts_max": read.hubs[biggest[0]],
            "values": [h[1] for h in biggest[:10]], "why": json.dumps(dict(sorted(reasons.items()))),
        }))
        per_cluster: dict[str, int] = defaultdict(int)
        for account in users:
            for cid in memberships.get(account, ()):
                per_cluster[cid] += 1
        rels += [Relationship(HAS_HUB, (Label.CLUSTER.value, cid), (HUB, label), {"members": n})
                 for cid, n in sorted(per_cluster.items())]
    return nodes, rels


def _known_hubs(workspace: Path | None) -> dict[NodeKey, tuple[int, str]]:
    """The hubs detection suppressed at its last run (``detection/hubs.json``), with how many
    accounts used each and why, where the workspace has them."""
    path = hubs_path(workspace) if workspace else None
    if path is None or not path.is_file():
        return {}
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict[NodeKey, tuple[int, str]] = {}
    for r in rows if isinstance(rows, list) else []:
        if isinstance(r, dict) and isinstance(r.get("accounts"), int):
            out[(str(r.get("label")), str(r.get("key")))] = (int(r["accounts"]), str(r.get("why") or ""))
    return out


# ---- links, operators ---------------------------------------------------------------------------


def links_per_member(members: int, per_account: int, max_links: int) -> int:
    """How many links each of ``members`` keeps so that all of them stay near ``max_links``:
    ``per_account``, or fewer for a big cluster, never less than one (a link has two ends, so
    ``members * k / 2`` links is the most ``k`` each gives).

    >>> links_per_member(1_000, 10, 5_000), links_per_member(2_200, 10, 5_000), links_per_member(50_000, 10, 5_000)
    (10, 4, 1)
    """
    if members <= 0:
        return per_account
    return max(1, min(per_account, (2 * max_links) // members))


def cap_links(links: Sequence[Relationship], per_account: int) -> list[Relationship]:
    """At most ``per_account`` links per account, the strongest kept: links are taken
    strongest first (by weight, then by their ends) while both ends have room. An account left
    with no link then keeps its strongest one, so no member that detection linked is shown
    alone (its partner may then have one link more than the cap)."""
    ordered = sorted(links, key=lambda r: (-_weight(r), r.start, r.end))
    count: dict[NodeKey, int] = defaultdict(int)
    kept: set[tuple[NodeKey, str, NodeKey]] = set()
    for rel in ordered:
        if count[rel.start] < per_account and count[rel.end] < per_account:
            kept.add(rel.ref)
            count[rel.start] += 1
            count[rel.end] += 1
    for rel in ordered:
        for end in (rel.start, rel.end):
            if not count[end]:
                kept.add(rel.ref)
                count[rel.start] += 1
                count[rel.end] += 1
    return [r for r in links if r.ref in kept]


def _weight(rel: Relationship) -> float:
    w = rel.props.get("weight")
    return float(w) if isinstance(w, int | float) else 0.0


def _indicator_value(ind: Node) -> tuple[str, str]:
    """An indicator's type (lower case) and value."""
    itype = str(ind.props.get("type") or ind.key.split(":", 1)[0]).lower()
    value = str(ind.props.get("value") or ind.key.split(":", 1)[-1])
    return itype, value.lower() if itype == "email_domain" else value


def _indicator_targets(ind: Node, values: Mapping[NodeKey, dict[str, Any]], ip_network: Mapping[str, str]) -> list[NodeKey]:
    """The value nodes of this graph an operator indicator names."""
    itype, value = _indicator_value(ind)
    found: list[NodeKey] = []
    if itype in INDICATOR_LABEL and (INDICATOR_LABEL[itype], value) in values:
        found.append((INDICATOR_LABEL[itype], value))
    if itype == "ip" and not found and (Label.NETWORK.value, ip_network.get(value, "")) in values:
        found.append((Label.NETWORK.value, ip_network[value]))
    if itype in ("asn", "card_bin"):
        prop = "asn" if itype == "asn" else "card_bin"
        found += [ref for ref, props in values.items() if str(props.get(prop) or "") == value
                  and ref[0] in (Label.NETWORK.value, Label.PAYMENT_METHOD.value, BILLING_PATTERN)]
    return sorted(set(found))


def _read_indicators(store: GraphStore, around: Sequence[Relationship]) -> Subgraph:
    """The operators the clusters are attributed or suggested to, with their indicators."""
    operators = sorted({r.end for r in around if r.type in OPERATOR_RELS})
    if not operators:
        return Subgraph()
    return store.neighbours(operators, [Rel.HAS_INDICATOR.value], limit=ALL)


def _indicator_ips(sub: Subgraph) -> list[str]:
    """The addresses ``ip`` indicators name (their networks may be values of the graph)."""
    return sorted({_indicator_value(n)[1] for n in sub.nodes if n.label == Label.INDICATOR and _indicator_value(n)[0] == "ip"})


def _operators(sub: Subgraph, around: Sequence[Relationship], values: Mapping[NodeKey, dict[str, Any]],
               ip_network: Mapping[str, str]) -> tuple[list[Node], list[Relationship], int]:
    """The operators' matching indicators (``sub``, from ``_read_indicators``), the
    HAS_INDICATOR and MATCHES edges, and how many indicators did not match."""
    if not sub.relationships:
        return [], [], 0
    suggested: dict[NodeKey, set[str]] = defaultdict(set)
    for rel in around:
        if rel.type == Rel.SUGGESTED_OPERATOR:
            for item in loads(rel.props.get("indicators"), None) or []:
                iid = item.get("indicator_id") if isinstance(item, dict) else item
                if iid:
                    suggested[rel.end].add(str(iid))
    indicators = {n.ref: n for n in sub.nodes if n.label == Label.INDICATOR}
    nodes: dict[NodeKey, Node] = {}
    rels: list[Relationship] = []
    unmatched = 0
    for rel in sub.relationships:
        ind = indicators.get(rel.end)
        if ind is None:
            continue
        targets = _indicator_targets(ind, values, ip_network)
        if not targets and ind.key not in suggested.get(rel.start, set()):
            unmatched += 1
            continue
        nodes[ind.ref] = ind
        rels.append(rel)
        rels += [Relationship(MATCHES, ind.ref, t, {}) for t in targets]
    return list(nodes.values()), rels, unmatched


# ---- the whole graph ----------------------------------------------------------------------------


def build_evidence(
    store: GraphStore,
    cluster_ids: Sequence[str],
    *,
    workspace: Path | None = None,
    degree_cap: int | None = 200,
    links_per_account: int = 10,
    max_links: int | None = None,
    fold_ips: int = FOLD_IPS,
    batch_size: int = MEMBER_BATCH,
    read_limit: int = READ_LIMIT,
    fold_members: int | None = None,
    fold_groups: int | None = None,
    phase: Callable[[str], None] | None = None,
) -> EvidenceGraph:
    """The evidence graph of ``cluster_ids`` (see the module docstring). ``max_links``
    (default: the ``evidence_max_links`` setting) bounds the links of a big cluster: each
    member then keeps fewer than ``links_per_account`` (``links_per_member``). More than
    ``fold_members`` members (default: the ``evidence_fold_members`` setting; 0 never) fold
    into at most about ``fold_groups`` groups (``evidence_fold_groups``)."""
    say = phase or (lambda _text: None)
    chosen_ids = sorted(set(cluster_ids))
    cluster_refs: list[NodeKey] = [(Label.CLUSTER.value, c) for c in chosen_ids]
    say(f"reading the members of {len(chosen_ids)} cluster(s)")
    around = store.neighbours(cluster_refs, list(CLUSTER_RELS), limit=ALL)
    around_nodes = {n.ref: n for n in around.nodes}
    memberships: dict[NodeKey, set[str]] = defaultdict(set)
    for rel in around.relationships:
        if rel.type == Rel.MEMBER_OF and rel.end in set(cluster_refs):
            memberships[rel.start].add(rel.end[1])
    members = sorted(memberships)
    read = _Uses()
    for start in range(0, len(members), batch_size):
        say(f"reading the shared values of members {start + 1:,}–{min(start + batch_size, len(members)):,} of {len(members):,}")
        _read_batch(store, members[start : start + batch_size], read_limit, degree_cap, read)
    known = _known_hubs(workspace)
    indicators = _read_indicators(store, around.relationships)
    say(f"reading the address uses of {len(members):,} members, summed per network")
    addresses = _read_addresses(store, members, read, degree_cap, fold_ips, known, _indicator_ips(indicators))
    say("counting the accounts that use each shared value")
    _read_capped(store, members, read, degree_cap, batch_size * 10, known)
    counted = _read_staged_templates(store, workspace, members, read)
    _find_hubs(store, read, degree_cap, batch_size * 10, known, counted)
    values = _Values()
    _plain_values(read, values)
    _network_values(addresses, values)
    _billing_patterns(read, values)
    say(f"reading {len(values.props):,} shared values")
    stored = {n.ref: n for n in store.subgraph(sorted(r for r in values.props if r[0] != BILLING_PATTERN)).nodes}
    overall = read.degrees
    value_nodes = []
    for ref, props in values.props.items():
        base = dict(stored[ref].props) if ref in stored else {}
        if ref in overall:
            props["accounts"] = overall[ref]
        value_nodes.append(Node(ref[0], ref[1], {**base, **props}))
    say("reading the links between members")
    linked = store.relationships_between(members, [Rel.LINKED.value]) if members else []
    settings = Settings()
    budget = int(settings["evidence_max_links"]) if max_links is None else max_links
    links = cap_links(linked, links_per_member(len(members), links_per_account, budget))
    hub_nodes, hub_rels = _hub_summaries(read, memberships, known)
    all_value_props = {n.ref: n.props for n in value_nodes}
    ind_nodes, op_rels, unmatched = _operators(indicators, around.relationships, all_value_props, read.ip_network)
    left_out = dict(values.left_out)
    if len(linked) > len(links):
        left_out["LINKED over the cap"] = len(linked) - len(links)
    if unmatched:
        left_out["unmatched indicators"] = unmatched
    wanted_around = [r for r in around.relationships if r.type in CLUSTER_RELS]
    nodes = {n.ref: n for n in (*around_nodes.values(), *value_nodes, *hub_nodes, *ind_nodes)}
    rels = {r.ref: r for r in (*wanted_around, *values.uses, *values.extra_rels, *links, *hub_rels, *op_rels)}
    graph = EvidenceGraph(
        nodes=sorted(nodes.values(), key=lambda n: n.ref),
        relationships=sorted(rels.values(), key=lambda r: r.ref),
        cluster_ids=chosen_ids,
        hubs=dict(sorted(read.hubs.items())),
        left_out=dict(sorted(left_out.items())),
        truncated=read.truncated,
    )
    fold_at = int(settings["evidence_fold_members"]) if fold_members is None else fold_members
    if fold_at > 0 and len(members) > fold_at:
        from graph.evidence_fold import fold_evidence

        groups = int(settings["evidence_fold_groups"]) if fold_groups is None else fold_groups
        say(f"folding {len(members):,} members into at most about {groups:,} groups by what they share")
        return fold_evidence(graph, max_groups=groups, all_links=linked)
    return graph
