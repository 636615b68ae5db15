"""The GraphStore contract: what every store (embedded networkx, Neo4j) must do, identically.

Public methods are final templates: they check labels and types against the schema whitelist,
log, and translate any backend failure into a StoreError that names the operation. Stores
implement the ``_``-prefixed hooks only. The contract test suite (tests/contract) runs against
every store, so behaviour that is specified here is behaviour both stores have.

Identifiers: a node is ``(label, key)``; a relationship is ``(start, type, end)``.
Ordering: wherever a list is returned it is sorted by (label, key) so stores agree.

Two write boundaries, chosen by what a failure may leave behind:

- ``batch()`` is ONE transaction, for analyst writes (cases, team queries, audit): every write
  inside commits together at the end or, if the block raises, not at all. Reads inside see the
  block's own writes. A nested ``batch()`` joins the outer one; if an inner block raises, or any
  store operation inside fails, the whole transaction is rolled back even if the caller caught
  the error (and the outer exit then raises). Keep it to what one decision touches: on Neo4j the
  transaction lives in the server's heap until it commits.
- ``bulk()`` is for loads of millions of rows (the loader's graph commit, detection's
  write-back). It is NOT atomic: Neo4j commits each UNWIND chunk by itself (on several writer
  threads), the embedded store writes its file once at the end. Every write is an idempotent
  MERGE or a delete, so an interrupted bulk write is finished by running it again; until then
  part of it may be in the store. Reads inside see what has been written so far.

The two do not mix: opening either inside the other is refused, so a bulk load can never sit
in one giant transaction and an analyst's decision can never be committed piecemeal.
A batch belongs to the thread that opened it: another thread's writes (another analyst's
session in the shared UI process) are not caught in it and survive its rollback.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, final

from graph.schema import (
    SchemaError,
    check_label,
    check_property_value,
    check_rel_spec,
    check_rel_type,
    key_of,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

NodeKey = tuple[str, str]
"""(label, key value): how a node is named across the stores."""


@dataclass(frozen=True)
class Node:
    label: str
    key: str
    props: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def ref(self) -> NodeKey:
        return (self.label, self.key)


@dataclass(frozen=True)
class Relationship:
    type: str
    start: NodeKey
    end: NodeKey
    props: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def ref(self) -> tuple[NodeKey, str, NodeKey]:
        return (self.start, self.type, self.end)


@dataclass
class Subgraph:
    """Nodes and the relationships among them, as returned by expand, subgraph and path."""

    nodes: list[Node] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)
    truncated: bool = False
    """True when a limit cut the result short."""
    hubs: dict[NodeKey, int] = field(default_factory=dict)
    """Neighbours left out because their degree exceeded the degree cap, with that degree."""

    def node_refs(self) -> set[NodeKey]:
        return {n.ref for n in self.nodes}

    def rel_refs(self) -> set[tuple[NodeKey, str, NodeKey]]:
        return {r.ref for r in self.relationships}


@dataclass
class NetworkUses:
    """The given accounts' uses of one network's addresses, hub addresses left out; ``network``
    ``""`` gathers the addresses outside any known network.

    ``addresses``: distinct addresses they used in it; ``members``: how many of the accounts
    used one; ``shared``: addresses two or more of them used; ``first_seen``/``last_seen``:
    the span of all those uses. ``folded``: a named network with ``fold_ips`` or more
    addresses. ``uses``: per account, its uses of the addresses not listed in
    ``IpUses.addresses`` as one (``aggregate_uses``), for a named network two or more of the
    accounts use; otherwise empty."""

    network: str
    addresses: int
    members: int
    shared: int
    first_seen: str | None = None
    last_seen: str | None = None
    folded: bool = False
    uses: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class AddressUses:
    """One address two or more of the given accounts used, in an unfolded network or outside
    any: its network (``""`` if none), how many accounts use it overall, and each of the
    given accounts' ``USED_IP`` properties."""

    address: str
    network: str
    accounts: int
    uses: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class IpUses:
    """The given accounts' ``USED_IP`` uses aggregated in the store (see ``GraphStore.ip_uses``).

    ``networks``: one ``NetworkUses`` per network any of them used (sorted by name);
    ``addresses``: the address-level uses still shown (sorted); ``hubs``: each hub address
    they use with how many accounts use it overall; ``hub_users``: the accounts that use one
    (sorted); ``networks_of``: the network of each ``watch`` address they use."""

    networks: list[NetworkUses] = field(default_factory=list)
    addresses: list[AddressUses] = field(default_factory=list)
    hubs: dict[str, int] = field(default_factory=dict)
    hub_users: list[str] = field(default_factory=list)
    networks_of: dict[str, str] = field(default_factory=dict)


