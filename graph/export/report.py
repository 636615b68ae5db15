"""The written evidence report of one or more clusters, in Markdown and HTML, with the full
tables beside it as CSV and a SHA-256 manifest of every file exported with it.

It is written for a person deciding on a cluster, so each cluster opens with one page that
says who, what, when, how much and why: the members, exchanges and tokens, the time span, the
capabilities targeted, the scoring indicators with their contributions, the stability of the
cluster without each signal family, the attribution with its rationale and who made it (and
the detector's suggestion with its matching indicators), a picture of the evidence graph
(graph/export/picture.py) and the strongest shared values. The evidence follows: members,
shared values, the prompt templates two or more members sent (with an example prompt, cut
short), the links between members with their reasons, other clusters sharing infrastructure,
the hubs left out, the audit trail and the notes. Each table shows its strongest rows and says
how many more there are; the full tables are the CSV files beside the report (``TABLES``).
A folded graph (a big cluster, graph/evidence_fold.py) is reported as it was before folding,
member by member, but for its picture and graph.html, which draw the groups; the report
says it is folded. An appendix names the source rows behind each of the strongest links (input file and row
number, read from the staging Parquet with DuckDB). In redaction mode every identifier is a
salted hash, free text (notes, rationales, reasons) is scrubbed of identifiers, e-mail
addresses, phone and card numbers, IP addresses and URLs (graph/export/redact.py), and no
source value is printed, only file and row numbers.

Everything written is text a person reads, so it follows graph/export/text.py: control and
bidi characters show as visible escapes (``\\x1b``, ``\\u202e``), Markdown metacharacters are
escaped, and no text runs longer than ``REPORT_TEXT_CHARS`` (an example prompt
``EXAMPLE_CHARS``) without saying how long it is; the graph files beside it hold it all.
CSV cells follow the CSV rule (``csv_text``, ``fit``).
"""

from __future__ import annotations

import csv
import html
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graph.evidence import HAS_HUB, HUB
from graph.export.picture import evidence_svg
from graph.export.redact import Redactor
from graph.export.selection import EvidenceGraph
from graph.export.text import CSV_CELL_CHARS, csv_text, display_text, excerpt, fit, md_text
from graph.props import loads
from graph.schema import ACCOUNT_SOURCE, ENTITY_SOURCES, Label, Rel
from graph.staging import connect, has_table, table_glob
from graph.store import GraphStore, Node, NodeKey, Relationship

ROWS_PER_ACCOUNT = 3
FIRST_PAGE_VALUES = 8
TOP_MEMBERS = 25
TOP_VALUES = 30
MAX_TEMPLATES = 20
TOP_LINKS = 20
TOP_NEIGHBOURS = 15
APPENDIX_LINKS = 25
TOP_AUDIT = 25
TOP_NOTES = 20
EXAMPLE_CHARS = 300
REPORT_TEXT_CHARS = 5000
TABLES = ("members", "shared_values", "templates", "links", "shares_infrastructure", "audit", "notes")
"""The full tables written beside the report, ``<name>.csv``, one row per cluster and item."""
NON_VALUES = (Label.ACCOUNT.value, Label.CLUSTER.value, Label.OPERATOR.value, Label.INDICATOR.value, HUB)

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
"""("h1".."h4"|"p", text) | ("table", headers, rows) | ("ul", [text | (text, [sub])]) |
("svg", svg text, file name, caption): a picture, inline in HTML, a file beside report.md."""


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return "" if value is None else str(value)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _days(first: Any, last: Any) -> str:
    try:
        a = datetime.fromisoformat(str(first).replace("Z", "+00:00"))
        b = datetime.fromisoformat(str(last).replace("Z", "+00:00"))
    except ValueError:
        return ""
    return f"{(b - a).total_seconds() / 86400:.0f} days"


@dataclass
class _Ids:
    """Identifier rendering: raw, or hashed in redaction mode; free text scrubbed."""

    redactor: Redactor | None

    def ref(self, label: str, key: str) -> str:
        return self.redactor.key((label, key))[1] if self.redactor else key

    def value(self, value: Any) -> str:
        """An identifier that is not a node key (an indicator's value)."""
        return self.redactor.hash(str(value)) if self.redactor else _fmt(value)

    def text(self, value: str) -> str:
        return self.redactor.scrub(value) if self.redactor else value

    def operator(self, ref: NodeKey, node: Node | None) -> str:
        name = node.props.get("name") if node and not self.redactor else None
        return self.ref(*ref) + (f" ({name})" if name else "")


