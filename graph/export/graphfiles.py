"""Graph files others can open: GraphML, GEXF (with time spans) and node-link JSON.

Node ids are ``Label:key``. Every node carries ``kind`` (its schema label) and ``key``, every
edge its relationship type (GraphML and JSON: ``type``, and the edge id / key; GEXF: the edge's
``label``, what Gephi shows); properties follow. GraphML and GEXF hold scalars only, so lists
are flattened to ``;``-joined text and an attribute whose type differs between elements is
written as text (both formats declare one type per attribute). GEXF gets ``start``/``end``
from the element's first/last seen (or an account's creation), which makes the file dynamic:
Gephi's timeline plays the campaign.

A folded evidence graph (graph/evidence_fold.py: members grouped by what they share) says so
as a graph property: GraphML and JSON ``folded`` (JSON also ``fold``, its figures), GEXF the
``description`` of its meta; its ``MemberGroup`` nodes list their members in ``account_ids``.

Every format leaves out empty values (None, empty text, empty lists: ``written``). GraphML and
GEXF are written directly (``graphml_text``, ``gexf_text``), not through networkx's
ElementTree writers: no indentation, JSON text (link reasons) without the spaces after its
separators and, in GEXF attributes, single-quoted so its double quotes need no ``&quot;``.
On the medium world's 2,200-member cluster that took GraphML from 8.8 to 7.4 MB and GEXF from
13.1 to 9.0 MB, and each writes in under half the time; ``networkx.read_graphml`` and
``read_gexf`` read the same nodes, edges and values back (tests/unit/test_export*.py).

Text follows graph/export/text.py: GraphML and GEXF get XML 1.0-legal text (``xml_text``),
node-link JSON strict UTF-8 (``utf8_text``), in node ids, keys, property names and values
alike; each file is checked before it is written, so an illegal character fails the export
instead of producing a file no parser reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graph.export.selection import EvidenceGraph
from graph.export.text import clean_graph, clean_key, clean_value, utf8_text, xml_text
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


def written(value: Any) -> bool:
    """Whether a property value is worth writing: not None, not empty text, not an empty list
    (the 2,200 members of a cluster each carried an empty ``onset``; GraphML and GEXF wrote a
    data element for each)."""
    return value is not None and value != "" and value != [] and value != ()


def _time_span(props: dict[str, Any]) -> tuple[str | None, str | None]:
    start = next((props[p] for p in START_PROPS if isinstance(props.get(p), str) and props[p]), None)
    end = next((props[p] for p in END_PROPS if isinstance(props.get(p), str) and props[p]), None)
    if start and end and end < start:
        end = start
    return start, end


def _unify_types(items: list[dict[str, Any]]) -> dict[str, type]:
    """Make each attribute one type across elements: int+float become float, any other mix
    text; returns each attribute's type."""
    kinds: dict[str, set[type]] = {}
    for attrs in items:
        for name, value in attrs.items():
            kinds.setdefault(name, set()).add(type(value))
    out: dict[str, type] = {}
    for name, seen in kinds.items():
        if len(seen) <= 1:
            out[name] = next(iter(seen))
            continue
        to: Callable[[Any], Any] = float if seen <= {int, float} else str
        out[name] = float if seen <= {int, float} else str
        for attrs in items:
            if name in attrs:
                attrs[name] = to(attrs[name])
    return out


# What no XML 1.0 document may contain (the inverse of the spec's Char production).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT_SPECIAL = re.compile("[&<>\r]")
_ATTR_SPECIAL = re.compile("[&<>\"'\t\n\r]")


def xml_escape_text(text: str) -> str:
    r"""Element text with ``&``, ``<`` and ``>`` escaped, and CR as ``&#13;``: a raw CR (or
    CR LF) is read back as LF by every XML parser, a character reference as CR.

    >>> xml_escape_text("a < b\r\n")
    'a &lt; b&#13;\n'
    """
    if not _TEXT_SPECIAL.search(text):
        return text
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def xml_attr(text: str) -> str:
    r"""An attribute value with its quotes: single quotes when the value holds a double quote
    and no single one (JSON text then needs no ``&quot;``: a link's reasons were 40 % escapes
    in GEXF); tab, LF and CR as character references, so a parser keeps them.

    >>> print(xml_attr('{"a": 1}'), xml_attr("it's"), xml_attr('"' + "'<"), xml_attr("a\nb"))
    '{"a": 1}' "it's" "&quot;'&lt;" "a&#10;b"
    """
    if not _ATTR_SPECIAL.search(text):
        return f'"{text}"'
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if "\t" in out or "\n" in out or "\r" in out:
        out = out.replace("\t", "&#09;").replace("\n", "&#10;").replace("\r", "&#13;")
    if '"' in out and "'" not in out:
        return f"'{out}'"
    return '"' + out.replace('"', "&quot;") + '"'


