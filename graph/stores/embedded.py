"""The embedded store: a networkx MultiDiGraph in memory, persisted in the workspace.

Zero setup, the default. The graph is written to ``<workspace>/embedded/graph.jsonl.gz`` (data,
never code: see graph.stores.embedded_format) by write-then-rename with fsync, so a reader never
sees half a file, and another process (the UI beside the CLI) reloads it when it changed. Writers
take a file lock and reload before applying their changes, so two processes writing one after
the other do not lose each other's updates.

Trust: the store's directory and file must be this user's and writable by no one else
(graph.trust); what the store creates is 0700 / 0600. A directory holding only the pickle of
earlier versions (``graph.pickle``) is refused without opening it, pointing at
``sybilscope migrate``: unpickling runs whatever code the file carries.

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
import shlex
import tempfile
import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx
from filelock import FileLock

from graph.schema import RELATIONSHIPS, Label, Rel
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
    Subgraph,
    fold_uses,
    use_span,
)
from graph.stores.embedded_format import read_graph, write_graph
from graph.trust import PRIVATE_FILE_MODE, check_private, check_stat, make_private_dir

GRAPH_FILE = "graph.jsonl.gz"
LOCK_FILE = "graph.lock"
LEGACY_FILE = "graph.pickle"
"""The file of versions before graph.jsonl.gz: a pickle, never opened but by ``sybilscope migrate``."""
MIGRATED_SUFFIX = ".migrated"
_STALE = (-1, -1, -1, -1)  # a file stamp no file has
Stamp = tuple[int, int, int, int]


_TOUCHING: dict[str, frozenset[str]] = {
    label.value: frozenset(spec.type.value for spec in RELATIONSHIPS if label in (spec.start, spec.end))
    for label in Label
}
"""The relationship types the schema lets touch each label."""


class LegacyGraphFile(RuntimeError):
    """The store's directory holds only the old pickle, which is never opened on its own."""


def _stamp_of(st: os.stat_result) -> Stamp:
    """What tells one version of the file from another. The change time is in it because no
    user can set it back: a rewrite that restores the size and mtime, or a chmod, still counts."""
    return (st.st_ino, st.st_mtime_ns, st.st_size, st.st_ctime_ns)


def _file_stamp(path: Path) -> Stamp | None:
    try:
        return _stamp_of(path.stat())
    except FileNotFoundError:
        return None


def legacy_message(directory: Path) -> str:
    """Why a directory with only ``graph.pickle`` is not opened, and the one command that converts it."""
    workspace = shlex.quote(str(directory.parent))
    return (
        f"{directory / LEGACY_FILE} holds the embedded graph in the pickle format of earlier versions, "
        "which sybilscope no longer opens because loading a pickle runs any code planted in it; "
        f"if you created this workspace yourself, convert it once: sybilscope migrate --workspace {workspace}"
    )


def store_lock(directory: Path) -> FileLock:
    """The lock every writer of the store in ``directory`` holds (a private file)."""
    return FileLock(str(directory / LOCK_FILE), mode=PRIVATE_FILE_MODE)


def write_graph_file(directory: Path, graph: nx.MultiDiGraph) -> Stamp:
    """Write ``graph`` as ``directory/graph.jsonl.gz`` atomically: a private temporary file,
    fsynced, renamed over the old one, the directory fsynced. Returns the new file's stamp
    (the caller holds the store's lock, so no other writer can have replaced it since)."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".graph-", suffix=".tmp")  # mode 0600
    path = directory / GRAPH_FILE
    try:
        with os.fdopen(fd, "wb") as fh:
            write_graph(graph, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)
    return _stamp_of(path.stat())


def read_graph_file(directory: Path) -> tuple[nx.MultiDiGraph, Stamp] | None:
    """The graph in ``directory/graph.jsonl.gz`` and the stamp of the file read, or None if
    there is none. The open file itself is checked to be private (graph.trust) before a byte of
    it is read. A directory with only the old pickle raises LegacyGraphFile."""
    path = directory / GRAPH_FILE
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, after the checks on the open file
    except FileNotFoundError:
        if (directory / LEGACY_FILE).exists():
            raise LegacyGraphFile(legacy_message(directory)) from None
        return None
    with fh:
        st = os.fstat(fh.fileno())
        check_stat(path, st, "embedded graph file")
        return read_graph(fh, path), _stamp_of(st)


# ---- migrating the pickle of earlier versions -------------------------------------------------

_SCALARS = (str, bool, int, float)


def _legacy_value(where: str, value: Any) -> Any:
    """A property value of the old pickle as the store keeps it (tuples become lists), or
    ValueError: anything but the schema's types is refused rather than guessed at. Text is
    taken as it is, lone surrogates included, as the store's hooks take it."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, _SCALARS) for v in value):
        return list(value)
    raise ValueError(f"{where} has a value of type {type(value).__name__}, which the store cannot hold")


