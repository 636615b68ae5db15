"""Every Cypher statement Sybilscope sends, built in one place.

Values always travel as parameters. The only things formatted into query text are labels,
relationship types and property names, and each builder takes them through the schema
whitelist (``check_label``/``check_rel_type``) or the identifier check below first; hop counts
are validated integers. Writes are batched with ``UNWIND $rows``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from graph.schema import INDEXES, KEY_PROPERTY, Label, Rel, check_label, check_rel_type, key_of

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def property_name(name: str) -> str:
    """A property name safe to put in query text, backticked; refuses anything else."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"invalid property name {name!r}")
    return f"`{name}`"


def _label(label: str) -> str:
    return f"`{check_label(label).value}`"


def _rel_pattern(rel_types: Sequence[str] | None) -> str:
    """``:A|B`` for a typed pattern, empty for any type."""
    if not rel_types:
        return ""
    return ":" + "|".join(f"`{check_rel_type(t).value}`" for t in rel_types)


def key_expression(var: str) -> str:
    """A CASE expression giving the key of node ``var`` whatever its label."""
    if not _IDENTIFIER.fullmatch(var):
        raise ValueError(f"invalid variable {var!r}")
    whens = " ".join(
        f"WHEN '{label.value}' THEN {var}.{property_name(prop)}" for label, prop in KEY_PROPERTY.items()
    )
    return f"CASE labels({var})[0] {whens} END"


# ---- schema ---------------------------------------------------------------------------------


def schema_statements() -> list[str]:
    """Uniqueness constraints on every key and the secondary indexes, all idempotent."""
    statements = [
        f"CREATE CONSTRAINT {label.value.lower()}_key IF NOT EXISTS "
        f"FOR (n:{_label(label)}) REQUIRE n.{property_name(prop)} IS UNIQUE"
        for label, prop in KEY_PROPERTY.items()
    ]
    statements += [
        f"CREATE INDEX {label.value.lower()}_{prop} IF NOT EXISTS FOR (n:{_label(label)}) ON (n.{property_name(prop)})"
        for label, prop in INDEXES
    ]
    return statements


# Blocks until every index is ONLINE (or the timeout in seconds passes, then fails).
AWAIT_INDEXES = "CALL db.awaitIndexes($timeout)"


# ---- writes ---------------------------------------------------------------------------------


def merge_nodes(label: str) -> str:
    """Rows: ``{key, props}``. A null in props removes that property."""
    key = property_name(key_of(label))
    return f"UNWIND $rows AS row MERGE (n:{_label(label)} {{{key}: row.key}}) SET n += row.props RETURN count(*) AS written"


def merge_relationships(rel_type: str, start_label: str, end_label: str) -> str:
    """Rows: ``{start, end, props}``; missing end nodes are created with their key only."""
    skey = property_name(key_of(start_label))
    ekey = property_name(key_of(end_label))
    return (
        "UNWIND $rows AS row "
        f"MERGE (a:{_label(start_label)} {{{skey}: row.start}}) "
        f"MERGE (b:{_label(end_label)} {{{ekey}: row.end}}) "
        f"MERGE (a)-[r{_rel_pattern([rel_type])}]->(b) "
        "SET r += row.props RETURN count(*) AS written"
    )


def delete_label_relationships_chunk(label: str) -> str:
    """Deletes up to $chunk relationships touching nodes of a label, so that deleting a hub
    node later does not put its tens of thousands of relationships in one transaction."""
    return f"MATCH (n:{_label(label)})-[r]-() WITH DISTINCT r LIMIT $chunk DELETE r RETURN count(*) AS deleted"


def delete_label_chunk(label: str) -> str:
    """Deletes up to $chunk nodes of a label; run until it returns 0."""
    return f"MATCH (n:{_label(label)}) WITH n LIMIT $chunk DETACH DELETE n RETURN count(*) AS deleted"


def delete_relationships_chunk(rel_type: str) -> str:
    return f"MATCH ()-[r{_rel_pattern([rel_type])}]->() WITH r LIMIT $chunk DELETE r RETURN count(*) AS deleted"


