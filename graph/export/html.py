"""A standalone HTML graph of the evidence that opens offline, in any browser.

One file: vis-network (the copy pyvis ships) is inlined, the graph comes as JSON in the page,
and the page makes no network request at all (tests/e2e/test_html_export.py opens it in
headless Chromium and records every request). The layout is precomputed
(graph/export/layout.py) and physics is off, so a 1,000-account cluster is interactive as soon
as it is drawn, and the same export always looks the same.

Nodes are coloured by kind and sized by how many members use them (graph/evidence_style.py,
shared with the UI's canvas); value labels are large
enough to read when the whole graph fits the window, account labels appear when zoomed in.
A legend names the kinds (with counts) and toggles each kind of edge; membership edges start
hidden. A folded graph (graph/evidence_fold.py) says so under the heading and in the summary; its
member groups are drawn where the accounts would be, sized by their members. A click on a
node or an edge shows its evidence in the side panel: a link's weight,
families and every reason, a use's counts and time span, a value's members and accounts.

The page is read by people, so its text follows the report's rule (graph/export/text.py):
control and bidi characters become visible escapes, and a value shows at most
``TITLE_CHARS`` characters with its full length. The data is JSON with ``<``, ``>`` and ``&``
escaped, so an identifier cannot close the script tag, and the panel writes text with
``textContent``, never as HTML. The inlined library holds raw C1 characters in its string
literals; they are rewritten as ``\\u0085``-style JavaScript escapes, which mean the same, so
the file holds no raw control character at all.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from graph.evidence import HUB, MEMBER_GROUP, EvidenceGraph
from graph.evidence_style import (
    COLOURS,
    EDGE_COLOURS,
    KIND_NAMES,
    SHAPES,
    label_font,
    node_size,
    view_scale,
)
from graph.export.graphfiles import written
from graph.export.layout import evidence_layout
from graph.export.text import display_text, excerpt
from graph.schema import Rel
from graph.store import Node

TITLE_CHARS = 200
LABEL_CHARS = 24
REASONS_SHOWN = 20

HIDDEN_EDGES = {Rel.MEMBER_OF.value}
CROWDED_EDGES = 1500
"""Above this many links (and other coloured edges) they are drawn thin and faint, so the
structure shows through; a selected node's or edge's stay highlighted."""
CROWDED_FOLDED = 300
"""The same for a folded graph: its groups' links span the whole ring and hide the groups."""
JSON_PROPS = {"reasons", "indicators", "stability", "capability_profile", "why"}

# Any tag that loads something from elsewhere.
_REMOTE_TAG = re.compile(
    r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>"
    r"|<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*</script>",
    re.IGNORECASE | re.DOTALL,
)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_RAW_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def escape_raw_controls(page: str) -> str:
    r"""``page`` with each raw C0 (but tab, LF, CR), DEL or C1 character written as a
    JavaScript ``\uXXXX`` escape. Only the inlined library holds any (inside string and
    regex literals, where the escape means the same character); the data is JSON-escaped.

    >>> escape_raw_controls('x = "\x85";') == 'x = "\\u0085";'
    True
    """
    return _RAW_CONTROL.sub(lambda m: f"\\u{ord(m.group(0)):04x}", page)


def strip_remote_resources(page: str) -> str:
    """The page without tags that fetch from another host (and without HTML comments)."""
    return _REMOTE_TAG.sub("", _COMMENT.sub("", page))


@cache
def vis_network_js() -> str:
    """The vis-network library pyvis ships (read once; it is the same for every page)."""
    lib = resources.files("pyvis") / "lib" / "vis-9.1.2" / "vis-network.min.js"
    text = lib.read_text(encoding="utf-8")
    if "</script" in text.lower():
        raise RuntimeError("the inlined vis-network library contains '</script' and cannot be inlined")
    return text


def _shown(value: Any, limit: int = TITLE_CHARS) -> str:
    return display_text(excerpt(str(value), limit))


def _json_value(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _compact(value: Any) -> str:
    """A property value as one short line of text."""
    value = _json_value(value)
    if isinstance(value, list | dict):
        return _shown(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))
    if isinstance(value, float):
        return f"{value:.4g}"
    return _shown(value)


