"""The embedded store's file: the graph as data, so that reading it can never run code.

``graph.jsonl.gz`` is gzip (level 1: the file is ~14x smaller than the JSON and compressing
costs less than writing the difference) over JSON Lines, written and read a chunk at a time so
neither side holds the whole text of a graph of millions of relationships::

    {"format": "sybilscope-embedded-graph", "version": 1, "nodes": N, "relationships": M}
    ["N", label, [[key, {props}], ...]]          node chunks: a node's index is its position
    ...                                          among all the node rows, in file order
    ["R", type, [[start, end, {props}], ...]]    relationship chunks, after every node chunk:
    ...                                          start and end are node indexes

Each node and relationship is named once and referred to by index, which keeps the file small
and lets the reader share one tuple per node. The header's counts are checked at the end, so a
file cut short is refused rather than read as a smaller graph.

Values are the schema's property types (graph.schema.check_property_value) and JSON carries all
of them exactly: ints of any size, floats by their shortest round-trip repr (NaN and ±Infinity
as JSON's common extension), lists as lists, booleans apart from ints, text with control
characters and NUL escaped. The text is UTF-8, except that lone surrogates (which the contract
refuses, but the store's own hooks accept, as a workspace written before that check could hold
them) are written as their three-byte forms (``surrogatepass``, as WTF-8 does), so they and a
surrogate pair kept as two code points come back exactly as they were.
"""

from __future__ import annotations

import gc
import gzip
import itertools
import json
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import networkx as nx

from graph.store import chunked

FORMAT = "sybilscope-embedded-graph"
VERSION = 1
CHUNK_ROWS = 20_000  # rows per line: big enough to amortise json's per-call cost, small in memory
COMPRESS_LEVEL = 1
_NODES, _RELS = "N", "R"


class GraphFileError(ValueError):
    """The file is not an embedded graph this version can read (corrupt, cut short, other format)."""


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Run a block that makes or walks millions of small containers with the cycle collector
    off: they are all live, so its repeated passes over them find nothing and would cost more
    than the work itself (reading 200k relationships: 1.8 s with it, 0.6 s without). It is
    switched back on only if it was on, so a caller who turned it off keeps it off."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _line(value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    return text.encode("utf-8", "surrogatepass") + b"\n"


def encode_lines(graph: nx.MultiDiGraph) -> Iterator[bytes]:
    """The lines of the file for ``graph``: the header, then node chunks, then relationship chunks.

    Nodes must be ``(label, key)`` tuples and edge keys relationship types, as the store makes them.
    """
    by_label: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    refs_of: dict[str, list[tuple[str, str]]] = {}
    for node, props in graph.nodes(data=True):
        node_rows = by_label.get(node[0])
        if node_rows is None:
            node_rows = by_label[node[0]] = []
            refs_of[node[0]] = []
        node_rows.append((node[1], props))
        refs_of[node[0]].append(node)
    index = {ref: i for i, ref in enumerate(itertools.chain.from_iterable(refs_of.values()))}
    del refs_of
    by_type: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}
    for u, nbrs in graph.adjacency():
        start = index[u]
        for v, keydict in nbrs.items():
            end = index[v]
            for rel_type, props in keydict.items():
                rel_rows = by_type.get(rel_type)
                if rel_rows is None:
                    rel_rows = by_type[rel_type] = []
                rel_rows.append((start, end, props))
    n_rels = sum(len(rel_rows) for rel_rows in by_type.values())
    yield _line({"format": FORMAT, "version": VERSION, "nodes": len(index), "relationships": n_rels})
    for label, node_rows in by_label.items():
        for nodes in chunked(node_rows, CHUNK_ROWS):
            yield _line([_NODES, label, nodes])
    del by_label
    for rel_type, rel_rows in by_type.items():
        for rels in chunked(rel_rows, CHUNK_ROWS):
            yield _line([_RELS, rel_type, rels])


def write_graph(graph: nx.MultiDiGraph, fh: IO[bytes]) -> None:
    """Write ``graph`` to the open binary file ``fh`` (the caller makes that atomic)."""
    with (
        _collector_paused(),
        gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=COMPRESS_LEVEL, mtime=0) as gz,
    ):
        for line in encode_lines(graph):
            gz.write(line)


def read_graph(fh: IO[bytes], name: Path | str) -> nx.MultiDiGraph:
    """The graph in the open binary file ``fh``; GraphFileError, naming ``name``, if the file
    is not a whole embedded graph of this version."""
    try:
        with _collector_paused(), gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            return _decode(gz)
    except GraphFileError as exc:
        raise GraphFileError(f"{name} is not a readable embedded graph: {exc}") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError, TypeError, KeyError,
            IndexError, RecursionError) as exc:
        raise GraphFileError(
            f"{name} is not a readable embedded graph (corrupt or cut short: {type(exc).__name__}: {exc})"
        ) from None


def _decode(lines: Iterable[bytes]) -> nx.MultiDiGraph:
    header = json.loads(next(iter(lines), b"{}").decode("utf-8"))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise GraphFileError(f"it does not start with a {FORMAT} header")
    if header.get("version") != VERSION:
        raise GraphFileError(f"it is version {header.get('version')!r}; this sybilscope reads version {VERSION}")
    graph = nx.MultiDiGraph()
    # Filling networkx's documented dict-of-dicts directly (node -> attrs, node -> neighbour ->
    # key -> attrs, the key dict shared by the successor and predecessor maps, as add_edge does)
    # halves the load time against add_edges_from. tests/security/test_embedded_format.py holds it to
    # the graph the public API builds.
    node_attrs, succ, pred = graph._node, graph._succ, graph._pred
    refs: list[tuple[str, str]] = []
    n_rels = 0
    for raw in lines:
        kind, name, rows = json.loads(raw.decode("utf-8", "surrogatepass"))
        if type(name) is not str:
            raise GraphFileError(f"a chunk names {name!r} as its label or type")
        if kind == _NODES:
            if n_rels:
                raise GraphFileError("a node chunk follows the relationships")
            for key, props in rows:
                ref = (name, key)
                if type(key) is not str or type(props) is not dict or ref in node_attrs:
                    raise GraphFileError(f"bad or repeated node row for {ref!r}")
                node_attrs[ref] = props
                succ[ref] = {}
                pred[ref] = {}
                refs.append(ref)
        elif kind == _RELS:
            for start, end, props in rows:
                if start < 0 or end < 0 or type(props) is not dict:
                    raise GraphFileError(f"bad {name} row {[start, end]!r}")
                u, v = refs[start], refs[end]
                keydict = succ[u].get(v)
                if keydict is None:
                    keydict = succ[u][v] = {}
                    pred[v][u] = keydict
                elif name in keydict:
                    raise GraphFileError(f"repeated relationship {u!r} -[{name}]-> {v!r}")
                keydict[name] = props
                n_rels += 1
        else:
            raise GraphFileError(f"unknown chunk kind {kind!r}")
    if (len(refs), n_rels) != (header.get("nodes"), header.get("relationships")):
        raise GraphFileError(
            f"it holds {len(refs)} nodes and {n_rels} relationships where its header promises "
            f"{header.get('nodes')} and {header.get('relationships')} (cut short?)"
        )
    return graph