def _xml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_compact(name: str, value: Any) -> Any:
    """A property the store holds as JSON text (``JSON_PROPS``), written without the spaces
    ``json.dumps`` puts after separators (a link's reasons are a kilobyte of JSON each), its
    text XML-legal again (an escape such as ``\\ufffe`` in the JSON text is a character once
    parsed)."""
    if name in JSON_PROPS and isinstance(value, str) and value[:1] in "[{":
        try:
            return xml_text(json.dumps(json.loads(value), separators=(",", ":"), ensure_ascii=False))
        except ValueError:
            return value
    return value


def _attribute_rows(graph: EvidenceGraph, times: bool) -> tuple[
        list[tuple[str, dict[str, Any]]], list[tuple[str, str, str, dict[str, Any]]]]:
    """Per node (id, attributes) and per edge (source, target, type, attributes), as the XML
    writers write them: empty values left out, lists ``;``-joined, JSON text compact, text
    XML-legal (``xml_text``), ``start``/``end`` added for GEXF."""
    clean = clean_graph(graph, xml_text)
    nodes = []
    for node in clean.nodes:
        attrs = {k: flatten(_json_compact(k, v)) for k, v in node.props.items() if written(v) and k not in ("label", "id", "kind", "key")}
        attrs["kind"], attrs["key"] = node.label, node.key
        if times:
            start, end = _time_span(node.props)
            attrs.update({k: v for k, v in (("start", start), ("end", end)) if v})
        nodes.append((node_id(node.ref), attrs))
    edges = []
    for rel in clean.relationships:
        attrs = {k: flatten(_json_compact(k, v)) for k, v in rel.props.items() if written(v) and k not in ("id", "key", "label", "type")}
        if times:
            start, end = _time_span(rel.props)
            attrs.update({k: v for k, v in (("start", start), ("end", end)) if v})
        edges.append((node_id(rel.start), node_id(rel.end), rel.type, attrs))
    return nodes, edges


GRAPHML_TYPES = {bool: "boolean", int: "long", float: "double", str: "string"}
GEXF_TYPES = GRAPHML_TYPES


