"""How large an export of an evidence graph will be, before it is written.

An estimate, from the graph itself: the bytes of its keys and property values, and per
element and per property the overhead each format adds (measured on generated worlds, see
bench/export.py, which prints the estimate beside the real size). Good to a factor of about
1.5, which is what a person deciding whether to wait needs.
"""

from __future__ import annotations

from graph.evidence import EvidenceGraph

# Bytes each format adds per element, per property, and per byte of text; and a fixed part.
OVERHEAD: dict[str, tuple[float, float, float, int]] = {
    "graphml": (90.0, 30.0, 1.05, 6_000),
    "gexf": (110.0, 36.0, 1.1, 6_000),
    "json": (40.0, 12.0, 1.05, 100),
    "stix": (420.0, 0.0, 0.25, 2_000),
    "html": (150.0, 22.0, 1.0, 480_000),
    "csv": (16.0, 2.0, 1.0, 1_000),
    "parquet": (8.0, 1.0, 0.5, 20_000),
}


def content(graph: EvidenceGraph) -> tuple[int, int, int]:
    """(elements, properties, bytes of keys and values) of ``graph``."""
    elements = len(graph.nodes) + len(graph.relationships)
    props = sum(len(n.props) for n in graph.nodes) + sum(len(r.props) for r in graph.relationships)
    text = sum(len(n.key) + sum(len(str(v)) for v in n.props.values()) for n in graph.nodes)
    text += sum(len(r.start[1]) + len(r.end[1]) + sum(len(str(v)) for v in r.props.values()) for r in graph.relationships)
    return elements, props, text


def estimate_bytes(graph: EvidenceGraph, fmt: str) -> int:
    """The estimated size of ``fmt`` written from ``graph`` (a report: all its files)."""
    elements, props, text = content(graph)
    if fmt == "report":
        return sum(estimate_bytes(graph, f) for f in ("graphml", "gexf", "json", "stix", "html")) + 60_000 + text // 4
    per_element, per_prop, per_byte, fixed = OVERHEAD[fmt]
    return int(fixed + elements * per_element + props * per_prop + text * per_byte)


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def describe_size(graph: EvidenceGraph, fmt: str) -> str:
    """``"54,402 nodes, 247,923 relationships, about 130.0 MB as graphml"``."""
    return (f"{len(graph.nodes):,} nodes, {len(graph.relationships):,} relationships, "
            f"about {human_bytes(estimate_bytes(graph, fmt))} as {fmt}")