@dataclass
class _Use:
    """How a cluster's members use one value: who, and over what time."""

    members: set[NodeKey] = field(default_factory=set)
    first: str = ""
    last: str = ""
    count: int = 0

    def add(self, member: NodeKey, props: dict[str, Any]) -> None:
        self.members.add(member)
        first, last = str(props.get("first_seen") or ""), str(props.get("last_seen") or props.get("first_seen") or "")
        if first and (not self.first or first < self.first):
            self.first = first
        if last and last > self.last:
            self.last = last
        self.count += int(_num(props.get("count")))


@dataclass
class _Cluster:
    """One cluster's part of the evidence graph, indexed for the report."""

    ref: NodeKey
    node: Node
    members: list[NodeKey]
    values: dict[NodeKey, _Use]
    links: list[Relationship]

    @property
    def shared(self) -> list[NodeKey]:
        """Values two or more members use, most members first."""
        return sorted((v for v, u in self.values.items() if len(u.members) >= 2),
                      key=lambda v: (-len(self.values[v].members), v))


def _index_cluster(graph: EvidenceGraph, ref: NodeKey, nodes: dict[NodeKey, Node]) -> _Cluster:
    members = sorted(r.start for r in graph.relationships if r.end == ref and r.type == Rel.MEMBER_OF)
    mset = set(members)
    values: dict[NodeKey, _Use] = defaultdict(_Use)
    links = []
    for rel in graph.relationships:
        if rel.start not in mset:
            continue
        if rel.type == Rel.LINKED:
            if rel.end in mset:
                links.append(rel)
        elif rel.end[0] not in NON_VALUES and rel.type != Rel.MEMBER_OF:
            values[rel.end].add(rel.start, rel.props)
    links.sort(key=lambda r: (-_num(r.props.get("weight")), r.start, r.end))
    return _Cluster(ref, nodes[ref], members, dict(values), links)


