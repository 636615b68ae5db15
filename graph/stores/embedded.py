"""The embedded store: a networkx MultiDiGraph in memory, persisted in the workspace.

Zero setup, the default. The graph is pickled to ``<workspace>/embedded/graph.pickle`` by
write-then-rename, so a reader never sees half a file, and another process (the UI beside the
CLI) reloads it when it changed. Writers take a file lock and reload before applying their
changes, so two processes writing one after the other do not lose each other's updates.

Node ids are ``(label, key)`` tuples; a node's attribute dict is its properties; the edge key
is the relationship type, so (start, type, end) is unique as the contract requires.

Transactions: a batch holds the file lock, works on the graph in memory and writes the file
once when it commits; rolling back reloads the last committed file (a memory-only store keeps
a copy of the graph taken when the batch began instead). A bulk write is the same minus that
copy: the file is written once at the end, or not at all if the load fails. One instance
serves one writing thread at a time (a batch open on one thread makes the others' writes wait
for it); reads on other threads of the same instance are not isolated from an open batch.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx
from filelock import FileLock

from graph.store import GraphStore, Node, NodeKey, Relationship, RelRef, Subgraph

GRAPH_FILE = "graph.pickle"
_STALE = (-1, -1, -1)  # a file stamp no file has


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class EmbeddedStore(GraphStore):
    """A GraphStore over networkx, persisted in ``directory`` (None: memory only)."""

    name = "embedded"

    def __init__(self, directory: Path | str | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.graph: nx.MultiDiGraph = nx.MultiDiGraph()
        self._by_label: dict[str, set[str]] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._lock: FileLock | None = None
        self._in_batch = 0
        self._writer = threading.RLock()  # the thread whose writes _in_batch counts
        self._snapshot: nx.MultiDiGraph | None = None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(str(self.directory / "graph.lock"))
            self._reload_if_changed()

    # ---- persistence ------------------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        return self.directory / GRAPH_FILE if self.directory is not None else None

    def _reload_if_changed(self) -> None:
        if self.path is None or self._in_batch:
            return
        stamp = _file_stamp(self.path)
        if stamp == self._stamp:
            return
        if stamp is None:
            self.graph = nx.MultiDiGraph()
        else:
            with open(self.path, "rb") as fh:
                self.graph = pickle.load(fh)
        self._stamp = stamp
        self._by_label = {}
        for label, key in self.graph.nodes:
            self._by_label.setdefault(label, set()).add(key)

    def _persist(self) -> None:
        if self.path is None:
            return
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".graph-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(self.graph, fh, protocol=pickle.HIGHEST_PROTOCOL)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = _file_stamp(self.path)

    def _hold(self) -> None:
        """Enter a write: the outermost one takes the locks and reloads what others committed."""
        self._writer.acquire()
        try:
            if self._in_batch == 0:
                if self._lock is not None:
                    self._lock.acquire()
                self._reload_if_changed()
        except BaseException:
            self._writer.release()
            raise
        self._in_batch += 1

    def _release(self, ok: bool) -> None:
        """Leave a write: the outermost one persists (``ok``) or discards what was written."""
        try:
            self._in_batch -= 1
            if self._in_batch:
                return
            try:
                if ok:
                    try:
                        self._persist()
                    except BaseException:
                        self._discard()  # memory must not keep what the disk never got
                        raise
                else:
                    self._discard()
            finally:
                self._snapshot = None
                if self._lock is not None:
                    self._lock.release()
        finally:
            self._writer.release()

    def _discard(self) -> None:
        """Drop what the failed write changed: back to the snapshot or the committed file."""
        if self._snapshot is not None:
            self._restore(self._snapshot)
        else:
            self._stamp = _STALE  # forces the reload, also to empty when no file exists yet
            self._reload_if_changed()

    def _restore(self, graph: nx.MultiDiGraph) -> None:
        self.graph = graph
        self._by_label = {}
        for label, key in self.graph.nodes:
            self._by_label.setdefault(label, set()).add(key)

    def _begin_batch(self) -> None:
        self._hold()
        if self.path is None:  # nothing on disk to roll back to
            self._snapshot = self.graph.copy()

    def _end_batch(self, handle: Any, ok: bool) -> None:
        self._release(ok)

    def _begin_bulk(self) -> None:
        self._hold()

    def _end_bulk(self, handle: Any, ok: bool) -> None:
        self._release(ok)

    def _write(self, fn: Any, *args: Any) -> Any:
        """Run a write inside a hold of its own unless a batch or bulk write is open."""
        self._hold()
        ok = False
        try:
            result = fn(*args)
            ok = True
            return result
        finally:
            self._release(ok)

    def _read(self) -> nx.MultiDiGraph:
        self._reload_if_changed()
        return self.graph

    # ---- writes -----------------------------------------------------------------------------

    def _add_node(self, label: str, key: str) -> dict[str, Any]:
        node = (label, key)
        if node not in self.graph:
            self.graph.add_node(node)
            self._by_label.setdefault(label, set()).add(key)
        attrs: dict[str, Any] = self.graph.nodes[node]
        return attrs

    @staticmethod
    def _apply(attrs: dict[str, Any], props: dict[str, Any]) -> None:
        for name, value in props.items():
            if value is None:
                attrs.pop(name, None)
            else:
                attrs[name] = value

    def _upsert_nodes(self, label: str, key: str, rows: list[dict[str, Any]]) -> int:
        def apply() -> int:
            for row in rows:
                self._apply(self._add_node(label, row["key"]), row["props"])
            return len(rows)

        return int(self._write(apply))

    def _upsert_relationships(
        self, rel_type: str, start_label: str, end_label: str, rows: list[dict[str, Any]]
    ) -> int:
        def apply() -> int:
            g = self.graph
            for row in rows:
                self._add_node(start_label, row["start"])
                self._add_node(end_label, row["end"])
                u, v = (start_label, row["start"]), (end_label, row["end"])
                if not g.has_edge(u, v, key=rel_type):
                    g.add_edge(u, v, key=rel_type)
                self._apply(g.edges[u, v, rel_type], row["props"])
            return len(rows)

        return int(self._write(apply))

    def _delete_label(self, label: str) -> int:
        def apply() -> int:
            keys = self._by_label.pop(label, set())
            self.graph.remove_nodes_from((label, k) for k in keys)
            return len(keys)

        return int(self._write(apply))

    def _delete_relationships(self, rel_type: str) -> int:
        def apply() -> int:
            doomed = [(u, v, k) for u, v, k in self.graph.edges(keys=True) if k == rel_type]
            self.graph.remove_edges_from(doomed)
            return len(doomed)

        return int(self._write(apply))

    def _delete_nodes(self, refs: list[NodeKey]) -> int:
        def apply() -> int:
            present = [r for r in set(refs) if r in self.graph]
            self.graph.remove_nodes_from(present)
            for label, key in present:
                self._by_label.get(label, set()).discard(key)
            return len(present)

        return int(self._write(apply))

    def _delete_relationship_refs(self, refs: list[RelRef]) -> int:
        def apply() -> int:
            present = [(u, v, k) for u, k, v in refs if self.graph.has_edge(u, v, key=k)]
            self.graph.remove_edges_from(present)
            return len(present)

        return int(self._write(apply))

    # ---- reads ------------------------------------------------------------------------------

    def _node(self, ref: NodeKey) -> Node:
        return Node(ref[0], ref[1], dict(self.graph.nodes[ref]))

    def _rel(self, u: NodeKey, v: NodeKey, rel_type: str) -> Relationship:
        return Relationship(rel_type, u, v, dict(self.graph.edges[u, v, rel_type]))

    def _get_node(self, label: str, key: str) -> Node | None:
        g = self._read()
        return self._node((label, key)) if (label, key) in g else None

    def _find_nodes(self, label: str, where: dict[str, Any], limit: int | None) -> list[Node]:
        g = self._read()
        out: list[Node] = []
        for key in sorted(self._by_label.get(label, ())):
            attrs = g.nodes[(label, key)]
            if all(attrs.get(name) == value for name, value in where.items()):
                out.append(self._node((label, key)))
                if limit is not None and len(out) >= limit:
                    break
        return out

    def _iter_nodes(self, label: str) -> Iterator[Node]:
        self._read()
        for key in list(self._by_label.get(label, ())):
            yield self._node((label, key))

    def _iter_relationships(self, rel_type: str) -> Iterator[Relationship]:
        g = self._read()
        for u, v, k, data in g.edges(keys=True, data=True):
            if k == rel_type:
                yield Relationship(k, u, v, dict(data))

    def _incident(self, node: NodeKey, rel_types: list[str] | None) -> Iterator[tuple[NodeKey, NodeKey, str]]:
        """Every relationship touching ``node`` as (start, end, type), filtered by type."""
        g = self.graph
        for u, v, k in g.out_edges(node, keys=True):
            if rel_types is None or k in rel_types:
                yield u, v, k
        for u, v, k in g.in_edges(node, keys=True):
            if rel_types is None or k in rel_types:
                yield u, v, k

    def _degree(self, node: NodeKey, rel_types: list[str] | None) -> int:
        return sum(1 for _ in self._incident(node, rel_types))

    def _neighbours(
        self, refs: list[NodeKey], rel_types: list[str] | None, limit: int, degree_cap: int | None
    ) -> Subgraph:
        g = self._read()
        seeds = [r for r in dict.fromkeys(refs) if r in g]
        seed_set = set(seeds)
        candidates: set[NodeKey] = set()
        for seed in seeds:
            for u, v, _ in self._incident(seed, rel_types):
                other = v if u == seed else u
                if other not in seed_set:
                    candidates.add(other)
        hubs: dict[NodeKey, int] = {}
        kept: list[NodeKey] = []
        for cand in sorted(candidates):
            if degree_cap is not None:
                deg = self._degree(cand, rel_types)
                if deg > degree_cap:
                    hubs[cand] = deg
                    continue
            kept.append(cand)
        truncated = len(kept) > limit
        kept = kept[:limit]
        members = seed_set | set(kept)
        rels = {
            (u, v, k)
            for seed in seeds
            for u, v, k in self._incident(seed, rel_types)
            if u in members and v in members
        }
        return Subgraph(
            nodes=[self._node(r) for r in seeds + kept],
            relationships=[self._rel(u, v, k) for u, v, k in rels],
            truncated=truncated,
            hubs=hubs,
        )

    def _subgraph(self, refs: list[NodeKey], rel_types: list[str] | None) -> Subgraph:
        g = self._read()
        members = {r for r in refs if r in g}
        rels = {
            (u, v, k)
            for node in members
            for u, v, k in self.graph.out_edges(node, keys=True)
            if v in members and (rel_types is None or k in rel_types)
        }
        return Subgraph(
            nodes=[self._node(r) for r in members],
            relationships=[self._rel(u, v, k) for u, v, k in rels],
        )

    def _shortest_path(
        self, start: NodeKey, end: NodeKey, rel_types: list[str] | None, max_hops: int
    ) -> Subgraph | None:
        g = self._read()
        if start not in g or end not in g:
            return None
        if start == end:
            return Subgraph(nodes=[self._node(start)])
        # Breadth-first over both directions, neighbours visited in sorted order so the
        # path chosen among equals is stable from run to run.
        parent: dict[NodeKey, tuple[NodeKey, tuple[NodeKey, NodeKey, str]]] = {}
        frontier = deque([(start, 0)])
        seen = {start}
        while frontier:
            node, depth = frontier.popleft()
            if depth >= max_hops:
                continue
            steps = sorted(
                ((v if u == node else u), (u, v, k)) for u, v, k in self._incident(node, rel_types)
            )
            for other, edge in steps:
                if other in seen:
                    continue
                seen.add(other)
                parent[other] = (node, edge)
                if other == end:
                    return self._path_from(parent, start, end)
                frontier.append((other, depth + 1))
        return None

    def _path_from(
        self,
        parent: dict[NodeKey, tuple[NodeKey, tuple[NodeKey, NodeKey, str]]],
        start: NodeKey,
        end: NodeKey,
    ) -> Subgraph:
        nodes, rels = [end], []
        while nodes[-1] != start:
            prev, edge = parent[nodes[-1]]
            rels.append(self._rel(*edge))
            nodes.append(prev)
        nodes.reverse()
        rels.reverse()
        return Subgraph(nodes=[self._node(n) for n in nodes], relationships=rels)

    def _degrees(self, refs: list[NodeKey], rel_types: list[str] | None) -> dict[NodeKey, int]:
        g = self._read()
        return {r: self._degree(r, rel_types) for r in refs if r in g}

    def _counts(self) -> dict[str, dict[str, int]]:
        g = self._read()
        rels: dict[str, int] = {}
        for _, _, k in g.edges(keys=True):
            rels[k] = rels.get(k, 0) + 1
        return {"nodes": {lab: len(keys) for lab, keys in self._by_label.items()}, "relationships": rels}

    def _ping(self) -> None:
        self._read()
