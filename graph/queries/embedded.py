"""A Python implementation of every built-in query over the GraphStore API.

The embedded store has no Cypher engine, so each built-in query has a twin here that computes
the same rows (same columns, same order, same null handling) from ``neighbours``,
``find_nodes`` and the streaming iterators. They work on any GraphStore, which is what lets the
differential test (tests/contract/test_queries_differential.py) compare the Cypher text against
this code on a live Neo4j. Cypher semantics mirrored on purpose: a comparison with a missing
value is false, ``coalesce`` takes the first present value, ``min``/``max`` skip nulls, and
ORDER BY ties are broken exactly as the query's ORDER BY says.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from graph.schema import Label, Rel
from graph.store import GraphStore, Node, NodeKey, Relationship

ALL = 10**9
ACCOUNT_INFRA = (Rel.USED_IP, Rel.PAID_WITH, Rel.USED_DEVICE, Rel.USED_CLIENT)
SHARED = (*ACCOUNT_INFRA, Rel.HAS_EMAIL_DOMAIN, Rel.SENT_TEMPLATE)
PATH_RELS = (*SHARED, Rel.IN_NETWORK)
PATH_MAX = 8

Row = dict[str, Any]
Impl = Callable[..., list[Row]]


@dataclass(frozen=True)
class Implementation:
    fn: Impl
    columns: tuple[str, ...]


IMPLEMENTATIONS: dict[str, Implementation] = {}


def implements(query_id: str, columns: Sequence[str]) -> Callable[[Impl], Impl]:
    """Register ``fn`` as the Python twin of built-in ``query_id`` returning ``columns``."""

    def register(fn: Impl) -> Impl:
        IMPLEMENTATIONS[query_id] = Implementation(fn, tuple(columns))
        return fn

    return register


# ---- Cypher value semantics -----------------------------------------------------------------


def _comparable(a: Any, b: Any) -> bool:
    """Cypher compares strings with strings and numbers with numbers; anything else is null."""
    if a is None or b is None:
        return False
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str)
    return isinstance(a, int | float) and isinstance(b, int | float)


def ge(a: Any, b: Any) -> bool:
    return _comparable(a, b) and a >= b


def le(a: Any, b: Any) -> bool:
    return _comparable(a, b) and a <= b


def coalesce(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def cmin(values: Iterable[Any]) -> Any:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def cmax(values: Iterable[Any]) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


# ---- graph access ---------------------------------------------------------------------------


def links(store: GraphStore, ref: NodeKey, rel_types: Sequence[str], direction: str) -> list[tuple[Node, Relationship]]:
    """(other node, relationship) for every relationship of ``rel_types`` at ``ref``;
    ``direction`` is ``out`` (ref is the start), ``in`` (ref is the end) or ``both``."""
    sub = store.neighbours([ref], list(rel_types), limit=ALL)
    nodes = {n.ref: n for n in sub.nodes}
    out: list[tuple[Node, Relationship]] = []
    for rel in sub.relationships:
        if rel.start == ref and direction in ("out", "both"):
            out.append((nodes[rel.end], rel))
        if rel.end == ref and direction in ("in", "both") and rel.start != rel.end:
            out.append((nodes[rel.start], rel))
    return out


def _accounts_in(store: GraphStore, ref: NodeKey, rel_types: Sequence[str]) -> list[tuple[Node, Relationship]]:
    return [(n, r) for n, r in links(store, ref, rel_types, "in") if n.label == Label.ACCOUNT]


def _in_window(rel: Relationship, since: str, until: str) -> bool:
    first, last = rel.props.get("first_seen"), rel.props.get("last_seen")
    return le(coalesce(first, ""), until) and ge(coalesce(last, first, ""), since)


def _props_by_key(store: GraphStore, label: str) -> dict[str, dict[str, Any]]:
    return {n.key: n.props for n in store.iter_nodes(label)}


# ---- the built-in queries -------------------------------------------------------------------


@implements("accounts_sharing_payment", ["account_id", "payment_id", "card_bin", "created_at"])
def accounts_sharing_payment(store: GraphStore, account_id: str) -> list[Row]:
    me: NodeKey = (Label.ACCOUNT, account_id)
    rows = []
    for pay, _ in links(store, me, [Rel.PAID_WITH], "out"):
        for other, _ in _accounts_in(store, pay.ref, [Rel.PAID_WITH]):
            if other.ref != me:
                rows.append({"account_id": other.key, "payment_id": pay.key,
                             "card_bin": pay.props.get("card_bin"), "created_at": other.props.get("created_at")})
    return sorted(rows, key=lambda r: (r["account_id"], r["payment_id"]))


def _usage_rows(usage: dict[str, dict[str, Any]], counted: Sequence[str]) -> list[Row]:
    """One row per account from collected (sets of entities, first/last seen values)."""
    rows = []
    for account_id in sorted(usage):
        u = usage[account_id]
        row: Row = {"account_id": account_id}
        row.update({name: len(u[name]) for name in counted})
        row["first_seen"] = cmin(u["first"])
        row["last_seen"] = cmax(u["last"])
        rows.append(row)
    return rows


def _new_usage() -> dict[str, Any]:
    return {"ips": set(), "networks": set(), "first": [], "last": []}


def _collect_ip_use(store: GraphStore, network: Node, usage: dict[str, dict[str, Any]], since: str, until: str) -> None:
    for ip, _ in links(store, network.ref, [Rel.IN_NETWORK], "in"):
        if ip.label != Label.IP:
            continue
        for account, rel in _accounts_in(store, ip.ref, [Rel.USED_IP]):
            if not _in_window(rel, since, until):
                continue
            u = usage.setdefault(account.key, _new_usage())
            u["ips"].add(ip.key)
            u["networks"].add(network.key)
            u["first"].append(rel.props.get("first_seen"))
            u["last"].append(coalesce(rel.props.get("last_seen"), rel.props.get("first_seen")))


@implements("accounts_behind_provider", ["account_id", "ips", "first_seen", "last_seen"])
def accounts_behind_provider(store: GraphStore, provider: str, since: str, until: str) -> list[Row]:
    usage: dict[str, dict[str, Any]] = {}
    for network in store.find_nodes(Label.NETWORK, {"provider": provider}):
        _collect_ip_use(store, network, usage, since, until)
    return _usage_rows(usage, ["ips"])


@implements("accounts_on_asn", ["account_id", "networks", "ips", "first_seen", "last_seen"])
def accounts_on_asn(store: GraphStore, asn: str, kinds: list[str], since: str, until: str) -> list[Row]:
    usage: dict[str, dict[str, Any]] = {}
    for network, _ in links(store, (Label.ASN, asn), [Rel.IN_ASN], "in"):
        if network.label == Label.NETWORK and network.props.get("kind") in kinds:
            _collect_ip_use(store, network, usage, since, until)
    return _usage_rows(usage, ["networks", "ips"])


BUCKET_LENGTH = {"day": 10, "minute": 16}


@implements("email_pattern_bursts", ["email_domain", "email_shape", "bucket", "accounts", "account_ids"])
def email_pattern_bursts(store: GraphStore, since: str, until: str, granularity: str, min_accounts: int) -> list[Row]:
    accounts = _props_by_key(store, Label.ACCOUNT)
    length = BUCKET_LENGTH.get(granularity, 13)
    groups: dict[tuple[Any, Any, str], list[str]] = defaultdict(list)
    for rel in store.iter_relationships(Rel.HAS_EMAIL_DOMAIN):
        props = accounts.get(rel.start[1], {})
        created, shape = props.get("created_at"), props.get("email_shape")
        if ge(created, since) and le(created, until) and shape is not None:
            groups[(rel.end[1], shape, str(created)[:length])].append(rel.start[1])
    rows = [
        {"email_domain": d, "email_shape": s, "bucket": b, "accounts": len(ids), "account_ids": sorted(ids)}
        for (d, s, b), ids in groups.items()
        if len(ids) >= min_accounts
    ]
    return sorted(rows, key=lambda r: (-r["accounts"], r["email_domain"], r["email_shape"], r["bucket"]))


@implements("accounts_sending_template", ["account_id", "count", "first_seen", "last_seen"])
def accounts_sending_template(store: GraphStore, template_id: str) -> list[Row]:
    rows = [
        {"account_id": a.key, "count": coalesce(r.props.get("count"), 0),
         "first_seen": r.props.get("first_seen"), "last_seen": r.props.get("last_seen")}
        for a, r in _accounts_in(store, (Label.PROMPT_TEMPLATE, template_id), [Rel.SENT_TEMPLATE])
    ]
    return sorted(rows, key=lambda r: (-r["count"], r["account_id"]))


@implements("clusters_of_operator", ["cluster_id", "kind", "confidence", "rationale", "by", "size", "score"])
def clusters_of_operator(store: GraphStore, operator_id: str, include_suggested: bool) -> list[Row]:
    rows = []
    for cluster, rel in links(store, (Label.OPERATOR, operator_id), [Rel.ATTRIBUTED_TO, Rel.SUGGESTED_OPERATOR], "in"):
        if cluster.label != Label.CLUSTER:
            continue
        confirmed = rel.type == Rel.ATTRIBUTED_TO
        if not (confirmed or include_suggested):
            continue
        rows.append({"cluster_id": cluster.key, "kind": "confirmed" if confirmed else "suggested",
                     "confidence": rel.props.get("confidence"), "rationale": rel.props.get("rationale"),
                     "by": rel.props.get("by"), "size": cluster.props.get("size"), "score": cluster.props.get("score")})
    return sorted(rows, key=lambda r: (r["cluster_id"], r["kind"]))


def _memberships(store: GraphStore) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for rel in store.iter_relationships(Rel.MEMBER_OF):
        out[rel.start[1]].append(rel.end[1])
    return out


@implements("bridge_accounts", ["account_id", "cluster_id", "other_account", "other_cluster", "weight"])
def bridge_accounts(store: GraphStore, min_weight: float) -> list[Row]:
    member_of = _memberships(store)
    rows = []
    for rel in store.iter_relationships(Rel.LINKED):
        weight = coalesce(rel.props.get("weight"), 0.0)
        if not ge(weight, min_weight):
            continue
        a, b = rel.start[1], rel.end[1]
        for x, y in ((a, b), (b, a)):
            for cx in member_of.get(x, []):
                for cy in member_of.get(y, []):
                    if cx != cy:
                        rows.append({"account_id": x, "cluster_id": cx, "other_account": y,
                                     "other_cluster": cy, "weight": weight})
    return sorted(rows, key=lambda r: (r["account_id"], r["other_account"], r["cluster_id"], r["other_cluster"]))


@implements("new_accounts_on_operator_infrastructure", ["account_id", "created_at", "shared_entities", "known_accounts"])
def new_accounts_on_operator_infrastructure(store: GraphStore, operator_id: str, since: str, max_accounts: int) -> list[Row]:
    known: set[NodeKey] = set()
    for cluster, _ in links(store, (Label.OPERATOR, operator_id), [Rel.ATTRIBUTED_TO, Rel.SUGGESTED_OPERATOR], "in"):
        if cluster.label == Label.CLUSTER:
            known.update(a.ref for a, _ in _accounts_in(store, cluster.ref, [Rel.MEMBER_OF]))
    users_of: dict[NodeKey, list[Node]] = {}
    hits: dict[str, dict[str, Any]] = {}
    for member in sorted(known):
        for entity, _ in links(store, member, ACCOUNT_INFRA, "out"):
            if entity.ref not in users_of:
                users_of[entity.ref] = [a for a, _ in _accounts_in(store, entity.ref, ACCOUNT_INFRA)]
            users = users_of[entity.ref]
            if len(users) > max_accounts:
                continue
            for account in users:
                created = account.props.get("created_at")
                if account.ref in known or not ge(created, since):
                    continue
                hit = hits.setdefault(account.key, {"created_at": created, "x": set(), "m": set()})
                hit["x"].add(entity.ref)
                hit["m"].add(member)
    rows = [{"account_id": k, "created_at": h["created_at"], "shared_entities": len(h["x"]),
             "known_accounts": len(h["m"])} for k, h in hits.items()]
    return sorted(rows, key=lambda r: (-r["shared_entities"], r["account_id"]))


@implements("top_cot_templates", ["template_id", "capability", "cot_share", "accounts", "exchanges"])
def top_cot_templates(store: GraphStore, min_accounts: int, limit: int) -> list[Row]:
    templates = _props_by_key(store, Label.PROMPT_TEMPLATE)
    senders: dict[str, set[str]] = defaultdict(set)
    exchanges: dict[str, Any] = defaultdict(int)
    for rel in store.iter_relationships(Rel.SENT_TEMPLATE):
        senders[rel.end[1]].add(rel.start[1])
        exchanges[rel.end[1]] += coalesce(rel.props.get("count"), 0)
    rows: list[Row] = []
    for tid, props in templates.items():
        # a hub template's uses stay in staging: its node counts them
        hub = props.get("uses_staged") is True
        accounts = props.get("accounts") if hub else len(senders.get(tid, ()))
        if not isinstance(accounts, int) or accounts < min_accounts:
            continue
        share = coalesce(props.get("cot_share"), 1.0 if props.get("cot") is True else 0.0)
        rows.append({"template_id": tid, "capability": props.get("capability"), "cot_share": float(share),
                     "accounts": accounts, "exchanges": int(props.get("exchanges") or 0) if hub else int(exchanges[tid])})
    rows.sort(key=lambda r: (-r["cot_share"], -r["exchanges"], r["template_id"]))
    return rows[:limit]


def _grouped_accounts(store: GraphStore, rel_type: str) -> dict[str, list[str]]:
    """End key -> sorted start (account) keys for every relationship of ``rel_type``."""
    out: dict[str, list[str]] = defaultdict(list)
    for rel in store.iter_relationships(rel_type):
        out[rel.end[1]].append(rel.start[1])
    return {k: sorted(v) for k, v in out.items()}


@implements("shared_devices", ["device_id", "accounts", "account_ids"])
def shared_devices(store: GraphStore, min_accounts: int, limit: int) -> list[Row]:
    rows: list[Row] = [
        {"device_id": device, "accounts": len(ids), "account_ids": ids}
        for device, ids in _grouped_accounts(store, Rel.USED_DEVICE).items()
        if len(ids) >= min_accounts
    ]
    rows.sort(key=lambda r: (-r["accounts"], r["device_id"]))
    return rows[:limit]


@implements("accounts_on_ip", ["account_id", "first_seen", "last_seen", "count", "signup"])
def accounts_on_ip(store: GraphStore, ip: str) -> list[Row]:
    rows = [
        {"account_id": a.key, "first_seen": r.props.get("first_seen"), "last_seen": r.props.get("last_seen"),
         "count": coalesce(r.props.get("count"), 0), "signup": coalesce(r.props.get("signup"), False)}
        for a, r in _accounts_in(store, (Label.IP, ip), [Rel.USED_IP])
    ]
    return sorted(rows, key=lambda r: r["account_id"])


@implements("path_between_accounts", ["step", "label", "key"])
def path_between_accounts(store: GraphStore, from_account: str, to_account: str, max_hops: int) -> list[Row]:
    if from_account == to_account or max_hops < 1:
        return []
    path = store.shortest_path(
        (Label.ACCOUNT, from_account), (Label.ACCOUNT, to_account), list(PATH_RELS), min(max_hops, PATH_MAX)
    )
    if path is None:
        return []
    return [{"step": i, "label": n.label, "key": n.key} for i, n in enumerate(path.nodes)]


@implements("linked_accounts", ["account_id", "weight", "families", "reasons"])
def linked_accounts(store: GraphStore, account_id: str, min_weight: float) -> list[Row]:
    rows = []
    for other, rel in links(store, (Label.ACCOUNT, account_id), [Rel.LINKED], "both"):
        weight = coalesce(rel.props.get("weight"), 0.0)
        if ge(weight, min_weight):
            rows.append({"account_id": other.key, "weight": weight,
                         "families": rel.props.get("families"), "reasons": rel.props.get("reasons")})
    return sorted(rows, key=lambda r: (-r["weight"], r["account_id"]))


@implements("cluster_members", ["account_id", "bridge", "created_at", "status", "verification"])
def cluster_members(store: GraphStore, cluster_id: str) -> list[Row]:
    rows = [
        {"account_id": a.key, "bridge": coalesce(r.props.get("bridge"), False),
         "created_at": a.props.get("created_at"), "status": a.props.get("status"),
         "verification": a.props.get("verification")}
        for a, r in _accounts_in(store, (Label.CLUSTER, cluster_id), [Rel.MEMBER_OF])
    ]
    return sorted(rows, key=lambda r: r["account_id"])


@implements("top_clusters", ["cluster_id", "score", "flagged", "size", "exchanges", "status", "suggested_operator"])
def top_clusters(store: GraphStore, min_score: float, flagged_only: bool, limit: int) -> list[Row]:
    rows = []
    for c in store.iter_nodes(Label.CLUSTER):
        p = c.props
        score = coalesce(p.get("score"), 0.0)
        if not ge(score, min_score) or (flagged_only and p.get("flagged") is not True):
            continue
        rows.append({"cluster_id": c.key, "score": score, "flagged": coalesce(p.get("flagged"), False),
                     "size": p.get("size"), "exchanges": p.get("exchanges"), "status": p.get("status"),
                     "suggested_operator": p.get("suggested_operator")})
    rows.sort(key=lambda r: (-r["score"], r["cluster_id"]))
    return rows[:limit]


@implements("shared_infrastructure", ["account_id", "shared", "entities"])
def shared_infrastructure(store: GraphStore, account_id: str, max_accounts: int) -> list[Row]:
    me: NodeKey = (Label.ACCOUNT, account_id)
    shared: dict[str, list[str]] = defaultdict(list)
    for entity, mine in links(store, me, SHARED, "out"):
        users = _accounts_in(store, entity.ref, SHARED)
        if len(users) > max_accounts:
            continue
        for other, rel in users:
            if other.ref != me and rel.type == mine.type:
                shared[other.key].append(f"{entity.label}:{entity.key}")
    rows = [{"account_id": k, "shared": len(v), "entities": sorted(v)} for k, v in shared.items()]
    return sorted(rows, key=lambda r: (-r["shared"], r["account_id"]))


@implements("payment_methods_by_bin", ["payment_id", "billing_country", "accounts", "account_ids"])
def payment_methods_by_bin(store: GraphStore, card_bin: str, min_accounts: int) -> list[Row]:
    rows = []
    for pay in store.find_nodes(Label.PAYMENT_METHOD, {"card_bin": card_bin}):
        ids = sorted(a.key for a, _ in _accounts_in(store, pay.ref, [Rel.PAID_WITH]))
        if ids and len(ids) >= min_accounts:
            rows.append({"payment_id": pay.key, "billing_country": pay.props.get("billing_country"),
                         "accounts": len(ids), "account_ids": ids})
    return sorted(rows, key=lambda r: (-r["accounts"], r["payment_id"]))


@implements("clusters_active_between", ["cluster_id", "first_seen", "last_seen", "size", "score"])
def clusters_active_between(store: GraphStore, since: str, until: str, min_score: float) -> list[Row]:
    rows = []
    for c in store.iter_nodes(Label.CLUSTER):
        p = c.props
        score = coalesce(p.get("score"), 0.0)
        if le(p.get("first_seen"), until) and ge(p.get("last_seen"), since) and ge(score, min_score):
            rows.append({"cluster_id": c.key, "first_seen": p.get("first_seen"), "last_seen": p.get("last_seen"),
                         "size": p.get("size"), "score": score})
    return sorted(rows, key=lambda r: (r["first_seen"], r["cluster_id"]))


@implements("accounts_by_client_fingerprint", ["account_id", "first_seen", "last_seen", "count"])
def accounts_by_client_fingerprint(store: GraphStore, fingerprint: str) -> list[Row]:
    rows = [
        {"account_id": a.key, "first_seen": r.props.get("first_seen"), "last_seen": r.props.get("last_seen"),
         "count": coalesce(r.props.get("count"), 0)}
        for a, r in _accounts_in(store, (Label.CLIENT_FINGERPRINT, fingerprint), [Rel.USED_CLIENT])
    ]
    return sorted(rows, key=lambda r: r["account_id"])