def delete_relationships_by_keys(rel_type: str, start_label: str, end_label: str) -> str:
    """Rows: ``{start, end}`` keys; deletes the ``rel_type`` relationship from each start node to
    each end node (the nodes stay). Counts the relationships that existed."""
    skey = property_name(key_of(start_label))
    ekey = property_name(key_of(end_label))
    return (
        "UNWIND $rows AS row "
        f"MATCH (a:{_label(start_label)} {{{skey}: row.start}})"
        f"-[r{_rel_pattern([rel_type])}]->(b:{_label(end_label)} {{{ekey}: row.end}}) "
        "DELETE r RETURN count(*) AS deleted"
    )


DELETE_BY_IDS = "MATCH (n) WHERE elementId(n) IN $ids DETACH DELETE n RETURN count(*) AS deleted"


# ---- reads ----------------------------------------------------------------------------------


def resolve_refs(labels: Sequence[str]) -> str:
    """Element ids of nodes named by key, one UNION branch per label (parameter ``$keys<i>``)."""
    branches = [
        f"UNWIND $keys{i} AS k MATCH (n:{_label(label)} {{{property_name(key_of(label))}: k}}) "
        f"RETURN elementId(n) AS id, '{check_label(label).value}' AS label, k AS key"
        for i, label in enumerate(labels)
    ]
    return " UNION ALL ".join(branches)


def get_node(label: str) -> str:
    key = property_name(key_of(label))
    return f"MATCH (n:{_label(label)} {{{key}: $key}}) RETURN properties(n) AS props"


def find_nodes(label: str, where: Sequence[str], with_limit: bool) -> str:
    key = property_name(key_of(label))
    conditions = " AND ".join(f"n.{property_name(p)} = $where.{property_name(p)}" for p in where)
    where_clause = f" WHERE {conditions}" if conditions else ""
    limit = " LIMIT $limit" if with_limit else ""
    return (
        f"MATCH (n:{_label(label)}){where_clause} "
        f"RETURN n.{key} AS key, properties(n) AS props ORDER BY key{limit}"
    )


def iter_nodes(label: str, skip_key_prefix: str | None = None) -> tuple[str, dict[str, Any]]:
    """Every node of ``label`` with its properties; with ``skip_key_prefix``, not those whose
    key starts with it (a range seek on the key's uniqueness index, then a filter)."""
    key = property_name(key_of(label))
    if skip_key_prefix is None:
        return f"MATCH (n:{_label(label)}) RETURN n.{key} AS key, properties(n) AS props", {}
    return (
        f"MATCH (n:{_label(label)}) WHERE NOT n.{key} STARTS WITH $prefix RETURN n.{key} AS key, properties(n) AS props",
        {"prefix": skip_key_prefix},
    )


def iter_relationships_between(rel_type: str, start_label: str, end_label: str) -> str:
    """Every ``rel_type`` relationship when the schema allows it between one pair of labels
    only: the keys come straight from the key properties (no per-row CASE over labels)."""
    return (
        f"MATCH (a:{_label(start_label)})-[r{_rel_pattern([rel_type])}]->(b:{_label(end_label)}) "
        f"RETURN a.{property_name(key_of(start_label))} AS sk, b.{property_name(key_of(end_label))} AS ek, "
        "properties(r) AS props"
    )


def iter_relationships(rel_type: str) -> str:
    return (
        f"MATCH (a)-[r{_rel_pattern([rel_type])}]->(b) "
        f"RETURN labels(a)[0] AS sl, {key_expression('a')} AS sk, "
        f"labels(b)[0] AS el, {key_expression('b')} AS ek, properties(r) AS props"
    )


def neighbour_candidates(rel_types: Sequence[str] | None) -> str:
    """Distinct neighbours of the seeds (by element id) with their degree over the same types."""
    pattern = _rel_pattern(rel_types)
    return (
        "MATCH (s) WHERE elementId(s) IN $ids "
        f"MATCH (s)-[{pattern}]-(m) WHERE NOT elementId(m) IN $ids "
        "WITH DISTINCT m "
        f"RETURN elementId(m) AS id, labels(m)[0] AS label, {key_expression('m')} AS key, "
        f"COUNT {{ (m)-[{pattern}]-() }} AS degree"
    )


NODES_BY_IDS = (
    "MATCH (n) WHERE elementId(n) IN $ids "
    "RETURN elementId(n) AS id, labels(n)[0] AS label, properties(n) AS props"
)


