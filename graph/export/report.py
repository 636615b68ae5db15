"""The written evidence report of one or more clusters, in Markdown and HTML, with a SHA-256
manifest of every file exported beside it.

For each cluster: its summary and scores, the detector's indicators, the analyst's attribution
and rationale (and the detector's suggestion), the members, the prompt templates two or more of
them sent (with an example prompt, cut short), every link between members with its reasons and
the source rows behind each reason (input file and row number, read from the staging Parquet
with DuckDB), the notes and the audit-trail extract. In redaction mode every
identifier is a salted hash and no source value is printed, only file and row numbers.

Everything written is text a person reads, so it follows graph/export/text.py: control and
bidi characters show as visible escapes (``\\x1b``, ``\\u202e``), Markdown metacharacters are
escaped, and no text runs longer than ``REPORT_TEXT_CHARS`` (an example prompt
``EXAMPLE_CHARS``) without saying how long it is; the graph files beside it hold it all.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graph.export.redact import Redactor
from graph.export.selection import EvidenceGraph
from graph.export.text import display_text, excerpt, md_text
from graph.props import loads
from graph.schema import ACCOUNT_SOURCE, ENTITY_SOURCES, Label, Rel
from graph.staging import connect, has_table, table_glob
from graph.store import GraphStore, Node, NodeKey

ROWS_PER_ACCOUNT = 3
MAX_LINKS = 500
MAX_TEMPLATES = 20
EXAMPLE_CHARS = 300
REPORT_TEXT_CHARS = 5000

TIME_COLUMN = {"exchanges": "ts", "accounts": "created_at", "payments": "first_seen", "devices": "first_seen"}


@dataclass(frozen=True)
class SourceRow:
    table: str
    file: str
    row: int
    account_id: str
    time: str = ""


@dataclass
class SourceSet:
    rows: list[SourceRow] = field(default_factory=list)
    total: int = 0


Need = tuple[str, str, str, str]
"""(table, column, account_id, key): rows of ``table`` for ``account_id`` with ``column = key``."""


def _needs_of(label: str, key: str, accounts: Sequence[str]) -> list[Need]:
    if label in ENTITY_SOURCES:
        return [(t, c, a, key) for t, c in ENTITY_SOURCES[Label(label)] for a in accounts]
    return [(ACCOUNT_SOURCE[0], ACCOUNT_SOURCE[1], a, a) for a in accounts]


def find_source_rows(workspace: Path | None, needs: Sequence[Need]) -> dict[Need, SourceSet]:
    """The first rows (by file and row number) and the row count behind each need: one DuckDB
    scan per (table, column), joined against the needs, never the whole table in memory."""
    out: dict[Need, SourceSet] = {n: SourceSet() for n in needs}
    if workspace is None or not needs:
        return out
    import pyarrow as pa

    grouped: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for table, column, account, key in needs:
        if _utf8(account) and _utf8(key):  # staged Parquet holds only valid UTF-8
            grouped[(table, column)].add((account, key))
    con = connect()
    try:
        for (table, column), pairs in grouped.items():
            if not has_table(workspace, table):
                continue
            source = f"read_parquet('{table_glob(workspace, table)}', union_by_name = true)"
            columns = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}  # noqa: S608 - path from staging
            if not {column, "account_id", "_file", "_row"} <= columns:
                continue
            tcol = TIME_COLUMN.get(table)
            time_expr = f'CAST(t."{tcol}" AS VARCHAR)' if tcol in columns else "''"
            wanted = pa.table({"account_id": [p[0] for p in pairs], "key": [p[1] for p in pairs]})
            con.register("wanted", wanted)
            query = (
                f"SELECT w.account_id, w.key, t._file, t._row, {time_expr} AS time, "  # noqa: S608 - names whitelisted above
                "count(*) OVER (PARTITION BY w.account_id, w.key) AS total "
                f"FROM {source} t JOIN wanted w "
                f'ON CAST(t.account_id AS VARCHAR) = w.account_id AND CAST(t."{column}" AS VARCHAR) = w.key '
                "QUALIFY row_number() OVER (PARTITION BY w.account_id, w.key ORDER BY t._file, t._row) <= ?"
            )
            for account, key, file, row, time, total in con.execute(query, [ROWS_PER_ACCOUNT]).fetchall():
                entry = out[(table, column, account, key)]
                entry.rows.append(SourceRow(table, str(file), int(row), account, str(time or "")))
                entry.total = int(total)
            con.unregister("wanted")
    finally:
        con.close()
    for entry in out.values():
        entry.rows.sort(key=lambda r: (r.file, r.row))
    return out


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ---- the report's content --------------------------------------------------------------------

Block = tuple[Any, ...]
"""("h1"|"h2"|"h3"|"p", text) | ("table", headers, rows) | ("ul", [text | (text, [sub])])."""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return "" if value is None else str(value)


@dataclass
class _Ids:
    """Identifier rendering: raw, or hashed in redaction mode."""

    redactor: Redactor | None

    def ref(self, label: str, key: str) -> str:
        return self.redactor.key((label, key))[1] if self.redactor else key

    def text(self, value: str) -> str:
        return self.redactor.scrub(value) if self.redactor else value


def _summary(node: Node, ids: _Ids) -> Block:
    keys = ("score", "flagged", "size", "exchanges", "input_tokens", "output_tokens", "first_seen",
            "last_seen", "status", "suggested_operator", "suggestion_confidence", "attributed_operator")
    rows = [[k, ids.text(_fmt(node.props.get(k)))] for k in keys if node.props.get(k) is not None]
    return ("table", ["property", "value"], rows)


def _attribution(graph: EvidenceGraph, ref: NodeKey, ids: _Ids) -> list[Block]:
    nodes = graph.node_map()
    blocks: list[Block] = [("h3", "Attribution")]
    confirmed = [r for r in graph.relationships if r.start == ref and r.type == Rel.ATTRIBUTED_TO]
    suggested = [r for r in graph.relationships if r.start == ref and r.type == Rel.SUGGESTED_OPERATOR]
    for rel in confirmed:
        op = nodes.get(rel.end)
        name = op.props.get("name") if op and not ids.redactor else None
        label = ids.ref(*rel.end) + (f" ({name})" if name else "")
        blocks.append(("p", f"Attributed by {rel.props.get('by', '?')} at {rel.props.get('at', '?')} to operator "
                             f"{label} with confidence {_fmt(rel.props.get('confidence'))}."))
        blocks.append(("p", "Rationale: " + ids.text(str(rel.props.get("rationale") or "(none)"))))
    if not confirmed:
        blocks.append(("p", "Not attributed by an analyst."))
    for rel in suggested:
        inds = loads(rel.props.get("indicators"), [])
        blocks.append(("p", f"Detector suggestion: operator {ids.ref(*rel.end)} with confidence "
                            f"{_fmt(rel.props.get('confidence'))} ({len(inds) if isinstance(inds, list) else 0} matching indicators)."))
    return blocks


def _indicators(node: Node, ids: _Ids) -> list[Block]:
    raw = loads(node.props.get("indicators"), None)
    if not raw:
        return []
    items = raw if isinstance(raw, list) else [f"{k}: {v}" for k, v in raw.items()] if isinstance(raw, dict) else [raw]
    red = ids.redactor
    text = [
        ids.text(i) if isinstance(i, str) else json.dumps(red.json_value(i) if red else i, sort_keys=True)
        for i in items
    ]
    return [("h3", "Detector indicators"), ("ul", text)]


def _members(graph: EvidenceGraph, ref: NodeKey, ids: _Ids) -> list[Block]:
    nodes = graph.node_map()
    rows = []
    for rel in sorted((r for r in graph.relationships if r.end == ref and r.type == Rel.MEMBER_OF), key=lambda r: r.start):
        acct = nodes.get(rel.start)
        p = acct.props if acct else {}
        rows.append([ids.ref(*rel.start), _fmt(p.get("created_at")), _fmt(p.get("status")),
                     _fmt(p.get("verification")), _fmt(rel.props.get("bridge"))])
    return [("h3", f"Members ({len(rows)})"), ("table", ["account", "created_at", "status", "verification", "bridge"], rows)]


def _templates(graph: EvidenceGraph, ref: NodeKey, ids: _Ids) -> list[Block]:
    """The prompt templates two members or more sent, with an example prompt (cut to
    ``EXAMPLE_CHARS``, with its length; left out when redacting, as all prompt text is)."""
    nodes = graph.node_map()
    members = {r.start for r in graph.relationships if r.end == ref and r.type == Rel.MEMBER_OF}
    senders: dict[NodeKey, set[NodeKey]] = defaultdict(set)
    sent: dict[NodeKey, int] = defaultdict(int)
    for rel in graph.relationships:
        if rel.type == Rel.SENT_TEMPLATE and rel.start in members:
            senders[rel.end].add(rel.start)
            count = rel.props.get("count")
            sent[rel.end] += int(count) if isinstance(count, int | float) else 0
    shared = sorted((t for t, s in senders.items() if len(s) >= 2), key=lambda t: (-len(senders[t]), t))
    if not shared:
        return []
    headers = ["template", "capability", "chain of thought", "members", "exchanges"]
    if not ids.redactor:
        headers.append("example prompt")
    rows = []
    for tref in shared[:MAX_TEMPLATES]:
        p = nodes[tref].props if tref in nodes else {}
        cot = "yes" if p.get("cot") is True else "no" if p.get("cot") is False else ""
        row = [ids.ref(*tref), _fmt(p.get("capability")), cot, str(len(senders[tref])), str(sent[tref])]
        if not ids.redactor:
            row.append(excerpt(_fmt(p.get("example")), EXAMPLE_CHARS))
        rows.append(row)
    blocks: list[Block] = [("h3", f"Prompt templates shared by members ({len(shared)})"), ("table", headers, rows)]
    if len(shared) > MAX_TEMPLATES:
        blocks.append(("p", f"The {MAX_TEMPLATES} most shared are listed; the graph files hold all {len(shared)}."))
    return blocks


def _reason_text(reason: dict[str, Any], ids: _Ids) -> str:
    entity = reason.get("entity") or {}
    label, key = str(entity.get("label") or ""), str(entity.get("key") or "")
    what = f"{label} {ids.ref(label, key)}" if label and key else "account attributes"
    return (f"{reason.get('family', '?')}/{reason.get('kind', '?')}: {what} "
            f"(shared by {reason.get('accounts', '?')} accounts, weight {_fmt(reason.get('weight'))})")


def _links(graph: EvidenceGraph, ref: NodeKey, ids: _Ids, workspace: Path | None) -> list[Block]:
    members = {r.start for r in graph.relationships if r.end == ref and r.type == Rel.MEMBER_OF}
    links = [r for r in graph.relationships if r.type == Rel.LINKED and r.start in members and r.end in members]
    links.sort(key=lambda r: (-float(r.props.get("weight") or 0.0), r.start, r.end))
    shown = links[:MAX_LINKS]
    plan: list[tuple[Any, list[tuple[dict[str, Any], list[Need]]]]] = []
    all_needs: list[Need] = []
    for rel in shown:
        reasons = [r for r in loads(rel.props.get("reasons"), []) if isinstance(r, dict)]
        entries = []
        for reason in reasons:
            entity = reason.get("entity") or {}
            needs = _needs_of(str(entity.get("label") or ""), str(entity.get("key") or ""), [rel.start[1], rel.end[1]])
            entries.append((reason, needs))
            all_needs.extend(needs)
        plan.append((rel, entries))
    found = find_source_rows(workspace, all_needs)
    blocks: list[Block] = [("h3", f"Links between members ({len(links)})")]
    if len(links) > len(shown):
        blocks.append(("p", f"The {len(shown)} strongest links are listed; the graph files hold all {len(links)}."))
    for rel, entries in plan:
        families = rel.props.get("families") or []
        blocks.append(("h4", f"{ids.ref(*rel.start)} — {ids.ref(*rel.end)}: weight {_fmt(rel.props.get('weight'))}"
                             f" ({_fmt(families)})"))
        items: list[Any] = []
        for reason, needs in entries:
            sources = []
            for need in needs:
                entry = found.get(need, SourceSet())
                for row in entry.rows:
                    when = f", {row.time}" if row.time else ""
                    sources.append(f"{row.file} row {row.row} ({row.table}{when}; account {ids.ref(Label.ACCOUNT.value, row.account_id)})")
                if entry.total > len(entry.rows):
                    sources.append(f"… and {entry.total - len(entry.rows)} more {need[0]} rows of account "
                                   f"{ids.ref(Label.ACCOUNT.value, need[2])}")
            items.append((_reason_text(reason, ids), sources or ["no staged source rows found"]))
        blocks.append(("ul", items or ["no reasons recorded"]))
    return blocks


def _audit(store: GraphStore, ref: NodeKey, ids: _Ids) -> list[Block]:
    sub = store.neighbours([ref], [Rel.ABOUT], limit=10**9)
    events = sorted((n for n in sub.nodes if n.label == Label.AUDIT_EVENT), key=lambda n: (str(n.props.get("at", "")), n.key))
    notes = sorted((n for n in sub.nodes if n.label == Label.NOTE), key=lambda n: (str(n.props.get("at", "")), n.key))
    blocks: list[Block] = [("h3", f"Audit trail ({len(events)} events)")]
    rows = [[_fmt(e.props.get("at")), _fmt(e.props.get("who")), _fmt(e.props.get("action")),
             ids.text(_fmt(e.props.get("before"))), ids.text(_fmt(e.props.get("after")))] for e in events]
    blocks.append(("table", ["at", "who", "action", "before", "after"], rows) if rows else ("p", "No recorded decisions."))
    if notes:
        blocks.append(("h3", "Notes"))
        blocks.append(("ul", [f"{_fmt(n.props.get('at'))} {_fmt(n.props.get('who'))}: {ids.text(_fmt(n.props.get('text')))}" for n in notes]))
    return blocks


def build_report(
    store: GraphStore, graph: EvidenceGraph, workspace: Path | None, redactor: Redactor | None = None
) -> list[Block]:
    """The report's content blocks for every cluster of ``graph`` (from the raw, unredacted
    graph: source rows are looked up by raw ids, identifiers hashed only when rendered)."""
    ids = _Ids(redactor)
    if redactor:
        redactor.learn_graph(graph)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    blocks: list[Block] = [
        ("h1", "Sybilscope evidence report"),
        ("p", f"Generated {now} from the {store.name} store. Clusters: "
              f"{', '.join(ids.text(c) for c in graph.cluster_ids)}."
              + (" Redacted: identifiers are salted hashes; e-mail and billing data are left out." if redactor else "")),
        ("p", "Every file exported with this report is listed with its SHA-256 digest in MANIFEST.sha256."),
    ]
    nodes = graph.node_map()
    for cid in graph.cluster_ids:
        ref: NodeKey = (Label.CLUSTER.value, cid)
        node = nodes.get(ref)
        if node is None:
            continue
        blocks.append(("h2", f"Cluster {ids.text(cid)}"))
        blocks.append(_summary(node, ids))
        blocks += _indicators(node, ids)
        blocks += _attribution(graph, ref, ids)
        blocks += _members(graph, ref, ids)
        blocks += _templates(graph, ref, ids)
        blocks += _links(graph, ref, ids, workspace)
        blocks += _audit(store, ref, ids)
    return blocks


# ---- rendering -------------------------------------------------------------------------------


def _md(text: Any) -> str:
    """One piece of report text as Markdown: bounded, visible escapes, metacharacters escaped."""
    return md_text(excerpt(str(text), REPORT_TEXT_CHARS))


def _html(text: Any) -> str:
    """One piece of report text as HTML: bounded, visible escapes, HTML-escaped."""
    return html.escape(display_text(excerpt(str(text), REPORT_TEXT_CHARS)))


def to_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind.startswith("h"):
            out += ["#" * int(kind[1]) + " " + _md(block[1]), ""]
        elif kind == "p":
            out += [_md(block[1]), ""]
        elif kind == "table":
            out.append("| " + " | ".join(_md(h) for h in block[1]) + " |")
            out.append("|" + "---|" * len(block[1]))
            out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in block[2]]
            out.append("")
        elif kind == "ul":
            for item in block[1]:
                text, subs = item if isinstance(item, tuple) else (item, [])
                out.append(f"- {_md(text)}")
                out += [f"  - {_md(s)}" for s in subs]
            out.append("")
    return "\n".join(out)


def to_html(blocks: Sequence[Block], title: str = "Sybilscope evidence report") -> str:
    e: Callable[[Any], str] = _html
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;"
        "font-size:90%;text-align:left;vertical-align:top;white-space:pre-wrap;overflow-wrap:anywhere}"
        "li li{font-size:90%;color:#333}</style>",
        "</head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind.startswith("h") or kind == "p":
            out.append(f"<{kind}>{e(block[1])}</{kind}>")
        elif kind == "table":
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in block[1]) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in block[2]]
            out.append("</table>")
        elif kind == "ul":
            out.append("<ul>")
            for item in block[1]:
                text, subs = item if isinstance(item, tuple) else (item, [])
                inner = "<ul>" + "".join(f"<li>{e(s)}</li>" for s in subs) + "</ul>" if subs else ""
                out.append(f"<li>{e(text)}{inner}</li>")
            out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(
    store: GraphStore, graph: EvidenceGraph, workspace: Path | None, directory: Path, redactor: Redactor | None = None
) -> list[Path]:
    """``report.md`` and ``report.html`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    blocks = build_report(store, graph, workspace, redactor)
    md = directory / "report.md"
    md.write_bytes(to_markdown(blocks).encode("utf-8"))
    page = directory / "report.html"
    page.write_bytes(to_html(blocks).encode("utf-8"))
    return [md, page]
