"""A standalone HTML graph (pyvis / vis-network) that opens offline.

pyvis inlines vis-network with ``cdn_resources='in_line'``, but its template still links
Bootstrap from a CDN; those tags are removed here, so the file makes no network request at all
(tests/e2e/test_html_export.py opens it in headless Chromium and records every request). Data
reaches the page through Jinja's ``tojson`` filter, which escapes ``<``, ``>`` and ``&``, so an
identifier cannot close the script tag.

The page is read by people, so its text follows the report's rule (graph/export/text.py):
control and bidi characters become visible escapes, tooltips show at most ``TITLE_CHARS`` of a
value with its full length, and the heading is HTML-escaped (pyvis does not). The inlined
vis-network library holds raw C1 characters in its string literals; they are rewritten as
``\u0085``-style JavaScript escapes, which mean the same, so the file holds no raw control
character at all.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from pyvis.network import Network

from graph.export.selection import EvidenceGraph
from graph.export.text import clean_key, display_text, excerpt, utf8_text
from graph.store import Node, NodeKey, Relationship

TITLE_CHARS = 200
LABEL_CHARS = 24

COLOURS = {
    "Account": "#4e79a7", "IP": "#f28e2b", "Network": "#e15759", "ASN": "#76b7b2",
    "PaymentMethod": "#59a14f", "Device": "#edc948", "ClientFingerprint": "#b07aa1",
    "EmailDomain": "#ff9da7", "PromptTemplate": "#9c755f", "Cluster": "#bab0ac",
    "Operator": "#d62728", "Indicator": "#17becf",
}
# Any tag that loads something from elsewhere (pyvis's Bootstrap links).
_REMOTE_TAG = re.compile(
    r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>"
    r"|<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*</script>",
    re.IGNORECASE | re.DOTALL,
)


def _shown(value: Any, limit: int) -> str:
    return display_text(excerpt(str(value), limit))


def _title(label: str, key: str, props: dict[str, Any]) -> str:
    """Plain-text tooltip: the element and its properties, one per line, each bounded."""
    lines = [f"{label}: {_shown(key, TITLE_CHARS)}"]
    for name, value in sorted(props.items(), key=lambda item: str(item[0])):
        lines.append(f"{_shown(name, TITLE_CHARS)}: {_shown(value, TITLE_CHARS)}")
    return "\n".join(lines)


def _id(ref: NodeKey) -> str:
    """A vis-network node id: unique, strict UTF-8 (it travels as JSON, never shown)."""
    return f"{ref[0]}:{clean_key(ref[1], utf8_text)}"


def _node_kwargs(node: Node) -> dict[str, Any]:
    caption = display_text(str(node.props.get("name") or node.key))
    return {
        "label": caption if len(caption) <= LABEL_CHARS else caption[: LABEL_CHARS - 1] + "…",
        "title": _title(node.label, node.key, node.props),
        "color": COLOURS.get(node.label, "#888888"),
        "group": node.label,
        "shape": "star" if node.label in ("Cluster", "Operator") else "dot",
        "size": 25 if node.label in ("Cluster", "Operator") else 12,
    }


def _edge_kwargs(rel: Relationship) -> dict[str, Any]:
    weight = rel.props.get("weight")
    return {
        "title": _title(rel.type, f"{rel.start[1]} → {rel.end[1]}", rel.props),
        "label": rel.type if rel.type in ("LINKED", "ATTRIBUTED_TO", "SUGGESTED_OPERATOR") else "",
        "width": 1 + 4 * float(weight) if isinstance(weight, int | float) else 1,
        "arrows": "to",
    }


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


def strip_remote_resources(html: str) -> str:
    """The page without tags that fetch from another host (and without HTML comments, where
    pyvis keeps dead references to node_modules)."""
    return _REMOTE_TAG.sub("", _COMMENT.sub("", html))


def render_html(graph: EvidenceGraph, heading: str = "") -> str:
    """The standalone page as text."""
    # pyvis puts the heading into the page as it is, unescaped
    net = Network(height="850px", width="100%", directed=True, cdn_resources="in_line",
                  heading=html.escape(display_text(heading)))
    for node in graph.nodes:
        net.add_node(_id(node.ref), **_node_kwargs(node))
    for rel in graph.relationships:
        net.add_edge(_id(rel.start), _id(rel.end), **_edge_kwargs(rel))
    net.toggle_physics(len(graph.nodes) <= 1500)
    return escape_raw_controls(strip_remote_resources(net.generate_html(notebook=False)))


def write_html(graph: EvidenceGraph, path: Path, heading: str = "") -> Path:
    path.write_bytes(render_html(graph, heading).encode("utf-8"))
    return path