def _caption(node: Node) -> str:
    if node.label == HUB:
        n = node.props.get("hubs", "?")
        return f"{n} {node.key} hub{'' if n == 1 else 's'}"
    if node.label == MEMBER_GROUP:
        return f"{display_text(node.key)} · {int(node.props.get('members') or 0):,} members"
    text = display_text(str(node.props.get("name") or node.key))
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def reason_lines(raw: Any) -> list[str]:
    """A LINKED edge's reasons as lines a person reads."""
    reasons = _json_value(raw)
    if not isinstance(reasons, list):
        return [_shown(reasons)] if reasons else []
    out = []
    for reason in reasons[:REASONS_SHOWN]:
        if not isinstance(reason, dict):
            out.append(_shown(reason))
            continue
        entity = reason.get("entity") or {}
        what = f"{entity.get('label', '')} {entity.get('key', '')}".strip() if isinstance(entity, dict) else ""
        weight = reason.get("weight")
        span = ""
        if reason.get("first_seen"):
            span = f", {str(reason.get('first_seen'))[:10]} – {str(reason.get('last_seen') or reason.get('first_seen'))[:10]}"
        w = f"{weight:.3g}" if isinstance(weight, int | float) else "?"
        out.append(_shown(f"{reason.get('family', '?')}/{reason.get('kind', '?')}: {what or 'account attributes'} "
                          f"(shared by {reason.get('accounts', '?')} accounts, weight {w}{span})", 400))
    if len(reasons) > REASONS_SHOWN:
        out.append(f"… and {len(reasons) - REASONS_SHOWN} more reasons")
    return out


def _panel_value(name: str, value: Any) -> str:
    """A property as the panel shows it: a member group's ``account_ids`` whole (the page is
    where an investigator reads who is in a group), anything else one short line."""
    if name == "account_ids" and isinstance(value, list):
        return ", ".join(_shown(v, LABEL_CHARS * 4) for v in value)
    return _compact(value)


def _columns(items: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, list[str]], list[list[Any]]]:
    """Properties column-wise: per group (a kind of node, a type of edge) its property names
    once, sorted, and per element its values in that order (0 where it has none), each as the
    panel shows it: a name was written once per node before, two fifths of a member's bytes."""
    names: dict[str, set[str]] = {}
    for group, props in items:
        names.setdefault(group, set()).update(k for k, v in props.items() if written(v))
    order = {g: sorted(n, key=str) for g, n in names.items()}
    rows = [[_panel_value(k, props[k]) if written(props.get(k)) else 0 for k in order[group]] for group, props in items]
    return {g: [_shown(k) for k in n] for g, n in order.items()}, rows


def page_data(graph: EvidenceGraph) -> dict[str, Any]:
    """What the page draws, compactly (a 2,200-account cluster has sixteen thousand edges):
    node kinds and edge types once, then per node ``[label, x, y, size, kind, font]`` and per
    edge ``[from, to, type, width]`` by position; the details the panel shows column-wise
    (``_columns``: per kind and per type the property names, per element its values; a node's
    key, its title being the kind's name and the key); a link's reasons as lines; the legend
    and the summary. The page's script rebuilds ``DATA.nodeDetails`` (``[title, rows]``) and
    ``DATA.edgeDetails`` (``[rows, reasons]``) from them."""
    layout = evidence_layout(graph)
    index = {n.ref: i for i, n in enumerate(graph.nodes)}
    kinds = sorted({n.label for n in graph.nodes})
    types = sorted({r.type for r in graph.relationships})
    kind_at = {k: i for i, k in enumerate(kinds)}
    type_at = {t: i for i, t in enumerate(types)}
    most = max((int(n.props.get("members") or 0) for n in graph.nodes if n.label not in ("Account", "Cluster")), default=0)
    # member groups are sized against the largest group (a value all members use dwarfs them)
    most_group = max((int(n.props.get("members") or 0) for n in graph.nodes if n.label == MEMBER_GROUP), default=0)
    scale = view_scale(layout.radius)
    nodes, node_keys = [], []
    for node in graph.nodes:
        x, y = layout.positions.get(node.ref, (0.0, 0.0))
        top, members = (most_group if node.label == MEMBER_GROUP else most), int(node.props.get("members") or 0)
        nodes.append([_caption(node), round(x, 1), round(y, 1), round(node_size(node.label, members, top, scale), 1), kind_at[node.label],
                      label_font(node.label, members, top, scale)])
        node_keys.append(_shown(node.key))
    node_names, node_values = _columns([(node.label, node.props) for node in graph.nodes])
    edges: list[list[Any]] = []
    shown_rels = []
    reasons: list[Any] = []
    coloured = sum(1 for r in graph.relationships if r.type in EDGE_COLOURS)
    crowded = coloured > (CROWDED_FOLDED if graph.folded else CROWDED_EDGES)
    for rel in graph.relationships:
        if rel.start not in index or rel.end not in index:
            continue
        weight = rel.props.get("weight")
        width = 0.6
        if isinstance(weight, int | float):
            width = round((0.3 + 1.5 * float(weight)) if crowded else (1 + 4 * float(weight)), 2)
        edges.append([index[rel.start], index[rel.end], type_at[rel.type], width])
        shown_rels.append(rel)
        reasons.append(reason_lines(rel.props["reasons"]) if "reasons" in rel.props else 0)
    edge_names, edge_values = _columns([(rel.type, {k: v for k, v in rel.props.items() if k != "reasons"}) for rel in shown_rels])
    kind_count = Counter(n.label for n in graph.nodes)
    type_count = Counter(r.type for r in graph.relationships)
    if graph.folded:
        summary = [f"Folded: {_shown(graph.fold_note(), 600)}.",
                   f"{kind_count.get(MEMBER_GROUP, 0):,} member groups, {len(graph.shared_values()):,} shared values, "
                   f"{type_count.get(Rel.LINKED.value, 0):,} links between groups"]
    else:
        summary = [f"{len(graph.members()):,} members, {len(graph.shared_values()):,} shared values, "
                   f"{type_count.get(Rel.LINKED.value, 0):,} links between members"]
    summary += [f"left out: {_shown(k)}: {v:,}" for k, v in graph.left_out.items()]
    if graph.hubs:
        summary.append(f"{len(graph.hubs):,} hub values (used by more accounts than the degree cap) collapsed into hub nodes")
    return {
        "kinds": [[k, KIND_NAMES.get(k, k), COLOURS.get(k, "#888888"), SHAPES.get(k, "dot"), kind_count[k], node_names[k]] for k in kinds],
        "types": [[t, EDGE_COLOURS.get(t, "#9aa5b1"), (0.18 if crowded else 0.9) if t in EDGE_COLOURS else 0.3, t not in HIDDEN_EDGES,
                   t == "MATCHES", type_count[t], edge_names.get(t, [])] for t in types],
        "nodes": nodes, "edges": edges, "nodeKeys": node_keys, "nodeValues": node_values,
        "edgeValues": edge_values, "reasons": reasons, "summary": summary,
        "folded": _shown(graph.fold_note(), 600) if graph.folded else "",
    }


