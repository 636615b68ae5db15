"""Graph files others can open: GraphML, GEXF (with time spans) and node-link JSON.

Node ids are ``Label:key``. Every node carries ``kind`` (its schema label), ``key`` and
``label`` (a caption), every edge ``type``; properties follow. GraphML and GEXF hold scalars
only, so lists are flattened to ``;``-joined text and an attribute whose type differs between
elements is written as text (both formats declare one type per attribute). GEXF gets
``start``/``end`` from the element's first/last seen (or an account's creation), which makes
the file dynamic: Gephi's timeline plays the campaign.

Text follows graph/export/text.py: GraphML and GEXF get XML 1.0-legal text (``xml_text``),
node-link JSON strict UTF-8 (``utf8_text``), in node ids, keys, property names and values
alike; each file is checked before it is written, so an illegal character fails the export
instead of producing a file no parser reads.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx

from graph.export.selection import EvidenceGraph
from graph.export.text import clean_graph, clean_value, utf8_text, xml_text
from graph.store import NodeKey

START_PROPS = ("first_seen", "created_at", "at")
END_PROPS = ("last_seen",)


def node_id(ref: NodeKey) -> str:
    return f"{ref[0]}:{ref[1]}"


def flatten(value: Any) -> Any:
    """A scalar for GraphML/GEXF: lists joined with ``;``, everything else unchanged."""
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return value


def _time_span(props: dict[str, Any]) -> tuple[str | None, str | None]:
    start = next((props[p] for p in START_PROPS if isinstance(props.get(p), str) and props[p]), None)
    end = next((props[p] for p in END_PROPS if isinstance(props.get(p), str) and props[p]), None)
    if start and end and end < start:
        end = start
    return start, end


def to_networkx(graph: EvidenceGraph, *, scalar: bool = True, times: bool = False) -> nx.MultiDiGraph:
    """The evidence graph as a networkx MultiDiGraph (edge key = relationship type).
    ``scalar`` flattens lists; ``times`` adds GEXF ``start``/``end`` attributes."""
    out = nx.MultiDiGraph(name="sybilscope evidence", clusters=";".join(graph.cluster_ids))
    conv: Callable[[Any], Any] = flatten if scalar else (lambda v: v)
    for node in graph.nodes:
        attrs = {k: conv(v) for k, v in node.props.items() if v is not None and k not in ("label", "id")}
        attrs.update(kind=node.label, key=node.key, label=f"{node.label}:{node.key}")
        if times:
            start, end = _time_span(node.props)
            if start:
                attrs["start"] = start
            if end:
                attrs["end"] = end
        out.add_node(node_id(node.ref), **attrs)
    for rel in graph.relationships:
        attrs = {k: conv(v) for k, v in rel.props.items() if v is not None and k not in ("id", "key", "label")}
        attrs["type"] = rel.type
        if times:
            start, end = _time_span(rel.props)
            if start:
                attrs["start"] = start
            if end:
                attrs["end"] = end
        out.add_edge(node_id(rel.start), node_id(rel.end), key=rel.type, **attrs)
    return out


def _unify_types(items: list[dict[str, Any]]) -> None:
    """Make each attribute one type across elements: int+float become float, any other mix text."""
    kinds: dict[str, set[type]] = {}
    for attrs in items:
        for name, value in attrs.items():
            kinds.setdefault(name, set()).add(type(value))
    for name, seen in kinds.items():
        if len(seen) <= 1:
            continue
        to: Callable[[Any], Any] = float if seen <= {int, float} else str
        for attrs in items:
            if name in attrs:
                attrs[name] = to(attrs[name])


def _scalar_graph(graph: EvidenceGraph, times: bool) -> nx.MultiDiGraph:
    g = to_networkx(clean_graph(graph, xml_text), scalar=True, times=times)
    _unify_types([d for _, d in g.nodes(data=True)])
    _unify_types([d for _, _, d in g.edges(data=True)])
    return g


# What no XML 1.0 document may contain (the inverse of the spec's Char production).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _write_xml(write: Callable[[nx.MultiDiGraph, io.BytesIO], None], g: nx.MultiDiGraph, path: Path) -> Path:
    """Serialise ``g`` in memory, check the bytes are UTF-8 holding only XML 1.0 characters,
    then write them."""
    buffer = io.BytesIO()
    write(g, buffer)
    data = buffer.getvalue()
    bad = _NOT_XML.search(data.decode("utf-8"))
    if bad:
        raise ValueError(f"{path.name}: U+{ord(bad.group(0)):04X} would make the file invalid XML")
    path.write_bytes(data)
    return path


def write_graphml(graph: EvidenceGraph, path: Path) -> Path:
    return _write_xml(lambda g, fh: nx.write_graphml(g, fh, encoding="utf-8"), _scalar_graph(graph, times=False), path)


def write_gexf(graph: EvidenceGraph, path: Path) -> Path:
    return _write_xml(lambda g, fh: nx.write_gexf(g, fh, encoding="utf-8"), _scalar_graph(graph, times=True), path)


JSON_PROPS = frozenset({"reasons", "indicators", "stability", "capability_profile", "why"})
"""Properties the store holds as JSON text (nested data); node-link JSON writes them as JSON."""


def _nested(name: str, value: Any) -> Any:
    """A JSON-text property as JSON, its strings strict UTF-8 (JSON text may spell a lone
    surrogate as an escape)."""
    if name in JSON_PROPS and isinstance(value, str) and value[:1] in "[{":
        try:
            return clean_value(json.loads(value), utf8_text)
        except ValueError:
            return value
    return value


def node_link(graph: EvidenceGraph) -> dict[str, Any]:
    """Node-link JSON (the d3 / networkx format), lists kept as lists, nested data (link
    reasons, indicators) as JSON rather than JSON text, text strict UTF-8."""
    data: dict[str, Any] = nx.node_link_data(to_networkx(clean_graph(graph, utf8_text), scalar=False), edges="edges")
    for item in (*data["nodes"], *data["edges"]):
        for name in JSON_PROPS & set(item):
            item[name] = _nested(name, item[name])
    return data


def json_bytes(data: Any, indent: int | None = None) -> bytes:
    """``data`` as JSON in strict UTF-8, one line unless ``indent`` (non-ASCII written as
    itself, so the file can be grepped; anything not JSON-native as its ``str``, cleaned like
    the rest)."""
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(data, indent=indent, separators=separators, sort_keys=True, ensure_ascii=False,
                      default=lambda v: utf8_text(str(v)))
    return text.encode("utf-8")


def write_json(graph: EvidenceGraph, path: Path) -> Path:
    path.write_bytes(json_bytes(node_link(graph)))
    return path