def relationships_touching(rel_types: Sequence[str] | None) -> str:
    """Relationships from the nodes ``$from`` to the nodes ``$to`` (either direction)."""
    return (
        "MATCH (s) WHERE elementId(s) IN $from "
        f"MATCH (s)-[r{_rel_pattern(rel_types)}]-(m) WHERE elementId(m) IN $to "
        "WITH DISTINCT r "
        "RETURN type(r) AS type, elementId(startNode(r)) AS start, elementId(endNode(r)) AS end, "
        "properties(r) AS props"
    )


def shortest_path(rel_types: Sequence[str] | None, max_hops: int) -> str:
    if not isinstance(max_hops, int) or not 1 <= max_hops <= 15:
        raise ValueError("max_hops must be an integer from 1 to 15")
    return (
        "MATCH (a) WHERE elementId(a) = $a MATCH (b) WHERE elementId(b) = $b "
        f"MATCH p = shortestPath((a)-[{_rel_pattern(rel_types)}*..{max_hops}]-(b)) "
        "RETURN [n IN nodes(p) | {id: elementId(n), label: labels(n)[0], props: properties(n)}] AS nodes, "
        "[r IN relationships(p) | {type: type(r), start: elementId(startNode(r)), "
        "end: elementId(endNode(r)), props: properties(r)}] AS rels"
    )


def degrees(rel_types: Sequence[str] | None) -> str:
    return (
        "MATCH (n) WHERE elementId(n) IN $ids "
        f"RETURN elementId(n) AS id, COUNT {{ (n)-[{_rel_pattern(rel_types)}]-() }} AS degree"
    )


def ip_uses() -> str:
    """The ``USED_IP`` uses of the accounts ``$accounts`` aggregated for the evidence graph
    (``GraphStore.ip_uses``), one row per (hub?, network): hub addresses (more than ``$cap``
    accounts overall, or named in ``$hubs``; none when ``$cap`` is null) in one row with who
    uses them; every other address grouped by its network (its ``network`` property, else its
    first ``IN_NETWORK`` network, else ``''``). Per network: the distinct addresses, members,
    shared addresses and time span; ``uses``, per account, its uses of the addresses not shown
    summed (``[account, count sum, counts, first, last, last-first, addresses, signup]``);
    ``shown``, the addresses two or more of the accounts used outside a folded network
    (``$fold`` addresses or more), each ``[address, degree, [[account, properties]]]``;
    ``watched``, ``[address, network]`` for the addresses in ``$watch``. Only what the graph
    shows crosses the wire: a proxy pool's 200,000 uses leave the server as a few thousand."""
    account = f"`{Label.ACCOUNT.value}`"
    ip_key = property_name(key_of(Label.IP))
    used = _rel_pattern([Rel.USED_IP.value])
    first = "CASE WHEN u.first_seen <> '' THEN u.first_seen END"
    last = "CASE WHEN u.last_seen <> '' THEN u.last_seen END"
    return (
        f"UNWIND $accounts AS account "
        f"MATCH (:{account} {{{property_name(key_of(Label.ACCOUNT))}: account}})-[u{used}]->(ip:{_label(Label.IP.value)}) "
        "WITH ip, collect({account: account, use: u}) AS uses "
        f"WITH ip, uses, COUNT {{ (ip)<-[{used}]-() }} AS degree, "
        "CASE WHEN toString(ip.network) <> '' THEN toString(ip.network) ELSE coalesce(reduce(m = null, "
        f"n IN [(ip)-[{_rel_pattern([Rel.IN_NETWORK.value])}]->(x:{_label(Label.NETWORK.value)}) | "
        f"x.{property_name(key_of(Label.NETWORK))}] | CASE WHEN m IS NULL OR n < m THEN n ELSE m END), '') END AS network "
        f"WITH ip.{ip_key} AS address, uses, degree, network, "
        f"$cap IS NOT NULL AND (degree > $cap OR ip.{ip_key} IN $hubs) AS hub "
        "WITH hub, CASE WHEN hub THEN '' ELSE network END AS network, "
        "collect({address: address, uses: uses, degree: degree, users: size(uses), network: network}) AS group "
        "CALL (hub, group) { UNWIND group AS x UNWIND x.uses AS use WITH hub, use.account AS account, use.use AS u "
        f"RETURN count(DISTINCT account) AS members, collect(DISTINCT CASE WHEN hub THEN account END) AS hub_users, "
        f"min({first}) AS first_seen, max({last}) AS last_seen, max({first}) AS last_first }} "
        "WITH hub, network, group, members, hub_users, first_seen, last_seen, last_first, "
        "NOT hub AND network <> '' AND size(group) >= $fold AS folded "
        "CALL (hub, network, group, members, folded) { "
        "UNWIND CASE WHEN NOT hub AND network <> '' AND members >= 2 THEN group ELSE [] END AS x "
        "WITH x WHERE folded OR x.users < 2 UNWIND x.uses AS use WITH use.account AS account, use.use AS u "
        f"WITH account, sum(u.count) AS total, count(u.count) AS counted, min({first}) AS first_seen, "
        f"max({last}) AS last_seen, max({first}) AS last_first, count(*) AS ips, "
        "count(CASE WHEN u.signup = true THEN 1 END) > 0 AS signup "
        "RETURN collect([account, total, counted, first_seen, last_seen, last_first, ips, signup]) AS uses } "
        "RETURN hub, network, size(group) AS addresses, members, size([x IN group WHERE x.users >= 2]) AS shared, "
        "first_seen, last_seen, last_first, folded, uses, hub_users, "
        "CASE WHEN hub THEN [x IN group | [x.address, x.degree]] ELSE [] END AS hubs, "
        "CASE WHEN hub OR folded THEN [] ELSE [x IN group WHERE x.users >= 2 | "
        "[x.address, x.degree, [use IN x.uses | [use.account, properties(use.use)]]]] END AS shown, "
        "[x IN group WHERE x.address IN $watch AND x.network <> '' | [x.address, x.network]] AS watched"
    )


