"""How an evidence graph looks, wherever it is drawn: the HTML export (graph/export/html.py)
and the UI's cluster canvas (app/canvas.py) take their colours, shapes, kind names, node sizes
and label sizes from here, so the canvas and the exports show the same thing the same way.

Nodes are coloured by kind and sized by how many members use them; labels of the most shared
values are large enough to read when the whole graph fits a window about ``VIEW_PX`` wide,
the rest smaller (a drawing library hides those until the view is zoomed in).
"""

from __future__ import annotations

import math

from graph.evidence import BILLING_PATTERN, HUB, MEMBER_GROUP
from graph.schema import Rel

GROUP = "Group"
"""The canvas's stand-in for the members of a large cluster who share one value."""

COLOURS = {
    "Account": "#4e79a7", "IP": "#f28e2b", "Network": "#e15759", "ASN": "#76b7b2",
    "PaymentMethod": "#59a14f", BILLING_PATTERN: "#8cd17d", "Device": "#edc948", "ClientFingerprint": "#b07aa1",
    "EmailDomain": "#ff9da7", "PromptTemplate": "#9c755f", "Cluster": "#79706e",
    "Operator": "#d62728", "Indicator": "#17becf", HUB: "#bab0ac", GROUP: "#a0cbe8", MEMBER_GROUP: "#4e79a7",
}
SHAPES = {"Cluster": "star", "Operator": "triangle", "Indicator": "diamond", HUB: "square", GROUP: "hexagon",
          MEMBER_GROUP: "hexagon"}
KIND_NAMES = {
    "Account": "member account", "IP": "IP address", "Network": "network", "PaymentMethod": "payment instrument",
    BILLING_PATTERN: "BIN + billing pattern", "Device": "device", "ClientFingerprint": "client fingerprint",
    "EmailDomain": "e-mail domain", "PromptTemplate": "prompt template", "Cluster": "cluster",
    "Operator": "operator", "Indicator": "operator indicator", HUB: "hubs (collapsed)", "ASN": "ASN",
    GROUP: "accounts sharing a value", MEMBER_GROUP: "member group (folded)",
}
EDGE_COLOURS = {Rel.LINKED.value: "#c0392b", "MATCHES": "#17becf", Rel.SHARES_INFRASTRUCTURE.value: "#8e44ad",
                Rel.ATTRIBUTED_TO.value: "#d62728", Rel.SUGGESTED_OPERATOR.value: "#ff7f0e"}
OTHER_EDGE = "#9aa5b1"
OTHER_NODE = "#888888"
VIEW_PX = 900
FIXED_SIZES = {"Cluster": 22.0, "Operator": 18.0, "Indicator": 8.0, HUB: 12.0}
ACCOUNT_SIZE = 7.0


def view_scale(radius: float) -> float:
    """How much larger than at 1:1 labels and nodes are drawn so they read when the whole
    graph (of this radius) fits a window about ``VIEW_PX`` wide: 1 for a small graph, up to
    2.5 for a large one."""
    return max(1.0, min(2.5, 2 * radius / VIEW_PX))


def node_size(label: str, members: int, most: int, scale: float) -> float:
    """A node's radius: accounts small and fixed; a shared value (or a group) by the square
    root of how many members use it (its area grows with them), against the most used."""
    if label == "Account":
        return ACCOUNT_SIZE
    fixed = FIXED_SIZES.get(label)
    if fixed is not None:
        return fixed * scale
    return (6.0 + 10.0 * math.sqrt(members / most) if most else 8.0) * scale


def label_font(label: str, members: int, most: int, scale: float) -> int:
    """A node's label size: clusters, operators and hubs large; a shared value by how many
    members use it (the most shared read when the whole graph fits); accounts 12."""
    if label == "Account":
        return 12
    if label in ("Cluster", "Operator", HUB):
        return int(15 * scale)
    if label == "Indicator":
        return int(12 * scale)
    return int((8 + 8 * math.sqrt(members / most) if most else 12) * scale)


def colour_of(label: str) -> str:
    return COLOURS.get(label, OTHER_NODE)


def edge_colour_of(rel_type: str) -> str:
    return EDGE_COLOURS.get(rel_type, OTHER_EDGE)
