"""A standalone HTML graph (pyvis / vis-network) that opens offline.

pyvis inlines vis-network with ``cdn_resources='in_line'``, but its template still links
Bootstrap from a CDN; those tags are removed here, so the file makes no network request at all
(tests/e2e/test_html_export.py opens it in headless Chromium and records every request). Data
reaches the page through Jinja's ``tojson`` filter, which escapes ``<``, ``>`` and ``&``, so an
identifier cannot close the script tag.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pyvis.network import Network

from graph.export.selection import EvidenceGraph
from graph.store import Node, Relationship

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


def _title(label: str, key: str, props: dict[str, Any]) -> str:
    """Plain-text tooltip: the element and its properties, one per line."""
    lines = [f"{label}: {key}"]
    for name, value in sorted(props.items()):
        text = str(value)
        lines.append(f"{name}: {text[:200] + '…' if len(text) > 200 else text}")
    return "\n".join(lines)


def _node_kwargs(node: Node) -> dict[str, Any]:
    caption = str(node.props.get("name") or node.key)
    return {
        "label": caption if len(caption) <= 24 else caption[:23] + "…",
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


def strip_remote_resources(html: str) -> str:
    """The page without tags that fetch from another host (and without HTML comments, where
    pyvis keeps dead references to node_modules)."""
    return _REMOTE_TAG.sub("", _COMMENT.sub("", html))


def render_html(graph: EvidenceGraph, heading: str = "") -> str:
    """The standalone page as text."""
    net = Network(height="850px", width="100%", directed=True, cdn_resources="in_line", heading=heading)
    for node in graph.nodes:
        net.add_node(f"{node.label}:{node.key}", **_node_kwargs(node))
    for rel in graph.relationships:
        net.add_edge(f"{rel.start[0]}:{rel.start[1]}", f"{rel.end[0]}:{rel.end[1]}", **_edge_kwargs(rel))
    net.toggle_physics(len(graph.nodes) <= 1500)
    return strip_remote_resources(net.generate_html(notebook=False))


def write_html(graph: EvidenceGraph, path: Path, heading: str = "") -> Path:
    path.write_text(render_html(graph, heading), encoding="utf-8")
    return path