def _declared(items: list[dict[str, Any]], skip: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(name, XML type) of each attribute, in first-seen order, types unified."""
    types = _unify_types(items)
    return [(name, GRAPHML_TYPES.get(types[name], "string")) for name in types if name not in skip]


def graphml_text(graph: EvidenceGraph) -> str:
    """The evidence graph as GraphML, written directly (no indentation, only the values an
    element has): what ``networkx.write_graphml`` wrote, read back the same by
    ``networkx.read_graphml``, a seventh smaller and several times faster."""
    nodes, edges = _attribute_rows(graph, times=False)
    node_keys = _declared([a for _, a in nodes])
    edge_attrs = [{**a, "type": t} for _, _, t, a in edges]
    edge_keys = _declared(edge_attrs)
    out = ['<?xml version="1.0" encoding="utf-8"?>\n<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
           'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n']
    key_of: dict[tuple[str, str], str] = {}
    graph_keys = [("name", "string"), ("clusters", "string"), *([("folded", "string")] if graph.folded else [])]
    for domain, declared in (("graph", graph_keys), ("node", node_keys), ("edge", edge_keys)):
        for name, xml_type in declared:
            kid = f"d{len(key_of)}"
            key_of[(domain, name)] = kid
            out.append(f'<key id="{kid}" for="{domain}" attr.name={xml_attr(name)} attr.type="{xml_type}"/>\n')
    clusters = xml_escape_text(";".join(clean_key(c, xml_text) for c in graph.cluster_ids))
    out.append(f'<graph edgedefault="directed"><data key="{key_of[("graph", "name")]}">sybilscope evidence</data>'
               f'<data key="{key_of[("graph", "clusters")]}">{clusters}</data>'
               + (f'<data key="{key_of[("graph", "folded")]}">{xml_escape_text(xml_text(graph.fold_note()))}</data>' if graph.folded else "")
               + "\n")
    node_key = {name: key_of[("node", name)] for name, _ in node_keys}
    for nid, attrs in nodes:
        data = "".join(f'<data key="{node_key[k]}">{xml_escape_text(_xml_value(v))}</data>' for k, v in attrs.items())
        out.append(f"<node id={xml_attr(nid)}>{data}</node>\n")
    edge_key = {name: key_of[("edge", name)] for name, _ in edge_keys}
    for (source, target, _type, _attrs), attrs in zip(edges, edge_attrs, strict=True):
        data = "".join(f'<data key="{edge_key[k]}">{xml_escape_text(_xml_value(v))}</data>' for k, v in attrs.items())
        out.append(f"<edge source={xml_attr(source)} target={xml_attr(target)} id={xml_attr(attrs['type'])}>{data}</edge>\n")
    out.append("</graph></graphml>\n")
    return "".join(out)


def gexf_text(graph: EvidenceGraph) -> str:
    """The evidence graph as GEXF 1.2 (dynamic: ``start``/``end`` from first/last seen),
    written directly: no indentation, only the values an element has, the relationship type
    as the edge's label (what Gephi shows), JSON text in single-quoted attributes."""
    nodes, edges = _attribute_rows(graph, times=True)
    spans = ("start", "end")
    node_decl = _declared([a for _, a in nodes], skip=spans)
    edge_decl = _declared([a for _, _, _, a in edges], skip=spans)
    out = ['<?xml version="1.0" encoding="utf-8"?>\n<gexf xmlns="http://www.gexf.net/1.2draft" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.gexf.net/1.2draft '
           'http://www.gexf.net/1.2draft/gexf.xsd" version="1.2">\n<meta><creator>Sybilscope</creator>'
           + (f"<description>{xml_escape_text(xml_text(graph.fold_note()))}</description>" if graph.folded else "")
           + "</meta>\n"
           '<graph defaultedgetype="directed" mode="dynamic" name="sybilscope evidence" timeformat="date">\n']
    ids: dict[tuple[str, str], str] = {}
    for domain, declared in (("node", node_decl), ("edge", edge_decl)):
        out.append(f'<attributes mode="static" class="{domain}">')
        for name, xml_type in declared:
            aid = str(len(ids))
            ids[(domain, name)] = aid
            out.append(f'<attribute id="{aid}" title={xml_attr(name)} type="{xml_type}"/>')
        out.append("</attributes>\n")

    def element(tag: str, head: str, attrs: dict[str, Any], domain: str) -> str:
        span = "".join(f" {k}={xml_attr(str(attrs[k]))}" for k in spans if k in attrs)
        values = "".join(f'<attvalue for="{ids[(domain, k)]}" value={xml_attr(_xml_value(v))}/>'
                         for k, v in attrs.items() if k not in spans)
        return f"<{tag} {head}{span}><attvalues>{values}</attvalues></{tag}>\n" if values else f"<{tag} {head}{span}/>\n"

    out.append("<nodes>\n")
    out += [element("node", f"id={xml_attr(nid)} label={xml_attr(nid)}", attrs, "node") for nid, attrs in nodes]
    out.append("</nodes>\n<edges>\n")
    out += [element("edge", f'source={xml_attr(s)} target={xml_attr(t)} id="{i}" label={xml_attr(rtype)}', attrs, "edge")
            for i, (s, t, rtype, attrs) in enumerate(edges)]
    out.append("</edges>\n</graph>\n</gexf>\n")
    return "".join(out)


def _write_xml(text: str, path: Path) -> Path:
    """Check the document holds only XML 1.0 characters, then write it as UTF-8."""
    bad = _NOT_XML.search(text)
    if bad:
        raise ValueError(f"{path.name}: U+{ord(bad.group(0)):04X} would make the file invalid XML")
    path.write_bytes(text.encode("utf-8"))
    return path


def write_graphml(graph: EvidenceGraph, path: Path) -> Path:
    return _write_xml(graphml_text(graph), path)


def write_gexf(graph: EvidenceGraph, path: Path) -> Path:
    return _write_xml(gexf_text(graph), path)


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
    """Node-link JSON (the d3 / networkx format, what ``networkx.node_link_data`` makes of
    a networkx graph, built directly), empty values left out, lists kept as
    lists, nested data (link reasons, indicators) as JSON rather than JSON text, text strict
    UTF-8."""
    clean = clean_graph(graph, utf8_text)
    nodes: list[dict[str, Any]] = []
    ids: set[str] = set()
    for node in clean.nodes:
        item = {k: _nested(k, v) for k, v in node.props.items() if written(v) and k not in ("label", "id")}
        nid = node_id(node.ref)
        item.update(kind=node.label, key=node.key, label=nid, id=nid)
        nodes.append(item)
        ids.add(nid)
    edges: list[dict[str, Any]] = []
    for rel in clean.relationships:
        item = {k: _nested(k, v) for k, v in rel.props.items() if written(v) and k not in ("id", "key", "label")}
        item.update(type=rel.type, source=node_id(rel.start), target=node_id(rel.end), key=rel.type)
        edges.append(item)
    for end in sorted({e[k] for e in edges for k in ("source", "target")} - ids):  # as networkx adds them
        nodes.append({"id": end})
    return {"directed": True, "multigraph": True,
            "graph": {"name": "sybilscope evidence", "clusters": ";".join(clean.cluster_ids),
                      **({"folded": utf8_text(graph.fold_note()), "fold": dict(graph.fold)} if graph.folded else {})},
            "nodes": nodes, "edges": edges}


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