def _legacy_props(where: str, attrs: Any) -> dict[str, Any]:
    if not isinstance(attrs, dict):
        raise ValueError(f"{where} has properties of type {type(attrs).__name__}")
    out: dict[str, Any] = {}
    for name, value in attrs.items():
        if not isinstance(name, str):
            raise ValueError(f"{where} has a property named {name!r}, not text")
        out[name] = _legacy_value(f"{where} property {name!r}", value)
    return out


def _is_ref(node: Any) -> bool:
    return isinstance(node, tuple) and len(node) == 2 and all(isinstance(p, str) for p in node)


def legacy_graph_copy(graph: Any) -> nx.MultiDiGraph:
    """The store graph in an object read from the old pickle, rebuilt from its nodes,
    relationships and properties only (nothing else the pickle carried survives), or
    ValueError naming the first thing that is not what the store writes."""
    if not isinstance(graph, nx.MultiDiGraph):
        raise ValueError(f"the pickle holds a {type(graph).__name__}, not the store's networkx MultiDiGraph")
    out = nx.MultiDiGraph()
    for node, attrs in graph.nodes(data=True):
        if not _is_ref(node):
            raise ValueError(f"the node {node!r} is not a (label, key) pair of text")
        out.add_node(node)
        out.nodes[node].update(_legacy_props(f"the node {node!r}", attrs))
    for u, v, rel_type, attrs in graph.edges(keys=True, data=True):
        if not isinstance(rel_type, str):
            raise ValueError(f"the relationship {u!r} -> {v!r} has the type {rel_type!r}, not text")
        out.add_edge(u, v, key=rel_type)
        out.edges[u, v, rel_type].update(_legacy_props(f"the relationship {u!r} -[{rel_type}]-> {v!r}", attrs))
    return out


def install_migrated(directory: Path, graph: Any) -> tuple[int, int]:
    """Make ``graph`` (read from ``directory/graph.pickle`` by ``sybilscope migrate``) the
    store's file and rename the pickle to ``graph.pickle.migrated``, under the store's lock.
    Refuses to overwrite an existing graph.jsonl.gz. Returns (nodes, relationships) written."""
    clean = legacy_graph_copy(graph)
    make_private_dir(directory, "embedded store directory")
    legacy = directory / LEGACY_FILE
    with store_lock(directory):
        if (directory / GRAPH_FILE).exists():
            raise FileExistsError(f"{directory / GRAPH_FILE} already exists; migrate does not overwrite it")
        write_graph_file(directory, clean)
        os.replace(legacy, legacy.with_name(LEGACY_FILE + MIGRATED_SUFFIX))
    found = read_graph_file(directory)  # what the store will see from now on
    assert found is not None
    back = found[0]
    if (back.number_of_nodes(), back.number_of_edges()) != (clean.number_of_nodes(), clean.number_of_edges()):
        raise RuntimeError(f"{directory / GRAPH_FILE} does not read back as the graph written")
    return back.number_of_nodes(), back.number_of_edges()


