"""A standalone HTML graph of the evidence that opens offline, in any browser.

One file: vis-network (the copy pyvis ships) is inlined, the graph comes as JSON in the page,
and the page makes no network request at all (tests/e2e/test_html_export.py opens it in
headless Chromium and records every request). The layout is precomputed
(graph/export/layout.py) and physics is off, so a 1,000-account cluster is interactive as soon
as it is drawn, and the same export always looks the same.

Nodes are coloured by kind and sized by how many members use them; value labels are large
enough to read when the whole graph fits the window, account labels appear when zoomed in.
A legend names the kinds (with counts) and toggles each kind of edge; membership edges start
hidden. A click on a node or an edge shows its evidence in the side panel: a link's weight,
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
import math
import re
from collections import Counter
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from graph.evidence import BILLING_PATTERN, HUB, EvidenceGraph
from graph.export.layout import evidence_layout
from graph.export.text import display_text, excerpt
from graph.schema import Rel
from graph.store import Node, Relationship

TITLE_CHARS = 200
LABEL_CHARS = 24
REASONS_SHOWN = 20

COLOURS = {
    "Account": "#4e79a7", "IP": "#f28e2b", "Network": "#e15759", "ASN": "#76b7b2",
    "PaymentMethod": "#59a14f", BILLING_PATTERN: "#8cd17d", "Device": "#edc948", "ClientFingerprint": "#b07aa1",
    "EmailDomain": "#ff9da7", "PromptTemplate": "#9c755f", "Cluster": "#79706e",
    "Operator": "#d62728", "Indicator": "#17becf", HUB: "#bab0ac",
}
SHAPES = {"Cluster": "star", "Operator": "triangle", "Indicator": "diamond", HUB: "square"}
KIND_NAMES = {
    "Account": "member account", "IP": "IP address", "Network": "network", "PaymentMethod": "payment instrument",
    BILLING_PATTERN: "BIN + billing pattern", "Device": "device", "ClientFingerprint": "client fingerprint",
    "EmailDomain": "e-mail domain", "PromptTemplate": "prompt template", "Cluster": "cluster",
    "Operator": "operator", "Indicator": "operator indicator", HUB: "hubs (collapsed)", "ASN": "ASN",
}
EDGE_COLOURS = {Rel.LINKED.value: "#c0392b", "MATCHES": "#17becf", Rel.SHARES_INFRASTRUCTURE.value: "#8e44ad",
                Rel.ATTRIBUTED_TO.value: "#d62728", Rel.SUGGESTED_OPERATOR.value: "#ff7f0e"}
HIDDEN_EDGES = {Rel.MEMBER_OF.value}
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
        return f"{node.props.get('hubs', '?')} {node.key} hubs"
    text = display_text(str(node.props.get("name") or node.key))
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _size(node: Node, most: int) -> float:
    if node.label == "Cluster":
        return 34.0
    if node.label == "Operator":
        return 26.0
    if node.label == "Account":
        return 7.0
    if node.label == "Indicator":
        return 11.0
    members = int(node.props.get("members") or 0)
    return 9.0 + 23.0 * math.sqrt(members / most) if most else 12.0


def _font(node: Node, size: float) -> int:
    """Value, cluster and operator labels big enough to read when the graph fits the window;
    account labels small, so vis-network hides them until the view is zoomed in."""
    return 11 if node.label == "Account" else int(max(20, min(40, size * 1.4)))


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
            span = f", {reason.get('first_seen')} – {reason.get('last_seen') or reason.get('first_seen')}"
        w = f"{weight:.3g}" if isinstance(weight, int | float) else "?"
        out.append(_shown(f"{reason.get('family', '?')}/{reason.get('kind', '?')}: {what or 'account attributes'} "
                          f"(shared by {reason.get('accounts', '?')} accounts, weight {w}{span})", 400))
    if len(reasons) > REASONS_SHOWN:
        out.append(f"… and {len(reasons) - REASONS_SHOWN} more reasons")
    return out


def page_data(graph: EvidenceGraph) -> dict[str, Any]:
    """What the page draws: vis nodes and edges (ids by position), the details the panel shows,
    the legend and the summary."""
    layout = evidence_layout(graph)
    index = {n.ref: i for i, n in enumerate(graph.nodes)}
    most = max((int(n.props.get("members") or 0) for n in graph.nodes if n.label not in ("Account", "Cluster")), default=0)
    nodes, node_details = [], []
    for i, node in enumerate(graph.nodes):
        x, y = layout.positions.get(node.ref, (0.0, 0.0))
        size = _size(node, most)
        nodes.append({
            "id": i, "label": _caption(node), "x": round(x, 1), "y": round(y, 1), "size": round(size, 1),
            "color": COLOURS.get(node.label, "#888888"), "shape": SHAPES.get(node.label, "dot"),
            "font": {"size": _font(node, size)}, "kind": node.label,
        })
        rows = [[_shown(k), _compact(v)] for k, v in sorted(node.props.items(), key=lambda kv: str(kv[0]))]
        node_details.append({"title": f"{KIND_NAMES.get(node.label, node.label)}: {_shown(node.key)}", "rows": rows})
    edges, edge_details = [], []
    for j, rel in enumerate(graph.relationships):
        if rel.start not in index or rel.end not in index:
            continue
        edges.append(_edge(j, rel, index))
        edge_details.append(_edge_detail(rel))
    kinds = Counter(n.label for n in graph.nodes)
    edge_kinds = Counter(r.type for r in graph.relationships)
    summary = [f"{len(graph.members())} members, {sum(1 for n in graph.nodes if n.label in COLOURS and n.label not in ('Account', 'Cluster', 'Operator', 'Indicator', HUB))} shared values, "
               f"{edge_kinds.get(Rel.LINKED.value, 0)} links"]
    summary += [f"left out: {_shown(k)}: {v:,}" for k, v in graph.left_out.items()]
    if graph.hubs:
        summary.append(f"{len(graph.hubs)} hub values (used by more accounts than the degree cap) collapsed")
    return {
        "nodes": nodes, "edges": edges, "nodeDetails": node_details, "edgeDetails": edge_details,
        "legend": [[k, KIND_NAMES.get(k, k), COLOURS.get(k, "#888888"), n] for k, n in sorted(kinds.items())],
        "edgeKinds": [[t, n, t not in HIDDEN_EDGES] for t, n in sorted(edge_kinds.items())],
        "summary": summary,
    }


def _edge(j: int, rel: Relationship, index: dict[Any, int]) -> dict[str, Any]:
    weight = rel.props.get("weight")
    width = 1 + 4 * float(weight) if isinstance(weight, int | float) else 0.6
    edge: dict[str, Any] = {
        "id": j, "from": index[rel.start], "to": index[rel.end], "kind": rel.type, "width": round(width, 2),
        "color": {"color": EDGE_COLOURS.get(rel.type, "#9aa5b1"), "opacity": 0.9 if rel.type in EDGE_COLOURS else 0.35},
    }
    if rel.type in HIDDEN_EDGES:
        edge["hidden"] = True
    if rel.type == "MATCHES":
        edge["dashes"] = True
    return edge


def _edge_detail(rel: Relationship) -> dict[str, Any]:
    rows = [[_shown(k), _compact(v)] for k, v in sorted(rel.props.items(), key=lambda kv: str(kv[0])) if k != "reasons"]
    detail: dict[str, Any] = {
        "title": f"{rel.type}: {_shown(rel.start[1], 60)} → {_shown(rel.end[1], 60)}",
        "rows": [["from", f"{rel.start[0]} {_shown(rel.start[1])}"], ["to", f"{rel.end[0]} {_shown(rel.end[1])}"], *rows],
    }
    if "reasons" in rel.props:
        detail["reasons"] = reason_lines(rel.props["reasons"])
    return detail


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
var container = document.getElementById("mynetwork");
var nodes = new vis.DataSet(DATA.nodes);
var edges = new vis.DataSet(DATA.edges);
var options = {
  physics: false,
  layout: {improvedLayout: false},
  interaction: {hover: true, hideEdgesOnDrag: DATA.edges.length > 3000, tooltipDelay: 150, multiselect: false},
  nodes: {borderWidth: 1, font: {face: "system-ui, sans-serif", strokeWidth: 3, strokeColor: "#ffffff"},
          scaling: {label: {drawThreshold: 7}}},
  edges: {smooth: false, selectionWidth: 3, hoverWidth: 1.5}
};
var network = new vis.Network(container, {nodes: nodes, edges: edges}, options);
function el(tag, text) { var e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; }
function show(detail, hint) {
  var body = document.getElementById("panel-body");
  document.getElementById("panel-title").textContent = detail.title;
  body.textContent = "";
  if (hint) body.appendChild(el("p", hint)).className = "hint";
  if (detail.reasons) {
    body.appendChild(el("h3", "Why these accounts are linked"));
    var ul = body.appendChild(el("ul"));
    detail.reasons.forEach(function (r) { ul.appendChild(el("li", r)); });
  }
  if (detail.rows && detail.rows.length) {
    var table = body.appendChild(el("table"));
    detail.rows.forEach(function (row) {
      var tr = table.appendChild(el("tr")); tr.appendChild(el("td", row[0])); tr.appendChild(el("td", row[1]));
    });
  }
  if (detail.lines) {
    var list = body.appendChild(el("ul"));
    detail.lines.forEach(function (r) { list.appendChild(el("li", r)); });
  }
}
function showSummary() {
  show({title: document.title, lines: DATA.summary}, "Click a node or an edge to see its evidence.");
}
network.on("click", function (params) {
  if (params.nodes.length) {
    var d = DATA.nodeDetails[params.nodes[0]];
    var around = network.getConnectedEdges(params.nodes[0]).length;
    show({title: d.title, rows: d.rows.concat([["edges", String(around)]])});
  } else if (params.edges.length) {
    var k = DATA.edgeIndex[params.edges[0]];
    show(DATA.edgeDetails[k]);
  } else {
    showSummary();
  }
});
DATA.edgeIndex = {};
DATA.edges.forEach(function (e, k) { DATA.edgeIndex[e.id] = k; });
var legend = document.getElementById("legend");
DATA.legend.forEach(function (item) {
  var span = legend.appendChild(el("span"));
  var sw = span.appendChild(el("span")); sw.className = "sw"; sw.style.background = item[2];
  span.appendChild(document.createTextNode(item[1] + " (" + item[3] + ")"));
});
var kinds = document.getElementById("edgekinds");
kinds.appendChild(document.createTextNode("edges: "));
DATA.edgeKinds.forEach(function (item) {
  var label = kinds.appendChild(el("label"));
  var box = label.appendChild(el("input")); box.type = "checkbox"; box.checked = item[2];
  label.appendChild(document.createTextNode(" " + item[0] + " (" + item[1] + ")"));
  box.addEventListener("change", function () {
    edges.update(DATA.edges.filter(function (e) { return e.kind === item[0]; })
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
        f"<header><h1>{html.escape(title)}</h1><div id=\"legend\"></div><div id=\"edgekinds\"></div></header>"
        "<main><div id=\"mynetwork\"></div><aside id=\"panel\"><h2 id=\"panel-title\"></h2>"
        "<div id=\"panel-body\"></div></aside></main>"
        f"<script>var DATA = {_script_json(data)};\n{SCRIPT}</script></body></html>\n"
    )
    return escape_raw_controls(strip_remote_resources(page))


def write_html(graph: EvidenceGraph, path: Path, heading: str = "") -> Path:
    path.write_bytes(render_html(graph, heading).encode("utf-8"))
    return path
