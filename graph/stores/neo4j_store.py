"""The team store: Neo4j over Bolt, with an injected driver.

Reads route to READ (so a cluster's readers can serve them); writes go in ``UNWIND $rows``
chunks of ``batch_size``. Every statement comes from ``graph.cypher``. Driver errors become a
StoreError naming the operation, and an unreachable server a StoreUnavailable naming the URI
and what to do about it.

Inside ``batch()`` every read and write of the opening thread runs in one explicit transaction
(a session on the WRITE route, ``begin_transaction``), chunk after chunk on that one thread,
committed at the end or rolled back. A transient server error (a deadlock, a leader change)
there fails the batch as a whole: it cannot be replayed statement by statement, so the caller
runs the action again. Outside a batch, and inside ``bulk()``, each statement is its own
auto-committed transaction that ``execute_query`` retries on transient errors, and large
writes are spread over ``writers`` threads.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import neo4j
from neo4j import RoutingControl
from neo4j.exceptions import AuthError, Neo4jError, ServiceUnavailable

from graph import cypher
from graph.queries.guard import Explained, plan_steps, vet
from graph.schema import RELATIONSHIPS, key_of
from graph.store import (
    AddressUses,
    GraphStore,
    IpUses,
    NetworkUses,
    Node,
    NodeKey,
    Relationship,
    RelRef,
    SharedValue,
    StoreError,
    StoreUnavailable,
    Subgraph,
    aggregate_uses,
    chunked,
)

DELETE_CHUNK = 10_000
STREAM_FETCH_SIZE = 10_000  # records per round trip when streaming a whole label or type
INDEX_WAIT_S = 600  # a fresh constraint on a large existing label can take minutes to populate


def _plain(value: Any) -> Any:
    """A driver value as plain Python: nodes as {label, key, props}, relationships as
    {type, props}, temporal values as ISO text, containers recursively."""
    from neo4j.graph import Node as DriverNode
    from neo4j.graph import Path as DriverPath
    from neo4j.graph import Relationship as DriverRel

    if isinstance(value, DriverNode):
        label = next(iter(value.labels), "")
        props = dict(value)
        try:
            key = props.get(key_of(label))
        except (KeyError, ValueError):
            key = value.element_id
        return {"label": label, "key": key, "props": {k: _plain(v) for k, v in props.items()}}
    if isinstance(value, DriverRel):
        return {"type": value.type, "props": {k: _plain(v) for k, v in dict(value).items()}}
    if isinstance(value, DriverPath):
        return {"nodes": [_plain(n) for n in value.nodes], "relationships": [_plain(r) for r in value.relationships]}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "iso_format"):
        return value.iso_format()
    return value


def _later(a: str | None, b: str | None) -> str | None:
    """The later of two ISO times, either possibly missing."""
    return max((t for t in (a, b) if t), default=None)


def _by_start_key(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(chunk, key=lambda row: row["start"])


class _Transaction:
    """A session and the explicit transaction open in it, for one batch."""

    def __init__(self, driver: neo4j.Driver, database: str | None) -> None:
        self.session = driver.session(database=database, default_access_mode=neo4j.WRITE_ACCESS)
        try:
            self.tx = self.session.begin_transaction()
        except BaseException:
            self.session.close()
            raise

    def run(self, query: str, params: dict[str, Any]) -> list[neo4j.Record]:
        return list(self.tx.run(query, params))

    def stream(self, query: str, params: dict[str, Any]) -> Iterator[neo4j.Record]:
        yield from self.tx.run(query, params)

    def finish(self, ok: bool) -> None:
        try:
            if ok:
                self.tx.commit()
            else:
                self.tx.rollback()
        finally:
            self.tx.close()
            self.session.close()


class Neo4jStore(GraphStore):
    """A GraphStore on a Neo4j server or cluster reached through ``driver``."""

    name = "neo4j"

    def __init__(
        self,
        driver: neo4j.Driver,
        database: str | None = None,
        *,
        uri: str = "",
        batch_size: int = 2000,
        close_driver: bool = False,
        writers: int = 2,
    ) -> None:
        self.driver = driver
        self.database = database or None
        self.uri = uri
        self.batch_size = max(1, batch_size)
        self.writers = max(1, writers)
        self._close_driver = close_driver
        self._builtin_functions: frozenset[str] | None = None
        self._bookmarks: neo4j.BookmarkManager | None = None  # None: the driver's own

    def close(self) -> None:
        if self._close_driver:
            self.driver.close()

    def forget_bookmarks(self) -> None:
        """Chain later queries afresh: the database was replaced under the driver (a bulk import
        into the stopped local server), so its transaction ids restarted and a bookmark of the
        old database would never be reached (BookmarkTimeout)."""
        self._bookmarks = neo4j.GraphDatabase.bookmark_manager()

    def ensure_schema(self) -> None:
        """Create the key constraints and indexes (idempotent), then wait until they are ONLINE:
        a MERGE issued while its uniqueness index still populates falls back to a label scan."""

        def run() -> None:  # schema changes cannot share a transaction with writes
            for statement in cypher.schema_statements():
                self._autocommit(statement, RoutingControl.WRITE, {})
            self._autocommit(cypher.AWAIT_INDEXES, RoutingControl.WRITE, {"timeout": INDEX_WAIT_S})

        self._run("ensure_schema", run)

    def _translate(self, operation: str, exc: Exception) -> StoreError:
        where = self.uri or "the configured server"
        if isinstance(exc, ServiceUnavailable):
            return StoreUnavailable(
                operation,
                self.name,
                f"cannot reach Neo4j at {where} ({exc}); start the local server with "
                "'sybilscope neo4j start' or point --store / SYBILSCOPE_STORE at a running one",
            )
        if isinstance(exc, AuthError):
            return StoreUnavailable(
                operation,
                self.name,
                f"Neo4j at {where} refused the credentials; set SYBILSCOPE_NEO4J_USER and "
                "SYBILSCOPE_NEO4J_PASSWORD",
            )
        if isinstance(exc, Neo4jError):
            return StoreError(operation, self.name, f"{exc.code}: {exc.message}")
        return StoreError(operation, self.name, exc)

    # ---- read-only user queries (saved queries) ---------------------------------------------

    def explain_query(self, query: str, params: Mapping[str, Any], *, timeout: float = 60.0) -> Explained:
        """The server's plan for ``query`` with ``params`` (EXPLAIN: compiled, not run), in a
        READ transaction like the query itself would run in."""

        def run() -> Explained:
            def work(tx: neo4j.ManagedTransaction) -> Explained:
                summary = tx.run(cypher.explain(query), dict(params)).consume()
                return Explained(str(summary.query_type or ""), str(summary.database or ""), plan_steps(summary.plan))

            with self.driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS) as session:
                return session.execute_read(neo4j.unit_of_work(timeout=timeout)(work))

        out: Explained = self._run("explain query", run)
        return out

    def builtin_functions(self) -> frozenset[str]:
        """Names of the server's built-in functions (asked once per store)."""
        if self._builtin_functions is None:
            records = self._run("list functions", self._read_query, cypher.BUILTIN_FUNCTIONS)
            self._builtin_functions = frozenset(str(r["name"]) for r in records)
        return self._builtin_functions

    def run_read_query(
        self,
        query: str,
        params: dict[str, Any],
        *,
        max_rows: int = 10_000,
        timeout: float = 60.0,
        name: str = "query",
    ) -> tuple[list[str], list[dict[str, Any]], bool]:
        """Run a saved (possibly user-written) Cypher query read-only, after vetting its plan
        (graph/queries/guard.py: no writes, LOAD CSV, administration commands, procedures
        outside a small allow-list or plugin functions; ``UnsafeCypher`` names what it does).
        It then runs in a READ transaction (so the server refuses writes too) that the server
        stops after ``timeout`` seconds, and at most ``max_rows`` rows are kept. Returns
        (columns, rows, truncated); nodes and relationships in the result become plain dicts.
        Server errors surface as a StoreError with Neo4j's message."""
        vet(self, name, query, params, timeout=timeout)

        def run() -> tuple[list[str], list[dict[str, Any]], bool]:
            def work(tx: neo4j.ManagedTransaction) -> tuple[list[str], list[dict[str, Any]], bool]:
                result = tx.run(query, params)
                columns = list(result.keys())
                rows: list[dict[str, Any]] = []
                truncated = False
                for record in result:
                    if len(rows) >= max_rows:
                        truncated = True
                        break
                    rows.append({k: _plain(record[k]) for k in columns})
                result.consume()
                return columns, rows, truncated

            with self.driver.session(
                database=self.database, default_access_mode=neo4j.READ_ACCESS
            ) as session:
                return session.execute_read(neo4j.unit_of_work(timeout=timeout)(work))

        try:
            out: tuple[list[str], list[dict[str, Any]], bool] = self._run("read query", run)
        except StoreError as exc:
            if "TransactionTimedOut" in str(exc.cause):
                raise StoreError(
                    "read query",
                    self.name,
                    f"query {name!r} ran longer than {timeout:g} s and the server stopped it "
                    "(the limit is the setting user_query_timeout_s, SYBILSCOPE_USER_QUERY_TIMEOUT_S)",
                ) from exc
            raise
        return out

    # ---- plumbing ---------------------------------------------------------------------------

    def _transaction(self) -> _Transaction | None:
        """The batch transaction open on this thread, which every query must then go through."""
        scope = self._current_scope()
        return scope.handle if scope is not None and scope.kind == "batch" else None

    def _begin_batch(self) -> _Transaction:
        return _Transaction(self.driver, self.database)

    def _end_batch(self, handle: _Transaction, ok: bool) -> None:
        handle.finish(ok)

    def _autocommit(self, query: str, routing: RoutingControl, params: dict[str, Any]) -> list[neo4j.Record]:
        chain: dict[str, Any] = {} if self._bookmarks is None else {"bookmark_manager_": self._bookmarks}
        records, _, _ = self.driver.execute_query(
            query, parameters_=params, routing_=routing, database_=self.database, **chain
        )
        return list(records)

    def _read_query(self, query: str, **params: Any) -> list[neo4j.Record]:
        tx = self._transaction()
        if tx is not None:
            return tx.run(query, params)
        return self._autocommit(query, RoutingControl.READ, params)

    def _write_query(self, query: str, **params: Any) -> list[neo4j.Record]:
        tx = self._transaction()
        if tx is not None:
            return tx.run(query, params)
        return self._autocommit(query, RoutingControl.WRITE, params)

    def _stream_query(self, query: str, **params: Any) -> Iterator[neo4j.Record]:
        """Stream a large read without holding every record in memory."""
        tx = self._transaction()
        if tx is not None:
            yield from tx.stream(query, params)
            return
        with self.driver.session(
            database=self.database, default_access_mode=neo4j.READ_ACCESS, fetch_size=STREAM_FETCH_SIZE
        ) as session:
            yield from session.run(query, params)

    @staticmethod
    def _without_key(label: str, props: dict[str, Any]) -> dict[str, Any]:
        props = dict(props)
        props.pop(key_of(label), None)
        return props

    def _resolve(self, refs: list[NodeKey]) -> dict[str, NodeKey]:
        """Element id -> (label, key) for the named nodes that exist."""
        by_label: dict[str, list[str]] = {}
        for label, key in dict.fromkeys(refs):
            by_label.setdefault(label, []).append(key)
        if not by_label:
            return {}
        labels = list(by_label)
        params = {f"keys{i}": by_label[label] for i, label in enumerate(labels)}
        records = self._read_query(cypher.resolve_refs(labels), **params)
        return {r["id"]: (r["label"], r["key"]) for r in records}

    def _nodes_by_ids(self, ids: dict[str, NodeKey]) -> list[Node]:
        if not ids:
            return []
        records = self._read_query(cypher.NODES_BY_IDS, ids=list(ids))
        return [
            Node(ids[r["id"]][0], ids[r["id"]][1], self._without_key(r["label"], r["props"]))
            for r in records
        ]

    def _rels_touching(
        self, from_ids: dict[str, NodeKey], to_ids: dict[str, NodeKey], rel_types: list[str] | None
    ) -> list[Relationship]:
        if not from_ids or not to_ids:
            return []
        records = self._read_query(
            cypher.relationships_touching(rel_types), **{"from": list(from_ids), "to": list(to_ids)}
        )
        known = {**from_ids, **to_ids}
        return [
            Relationship(r["type"], known[r["start"]], known[r["end"]], dict(r["props"]))
            for r in records
        ]

    # ---- writes -----------------------------------------------------------------------------

    def _partitions(self, rows: list[dict[str, Any]], field: str) -> list[list[dict[str, Any]]]:
        """Rows split over the writers by a stable hash of ``rows[i][field]``, in input order.

        One key always lands in one partition, so two writers never touch the same node through
        it and a repeated key keeps its last-row-wins order. Small inputs stay in one partition:
        a second writer only pays off once each has several batches to pipeline. Inside a batch
        there is one partition: the transaction belongs to one thread."""
        if self.writers == 1 or self._transaction() is not None or len(rows) < 2 * self.writers * self.batch_size:
            return [rows]
        parts: list[list[dict[str, Any]]] = [[] for _ in range(self.writers)]
        for row in rows:
            parts[zlib.crc32(row[field].encode()) % self.writers].append(row)
        return [part for part in parts if part]

    def _write_partitions(
        self,
        query: str,
        parts: list[list[dict[str, Any]]],
        order: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    ) -> int:
        """Run ``query`` over every batch of every partition, one writer thread per partition.

        With two writers the client packs one batch while the server merges the other, and the
        server uses both cores. Transient errors (deadlocks) are retried by ``execute_query``;
        any other error stops the remaining batches and is raised."""
        failed = threading.Event()

        def write(part: list[dict[str, Any]]) -> int:
            written = 0
            for chunk in chunked(part, self.batch_size):
                if failed.is_set():
                    break
                try:
                    written += self._write_query(query, rows=order(chunk) if order else chunk)[0]["written"]
                except BaseException:
                    failed.set()
                    raise
            return written

        if len(parts) == 1:
            return write(parts[0])
        with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="neo4j-writer") as pool:
            futures = [pool.submit(write, part) for part in parts]
            return sum(future.result() for future in futures)

    def _upsert_nodes(self, label: str, key: str, rows: list[dict[str, Any]]) -> int:
        return self._write_partitions(cypher.merge_nodes(label), self._partitions(rows, "key"))

    def _upsert_relationships(
        self, rel_type: str, start_label: str, end_label: str, rows: list[dict[str, Any]]
    ) -> int:
        """Partitioned by end key: end nodes are the shared entities (IPs, devices, e-mail domains,
        payment methods), often hubs, so each one's relationships stay with one writer and the
        writers do not queue on its lock. Start nodes may be shared, so each batch goes in
        start-key order, both writers then take those locks in the same order (the sort is
        stable, so a repeated pair keeps its last-row-wins order). Lock upgrades can still
        deadlock now and then; ``execute_query`` retries those."""
        query = cypher.merge_relationships(rel_type, start_label, end_label)
        if start_label == end_label:  # an end node may be another writer's start node
            return self._write_partitions(query, [rows])
        parts = self._partitions(rows, "end")
        return self._write_partitions(query, parts, None if len(parts) == 1 else _by_start_key)

    def _upsert_relationship_chunks(self, rel_type: str, start_label: str, end_label: str,
                                    batches: Iterator[list[dict[str, Any]]]) -> int:
        """The caller makes (and the store checks) the next batch while a writer thread has
        the server merge this one: at the seed scale the LINKED write was half client work,
        half waiting on the server. Inside a batch every write belongs to its one
        transaction, on this thread, so the batches go one after the other there."""
        if self._transaction() is not None:
            return sum(self._upsert_relationships(rel_type, start_label, end_label, batch) for batch in batches)
        handoff: queue.Queue[list[dict[str, Any]] | None] = queue.Queue(maxsize=2)
        failed = threading.Event()

        def write() -> int:
            written, error = 0, None
            while (batch := handoff.get()) is not None:  # drained to the end: the caller never blocks on a full queue
                if error is None:
                    try:
                        written += self._upsert_relationships(rel_type, start_label, end_label, batch)
                    except BaseException as exc:
                        error = exc
                        failed.set()
            if error is not None:
                raise error
            return written

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="neo4j-writer") as pool:
            writer = pool.submit(write)
            try:
                for batch in batches:
                    if failed.is_set():
                        break
                    handoff.put(batch)
            finally:
                handoff.put(None)  # the writer drains what is queued, then stops
            return writer.result()

    def _delete_in_chunks(self, query: str) -> int:
        total = 0
        while True:
            deleted = self._write_query(query, chunk=DELETE_CHUNK)[0]["deleted"]
            total += deleted
            if deleted < DELETE_CHUNK:
                return total

    def _delete_label(self, label: str) -> int:
        self._delete_in_chunks(cypher.delete_label_relationships_chunk(label))
        return self._delete_in_chunks(cypher.delete_label_chunk(label))

    def _delete_relationships(self, rel_type: str) -> int:
        return self._delete_in_chunks(cypher.delete_relationships_chunk(rel_type))

    def _delete_nodes(self, refs: list[NodeKey]) -> int:
        ids = self._resolve(refs)
        if not ids:
            return 0
        return int(self._write_query(cypher.DELETE_BY_IDS, ids=list(ids))[0]["deleted"])

    def _delete_relationship_refs(self, refs: list[RelRef]) -> int:
        """One statement per (type, start label, end label), in chunks of ``batch_size``."""
        grouped: dict[tuple[str, str, str], list[dict[str, str]]] = {}
        for (start_label, start_key), rel_type, (end_label, end_key) in refs:
            grouped.setdefault((rel_type, start_label, end_label), []).append({"start": start_key, "end": end_key})
        deleted = 0
        for (rel_type, start_label, end_label), rows in grouped.items():
            query = cypher.delete_relationships_by_keys(rel_type, start_label, end_label)
            for chunk in chunked(rows, self.batch_size):
                deleted += self._write_query(query, rows=chunk)[0]["deleted"]
        return deleted

    # ---- reads ------------------------------------------------------------------------------

    def _get_node(self, label: str, key: str) -> Node | None:
        records = self._read_query(cypher.get_node(label), key=key)
        if not records:
            return None
        return Node(label, key, self._without_key(label, records[0]["props"]))

    def _find_nodes(self, label: str, where: dict[str, Any], limit: int | None) -> list[Node]:
        query = cypher.find_nodes(label, list(where), limit is not None)
        params: dict[str, Any] = {"where": where}
        if limit is not None:
            params["limit"] = limit
        return [
            Node(label, r["key"], self._without_key(label, r["props"]))
            for r in self._read_query(query, **params)
        ]

    def _iter_nodes(self, label: str, skip_key_prefix: str | None) -> Iterator[Node]:
        query, params = cypher.iter_nodes(label, skip_key_prefix)
        for r in self._stream_query(query, **params):
            yield Node(label, r["key"], self._without_key(label, r["props"]))

    def _iter_relationships(self, rel_type: str) -> Iterator[Relationship]:
        specs = [spec for spec in RELATIONSHIPS if spec.type.value == rel_type]
        if len(specs) == 1:
            start, end = specs[0].start.value, specs[0].end.value
            for r in self._stream_query(cypher.iter_relationships_between(rel_type, start, end)):
                yield Relationship(rel_type, (start, r["sk"]), (end, r["ek"]), dict(r["props"]))
            return
        for r in self._stream_query(cypher.iter_relationships(rel_type)):
            yield Relationship(rel_type, (r["sl"], r["sk"]), (r["el"], r["ek"]), dict(r["props"]))

    def _neighbours(
        self, refs: list[NodeKey], rel_types: list[str] | None, limit: int, degree_cap: int | None
    ) -> Subgraph:
        seeds = self._resolve(refs)
        if not seeds:
            return Subgraph()
        candidates = self._read_query(cypher.neighbour_candidates(rel_types), ids=list(seeds))
        hubs: dict[NodeKey, int] = {}
        kept: list[tuple[NodeKey, str]] = []
        for r in sorted(candidates, key=lambda r: (r["label"], r["key"])):
            ref = (r["label"], r["key"])
            if degree_cap is not None and r["degree"] > degree_cap:
                hubs[ref] = r["degree"]
            else:
                kept.append((ref, r["id"]))
        truncated = len(kept) > limit
        kept_ids = {node_id: ref for ref, node_id in kept[:limit]}
        members = {**seeds, **kept_ids}
        return Subgraph(
            nodes=self._nodes_by_ids(members),
            relationships=self._rels_touching(seeds, members, rel_types),
            truncated=truncated,
            hubs=hubs,
        )

    def _subgraph(self, refs: list[NodeKey], rel_types: list[str] | None) -> Subgraph:
        ids = self._resolve(refs)
        return Subgraph(nodes=self._nodes_by_ids(ids), relationships=self._rels_touching(ids, ids, rel_types))

    def _relationships_between(self, refs: list[NodeKey], rel_types: list[str] | None) -> list[Relationship]:
        """Without the nodes' properties: the links among a 2,200-member cluster need only
        their ends' keys."""
        ids = self._resolve(refs)
        return self._rels_touching(ids, ids, rel_types)

    def _shortest_path(
        self, start: NodeKey, end: NodeKey, rel_types: list[str] | None, max_hops: int
    ) -> Subgraph | None:
        ids = self._resolve([start, end])
        by_ref = {ref: node_id for node_id, ref in ids.items()}
        if start not in by_ref or end not in by_ref:
            return None
        if start == end:
            return Subgraph(nodes=self._nodes_by_ids({by_ref[start]: start}))
        records = self._read_query(
            cypher.shortest_path(rel_types, max_hops), a=by_ref[start], b=by_ref[end]
        )
        if not records:
            return None
        path_ids: dict[str, NodeKey] = {}
        nodes = []
        for n in records[0]["nodes"]:
            key = n["props"][key_of(n["label"])]
            path_ids[n["id"]] = (n["label"], key)
            nodes.append(Node(n["label"], key, self._without_key(n["label"], n["props"])))
        rels = [
            Relationship(r["type"], path_ids[r["start"]], path_ids[r["end"]], dict(r["props"]))
            for r in records[0]["rels"]
        ]
        return Subgraph(nodes=nodes, relationships=rels)

    def _degrees(self, refs: list[NodeKey], rel_types: list[str] | None) -> dict[NodeKey, int]:
        ids = self._resolve(refs)
        if not ids:
            return {}
        records = self._read_query(cypher.degrees(rel_types), ids=list(ids))
        return {ids[r["id"]]: r["degree"] for r in records}

    def _ip_uses(self, accounts: list[str], degree_cap: int | None, fold_ips: int, hubs: list[str],
                 watch: list[str]) -> IpUses:
        """One statement (``cypher.ip_uses``): the server folds the uses, the client only
        decodes what the evidence graph shows."""
        records = self._read_query(cypher.ip_uses(), accounts=accounts, cap=degree_cap, fold=fold_ips,
                                   hubs=hubs, watch=watch)
        out = IpUses()
        for r in records:
            out.networks_of.update({address: network for address, network in r["watched"]})
            if r["hub"]:
                out.hubs.update({address: int(degree) for address, degree in r["hubs"]})
                out.hub_users = list(r["hub_users"])
                continue
            summary = NetworkUses(r["network"], r["addresses"], r["members"], r["shared"], r["first_seen"],
                                  _later(r["last_seen"], r["last_first"]), bool(r["folded"]))
            summary.uses = {account: aggregate_uses(total, counted, first, _later(last, last_first), ips, signup)
                            for account, total, counted, first, last, last_first, ips, signup in r["uses"]}
            out.networks.append(summary)
            out.addresses += [AddressUses(address, r["network"], int(degree), {a: dict(p) for a, p in uses})
                              for address, degree, uses in r["shown"]]
        return out

    def _shared_values(self, a: NodeKey, b: NodeKey, rel_types: list[str]) -> list[SharedValue]:
        records = self._read_query(cypher.shared_values(a[0], b[0], rel_types), a=a[1], b=b[1])
        out: dict[NodeKey, SharedValue] = {}
        for r in sorted(records, key=lambda r: r["type"]):
            ref = (r["label"], r["key"])
            out.setdefault(ref, SharedValue(ref, r["type"], dict(r["a_props"]), dict(r["b_props"]), int(r["degree"])))
        return list(out.values())

    def _users_among(self, values: list[NodeKey], accounts: list[str], rel_types: list[str]) -> dict[NodeKey, list[str]]:
        ids = self._resolve(values)
        if not ids:
            return {}
        records = self._read_query(cypher.users_among(rel_types), ids=list(ids), accounts=accounts)
        return {ids[r["id"]]: list(r["users"]) for r in records}

    def _counts(self) -> dict[str, dict[str, int]]:
        from graph.schema import Label, Rel

        record = self._read_query(cypher.counts())[0]
        return {
            "nodes": {label.value: record[label.value] for label in Label},
            "relationships": {rel.value: record[rel.value] for rel in Rel},
        }

    def _ping(self) -> None:
        try:
            self.driver.verify_connectivity()
            self._read_query(cypher.PING)
        except Exception as exc:
            raise self._translate("connect", exc) from exc
