"""How large an export of an evidence graph will be, before it is written.

An estimate, from the graph itself: the bytes of its keys and property values and a per-element
allowance, times what each format makes of them (measured on generated worlds, see
bench/export.py, which prints the estimate beside the real size). Good to about 30 %, which is
what a person deciding whether to wait needs.
"""

from __future__ import annotations

from graph.evidence import EvidenceGraph

# Per format: bytes per byte of content (keys and values, plus PER_ELEMENT for each node and
# relationship), and a fixed part (the HTML page's inlined library). Fitted on the medium
# world's 1,000- and 2,200-account clusters (bench/export.py), within 15 % on both.
PER_ELEMENT = 40
FACTOR: dict[str, tuple[float, int]] = {
    "graphml": (1.65, 4_000),
    "gexf": (2.45, 4_000),
    "json": (1.25, 200),
    "stix": (1.15, 2_000),
    "html": (0.72, 480_000),
    "csv": (1.02, 1_000),
    "parquet": (0.2, 20_000),
}
REPORT_TABLES = 0.35
"""The report's CSV tables, as a share of the CSV export."""
REPORT_TEXT = 250_000
"""report.md, report.html and the picture."""


def content(graph: EvidenceGraph) -> tuple[int, int, int]:
    """(elements, properties, bytes of keys and values) of ``graph``."""
    elements = len(graph.nodes) + len(graph.relationships)
    props = sum(len(n.props) for n in graph.nodes) + sum(len(r.props) for r in graph.relationships)
    text = sum(len(n.key) + sum(len(str(v)) for v in n.props.values()) for n in graph.nodes)
    text += sum(len(r.start[1]) + len(r.end[1]) + sum(len(str(v)) for v in r.props.values()) for r in graph.relationships)
    return elements, props, text


def estimate_bytes(graph: EvidenceGraph, fmt: str) -> int:
    """The estimated size of ``fmt`` written from ``graph`` (a report: all its files)."""
    elements, _props, text = content(graph)
    if fmt == "report":
        return (estimate_bytes(graph, "json") + estimate_bytes(graph, "html")
                + int(REPORT_TABLES * estimate_bytes(graph, "csv")) + REPORT_TEXT)
    factor, fixed = FACTOR[fmt]
    return int(fixed + factor * (text + PER_ELEMENT * elements))


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
