"""A small picture of an evidence graph: an SVG drawn from its layout, for the report's first
page. No script, no font or image from anywhere: lines, circles and escaped text.

The picture shows the clusters, the operators, every member (a dot; a folded graph's member
groups as dots sized by their members) and the ``MAX_VALUES``
values most members share (sized by how many), the uses joining them and the links between
members; the names of the ``LABELLED`` most shared values are written beside them. The rest
is in the tables and the graph files.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from graph.evidence import MEMBER_GROUP, EvidenceGraph
from graph.export.html import COLOURS
from graph.export.layout import evidence_layout
from graph.export.text import display_text
from graph.schema import Label, Rel
from graph.store import NodeKey

SIZE = 640
MAX_VALUES = 60
LABELLED = 12
MAX_USE_LINES = 4000
MAX_LINK_LINES = 2000
LABEL_CHARS = 22


def _short(text: str) -> str:
    shown = display_text(text)
    return shown if len(shown) <= LABEL_CHARS else shown[: LABEL_CHARS - 1] + "…"


def evidence_svg(graph: EvidenceGraph, name: Callable[[NodeKey], str] | None = None) -> str:
    """The picture as SVG text; ``name`` gives the caption of a node (hashed when redacting)."""
    caption = name or (lambda ref: ref[1])
    layout = evidence_layout(graph)
    nodes = graph.node_map()
    groups = {n.ref: int(n.props.get("members") or 0) for n in graph.nodes if n.label == MEMBER_GROUP}
    members = set(graph.members()) | set(groups)
    values = graph.shared_values()
    if not values:  # a one-hop (--full) graph has no member counts: count them here
        counts: dict[NodeKey, int] = {}
        for rel in graph.relationships:
            if rel.start in members and rel.end in nodes and rel.end[0] not in (Label.ACCOUNT, Label.CLUSTER):
                counts[rel.end] = counts.get(rel.end, 0) + 1
        values = sorted((nodes[r] for r, n in counts.items() if n >= 2), key=lambda n: (-counts[n.ref], n.ref))
        shared = {n.ref: counts[n.ref] for n in values}
    else:
        shared = {n.ref: int(n.props.get("members") or 0) for n in values}
    drawn_values = [n.ref for n in values[:MAX_VALUES]]
    special = [r for r in nodes if r[0] in (Label.CLUSTER, Label.OPERATOR)]
    drawn = set(drawn_values) | members | set(special)
    x0, y0, w, h = layout.box()
    pad = 30.0
    scale = (SIZE - 2 * pad) / max(w, h)

    def at(ref: NodeKey) -> tuple[int, int]:
        x, y = layout.positions.get(ref, (0.0, 0.0))
        return int(pad + (x - x0) * scale + (SIZE - 2 * pad - w * scale) / 2), int(pad + (y - y0) * scale + (SIZE - 2 * pad - h * scale) / 2)

    uses: list[str] = []
    links: list[str] = []
    for rel in graph.relationships:
        if rel.start not in drawn or rel.end not in drawn or rel.type == Rel.MEMBER_OF:
            continue
        (ax, ay), (bx, by) = at(rel.start), at(rel.end)
        segment = f"M{ax} {ay}L{bx} {by}"
        if rel.type == Rel.LINKED:
            if len(links) < MAX_LINK_LINES:
                links.append(segment)
        elif len(uses) < MAX_USE_LINES:
            uses.append(segment)
    most = max(shared.values(), default=1) or 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SIZE} {SIZE}" width="{SIZE}" height="{SIZE}" '
           'role="img" aria-label="evidence graph" style="background:#fff;border:1px solid #ddd">']
    if uses:
        out.append(f'<path d="{"".join(uses)}" stroke="#9aa5b1" stroke-opacity="0.25" stroke-width="0.6" fill="none"/>')
    if links:  # many links would hide everything else: the more there are, the fainter
        opacity = max(0.06, min(0.5, 40 / len(links)))
        out.append(f'<path d="{"".join(links)}" stroke="#c0392b" stroke-opacity="{opacity:.2f}" stroke-width="0.8" fill="none"/>')
    biggest = max(groups.values(), default=1) or 1
    dots = [f'<circle cx="{x}" cy="{y}" r="{2.5 + 7.0 * (groups[m] / biggest) ** 0.5:.1f}" stroke="#fff" stroke-width="0.5"/>'
            if m in groups else f'<circle cx="{x}" cy="{y}" r="1.8"/>' for m, (x, y) in ((m, at(m)) for m in sorted(members))]
    out.append(f'<g fill="{COLOURS["Account"]}">{"".join(dots)}</g>')
    for ref in drawn_values:
        x, y = at(ref)
        r = 2.5 + 9.0 * (shared.get(ref, 0) / most) ** 0.5
        out.append(f'<circle cx="{x}" cy="{y}" r="{r:.1f}" fill="{COLOURS.get(ref[0], "#888")}" stroke="#fff" stroke-width="0.5"/>')
    for ref in sorted(special):
        x, y = at(ref)
        colour = COLOURS.get(ref[0], "#888")
        out.append(f'<rect x="{x - 7}" y="{y - 7}" width="14" height="14" fill="{colour}" stroke="#fff"/>')
        label = html.escape(_short(caption(ref)))
        out.append(f'<text x="{x + 10}" y="{y + 4}" font-size="11" font-family="sans-serif" fill="#222">{label}</text>')
    taken: list[tuple[int, int]] = [at(ref) for ref in special]
    for ref in drawn_values[:LABELLED]:
        x, y = at(ref)
        if any(abs(x - tx) < 110 and abs(y - ty) < 14 for tx, ty in taken):
            continue  # a label would cover another: the tables name it
        taken.append((x, y))
        label = html.escape(_short(f"{ref[0]} {caption(ref)}"))
        out.append(f'<text x="{x + 8}" y="{y - 6}" font-size="9" font-family="sans-serif" fill="#333" '
                   f'stroke="#fff" stroke-width="2.5" paint-order="stroke">{label}</text>')
    out.append("</svg>")
    return "".join(out)