def aggregate_uses(count: float | None, counted: int, first_seen: str | None, last_seen: str | None,
                   ips: int, signup: bool) -> dict[str, Any]:
    """An account's uses of several addresses as one use's properties: ``ips`` addresses, the
    ``count`` summed over the ``counted`` uses that had one (left out when none had), the span
    of their times, ``signup`` when any was the sign-up address. Both stores build the
    aggregated uses of ``ip_uses`` with it, so they agree to the key.

    >>> aggregate_uses(5, 2, "2025-01-01", "2025-02-01", 3, False)
    {'ips': 3, 'count': 5, 'first_seen': '2025-01-01', 'last_seen': '2025-02-01'}
    """
    out: dict[str, Any] = {"ips": ips}
    if counted:
        out["count"] = int(count or 0)
    if first_seen:
        out["first_seen"] = first_seen
    if last_seen:
        out["last_seen"] = last_seen
    if signup:
        out["signup"] = True
    return out


@dataclass
class SharedValue:
    """A node two accounts both reach over one relationship type: each side's relationship
    properties and the node's degree over the types asked for (how many use it overall)."""

    ref: NodeKey
    type: str
    a_props: dict[str, Any] = field(default_factory=dict)
    b_props: dict[str, Any] = field(default_factory=dict)
    degree: int = 0


def use_span(uses: Iterable[Mapping[str, Any]]) -> tuple[str | None, str | None]:
    """Earliest first and latest last time of some uses (ISO text sorts as time; a use with
    no last time counts its first).

    >>> use_span([{"first_seen": "2025-02"}, {"first_seen": "2025-01", "last_seen": "2025-03"}])
    ('2025-01', '2025-03')
    """
    uses = list(uses)
    firsts = [str(u[k]) for u in uses for k in ("first_seen",) if u.get(k)]
    lasts = [str(u[k]) for u in uses for k in ("last_seen", "first_seen") if u.get(k)]
    return (min(firsts) if firsts else None), (max(lasts) if lasts else None)