def _script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


STYLE = """
*{box-sizing:border-box}body{margin:0;font-family:system-ui,sans-serif;color:#222;background:#fafafa}
header{padding:8px 14px;border-bottom:1px solid #ddd;background:#fff}
header h1{font-size:17px;margin:0 0 6px}
#legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:13px}
#legend span.sw{display:inline-block;width:11px;height:11px;border-radius:50%;margin-right:4px;vertical-align:-1px}
#edgekinds{margin-top:4px;font-size:12px;color:#555}#edgekinds label{margin-right:10px}
#folded{margin:0 0 4px;font-size:12px;color:#8a4b00}#folded:empty{display:none}
main{display:flex;height:calc(100vh - 92px);min-height:420px}
#mynetwork{flex:1;min-width:0;background:#fff}
#panel{width:380px;border-left:1px solid #ddd;padding:10px 14px;overflow:auto;background:#fff;font-size:13px}
#panel h2{font-size:15px;margin:4px 0 8px;overflow-wrap:anywhere}
#panel table{border-collapse:collapse;width:100%}#panel td{border-top:1px solid #eee;padding:3px 4px;
vertical-align:top;overflow-wrap:anywhere;white-space:pre-wrap}#panel td:first-child{color:#666;width:34%}
#panel ul{padding-left:18px}#panel li{margin:3px 0;overflow-wrap:anywhere;white-space:pre-wrap}
.hint{color:#777}
"""