def shared_values(a_label: str, b_label: str, rel_types: Sequence[str]) -> str:
    """The nodes both ``$a`` and ``$b`` (keys) are joined to over ``rel_types``, either
    direction, one row per (node, type) with both sides' properties and the node's degree."""
    pattern = _rel_pattern(rel_types)
    return (
        f"MATCH (a:{_label(a_label)} {{{property_name(key_of(a_label))}: $a}})-[ra{pattern}]-(v) "
        f"MATCH (b:{_label(b_label)} {{{property_name(key_of(b_label))}: $b}})-[rb{pattern}]-(v) "
        "WHERE type(ra) = type(rb) "
        f"RETURN labels(v)[0] AS label, {key_expression('v')} AS key, type(ra) AS type, "
        f"properties(ra) AS a_props, properties(rb) AS b_props, COUNT {{ (v)-[{pattern}]-() }} AS degree"
    )


def users_among(rel_types: Sequence[str]) -> str:
    """Which of the accounts ``$accounts`` reach each node ``$ids`` (element ids) over
    ``rel_types``: expanded from the accounts, so a hub's other 20,000 users are never read."""
    return (
        "UNWIND $accounts AS k "
        f"MATCH (a:{_label(Label.ACCOUNT.value)} {{{property_name(key_of(Label.ACCOUNT))}: k}})-[{_rel_pattern(rel_types)}]-(v) "
        "WHERE elementId(v) IN $ids RETURN elementId(v) AS id, collect(DISTINCT k) AS users"
    )


def counts() -> str:
    """One round trip: every label's and every type's count, each from the count store."""
    parts = [f"CALL {{ MATCH (n:{_label(label)}) RETURN count(n) AS n{i} }}" for i, label in enumerate(Label)]
    parts += [f"CALL {{ MATCH ()-[r{_rel_pattern([rel])}]->() RETURN count(r) AS r{i} }}" for i, rel in enumerate(Rel)]
    returns = [f"n{i} AS `{label.value}`" for i, label in enumerate(Label)]
    returns += [f"r{i} AS `{rel.value}`" for i, rel in enumerate(Rel)]
    return " ".join(parts) + " RETURN " + ", ".join(returns)


PING = "RETURN 1 AS ok"


# ---- user queries (saved queries) -------------------------------------------------------------


def explain(statement: str) -> str:
    """A user's statement under EXPLAIN: compiled into its plan, never run, so the plan can be
    vetted (graph/queries/guard.py) before the statement itself is."""
    return f"EXPLAIN {statement}"


# The server's own functions; any other namespaced function is plugin code the plan cannot show.
BUILTIN_FUNCTIONS = "SHOW FUNCTIONS YIELD name, isBuiltIn WHERE isBuiltIn RETURN name"