def fold_uses(uses: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One account's uses of several addresses as one (``aggregate_uses``), from their
    properties: the reference the stores' aggregated uses must equal."""
    counts = [u["count"] for u in uses if isinstance(u.get("count"), int | float)]
    first, last = use_span(uses)
    return aggregate_uses(sum(counts), len(counts), first, last, len(uses),
                          any(u.get("signup") is True for u in uses))


class StoreError(RuntimeError):
    """A store operation failed; the message names the operation and the store."""

    def __init__(self, operation: str, store: str, cause: BaseException | str) -> None:
        self.operation = operation
        self.store = store
        self.cause = cause
        super().__init__(f"{store} store: {operation} failed: {cause}")


class StoreUnavailable(StoreError):
    """The store cannot be reached at all (wrong URI, server down, bad credentials)."""


RelRef = tuple[NodeKey, str, NodeKey]
"""(start, type, end): how a relationship is named across the stores (``Relationship.ref``)."""

ScopeKind = Literal["batch", "bulk"]


@dataclass
class _Scope:
    """The write boundary open on one thread: its kind, the store's handle (the Neo4j
    transaction) and whether anything inside it failed."""

    kind: ScopeKind
    handle: Any = None
    failed: bool = False


def chunked(rows: Iterable[T], size: int) -> Iterator[list[T]]:
    """``rows`` in lists of at most ``size``, in order: how writes reach a store (one round trip
    or one UNWIND per list), so memory stays bounded whatever the number of rows.

    >>> list(chunked(range(5), 2))
    [[0, 1], [2, 3], [4]]
    """
    chunk: list[T] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _sorted_nodes(nodes: Iterable[Node]) -> list[Node]:
    return sorted(nodes, key=lambda n: (n.label, n.key))


def _sorted_rels(rels: Iterable[Relationship]) -> list[Relationship]:
    return sorted(rels, key=lambda r: (r.start, r.type, r.end))


def _relationship_batch(rel_type: str, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows ``{"start", "end", **props}`` as the stores take them, every key and value checked."""
    batch: list[dict[str, Any]] = []
    for row in rows:
        start, end = row.get("start"), row.get("end")
        if start in (None, "") or end in (None, ""):
            raise SchemaError(f"{rel_type} row without start or end key: {dict(row)!r}")
        props = _clean_props({k: v for k, v in row.items() if k not in ("start", "end")})
        check_property_value("start", str(start))
        check_property_value("end", str(end))
        batch.append({"start": str(start), "end": str(end), "props": props})
    return batch


def _clean_props(props: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in props.items():
        check_property_value(name, value)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


class GraphStore(ABC):
    """The operations investigations, loaders and detection need from a graph store."""

    name: str = "graph"

    # ---- writes -------------------------------------------------------------------------

    @final
    def upsert_nodes(self, label: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Merge nodes of ``label`` on their key property; other properties in a row are set
        (a ``None`` value removes the property). Returns the number of rows written."""
        lab = check_label(label)
        key = key_of(lab)
        batch: list[dict[str, Any]] = []
        for row in rows:
            if row.get(key) in (None, ""):
                raise SchemaError(f"{lab} row without its key property {key!r}: {dict(row)!r}")
            props = _clean_props({k: v for k, v in row.items() if k != key})
            check_property_value(key, str(row[key]))
            batch.append({"key": str(row[key]), "props": props})
        if not batch:
            return 0
        return self._run("upsert_nodes", self._upsert_nodes, lab.value, key, batch)

    @final
    def upsert_relationships(
        self, rel_type: str, start_label: str, end_label: str, rows: Iterable[Mapping[str, Any]]
    ) -> int:
        """Merge relationships; each row is ``{"start": key, "end": key, **props}``. Missing end
        nodes are created with just their key (so loading order does not matter)."""
        spec = check_rel_spec(rel_type, start_label, end_label)
        batch = _relationship_batch(spec.type.value, rows)
        if not batch:
            return 0
        return self._run(
            "upsert_relationships",
            self._upsert_relationships,
            spec.type.value,
            spec.start.value,
            spec.end.value,
            batch,
        )

    @final
    def upsert_relationship_chunks(
        self, rel_type: str, start_label: str, end_label: str, chunks: Iterable[Iterable[Mapping[str, Any]]]
    ) -> int:
        """``upsert_relationships`` over each chunk of ``chunks`` in turn, for a caller that
        makes rows as it goes (detection's half a million LINKED, each with its reasons): a
        store may write one chunk while the next is made (Neo4j: on a writer thread, so the
        client and the server work at the same time). Each chunk is checked as
        ``upsert_relationships`` checks it; the chunks do not commit together (as in
        ``bulk``). Returns how many relationships were written."""
        spec = check_rel_spec(rel_type, start_label, end_label)
        batches = (batch for batch in (_relationship_batch(spec.type.value, rows) for rows in chunks) if batch)
        return self._run("upsert_relationship_chunks", self._upsert_relationship_chunks,
                         spec.type.value, spec.start.value, spec.end.value, batches)

    def _upsert_relationship_chunks(self, rel_type: str, start_label: str, end_label: str,
                                    batches: Iterator[list[dict[str, Any]]]) -> int:
        """One checked batch after the other; Neo4jStore pipelines them."""
        return sum(self._upsert_relationships(rel_type, start_label, end_label, batch) for batch in batches)

    @final
    def delete_label(self, label: str) -> int:
        """Delete every node of ``label`` with its relationships (for re-runs). Returns count."""
        lab = check_label(label)
        return self._run("delete_label", self._delete_label, lab.value)

    @final
    def delete_relationships(self, rel_type: str) -> int:
        """Delete every relationship of ``rel_type``. Returns count."""
        return self._run("delete_relationships", self._delete_relationships, check_rel_type(rel_type).value)

    @final
    def delete_nodes(self, refs: Sequence[NodeKey]) -> int:
        """Delete the named nodes with their relationships. Returns how many existed."""
        checked = [(check_label(lab).value, str(key)) for lab, key in refs]
        return self._run("delete_nodes", self._delete_nodes, checked)

    @final
    def delete_relationship_refs(self, refs: Sequence[RelRef]) -> int:
        """Delete the named relationships, each ``(start, type, end)`` as ``Relationship.ref``
        gives it; the nodes stay. Returns how many existed."""
        checked: list[RelRef] = []
        for start, rel_type, end in dict.fromkeys((tuple(s), t, tuple(e)) for s, t, e in refs):
            spec = check_rel_spec(rel_type, start[0], end[0])
            checked.append(((spec.start.value, str(start[1])), spec.type.value, (spec.end.value, str(end[1]))))
        if not checked:
            return 0
        return self._run("delete_relationship_refs", self._delete_relationship_refs, checked)

    @final
    @contextmanager
    def batch(self) -> Iterator[GraphStore]:
        """One transaction: the writes inside commit together at exit, or none of them does
        (see the module docstring). Reads inside see the block's writes."""
        with self._scoped("batch"):
            yield self

    @final
    @contextmanager
    def bulk(self) -> Iterator[GraphStore]:
        """A non-atomic boundary for bulk loads (see the module docstring): idempotent writes,
        committed as they go on Neo4j, finished by re-running after a failure."""
        with self._scoped("bulk"):
            yield self

    # ---- the write boundaries ----------------------------------------------------------------

    @final
    def _current_scope(self) -> _Scope | None:
        """The batch or bulk write open on this thread, if any."""
        local: threading.local = self.__dict__.setdefault("_scopes", threading.local())
        scope: _Scope | None = getattr(local, "scope", None)
        return scope

    @final
    def _set_scope(self, scope: _Scope | None) -> None:
        self._current_scope()  # makes sure the thread-local exists
        self.__dict__["_scopes"].scope = scope

    @final
    @contextmanager
    def _scoped(self, kind: ScopeKind) -> Iterator[None]:
        scope = self._current_scope()
        if scope is not None:
            if scope.kind != kind:
                raise StoreError(
                    kind, self.name, f"a {kind} cannot open inside a {scope.kind}: "
                    "bulk loads and transactions do not mix"
                )
            try:  # a nested block joins the open one
                yield
            except BaseException:
                if kind == "batch":  # a failed bulk write is simply run again
                    scope.failed = True
                raise
            return
        begin, end = (self._begin_batch, self._end_batch) if kind == "batch" else (self._begin_bulk, self._end_bulk)
        scope = _Scope(kind, self._run(f"begin {kind}", begin))
        self._set_scope(scope)
        try:
            yield
        except BaseException:
            self._set_scope(None)
            self._abandon(kind, end, scope.handle)
            raise
        self._set_scope(None)
        if scope.failed:
            self._abandon(kind, end, scope.handle)
            raise StoreError(
                "commit", self.name,
                "an operation or a nested batch inside it failed, so the whole batch was rolled back",
            )
        self._run(f"commit {kind}", end, scope.handle, True)

    @final
    def _abandon(self, kind: ScopeKind, end: Any, handle: Any) -> None:
        """Roll back after a failure without hiding the failure: an error while rolling back
        is logged, and the original exception is the one the caller sees."""
        try:
            end(handle, False)
        except Exception:  # noqa: BLE001 - the original error matters more
            logger.warning("%s store: rolling back a failed %s also failed", self.name, kind, exc_info=True)

    # ---- reads ----------------------------------------------------------------------------

    @final
    def get_node(self, label: str, key: str) -> Node | None:
        lab = check_label(label)
        return self._run("get_node", self._get_node, lab.value, str(key))

    @final
    def find_nodes(
        self, label: str, where: Mapping[str, Any] | None = None, limit: int | None = None
    ) -> list[Node]:
        """Nodes of ``label`` whose properties equal every value in ``where``, sorted by key."""
        lab = check_label(label)
        filters = _clean_props(where or {})
        return self._run("find_nodes", self._find_nodes, lab.value, filters, limit)

    @final
    def iter_nodes(self, label: str, skip_key_prefix: str | None = None) -> Iterator[Node]:
        """Stream every node of ``label`` (order unspecified); with ``skip_key_prefix``, not
        those whose key starts with it, left out by the store itself (detection skips the
        millions of withheld ``h:`` templates it answers for without reading them)."""
        lab = check_label(label)
        yield from self._stream("iter_nodes", self._iter_nodes, lab.value, skip_key_prefix or None)

    @final
    def iter_relationships(self, rel_type: str) -> Iterator[Relationship]:
        """Stream every relationship of ``rel_type`` (order unspecified)."""
        yield from self._stream(
            "iter_relationships", self._iter_relationships, check_rel_type(rel_type).value
        )

    @final
    def relationships_between(
        self, refs: Sequence[NodeKey], rel_types: Sequence[str] | None = None
    ) -> list[Relationship]:
        """Relationships (of the given types, or any) whose both ends are among ``refs``."""
        checked = [(check_label(lab).value, str(key)) for lab, key in refs]
        types = [check_rel_type(t).value for t in rel_types] if rel_types else None
        rels: list[Relationship] = self._run("relationships_between", self._relationships_between, checked, types)
        return _sorted_rels(rels)

    @final
    def neighbours(
        self,
        refs: Sequence[NodeKey],
        rel_types: Sequence[str] | None = None,
        limit: int = 500,
        degree_cap: int | None = None,
    ) -> Subgraph:
        """The given nodes, their neighbours over ``rel_types`` (either direction), and the
        relationships joining them.

        A neighbour with more than ``degree_cap`` relationships of those types is a hub: it is
        left out and reported in ``hubs`` with its degree, so one carrier-NAT IP shared by
        50,000 accounts does not flood the view. At most ``limit`` neighbours are returned,
        the first by (label, key); ``truncated`` says whether more existed.
        """
        checked = [(check_label(lab).value, str(key)) for lab, key in refs]
        types = [check_rel_type(t).value for t in rel_types] if rel_types else None
        sub: Subgraph = self._run("neighbours", self._neighbours, checked, types, limit, degree_cap)
        sub.nodes = _sorted_nodes(sub.nodes)
        sub.relationships = _sorted_rels(sub.relationships)
        return sub

    @final
    def subgraph(self, refs: Sequence[NodeKey], rel_types: Sequence[str] | None = None) -> Subgraph:
        """The nodes named (those that exist) and the relationships among them."""
        checked = [(check_label(lab).value, str(key)) for lab, key in refs]
        types = [check_rel_type(t).value for t in rel_types] if rel_types else None
        sub: Subgraph = self._run("subgraph", self._subgraph, checked, types)
        sub.nodes = _sorted_nodes(sub.nodes)
        sub.relationships = _sorted_rels(sub.relationships)
        return sub

    @final
    def shortest_path(
        self,
        start: NodeKey,
        end: NodeKey,
        rel_types: Sequence[str] | None = None,
        max_hops: int = 6,
    ) -> Subgraph | None:
        """A shortest path (ignoring direction) from ``start`` to ``end`` over ``rel_types``,
        at most ``max_hops`` long; nodes are in path order (start first), relationships too.
        None if there is none. Among equally short paths, which one is unspecified."""
        a = (check_label(start[0]).value, str(start[1]))
        b = (check_label(end[0]).value, str(end[1]))
        types = [check_rel_type(t).value for t in rel_types] if rel_types else None
        if not 1 <= max_hops <= 15:
            raise SchemaError("max_hops must be between 1 and 15")
        return self._run("shortest_path", self._shortest_path, a, b, types, max_hops)

    @final
    def degrees(self, refs: Sequence[NodeKey], rel_types: Sequence[str] | None = None) -> dict[NodeKey, int]:
        """Number of relationships (of the given types, either direction) of each named node."""
        checked = [(check_label(lab).value, str(key)) for lab, key in refs]
        types = [check_rel_type(t).value for t in rel_types] if rel_types else None
        return self._run("degrees", self._degrees, checked, types)

    @final
    def ip_uses(
        self,
        accounts: Sequence[str],
        degree_cap: int | None,
        fold_ips: int,
        hubs: Sequence[str] = (),
        watch: Sequence[str] = (),
    ) -> IpUses:
        """The ``USED_IP`` uses of ``accounts`` aggregated in the store, for the evidence graph
        (graph/evidence.py): a proxy pool's 200,000 uses come back as one use per (account,
        network) instead of one relationship each.

        An address more than ``degree_cap`` accounts use overall (or named in ``hubs``) is a
        hub: it is only counted in ``IpUses.hubs`` and ``hub_users``; with ``degree_cap`` None
        there are no hubs. An address's network is its ``network`` property, else the network
        its ``IN_NETWORK`` relationship names (the first by key). The other addresses are
        summed per network (``NetworkUses``); a named network whose accounts used ``fold_ips``
        or more of its addresses is folded. An address two or more of the accounts used is
        returned with its uses (``AddressUses``) unless its network is folded, and is then not
        part of its network's aggregated uses. ``watch``: addresses whose network to report
        in ``networks_of`` if the accounts use them (hubs too)."""
        if fold_ips < 1:
            raise SchemaError("fold_ips must be at least 1")
        if degree_cap is not None and degree_cap < 0:
            raise SchemaError("degree_cap must not be negative")
        keys = sorted({str(a) for a in accounts})
        if not keys:
            return IpUses()
        out: IpUses = self._run("ip_uses", self._ip_uses, keys, degree_cap, int(fold_ips),
                                sorted({str(h) for h in hubs}), sorted({str(w) for w in watch}))
        out.networks.sort(key=lambda n: n.network)
        out.addresses.sort(key=lambda a: a.address)
        out.hub_users.sort()
        return out

    @final
    def shared_values(self, a: NodeKey, b: NodeKey, rel_types: Sequence[str]) -> list[SharedValue]:
        """The nodes both ``a`` and ``b`` are joined to over ``rel_types`` (either direction),
        sorted by (label, key), with both relationships' properties and each node's degree over
        ``rel_types``: the infrastructure two accounts share, in one store call (the evidence
        panel of a pair) instead of both neighbourhoods and their degrees. A node joined to one
        side by several of the types is given once, by the first type (by name) it shares."""
        refs = [(check_label(lab).value, str(key)) for lab, key in (a, b)]
        types = sorted({check_rel_type(t).value for t in rel_types})
        if not types:
            raise SchemaError("shared_values needs at least one relationship type")
        out: list[SharedValue] = self._run("shared_values", self._shared_values, refs[0], refs[1], types)
        return sorted(out, key=lambda v: v.ref)

    @final
    def users_among(self, values: Sequence[NodeKey], accounts: Sequence[str], rel_types: Sequence[str]) -> dict[NodeKey, list[str]]:
        """For each of the nodes ``values``, which of ``accounts`` are joined to it over
        ``rel_types`` (sorted; a node none of them reaches is left out): who among a cluster's
        members uses each hub, without reading the hubs' relationships and their properties."""
        refs = sorted({(check_label(lab).value, str(key)) for lab, key in values})
        types = sorted({check_rel_type(t).value for t in rel_types})
        keys = sorted({str(a) for a in accounts})
        if not refs or not keys or not types:
            return {}
        out: dict[NodeKey, list[str]] = self._run("users_among", self._users_among, refs, keys, types)
        return {ref: sorted(set(users)) for ref, users in sorted(out.items()) if users}

    @final
    def counts(self) -> dict[str, dict[str, int]]:
        """``{"nodes": {label: n}, "relationships": {type: n}}``, zero counts left out."""
        out: dict[str, dict[str, int]] = self._run("counts", self._counts)
        return {
            "nodes": {k: v for k, v in sorted(out["nodes"].items()) if v},
            "relationships": {k: v for k, v in sorted(out["relationships"].items()) if v},
        }

    @final
    def ping(self) -> None:
        """Raise StoreUnavailable if the store cannot be used."""
        try:
            self._ping()
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated for the user
            raise StoreUnavailable("connect", self.name, exc) from exc

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the store holds (the injected driver is closed by whoever made it)."""

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the template's error translation ------------------------------------------------

    @final
    def _run(self, operation: str, fn: Any, *args: Any) -> Any:
        logger.debug("%s store: %s", self.name, operation)
        try:
            return fn(*args)
        except BaseException as exc:
            self._doom_batch()
            if isinstance(exc, StoreError | SchemaError) or not isinstance(exc, Exception):
                raise
            raise self._translate(operation, exc) from exc

    @final
    def _stream(self, operation: str, fn: Any, *args: Any) -> Iterator[Any]:
        try:
            yield from fn(*args)
        except GeneratorExit:
            raise
        except BaseException as exc:
            self._doom_batch()
            if isinstance(exc, StoreError | SchemaError) or not isinstance(exc, Exception):
                raise
            raise self._translate(operation, exc) from exc

    @final
    def _doom_batch(self) -> None:
        """A store operation failed inside a batch: it may have written part of its rows (and
        Neo4j terminates the transaction), so the batch must not commit."""
        scope = self._current_scope()
        if scope is not None and scope.kind == "batch":
            scope.failed = True

    def _translate(self, operation: str, exc: Exception) -> StoreError:
        return StoreError(operation, self.name, exc)

    # ---- hooks each store implements ------------------------------------------------------

    @abstractmethod
    def _upsert_nodes(self, label: str, key: str, rows: list[dict[str, Any]]) -> int: ...

    @abstractmethod
    def _upsert_relationships(
        self, rel_type: str, start_label: str, end_label: str, rows: list[dict[str, Any]]
    ) -> int: ...

    @abstractmethod
    def _delete_label(self, label: str) -> int: ...

    @abstractmethod
    def _delete_relationships(self, rel_type: str) -> int: ...

    @abstractmethod
    def _delete_nodes(self, refs: list[NodeKey]) -> int: ...

    @abstractmethod
    def _delete_relationship_refs(self, refs: list[RelRef]) -> int: ...

    @abstractmethod
    def _begin_batch(self) -> Any:
        """Open the transaction; what it returns comes back to ``_end_batch``."""

    @abstractmethod
    def _end_batch(self, handle: Any, ok: bool) -> None:
        """Commit (``ok``) or roll back the transaction ``_begin_batch`` opened."""

    def _begin_bulk(self) -> Any:
        """Prepare for a bulk write (nothing by default)."""
        return None

    def _end_bulk(self, handle: Any, ok: bool) -> None:  # noqa: B027 - optional hook
        """Finish a bulk write; ``ok`` is False after a failure."""

    @abstractmethod
    def _get_node(self, label: str, key: str) -> Node | None: ...

    @abstractmethod
    def _find_nodes(self, label: str, where: dict[str, Any], limit: int | None) -> list[Node]: ...

    @abstractmethod
    def _iter_nodes(self, label: str, skip_key_prefix: str | None) -> Iterator[Node]: ...

    @abstractmethod
    def _iter_relationships(self, rel_type: str) -> Iterator[Relationship]: ...

    @abstractmethod
    def _neighbours(
        self, refs: list[NodeKey], rel_types: list[str] | None, limit: int, degree_cap: int | None
    ) -> Subgraph: ...

    @abstractmethod
    def _subgraph(self, refs: list[NodeKey], rel_types: list[str] | None) -> Subgraph: ...

    def _relationships_between(self, refs: list[NodeKey], rel_types: list[str] | None) -> list[Relationship]:
        """The relationships of ``_subgraph``; a store that can skip reading the nodes does."""
        return self._subgraph(refs, rel_types).relationships

    @abstractmethod
    def _shortest_path(
        self, start: NodeKey, end: NodeKey, rel_types: list[str] | None, max_hops: int
    ) -> Subgraph | None: ...

    @abstractmethod
    def _degrees(self, refs: list[NodeKey], rel_types: list[str] | None) -> dict[NodeKey, int]: ...

    @abstractmethod
    def _ip_uses(self, accounts: list[str], degree_cap: int | None, fold_ips: int, hubs: list[str],
                 watch: list[str]) -> IpUses: ...

    @abstractmethod
    def _shared_values(self, a: NodeKey, b: NodeKey, rel_types: list[str]) -> list[SharedValue]: ...

    @abstractmethod
    def _users_among(self, values: list[NodeKey], accounts: list[str], rel_types: list[str]) -> dict[NodeKey, list[str]]: ...

    @abstractmethod
    def _counts(self) -> dict[str, dict[str, int]]: ...

    @abstractmethod
    def _ping(self) -> None: ...