SCRIPT = """
var K = DATA.kinds, T = DATA.types;
document.getElementById("folded").textContent = DATA.folded ? "Folded: " + DATA.folded + "." : "";
function rowsOf(names, values) {
  var rows = [];
  names.forEach(function (name, c) { if (values[c] !== 0) rows.push([name, values[c]]); });
  return rows;
}
DATA.nodeDetails = DATA.nodes.map(function (n, i) {
  var k = K[n[4]];
  return [k[1] + ": " + DATA.nodeKeys[i], rowsOf(k[5], DATA.nodeValues[i])];
});
DATA.edgeDetails = DATA.edges.map(function (e, j) {
  var rows = rowsOf(T[e[2]][6], DATA.edgeValues[j]), reasons = DATA.reasons[j] || [];
  return rows.length || reasons.length ? [rows, reasons] : 0;
});
var nodes = new vis.DataSet(DATA.nodes.map(function (n, i) {
  var k = K[n[4]];
  return {id: i, label: n[0], x: n[1], y: n[2], size: n[3], color: k[2], shape: k[3], font: {size: n[5]}};
}));
var edgeList = DATA.edges.map(function (e, j) {
  var t = T[e[2]];
  return {id: j, from: e[0], to: e[1], width: e[3], color: {color: t[1], opacity: t[2]}, hidden: !t[3], dashes: t[4]};
});
var edges = new vis.DataSet(edgeList);
var options = {
  physics: false,
  layout: {improvedLayout: false},
  interaction: {hover: true, hideEdgesOnDrag: edgeList.length > 3000, tooltipDelay: 150, multiselect: false},
  nodes: {borderWidth: 1, font: {face: "system-ui, sans-serif", strokeWidth: 3, strokeColor: "#ffffff"},
          scaling: {label: {drawThreshold: 7}}},
  edges: {smooth: false, selectionWidth: 3, hoverWidth: 1.5}
};
var network = new vis.Network(document.getElementById("mynetwork"), {nodes: nodes, edges: edges}, options);
function el(tag, text) { var e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; }
function show(title, rows, reasons, lines, hint) {
  var body = document.getElementById("panel-body");
  document.getElementById("panel-title").textContent = title;
  body.textContent = "";
  if (hint) body.appendChild(el("p", hint)).className = "hint";
  if (reasons && reasons.length) {
    body.appendChild(el("h3", "Why these accounts are linked"));
    var ul = body.appendChild(el("ul"));
    reasons.forEach(function (r) { ul.appendChild(el("li", r)); });
  }
  if (rows && rows.length) {
    var table = body.appendChild(el("table"));
    rows.forEach(function (row) {
      var tr = table.appendChild(el("tr")); tr.appendChild(el("td", row[0])); tr.appendChild(el("td", row[1]));
    });
  }
  if (lines) {
    var list = body.appendChild(el("ul"));
    lines.forEach(function (r) { list.appendChild(el("li", r)); });
  }
}
function showSummary() { show(document.title, [], [], DATA.summary, "Click a node or an edge to see its evidence."); }
function showNode(i) {
  var d = DATA.nodeDetails[i];
  show(d[0], d[1].concat([["edges", String(network.getConnectedEdges(i).length)]]));
}
function showEdge(j) {
  var e = DATA.edges[j], d = DATA.edgeDetails[j] || [[], []];
  var rows = [["from", DATA.nodeDetails[e[0]][0]], ["to", DATA.nodeDetails[e[1]][0]]].concat(d[0]);
  show(T[e[2]][0], rows, d[1]);
}
network.on("click", function (params) {
  if (params.nodes.length) showNode(params.nodes[0]);
  else if (params.edges.length) showEdge(params.edges[0]);
  else showSummary();
});
var legend = document.getElementById("legend");
K.forEach(function (k) {
  var span = legend.appendChild(el("span"));
  var sw = span.appendChild(el("span")); sw.className = "sw"; sw.style.background = k[2];
  span.appendChild(document.createTextNode(k[1] + " (" + k[4] + ")"));
});
var kinds = document.getElementById("edgekinds");
kinds.appendChild(document.createTextNode("edges: "));
T.forEach(function (t, ti) {
  var label = kinds.appendChild(el("label"));
  var box = label.appendChild(el("input")); box.type = "checkbox"; box.checked = t[3];
  var sw = label.appendChild(el("span", " \u2014 ")); sw.style.color = t[1]; sw.style.fontWeight = "bold";
  label.appendChild(document.createTextNode(t[0] + " (" + t[5] + ")"));
  box.addEventListener("change", function () {
    edges.update(edgeList.filter(function (e, j) { return DATA.edges[j][2] === ti; })
                 .map(function (e) { return {id: e.id, hidden: !box.checked}; }));
  });
});
showSummary();
network.once("afterDrawing", function () { window.evidenceReady = true; });
"""


def render_html(graph: EvidenceGraph, heading: str = "") -> str:
    """The standalone page as text."""
    title = display_text(heading or "Sybilscope evidence graph")
    data = page_data(graph)
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        f"<script>{vis_network_js()}</script></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p id=\"folded\"></p><div id=\"legend\"></div><div id=\"edgekinds\"></div></header>"
        "<main><div id=\"mynetwork\"></div><aside id=\"panel\"><h2 id=\"panel-title\"></h2>"
        "<div id=\"panel-body\"></div></aside></main>"
        f"<script>var DATA = {_script_json(data)};\n{SCRIPT}</script></body></html>\n"
    )
    return escape_raw_controls(strip_remote_resources(page))


def write_html(graph: EvidenceGraph, path: Path, heading: str = "") -> Path:
    path.write_bytes(render_html(graph, heading).encode("utf-8"))
    return path