class EmbeddedStore(GraphStore):
    """A GraphStore over networkx, persisted in ``directory`` (None: memory only)."""

    name = "embedded"

    def __init__(self, directory: Path | str | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.graph: nx.MultiDiGraph = nx.MultiDiGraph()
        self._by_label: dict[str, set[str]] = {}
        self._stamp: Stamp | None = _STALE  # the first look always reads
        self._lock: FileLock | None = None
        self._in_batch = 0
        self._writer = threading.RLock()  # the thread whose writes _in_batch counts
        self._snapshot: nx.MultiDiGraph | None = None
        # Degrees counted since the last write or reload: a popular template's 20,000 uses
        # are counted once, not once per batch of members that reach it.
        self._degrees_seen: dict[tuple[NodeKey, frozenset[str] | None], int] = {}
        if self.directory is not None:
            make_private_dir(self.directory, "embedded store directory")
            self._lock = store_lock(self.directory)
            self._reload_if_changed()

    # ---- persistence ------------------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        return self.directory / GRAPH_FILE if self.directory is not None else None

    def _reload_if_changed(self) -> None:
        if self.path is None or self._in_batch:
            return
        if _file_stamp(self.path) == self._stamp:
            return
        assert self.directory is not None
        check_private(self.directory, "embedded store directory")
        found = read_graph_file(self.directory)
        graph, stamp = found if found is not None else (nx.MultiDiGraph(), None)
        self._restore(graph)
        self._stamp = stamp

    def _persist(self) -> None:
        if self.path is None:
            return
        assert self.directory is not None
        self._stamp = write_graph_file(self.directory, self.graph)

    def _hold(self) -> None:
        """Enter a write: the outermost one takes the locks and reloads what others committed."""
        self._writer.acquire()
        locked = False
        try:
            if self._in_batch == 0:
                if self._lock is not None:
                    self._lock.acquire()
                    locked = True
                self._reload_if_changed()
        except BaseException:
            if locked and self._lock is not None:  # a file that cannot be read must not keep it
                self._lock.release()
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
        self._degrees_seen = {}
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
        self._degrees_seen = {}
        try:
            result = fn(*args)
            ok = True
            return result
        finally:
            self._degrees_seen = {}
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
        return Relationship(rel_type, u, v, dict(self.graph._succ[u][v][rel_type]))

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

    def _iter_nodes(self, label: str, skip_key_prefix: str | None) -> Iterator[Node]:
        self._read()
        for key in list(self._by_label.get(label, ())):
            if skip_key_prefix is None or not key.startswith(skip_key_prefix):
                yield self._node((label, key))

    def _iter_relationships(self, rel_type: str) -> Iterator[Relationship]:
        g = self._read()
        for u, v, k, data in g.edges(keys=True, data=True):
            if k == rel_type:
                yield Relationship(k, u, v, dict(data))

    def _incident(self, node: NodeKey, rel_types: list[str] | None) -> Iterator[tuple[NodeKey, NodeKey, str]]:
        """Every relationship touching ``node`` as (start, end, type), filtered by type."""
        for u, v, k, _data in self._incident_data(node, rel_types):
            yield u, v, k

    def _incident_data(self, node: NodeKey, rel_types: list[str] | None) -> Iterator[tuple[NodeKey, NodeKey, str, dict[str, Any]]]:
        """``_incident`` with each relationship's properties, read from the adjacency dicts
        (networkx's edge views cost several times more per edge, and a 1,000-account
        cluster's neighbourhood is 50,000 edges)."""
        g = self.graph
        types = None if rel_types is None else set(rel_types)
        for v, keyed in g._succ[node].items():
            for k, data in keyed.items():
                if types is None or k in types:
                    yield node, v, k, data
        for u, keyed in g._pred[node].items():
            for k, data in keyed.items():
                if types is None or k in types:
                    yield u, node, k, data

    def _degree(self, node: NodeKey, rel_types: list[str] | None) -> int:
        seen = (node, None if rel_types is None else frozenset(rel_types))
        if seen not in self._degrees_seen:
            self._degrees_seen[seen] = self._count_degree(node, rel_types)
        return self._degrees_seen[seen]

    def _count_degree(self, node: NodeKey, rel_types: list[str] | None) -> int:
        g = self.graph
        types = set(rel_types or ())
        if rel_types is None or _TOUCHING.get(node[0], frozenset({""})) <= types:
            # Every type that can touch this label is asked for: count without looking at
            # the types, in C.
            return sum(map(len, g._succ[node].values())) + sum(map(len, g._pred[node].values()))
        return (sum(1 for keyed in g._succ[node].values() for k in keyed if k in types)
                + sum(1 for keyed in g._pred[node].values() for k in keyed if k in types))

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
        rels: dict[tuple[NodeKey, NodeKey, str], dict[str, Any]] = {}
        for seed in seeds:
            for u, v, k, data in self._incident_data(seed, rel_types):
                if u in members and v in members:
                    rels[(u, v, k)] = data
        return Subgraph(
            nodes=[self._node(r) for r in seeds + kept],
            relationships=[Relationship(k, u, v, dict(data)) for (u, v, k), data in rels.items()],
            truncated=truncated,
            hubs=hubs,
        )

    def _subgraph(self, refs: list[NodeKey], rel_types: list[str] | None) -> Subgraph:
        g = self._read()
        members = {r for r in refs if r in g}
        types = None if rel_types is None else set(rel_types)
        succ = self.graph._succ
        return Subgraph(
            nodes=[self._node(r) for r in members],
            relationships=[Relationship(k, u, v, dict(data))
                           for u in members for v, keyed in succ[u].items() if v in members
                           for k, data in keyed.items() if types is None or k in types],
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

    def _shared_values(self, a: NodeKey, b: NodeKey, rel_types: list[str]) -> list[SharedValue]:
        g = self._read()
        if a not in g or b not in g:
            return []
        sides: list[dict[tuple[NodeKey, str], dict[str, Any]]] = []
        for me in (a, b):
            sides.append({((v if u == me else u), k): data for u, v, k, data in self._incident_data(me, rel_types)})
        out: dict[NodeKey, SharedValue] = {}
        for ref, rel_type in sorted(set(sides[0]) & set(sides[1]), key=lambda x: (x[1], x[0])):
            out.setdefault(ref, SharedValue(ref, rel_type, dict(sides[0][(ref, rel_type)]), dict(sides[1][(ref, rel_type)]),
                                            self._degree(ref, rel_types)))
        return list(out.values())

    def _users_among(self, values: list[NodeKey], accounts: list[str], rel_types: list[str]) -> dict[NodeKey, list[str]]:
        g = self._read()
        wanted = {v for v in values if v in g}
        out: dict[NodeKey, list[str]] = defaultdict(list)
        for account in accounts:
            ref = (Label.ACCOUNT.value, account)
            if ref in g:
                for u, v, _k in self._incident(ref, rel_types):
                    other = v if u == ref else u
                    if other in wanted:
                        out[other].append(account)
        return dict(out)

    def _network_of(self, ip: NodeKey) -> str:
        """An address's network: its ``network`` property, else the first network (by key)
        its IN_NETWORK relationships name, else ``""``."""
        own = self.graph.nodes[ip].get("network")
        if own:
            return str(own)
        named = [v[1] for v, keyed in self.graph._succ[ip].items()
                 if v[0] == Label.NETWORK.value and Rel.IN_NETWORK.value in keyed]
        return min(named) if named else ""

    def _ip_uses(self, accounts: list[str], degree_cap: int | None, fold_ips: int, hubs: list[str],
                 watch: list[str]) -> IpUses:
        g = self._read()
        used = Rel.USED_IP.value
        by_ip: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for account in accounts:
            ref = (Label.ACCOUNT.value, account)
            if ref in g:
                for v, keyed in g._succ[ref].items():
                    if v[0] == Label.IP.value and used in keyed:
                        by_ip[v[1]][account] = keyed[used]
        out = IpUses()
        forced, watched = set(hubs), set(watch)
        hub_users: set[str] = set()
        degree: dict[str, int] = {}
        groups: dict[str, list[str]] = defaultdict(list)
        for ip, users in by_ip.items():
            ref = (Label.IP.value, ip)
            degree[ip] = sum(1 for keyed in g._pred[ref].values() if used in keyed)
            network = self._network_of(ref)
            if ip in watched and network:
                out.networks_of[ip] = network
            if degree_cap is not None and (degree[ip] > degree_cap or ip in forced):
                out.hubs[ip] = degree[ip]
                hub_users.update(users)
            else:
                groups[network].append(ip)
        for network, ips in groups.items():
            members = {a for ip in ips for a in by_ip[ip]}
            shared = [ip for ip in ips if len(by_ip[ip]) >= 2]
            first, last = use_span(u for ip in ips for u in by_ip[ip].values())
            folded = bool(network) and len(ips) >= fold_ips
            summary = NetworkUses(network, len(ips), len(members), len(shared), first, last, folded)
            shown = set() if folded else set(shared)
            out.addresses += [AddressUses(ip, network, degree[ip], {a: dict(u) for a, u in by_ip[ip].items()})
                              for ip in shown]
            if network and len(members) >= 2:
                rest: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for ip in ips:
                    if ip not in shown:
                        for account, use in by_ip[ip].items():
                            rest[account].append(use)
                summary.uses = {a: fold_uses(u) for a, u in sorted(rest.items())}
            out.networks.append(summary)
        out.hub_users = sorted(hub_users)
        return out

    def _counts(self) -> dict[str, dict[str, int]]:
        g = self._read()
        rels: dict[str, int] = {}
        for _, _, k in g.edges(keys=True):
            rels[k] = rels.get(k, 0) + 1
        return {"nodes": {lab: len(keys) for lab, keys in self._by_label.items()}, "relationships": rels}

    def _ping(self) -> None:
        self._read()