class _Report:
    """Builds the blocks of the report and the rows of its full tables."""

    def __init__(self, store: GraphStore, graph: EvidenceGraph, workspace: Path | None, redactor: Redactor | None) -> None:
        self.store = store
        # A folded graph (graph/evidence_fold.py): the tables list the members and links of the
        # graph it was folded from; the picture and graph.html draw the groups.
        self.folded = graph if graph.folded else None
        self.graph = graph.unfolded if graph.unfolded is not None else graph
        self.workspace = workspace
        self.ids = _Ids(redactor)
        self.nodes = graph.node_map()
        self.tables: dict[str, tuple[list[str], list[list[str]]]] = {}
        self.pictures = 0
        self.with_json = True
        self.json_size = ""

    def table(self, name: str, headers: list[str], rows: list[list[str]]) -> None:
        """Rows of the full table ``name`` (the CSV beside the report), a cluster column first."""
        have = self.tables.setdefault(name, (["cluster", *headers], []))
        have[1].extend(rows)

    def more(self, shown: int, total: int, name: str, what: str) -> list[Block]:
        if total <= shown:
            return []
        return [("p", f"The {shown} strongest of {total:,} {what} are listed; {name}.csv beside this report holds them all.")]

    # ---- the first page ------------------------------------------------------------------

    def headline(self, c: _Cluster) -> Block:
        p = c.node.props
        first, last = p.get("first_seen"), p.get("last_seen")
        caps = self.capabilities(c.node)
        when = f" between {_fmt(first)} and {_fmt(last)} ({_days(first, last)})" if first and last else ""
        what = f", mostly {caps[0][0]} ({caps[0][1]})" if caps else ""
        verdict = "flagged" if p.get("flagged") is True else "not flagged"
        return ("p", f"{len(c.members):,} member accounts sent {_fmt(p.get('exchanges') or 0)} exchanges "
                     f"({_fmt(p.get('input_tokens') or 0)} input and {_fmt(p.get('output_tokens') or 0)} output tokens)"
                     f"{when}{what}. Score {_fmt(_num(p.get('score')))} ({verdict}); status {self.ids.text(_fmt(p.get('status') or 'open'))}. "
                     + self.attribution_line(c))

    def capabilities(self, node: Node) -> list[tuple[str, str]]:
        profile = loads(node.props.get("capability_profile"), {})
        if not isinstance(profile, dict):
            return []
        ranked = sorted(((str(k), _num(v)) for k, v in profile.items()), key=lambda kv: (-kv[1], kv[0]))
        return [(k, f"{v:.0%}") for k, v in ranked if v >= 0.005]

    def attribution_line(self, c: _Cluster) -> str:
        confirmed = self.rels_from(c.ref, Rel.ATTRIBUTED_TO)
        if confirmed:
            rel = confirmed[0]
            return (f"Attributed to operator {self.ids.operator(rel.end, self.nodes.get(rel.end))} by "
                    f"{_fmt(rel.props.get('by') or '?')} at {_fmt(rel.props.get('at') or '?')}, confidence "
                    f"{_fmt(_num(rel.props.get('confidence')))}.")
        suggested = sorted(self.rels_from(c.ref, Rel.SUGGESTED_OPERATOR), key=lambda r: -_num(r.props.get("confidence")))
        if suggested:
            rel = suggested[0]
            return (f"Not attributed yet; the detector suggests operator {self.ids.operator(rel.end, self.nodes.get(rel.end))} "
                    f"with confidence {_fmt(_num(rel.props.get('confidence')))}.")
        return "Not attributed, and no operator is suggested."

    def rels_from(self, ref: NodeKey, rel_type: str) -> list[Relationship]:
        return [r for r in self.graph.relationships if r.start == ref and r.type == rel_type]

    def glance(self, c: _Cluster) -> Block:
        p = c.node.props
        caps = ", ".join(f"{k} {v}" for k, v in self.capabilities(c.node)[:5])
        rows = [
            ["members", f"{len(c.members):,}"],
            ["exchanges", _fmt(p.get("exchanges") or 0)],
            ["input / output tokens", f"{_fmt(p.get('input_tokens') or 0)} / {_fmt(p.get('output_tokens') or 0)}"],
            ["first / last seen", f"{_fmt(p.get('first_seen'))} / {_fmt(p.get('last_seen'))} "
                                  f"({_days(p.get('first_seen'), p.get('last_seen'))})"
             if p.get("first_seen") and p.get("last_seen") else "unknown"],
            ["capabilities targeted", caps or "unknown (no readable prompt text)"],
            ["score", f"{_fmt(_num(p.get('score')))} ({'flagged' if p.get('flagged') is True else 'not flagged'})"],
            ["status", self.ids.text(_fmt(p.get("status") or "open"))],
            ["signal families", _fmt(p.get("families") or [])],
            ["size", _fmt(p.get("size") or len(c.members))],
            ["members with strong links elsewhere (bridges)", _fmt(p.get("bridges") or 0)],
        ]
        return ("table", ["", "value"], rows)

    def indicators(self, c: _Cluster) -> list[Block]:
        raw = loads(c.node.props.get("indicators"), None)
        if not raw:
            return [("h3", "Why it was flagged"), ("p", "The detector recorded no indicators.")]
        items = raw if isinstance(raw, list) else [raw]
        rows = []
        for item in items:
            if isinstance(item, dict) and "name" in item:
                rows.append([self.ids.text(_fmt(item.get("name"))), _fmt(item.get("value")), _fmt(item.get("contribution"))])
            else:
                rows.append([self.ids.text(json.dumps(self.ids.redactor.json_value(item) if self.ids.redactor else item,
                                                      sort_keys=True, default=str)), "", ""])
        return [("h3", "Why it was flagged: scoring indicators"),
                ("p", "Each indicator's contribution to the score (they add up to it); the strongest first."),
                ("table", ["indicator", "value", "contribution"], rows)]

    def stability(self, c: _Cluster) -> list[Block]:
        stab = loads(c.node.props.get("stability"), {})
        if not isinstance(stab, dict) or not any(k not in ("min", "weakest") for k in stab):
            return [("h3", "Stability per signal family"), ("p", "Not measured for this cluster (detection measures it for the clusters it flags).")]
        rows = []
        for family, value in sorted(((k, v) for k, v in stab.items() if k not in ("min", "weakest")), key=lambda kv: (_num(kv[1]), kv[0])):
            reading = "holds without it" if _num(value) >= 0.8 else "partly rests on it" if _num(value) >= 0.5 else "rests on it"
            rows.append([str(family), _fmt(_num(value)), reading])
        blocks: list[Block] = [("h3", "Stability per signal family"),
                               ("p", "How much of the cluster is rebuilt from its members' links without each signal family "
                                     "(1: the family is not needed to hold it together)."),
                               ("table", ["family", "stability", "reading"], rows)]
        if stab.get("weakest"):
            blocks.append(("p", f"Weakest without {stab['weakest']} ({_fmt(_num(stab.get('min')))})."))
        return blocks

    def attribution(self, c: _Cluster) -> list[Block]:
        blocks: list[Block] = [("h3", "Attribution")]
        confirmed = self.rels_from(c.ref, Rel.ATTRIBUTED_TO)
        for rel in confirmed:
            blocks.append(("p", f"Attributed by {_fmt(rel.props.get('by') or '?')} at {_fmt(rel.props.get('at') or '?')} to operator "
                                f"{self.ids.operator(rel.end, self.nodes.get(rel.end))} with confidence "
                                f"{_fmt(_num(rel.props.get('confidence')))}."))
            blocks.append(("p", "Rationale: " + self.ids.text(str(rel.props.get("rationale") or "(none)"))))
        if not confirmed:
            blocks.append(("p", "Not attributed by an analyst."))
        for rel in sorted(self.rels_from(c.ref, Rel.SUGGESTED_OPERATOR), key=lambda r: (-_num(r.props.get("confidence")), r.end)):
            inds = loads(rel.props.get("indicators"), [])
            inds = inds if isinstance(inds, list) else []
            blocks.append(("p", f"Detector suggestion: operator {self.ids.operator(rel.end, self.nodes.get(rel.end))} with confidence "
                                f"{_fmt(_num(rel.props.get('confidence')))} ({len(inds)} matching indicators)."))
            items = []
            for ind in inds[:10]:
                if isinstance(ind, dict):
                    items.append(f"{_fmt(ind.get('type'))} {self.ids.value(ind.get('value'))} "
                                 f"(source {self.ids.text(_fmt(ind.get('source')))}, confidence {_fmt(ind.get('confidence'))}, "
                                 f"{_num(ind.get('coverage')):.0%} of members)")
                else:
                    items.append(self.ids.value(ind))
            if items:
                blocks.append(("ul", items))
        return blocks

    def picture(self, c: _Cluster) -> list[Block]:
        self.pictures += 1
        if self.folded is not None:
            return self.folded_picture(c, self.folded)
        refs = set(c.members) | set(c.shared) | {c.ref}
        refs |= {r.end for r in self.graph.relationships if r.start == c.ref and r.type in (Rel.ATTRIBUTED_TO, Rel.SUGGESTED_OPERATOR)}
        sub = EvidenceGraph(nodes=[n for n in self.graph.nodes if n.ref in refs],
                            relationships=[r for r in self.graph.relationships if r.start in refs and r.end in refs],
                            cluster_ids=[c.ref[1]])
        svg = evidence_svg(sub, lambda ref: self.ids.ref(*ref))
        caption = (f"The evidence graph: {len(c.members):,} members (blue dots), the {min(len(c.shared), 60)} most shared of "
                   f"{len(c.shared):,} shared values (sized by members, coloured by kind), the uses joining them (grey) and "
                   f"{len(c.links):,} links between members (red). graph.html beside this report shows it all, interactively.")
        return [("h3", "Evidence graph"), ("svg", svg, f"evidence-{self.pictures}.svg", caption)]

    def folded_picture(self, c: _Cluster, folded: EvidenceGraph) -> list[Block]:
        """The picture of a folded graph: the cluster's member groups (dots sized by their
        members), the values they share, the links between groups."""
        groups = {r.start for r in folded.relationships if r.end == c.ref and r.type == Rel.MEMBER_OF}
        refs = groups | set(c.shared) | {c.ref}
        refs |= {r.end for r in folded.relationships if r.start == c.ref and r.type in (Rel.ATTRIBUTED_TO, Rel.SUGGESTED_OPERATOR)}
        sub = EvidenceGraph(nodes=[n for n in folded.nodes if n.ref in refs],
                            relationships=[r for r in folded.relationships if r.start in refs and r.end in refs],
                            cluster_ids=[c.ref[1]])
        svg = evidence_svg(sub, lambda ref: self.ids.ref(*ref))
        caption = (f"The folded evidence graph: {len(c.members):,} members in {len(groups):,} groups of members who share "
                   f"the same values (blue dots, sized by members), the {min(len(c.shared), 60)} most shared of "
                   f"{len(c.shared):,} shared values (sized by members, coloured by kind), the groups' uses of them (grey) "
                   f"and the links between groups (red). members.csv and links.csv list every member and its strongest links; "
                   f"graph.html beside this report shows the groups interactively.")
        return [("h3", "Evidence graph (folded)"), ("svg", svg, f"evidence-{self.pictures}.svg", caption)]

    def strongest(self, c: _Cluster) -> list[Block]:
        shared = c.shared
        rows = [self.value_row(c, v) for v in shared[:FIRST_PAGE_VALUES]]
        blocks: list[Block] = [("h3", "Strongest shared values"),
                               ("table", ["kind", "value", "members", "accounts overall", "first seen", "last seen"], rows)]
        if len(shared) > FIRST_PAGE_VALUES:
            blocks.append(("p", f"{len(shared) - FIRST_PAGE_VALUES:,} more shared values follow below and in shared_values.csv."))
        if not shared:
            blocks[-1] = ("p", "No value is shared by two or more members (beyond the hubs left out).")
        return blocks

    def value_row(self, c: _Cluster, ref: NodeKey) -> list[str]:
        use = c.values[ref]
        node = self.nodes.get(ref)
        accounts = node.props.get("accounts") if node else None
        return [ref[0], self.ids.ref(*ref), f"{len(use.members):,}", _fmt(accounts) if accounts is not None else "",
                use.first, use.last]

    # ---- the evidence --------------------------------------------------------------------

    def members(self, c: _Cluster) -> list[Block]:
        links: dict[NodeKey, int] = defaultdict(int)
        for rel in c.links:
            links[rel.start] += 1
            links[rel.end] += 1
        bridges = {r.start for r in self.graph.relationships if r.end == c.ref and r.type == Rel.MEMBER_OF and r.props.get("bridge") is True}
        headers = ["account", "created_at", "status", "verification", "exchanges", "input tokens", "output tokens",
                   "links shown", "bridge"]
        rows = []
        for ref in sorted(c.members, key=lambda m: (-_num(self.props(m).get("exchanges")), m)):
            p = self.props(ref)
            rows.append([self.ids.ref(*ref), _fmt(p.get("created_at")), self.ids.text(_fmt(p.get("status"))),
                         self.ids.text(_fmt(p.get("verification"))), _fmt(p.get("exchanges") or 0),
                         _fmt(p.get("input_tokens") or 0), _fmt(p.get("output_tokens") or 0), str(links.get(ref, 0)),
                         "yes" if ref in bridges else ""])
        self.table("members", headers, [[c.ref[1], *r] for r in rows])
        return [("h3", f"Members ({len(rows):,})"), ("table", headers, rows[:TOP_MEMBERS]),
                *self.more(TOP_MEMBERS, len(rows), "members", "members (by exchanges)")]

    def props(self, ref: NodeKey) -> dict[str, Any]:
        node = self.nodes.get(ref)
        return node.props if node else {}

    def values(self, c: _Cluster) -> list[Block]:
        headers = ["kind", "value", "members", "accounts overall", "first seen", "last seen"]
        rows = [self.value_row(c, v) for v in c.shared]
        self.table("shared_values", headers, [[c.ref[1], *r] for r in rows])
        by_kind: dict[str, int] = defaultdict(int)
        for v in c.shared:
            by_kind[v[0]] += 1
        summary = ", ".join(f"{n:,} {k}" for k, n in sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0])))
        return [("h3", f"Shared values ({len(rows):,})"),
                ("p", f"Values two or more members use: {summary or 'none'}."),
                ("table", headers, rows[:TOP_VALUES]), *self.more(TOP_VALUES, len(rows), "shared_values", "shared values")]

    def templates(self, c: _Cluster) -> list[Block]:
        """The prompt templates two members or more sent, with an example prompt (cut to
        ``EXAMPLE_CHARS``, with its length; left out when redacting, as all prompt text is)."""
        shared = [v for v in c.shared if v[0] == Label.PROMPT_TEMPLATE]
        if not shared:
            return []
        headers = ["template", "capability", "chain of thought", "members", "exchanges"]
        if not self.ids.redactor:
            headers.append("example prompt")
        rows, full = [], []
        for tref in shared:
            p = self.props(tref)
            cot = "yes" if p.get("cot") is True else "no" if p.get("cot") is False else ""
            row = [self.ids.ref(*tref), _fmt(p.get("capability")), cot, f"{len(c.values[tref].members):,}", f"{c.values[tref].count:,}"]
            if not self.ids.redactor:
                example = _fmt(p.get("example"))
                rows.append([*row, excerpt(example, EXAMPLE_CHARS)])
                full.append([c.ref[1], *row, example])
            else:
                rows.append(row)
                full.append([c.ref[1], *row])
        self.table("templates", headers, full)
        return [("h3", f"Prompt templates shared by members ({len(shared):,})"), ("table", headers, rows[:MAX_TEMPLATES]),
                *self.more(MAX_TEMPLATES, len(rows), "templates", "shared templates")]

    def reason_text(self, reason: dict[str, Any]) -> str:
        entity = reason.get("entity") or {}
        label, key = (str(entity.get("label") or ""), str(entity.get("key") or "")) if isinstance(entity, dict) else ("", "")
        what = f"{label} {self.ids.ref(label, key)}" if label and key else "account attributes"
        span = (f", {str(reason['first_seen'])[:10]} – {str(reason.get('last_seen') or reason['first_seen'])[:10]}"
                if reason.get("first_seen") else "")
        return (f"{self.ids.text(_fmt(reason.get('family') or '?'))}/{self.ids.text(_fmt(reason.get('kind') or '?'))}: {what} "
                f"(shared by {_fmt(reason.get('accounts') or '?')} accounts, weight {_fmt(reason.get('weight'))}{span})")

    def reasons(self, rel: Relationship) -> list[dict[str, Any]]:
        return [r for r in loads(rel.props.get("reasons"), []) or [] if isinstance(r, dict)]

    def links(self, c: _Cluster) -> list[Block]:
        headers = ["account", "account", "weight", "families", "strongest reason", "reasons"]
        rows = []
        for rel in c.links:
            reasons = sorted(self.reasons(rel), key=lambda r: -_num(r.get("weight")))
            rows.append([self.ids.ref(*rel.start), self.ids.ref(*rel.end), _fmt(_num(rel.props.get("weight"))),
                         _fmt(rel.props.get("families") or []), self.reason_text(reasons[0]) if reasons else "", str(len(reasons))])
        self.table("links", [*headers[:4], "reasons"], [
            [c.ref[1], *r[:4], "; ".join(self.reason_text(x) for x in self.reasons(rel))] for r, rel in zip(rows, c.links, strict=True)])
        blocks: list[Block] = [("h3", f"Links between members ({len(rows):,})")]
        if self.graph.left_out.get("LINKED over the cap"):
            blocks.append(("p", "Each member's strongest links are kept (the evidence_links_per_account and evidence_max_links settings); "
                                f"{self.graph.left_out['LINKED over the cap']:,} weaker links of the export are left out."))
        blocks += [("table", headers, rows[:TOP_LINKS]), *self.more(TOP_LINKS, len(rows), "links", "links")]
        if rows:
            blocks.append(("p", f"The appendix names the source rows behind the {min(APPENDIX_LINKS, len(rows))} strongest links."))
        return blocks

    def neighbours(self, c: _Cluster) -> list[Block]:
        rels = [r for r in self.graph.relationships if r.type == Rel.SHARES_INFRASTRUCTURE and c.ref in (r.start, r.end)]
        if not rels:
            return []
        def strongest(rel: Relationship) -> tuple[bool, float, str]:
            other = rel.end if rel.start == c.ref else rel.start
            return (self.props(other).get("flagged") is not True, -_num(rel.props.get("weight")), other[1])

        rows = []
        for rel in sorted(rels, key=strongest):
            other = rel.end if rel.start == c.ref else rel.start
            p = self.props(other)
            rows.append([self.ids.text(other[1]), _fmt(_num(p.get("score"))), _fmt(p.get("size")),
                         self.ids.text(_fmt(p.get("suggested_operator") or p.get("attributed_operator") or "")),
                         _fmt(_num(rel.props.get("weight"))),
                         self.shared_values(rel.props.get("values")), _fmt(rel.props.get("families") or [])])
        headers = ["other cluster", "score", "size", "operator", "weight", "shared values", "families"]
        self.table("shares_infrastructure", headers, [[c.ref[1], *r] for r in rows])
        return [("h3", f"Other clusters sharing infrastructure ({len(rows):,})"),
                ("p", "Flagged clusters first, then by the strongest provider evidence between a member of each."),
                ("table", headers, rows[:TOP_NEIGHBOURS]),
                *self.more(TOP_NEIGHBOURS, len(rows), "shares_infrastructure", "clusters sharing infrastructure")]

    def shared_values(self, raw: Any, most: int = 5) -> str:
        """Detection's JSON list of shared values ({label, key, accounts}) as readable text,
        the most shared first, identifiers through the redactor."""
        values = [v for v in loads(raw, []) or [] if isinstance(v, dict)]
        shown = [f"{v.get('label', '?')} {self.ids.ref(str(v.get('label') or ''), str(v.get('key') or ''))}"
                 f" ({_fmt(v.get('accounts'))} accounts)" for v in values[:most]]
        return "; ".join(shown) + (f"; and {len(values) - most:,} more" if len(values) > most else "")

    def hubs(self, c: _Cluster) -> list[Block]:
        rows = []
        for rel in self.graph.relationships:
            if rel.start == c.ref and rel.type == HAS_HUB:
                p = self.props(rel.end)
                why = loads(p.get("why"), {})
                rows.append([rel.end[1], _fmt(p.get("hubs")), _fmt(rel.props.get("members")), _fmt(p.get("accounts_max")),
                             ", ".join(f"{k} ({v})" for k, v in why.items()) if isinstance(why, dict) else ""])
        if not rows:
            return []
        return [("h3", "Hubs left out"),
                ("p", "Values used by more accounts than the degree cap (a carrier-NAT address, a webmail domain) are no "
                      "evidence of a link: they are counted here, not shown."),
                ("table", ["kind", "hub values", "members using them", "largest (accounts)", "why"], rows)]

    def audit(self, c: _Cluster) -> list[Block]:
        sub = self.store.neighbours([c.ref], [Rel.ABOUT], limit=10**9)
        events = sorted((n for n in sub.nodes if n.label == Label.AUDIT_EVENT), key=lambda n: (str(n.props.get("at", "")), n.key))
        notes = sorted((n for n in sub.nodes if n.label == Label.NOTE), key=lambda n: (str(n.props.get("at", "")), n.key))
        headers = ["at", "who", "action", "before", "after"]
        rows = [[_fmt(e.props.get("at")), _fmt(e.props.get("who")), _fmt(e.props.get("action")),
                 self.ids.text(_fmt(e.props.get("before"))), self.ids.text(_fmt(e.props.get("after")))] for e in events]
        self.table("audit", headers, [[c.ref[1], *r] for r in rows])
        blocks: list[Block] = [("h3", f"Audit trail ({len(events)} events)")]
        recent = rows[-TOP_AUDIT:]
        blocks.append(("table", headers, recent) if rows else ("p", "No recorded decisions."))
        if len(rows) > TOP_AUDIT:
            blocks.append(("p", f"The {TOP_AUDIT} latest of {len(rows):,} events are listed; audit.csv holds them all."))
        note_rows = [[_fmt(n.props.get("at")), _fmt(n.props.get("who")), self.ids.text(_fmt(n.props.get("text")))] for n in notes]
        self.table("notes", ["at", "who", "text"], [[c.ref[1], *r] for r in note_rows])
        if notes:
            blocks.append(("h3", f"Notes ({len(notes)})"))
            blocks.append(("ul", [f"{r[0]} {r[1]}: {r[2]}" for r in note_rows[-TOP_NOTES:]]))
            if len(notes) > TOP_NOTES:
                blocks.append(("p", f"The {TOP_NOTES} latest of {len(notes):,} notes are listed; notes.csv holds them all."))
        return blocks

    # ---- the appendix ----------------------------------------------------------------------

    def sources(self, c: _Cluster) -> list[Block]:
        shown = c.links[:APPENDIX_LINKS]
        if not shown:
            return []
        plan: list[tuple[Relationship, list[tuple[dict[str, Any], list[Need]]]]] = []
        all_needs: list[Need] = []
        for rel in shown:
            entries = []
            for reason in self.reasons(rel):
                entity = reason.get("entity") or {}
                entity = entity if isinstance(entity, dict) else {}
                needs = _needs_of(str(entity.get("label") or ""), str(entity.get("key") or ""), [rel.start[1], rel.end[1]])
                entries.append((reason, needs))
                all_needs.extend(needs)
            plan.append((rel, entries))
        found = find_source_rows(self.workspace, all_needs)
        blocks: list[Block] = [("h3", f"Cluster {self.ids.text(c.ref[1])}: the {len(shown)} strongest links")]
        for rel, entries in plan:
            blocks.append(("h4", f"{self.ids.ref(*rel.start)} — {self.ids.ref(*rel.end)}: weight {_fmt(_num(rel.props.get('weight')))}"
                                 f" ({_fmt(rel.props.get('families') or [])})"))
            items: list[Any] = []
            for reason, needs in entries:
                rows = []
                for need in needs:
                    entry = found.get(need, SourceSet())
                    for row in entry.rows:
                        when = f", {row.time}" if row.time else ""
                        rows.append(f"{row.file} row {row.row} ({row.table}{when}; account {self.ids.ref(Label.ACCOUNT.value, row.account_id)})")
                    if entry.total > len(entry.rows):
                        rows.append(f"{entry.total - len(entry.rows)} further {need[0]} rows of account "
                                    f"{self.ids.ref(Label.ACCOUNT.value, need[2])}")
                items.append((self.reason_text(reason), rows or ["no staged source rows found"]))
            blocks.append(("ul", items or ["no reasons recorded"]))
        return blocks

    # ---- the whole ---------------------------------------------------------------------------

    def build(self) -> list[Block]:
        if self.ids.redactor:
            self.ids.redactor.learn_graph(self.graph)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        kind = "one hop of everything around the clusters (--full)" if self.graph.full else (
            "the evidence graph: members and the values two or more of them share")
        blocks: list[Block] = [
            ("h1", "Sybilscope evidence report"),
            ("p", f"Generated {now} from the {self.store.name} store. Clusters: "
                  f"{', '.join(self.ids.text(c) for c in self.graph.cluster_ids)}. The graph files beside this report hold {kind}."
                  + (f" Folded: {self.folded.fold_note()}." if self.folded is not None else "")
                  + (" Redacted: identifiers are salted hashes; e-mail and billing data are left out; free text is "
                     "scrubbed of identifiers, e-mail addresses, phone and card numbers, IP addresses and URLs." if self.ids.redactor else "")),
            ("p", "Every file exported with this report is listed with its SHA-256 digest in MANIFEST.sha256: the full "
                  "tables (" + ", ".join(f"{t}.csv" for t in TABLES) + "), the evidence graph "
                  + ("as node-link JSON (graph.json) and " if self.with_json else "")
                  + "as an interactive page (graph.html). "
                  + ("" if self.with_json else
                     f"Node-link JSON of the graph (about {self.json_size}) would take this report over its size budget; "
                     "'sybilscope export graph --format json' writes it. ")
                  + "GraphML, GEXF and a STIX 2.1 bundle of the "
                    "same graph are 'sybilscope export graph --format graphml|gexf|stix'."),
        ]
        clusters = [_index_cluster(self.graph, (Label.CLUSTER.value, cid), self.nodes)
                    for cid in self.graph.cluster_ids if (Label.CLUSTER.value, cid) in self.nodes]
        for c in clusters:
            blocks.append(("h2", f"Cluster {self.ids.text(c.ref[1])}"))
            blocks.append(self.headline(c))
            blocks.append(self.glance(c))
            blocks += self.indicators(c)
            blocks += self.stability(c)
            blocks += self.attribution(c)
            blocks += self.picture(c)
            blocks += self.strongest(c)
            blocks += self.members(c)
            blocks += self.values(c)
            blocks += self.templates(c)
            blocks += self.links(c)
            blocks += self.neighbours(c)
            blocks += self.hubs(c)
            blocks += self.audit(c)
        appendix = [b for c in clusters for b in self.sources(c)]
        if appendix:
            blocks.append(("h2", "Appendix: the source rows behind the strongest links"))
            blocks += appendix
        for name in TABLES:
            self.tables.setdefault(name, (["cluster"], []))
        return blocks


