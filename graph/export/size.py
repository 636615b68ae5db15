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
# world's 1,000- and 2,200-account clusters (bench/export.py) with the compact GraphML/GEXF
# writers and the column-wise HTML page: the larger of the two fits, so a budget decided on
# the estimate (the report's graph.json) errs on the side of the budget.
PER_ELEMENT = 40
FACTOR: dict[str, tuple[float, int]] = {
    "graphml": (1.7, 4_000),
    "gexf": (2.05, 4_000),
    "json": (1.45, 200),
    "stix": (1.75, 2_000),
    "html": (0.67, 480_000),
    "csv": (1.02, 1_000),
    "parquet": (0.24, 20_000),
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


REPORT_BUDGET = 10_000_000
"""The report directory's size budget, in bytes. graph.json is its largest file and the one
the report does without (a link's reasons are in links.csv and graph.html as well): it is
written only when the report's estimated size with it fits the budget (``report_with_json``).
The 2,200-member cluster of the medium world is 6.3 MB as JSON, which with its page and
tables made the report 11.5 MB; ``sybilscope export graph --format json`` writes it alone."""


def _report_parts(graph: EvidenceGraph) -> tuple[int, int]:
    """(graph.json, everything else) of a report of ``graph``, estimated (a folded graph's
    report tables list the members and links of the graph it was folded from)."""
    tables = graph.unfolded if graph.unfolded is not None else graph
    rest = estimate_bytes(graph, "html") + int(REPORT_TABLES * estimate_bytes(tables, "csv")) + REPORT_TEXT
    return estimate_bytes(graph, "json"), rest


def report_with_json(graph: EvidenceGraph) -> bool:
    """Whether the report of ``graph`` holds graph.json: only if it fits ``REPORT_BUDGET``."""
    as_json, rest = _report_parts(graph)
    return as_json + rest <= REPORT_BUDGET


def estimate_bytes(graph: EvidenceGraph, fmt: str) -> int:
    """The estimated size of ``fmt`` written from ``graph`` (a report: all its files, graph.json
    only where it fits the budget)."""
    elements, _props, text = content(graph)
    if fmt == "report":
        as_json, rest = _report_parts(graph)
        return as_json + rest if as_json + rest <= REPORT_BUDGET else rest
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