def build_report(
    store: GraphStore, graph: EvidenceGraph, workspace: Path | None, redactor: Redactor | None = None
) -> list[Block]:
    """The report's content blocks for every cluster of ``graph`` (from the raw, unredacted
    graph: source rows are looked up by raw ids, identifiers hashed only when rendered)."""
    return _Report(store, graph, workspace, redactor).build()


# ---- rendering -------------------------------------------------------------------------------


def _md(text: Any) -> str:
    """One piece of report text as Markdown: bounded, visible escapes, metacharacters escaped."""
    return md_text(excerpt(str(text), REPORT_TEXT_CHARS))


def _html(text: Any) -> str:
    """One piece of report text as HTML: bounded, visible escapes, HTML-escaped."""
    return html.escape(display_text(excerpt(str(text), REPORT_TEXT_CHARS)))


def to_markdown(blocks: Sequence[Block]) -> str:
    """The report as Markdown; a picture is a reference to its SVG file beside report.md."""
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "svg":
            out += [f"![{_md(block[3])}]({block[2]})", "", _md(block[3]), ""]
        elif kind.startswith("h"):
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
        "li li{font-size:90%;color:#333}figure{margin:1em 0}figcaption{font-size:90%;color:#444;max-width:640px}"
        "h2{border-top:2px solid #888;padding-top:.6em;margin-top:2em}h4{margin:.8em 0 .2em}</style>",
        "</head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind == "svg":  # drawn by graph/export/picture.py: every text in it is escaped there
            out.append(f"<figure>{block[1]}<figcaption>{e(block[3])}</figcaption></figure>")
        elif kind.startswith("h") or kind == "p":
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


def write_csv(path: Path, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    """One full table as CSV, its cells under the CSV rule (graph/export/text.py)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([fit(csv_text(str(h)), CSV_CELL_CHARS) for h in headers])
        for row in rows:
            writer.writerow([fit(csv_text(_fmt(v) if not isinstance(v, str) else v), CSV_CELL_CHARS) for v in row])
    return path


def write_report(
    store: GraphStore, graph: EvidenceGraph, workspace: Path | None, directory: Path, redactor: Redactor | None = None,
    *, json_size: str | None = None,
) -> list[Path]:
    """``report.md``, ``report.html``, the pictures (``evidence-N.svg``, which report.md shows)
    and the full tables (``TABLES``, CSV) in ``directory``. ``json_size``: graph.json is left
    out of the report (it would take the report over its budget) and would be that large."""
    directory.mkdir(parents=True, exist_ok=True)
    report = _Report(store, graph, workspace, redactor)
    report.with_json, report.json_size = json_size is None, json_size or ""
    blocks = report.build()
    written = []
    md = directory / "report.md"
    md.write_bytes(to_markdown(blocks).encode("utf-8"))
    page = directory / "report.html"
    page.write_bytes(to_html(blocks).encode("utf-8"))
    written += [md, page]
    for block in blocks:
        if block[0] == "svg":
            svg = directory / block[2]
            svg.write_bytes(block[1].encode("utf-8"))
            written.append(svg)
    for name in TABLES:
        headers, rows = report.tables[name]
        written.append(write_csv(directory / f"{name}.csv", headers, rows))
    return written
