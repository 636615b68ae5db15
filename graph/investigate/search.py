"""Search and pivot: what an investigator's string names (an account, IP, network, payment id,
card BIN, device, client fingerprint, e-mail domain or hash, organisation, template id or
prompt text), and every account behind it, however busy.

Input ids are free-form strings (the bundle contract fixes no id format), so the kind of a
string is not read from its shape alone: its shape orders the plausible kinds
(``candidate_kinds``), then each is looked up, in the graph first and in the staged rows
after, and the first that finds something wins (``resolve``). A value used by one account
only may be in staging and not in the graph (a withheld prompt's hash is a template only when
two accounts share it), so a pivot the graph cannot answer is answered from staging through
DuckDB. The degree cap of the UI limits what is drawn, never what is found: a pivot reads
every relationship of the value, and the pages are cut afterwards.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from graph import staging
from graph.schema import (
    ACCOUNT_SOURCE,
    ENTITY_SOURCES,
    INFRASTRUCTURE_RELS,
    Label,
    Rel,
    StagedColumn,
)
from graph.store import GraphStore, Node, NodeKey

# A pivot wants every relationship of the value, and the store API takes a limit.
ALL = 10**9
# Prompt text matching more templates than this names a topic, not a template.
PROMPT_TEMPLATE_LIMIT = 500


@dataclass(frozen=True)
class Kind:
    """One kind of value an investigator can pivot from."""

    name: str
    title: str
    label: Label | None
    """The node label whose key the value is; None when the value is a property (a BIN) or text."""
    rel: Rel | None
    """The relationship from an account to the value's node(s)."""
    staged: tuple[StagedColumn, ...]
    """Where an account's use of the value is staged (the primary source first)."""


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("account", "account", Label.ACCOUNT, None, (ACCOUNT_SOURCE,)),
        Kind("ip", "IP", Label.IP, Rel.USED_IP, ENTITY_SOURCES[Label.IP]),
        Kind("network", "network", Label.NETWORK, None, ENTITY_SOURCES[Label.NETWORK]),
        Kind("payment", "payment id", Label.PAYMENT_METHOD, Rel.PAID_WITH, ENTITY_SOURCES[Label.PAYMENT_METHOD]),
        Kind("card_bin", "card BIN", None, Rel.PAID_WITH, (StagedColumn("payments", "card_bin"),)),
        Kind("device", "device", Label.DEVICE, Rel.USED_DEVICE, ENTITY_SOURCES[Label.DEVICE]),
        Kind("fingerprint", "client fingerprint", Label.CLIENT_FINGERPRINT, Rel.USED_CLIENT, ENTITY_SOURCES[Label.CLIENT_FINGERPRINT]),
        Kind("email_domain", "e-mail domain", Label.EMAIL_DOMAIN, Rel.HAS_EMAIL_DOMAIN, ENTITY_SOURCES[Label.EMAIL_DOMAIN]),
        Kind("email_hash", "e-mail hash", None, None, (StagedColumn("accounts", "email_hash"),)),
        Kind("phone_hash", "phone hash", None, None, (StagedColumn("accounts", "phone_hash"),)),
        Kind("org", "organisation", None, None, (StagedColumn("accounts", "org_id"),)),
        Kind("template", "template id", Label.PROMPT_TEMPLATE, Rel.SENT_TEMPLATE, ENTITY_SOURCES[Label.PROMPT_TEMPLATE]),
        Kind("prompt", "prompt text", None, Rel.SENT_TEMPLATE, ()),
    )
}
SEARCH_KINDS = ("auto", *KINDS)
KIND_OF_LABEL: dict[str, str] = {k.label.value: k.name for k in KINDS.values() if k.label is not None}

# Ids are tried in this order when the shape says nothing: accounts are what investigators
# paste most, then the instruments and clients that tie accounts together.
_ID_ORDER = ("account", "payment", "device", "fingerprint", "template", "email_hash", "phone_hash", "org", "email_domain")
_HEX64 = re.compile(r"^[0-9a-f]{64}$", re.IGNORECASE)
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$", re.IGNORECASE)


# ---- what a string is ---------------------------------------------------------------------------


def normalise(kind: str, text: str) -> str:
    """The value as the store keys it: an IP compressed, a network as its CIDR, a domain (or
    an address's domain) lower-case; other values stripped. ValueError when ``text`` cannot be
    a value of ``kind`` (a malformed IP)."""
    t = text.strip()
    if kind == "ip":
        return str(ipaddress.ip_address(t))
    if kind == "network":
        return str(ipaddress.ip_network(t, strict=False))
    if kind == "email_domain":
        return t.rsplit("@", 1)[-1].lower()
    return t


def candidate_kinds(text: str) -> list[str]:
    """The kinds ``text`` may be, the likeliest first: an IP or a CIDR is nothing else; text
    with spaces is prompt text; an address names its domain; a bare id may be any id, its
    shape only moving some kinds forward (6-8 digits: a card BIN; a dotted name: a domain;
    64 hex digits: an e-mail hash). A single word may also be a word of a prompt, tried last."""
    t = text.strip()
    if not t:
        return []
    try:
        ipaddress.ip_address(t)
        return ["ip"]
    except ValueError:
        pass
    if "/" in t:
        try:
            ipaddress.ip_network(t, strict=False)
            return ["network"]
        except ValueError:
            pass
    if any(c.isspace() for c in t):
        return ["prompt"]
    if "@" in t and _DOMAIN.match(t.rsplit("@", 1)[-1]):
        return ["email_domain"]
    front: list[str] = []
    if t.isdigit() and 6 <= len(t) <= 8:
        front.append("card_bin")
    if _DOMAIN.match(t):
        front.append("email_domain")
    if _HEX64.match(t):
        front += ["email_hash", "phone_hash"]
    return [*front, *(k for k in _ID_ORDER if k not in front), "prompt"]


def guess_kind(text: str) -> str:
    """The likeliest kind of ``text`` by its shape alone (``resolve`` also looks it up)."""
    kinds = candidate_kinds(text)
    return kinds[0] if kinds else "account"


@dataclass
class Resolved:
    """What a search string was taken as, and how that was decided."""

    text: str
    kind: str | None
    """The kind that found something; None when nothing did."""
    value: str = ""
    guessed: bool = True
    """False when the investigator named the kind."""
    source: str = ""
    """``graph`` or ``staging``: where the value was found."""
    tried: list[str] = field(default_factory=list)
    also: list[str] = field(default_factory=list)
    """Other kinds the same string names in the graph (an id that is an account and a device)."""
    invalid: list[str] = field(default_factory=list)
    """Kinds the string cannot be a value of (a malformed IP asked for as an IP)."""

    @property
    def title(self) -> str:
        return KINDS[self.kind].title if self.kind else ""

    def explain(self) -> str:
        """One sentence on how the string was taken, for the page."""
        tried = ", ".join(KINDS[k].title for k in self.tried)
        if self.kind is None and self.invalid and self.invalid == self.tried:
            return f"{self.text.strip()!r} is not a valid {', '.join(KINDS[k].title for k in self.invalid)}."
        if self.kind is None:
            return f"Nothing found for {self.text.strip()!r}: looked it up as {tried or 'nothing'} in the graph and the staged rows."
        how = "guessed from the value" if self.guessed else "as asked"
        where = "in the graph" if self.source == "graph" else "only in the staged rows (not in the graph)"
        text = f"Searched {self.text.strip()!r} as {self.title} ({how}), found {where}."
        skipped = [KINDS[k].title for k in self.tried if k != self.kind]
        if self.guessed and skipped:
            text += f" Tried first: {', '.join(skipped)}."
        if self.also:
            text += f" The same string is also a {', '.join(KINDS[k].title for k in self.also)}."
        return text


def _in_graph(store: GraphStore, workspace: Path, kind: str, value: str) -> bool:
    spec = KINDS[kind]
    if spec.label is not None:
        return store.get_node(spec.label, value) is not None
    if kind == "card_bin":
        return bool(store.find_nodes(Label.PAYMENT_METHOD, {"card_bin": value}, limit=1))
    if kind in ("email_hash", "phone_hash"):
        return bool(store.find_nodes(Label.ACCOUNT, {kind: value}, limit=1))
    if kind == "org":
        return bool(store.find_nodes(Label.ACCOUNT, {"org_id": value}, limit=1))
    if kind == "prompt":
        return bool(matching_templates(workspace, value, limit=1))
    return False


def _in_staging(tables: dict[str, _StagedTable], workspace: Path, kind: str, value: str) -> bool:
    """Whether a staged row holds ``value`` as a ``kind``; ``tables`` keeps each staged table
    open across the kinds one search tries (reading a table's file footers is the cost)."""
    for table, column in KINDS[kind].staged:
        if table not in tables:
            tables[table] = _StagedTable(workspace, table)
        src = tables[table]
        if src.has(column) and src.con.execute(
            f'SELECT 1 FROM {src.relation} WHERE "{column}" = $v LIMIT 1', {"v": value}  # noqa: S608 - fixed names
        ).fetchone():
            return True
    return False


def resolve(store: GraphStore, workspace: Path, text: str, kind: str = "auto") -> Resolved:
    """What ``text`` names: with ``kind`` given, only that kind is looked up; with ``auto``
    the candidate kinds are tried in order, in the graph first (key lookups), then in the
    staged rows, and the first that finds something wins."""
    if kind != "auto" and kind not in KINDS:
        raise ValueError(f"unknown search kind {kind!r}; use one of {', '.join(SEARCH_KINDS)}")
    kinds = candidate_kinds(text) if kind == "auto" else ([kind] if text.strip() else [])
    out = Resolved(text=text, kind=None, guessed=kind == "auto", tried=kinds)
    values: dict[str, str] = {}
    for k in kinds:
        try:
            values[k] = normalise(k, text)
        except ValueError:
            out.invalid.append(k)
    for i, (k, v) in enumerate(values.items()):
        if _in_graph(store, workspace, k, v):
            out.kind, out.value, out.source = k, v, "graph"
            out.tried = kinds[: kinds.index(k) + 1]
            # Other node kinds of the same string are cheap to check and worth a mention.
            out.also = [o for o, ov in list(values.items())[i + 1 :] if KINDS[o].label is not None and _in_graph(store, workspace, o, ov)]
            return out
    tables: dict[str, _StagedTable] = {}
    try:
        for k, v in values.items():
            if _in_staging(tables, workspace, k, v):
                out.kind, out.value, out.source = k, v, "staging"
                return out
    finally:
        for src in tables.values():
            src.con.close()
    return out


# ---- the accounts behind a value ----------------------------------------------------------------


@dataclass
class Pivot:
    """The accounts behind one value, busiest first, with what each did with it."""

    kind: str
    value: str
    source: str
    """``graph`` or ``staging``: which store answered."""
    rows: list[dict[str, Any]]
    """{account_id, exchanges, uses, first_seen, last_seen}: ``exchanges`` the requests made
    with the value (None where the relationship counts none: cards, devices, domains), ``uses``
    how many of the matched values the account used (cards of a BIN, templates of a prompt)."""
    matched: list[dict[str, Any]] = field(default_factory=list)
    """The values a BIN, a prompt or a network stands for (cards, templates, IPs)."""

    @property
    def total(self) -> int:
        return len(self.rows)

    def page(self, number: int, size: int) -> list[dict[str, Any]]:
        """Rows of page ``number`` (1-based) of ``size`` rows; past the end, the last page."""
        pages = max(1, -(-self.total // size))
        number = min(max(1, number), pages)
        return self.rows[(number - 1) * size : number * size]

    def span(self) -> tuple[str, str]:
        """First and last use over all accounts."""
        firsts = [r["first_seen"] for r in self.rows if r.get("first_seen")]
        lasts = [r["last_seen"] for r in self.rows if r.get("last_seen")]
        return (min(firsts) if firsts else "", max(lasts) if lasts else "")


class _Agg:
    """One account's use of the value(s), summed over relationships or staged rows."""

    __slots__ = ("exchanges", "first", "last", "uses")

    def __init__(self) -> None:
        self.exchanges: int | None = None
        self.uses = 0
        self.first = ""
        self.last = ""

    def add(self, count: Any, first: Any, last: Any, uses: int = 1) -> None:
        if count is not None:
            self.exchanges = (self.exchanges or 0) + int(count)
        self.uses += uses
        for t in (first, last):
            if t:
                text = _iso(t)
                self.first = min(self.first, text) if self.first else text
                self.last = max(self.last, text) if self.last else text


def _iso(t: Any) -> str:
    """A time as the schema's ISO text (``2025-04-22T10:00:00Z``)."""
    if isinstance(t, datetime):
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(t)


def _rows(aggs: dict[str, _Agg]) -> list[dict[str, Any]]:
    ranked = sorted(aggs.items(), key=lambda kv: (-(kv[1].exchanges or 0), -kv[1].uses, kv[0]))
    return [
        {"account_id": a, "exchanges": g.exchanges, "uses": g.uses, "first_seen": g.first, "last_seen": g.last}
        for a, g in ranked
    ]


def _graph_users(store: GraphStore, refs: Sequence[NodeKey], rel: str) -> dict[str, _Agg]:
    """Every account joined to ``refs`` by ``rel``, with no degree cap: the busy accounts are
    the ones an investigator is after."""
    aggs: dict[str, _Agg] = {}
    if not refs:
        return aggs
    wanted = set(refs)
    sub = store.neighbours(list(refs), [rel], limit=ALL, degree_cap=None)
    for r in sub.relationships:
        if r.start[0] == Label.ACCOUNT and r.end in wanted:
            aggs.setdefault(r.start[1], _Agg()).add(r.props.get("count"), r.props.get("first_seen"), r.props.get("last_seen"))
    return aggs


def _account_rows(nodes: Iterable[Node]) -> dict[str, _Agg]:
    aggs: dict[str, _Agg] = {}
    for n in nodes:
        aggs.setdefault(n.key, _Agg()).add(n.props.get("exchanges"), n.props.get("created_at"), n.props.get("last_seen"))
    return aggs


def _graph_pivot(store: GraphStore, workspace: Path, kind: str, value: str) -> tuple[dict[str, _Agg], list[dict[str, Any]]]:
    spec = KINDS[kind]
    if kind == "account":
        node = store.get_node(Label.ACCOUNT, value)
        return (_account_rows([node]) if node else {}), []
    if kind in ("email_hash", "phone_hash"):
        return _account_rows(store.find_nodes(Label.ACCOUNT, {kind: value})), []
    if kind == "org":
        return _account_rows(store.find_nodes(Label.ACCOUNT, {"org_id": value})), []
    if kind == "network":
        ips = store.neighbours([(Label.NETWORK.value, value)], [Rel.IN_NETWORK], limit=ALL, degree_cap=None)
        refs = [n.ref for n in ips.nodes if n.label == Label.IP]
        aggs = _graph_users(store, refs, Rel.USED_IP)
        return aggs, [{"label": Label.IP.value, "value": r[1]} for r in refs]
    if kind == "card_bin":
        cards = store.find_nodes(Label.PAYMENT_METHOD, {"card_bin": value})
        aggs = _graph_users(store, [c.ref for c in cards], Rel.PAID_WITH)
        return aggs, [{"label": c.label, "value": c.key, "card_last4": c.props.get("card_last4"),
                       "billing_country": c.props.get("billing_country")} for c in cards]
    if kind == "prompt":
        templates = matching_templates(workspace, value)
        refs = [(Label.PROMPT_TEMPLATE.value, t["template_id"]) for t in templates]
        aggs = _graph_users(store, refs, Rel.SENT_TEMPLATE)
        return aggs, [{"label": Label.PROMPT_TEMPLATE.value, "value": t["template_id"], "capability": t["capability"],
                       "template": t["template"]} for t in templates]
    assert spec.label is not None and spec.rel is not None
    return _graph_users(store, [(spec.label.value, value)], spec.rel), []


# The count, first and last use of a staged row, per table.
_STAGED_AGG: dict[str, tuple[str, str, str]] = {
    "exchanges": ("count(DISTINCT exchange_id)", "min(ts)", "max(ts)"),
    "payments": ("NULL", "min(first_seen)", "max(first_seen)"),
    "devices": ("NULL", "min(first_seen)", "max(coalesce(last_seen, first_seen))"),
    "accounts": ("NULL", "min(created_at)", "max(created_at)"),
}


class _StagedTable:
    """One staged table, every bundle's files read as one relation, with its columns."""

    def __init__(self, workspace: Path, table: str) -> None:
        self.files = staging.staged_files(workspace, table)
        self.con = staging.connect(threads=staging.INTERACTIVE_THREADS)
        self.relation = f"read_parquet({staging.sql_list(self.files)}, union_by_name = true)" if self.files else ""
        self.columns: set[str] = set()
        if self.files:
            self.columns = {r[0] for r in self.con.execute(f"DESCRIBE SELECT * FROM {self.relation}").fetchall()}  # noqa: S608 - our file list

    def has(self, *columns: str) -> bool:
        return bool(self.files) and all(c in self.columns for c in columns)

    def __enter__(self) -> _StagedTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()


def staged_users(workspace: Path, sources: Sequence[StagedColumn], values: Sequence[str]) -> dict[str, _Agg]:
    """Every account whose staged rows hold one of ``values`` in a source column, aggregated
    in DuckDB (so only one row per account comes back)."""
    aggs: dict[str, _Agg] = {}
    if not values:
        return aggs
    for table, column in sources:
        count, first, last = _STAGED_AGG[table]
        with _StagedTable(workspace, table) as src:
            needed = {"account_id", column} | ({"exchange_id", "ts"} if table == "exchanges" else set())
            if not src.has(*needed):
                continue
            times = [c for c in ("ts", "first_seen", "last_seen", "created_at") if c in src.columns]
            if not times:
                first = last = "NULL"
            # Column and table names come from the schema's registry, never from input.
            sql = (f'SELECT account_id, {count}, {first}, {last}, count(DISTINCT "{column}") FROM {src.relation} '  # noqa: S608
                   f'WHERE "{column}" = ANY($v) GROUP BY account_id')
            for account, n, f, last_use, distinct in src.con.execute(sql, {"v": list(values)}).fetchall():
                agg = aggs.setdefault(str(account), _Agg())
                # A value seen in two sources (an IP in exchanges and at sign-up) is one use.
                agg.add(n, f, last_use, uses=max(0, int(distinct) - agg.uses))
    return aggs


def staged_uses(workspace: Path, source: StagedColumn, values: Sequence[str],
                accounts: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """value -> account -> that account's use of it (``count`` where the table counts uses,
    ``first_seen``, ``last_seen`` as ISO text), over the staged rows of ``accounts`` that hold
    one of ``values`` in ``source``: what a SENT_TEMPLATE relationship would say, for the uses
    the graph does not hold (a hub template's), aggregated in DuckDB per (value, account); the
    two lists are joined as tables (a list compared row by row took seconds for 2,000 members)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    table, column = source
    if not values or not accounts:
        return out
    count, first, last = _STAGED_AGG[table]
    with _StagedTable(workspace, table) as src:
        if not src.has("account_id", column) or (table == "exchanges" and not src.has("exchange_id", "ts")):
            return out
        if not any(c in src.columns for c in ("ts", "first_seen", "last_seen", "created_at")):
            first = last = "NULL"
        # Column and table names come from the schema's registry, never from input.
        sql = (f'SELECT CAST("{column}" AS VARCHAR), account_id, {count}, {first}, {last} FROM {src.relation} '  # noqa: S608
               f'WHERE "{column}" IN (SELECT unnest($v)) AND account_id IN (SELECT unnest($a)) GROUP BY 1, 2')
        for value, account, n, f, last_use in src.con.execute(sql, {"v": list(values), "a": list(accounts)}).fetchall():
            agg = _Agg()
            agg.add(n, f, last_use)
            use: dict[str, Any] = {"count": agg.exchanges} if agg.exchanges is not None else {}
            use.update({k: v for k, v in (("first_seen", agg.first), ("last_seen", agg.last)) if v})
            out.setdefault(str(value), {})[str(account)] = use
    return out


def _staged_pivot(workspace: Path, kind: str, value: str) -> tuple[dict[str, _Agg], list[dict[str, Any]]]:
    if kind == "prompt":
        templates = matching_templates(workspace, value)
        ids = [t["template_id"] for t in templates]
        return staged_users(workspace, ENTITY_SOURCES[Label.PROMPT_TEMPLATE], ids), [
            {"label": Label.PROMPT_TEMPLATE.value, "value": t["template_id"], "capability": t["capability"], "template": t["template"]}
            for t in templates
        ]
    if kind == "card_bin":
        return staged_users(workspace, KINDS[kind].staged, [value]), _staged_cards(workspace, value)
    return staged_users(workspace, KINDS[kind].staged, [value]), []


def _staged_cards(workspace: Path, card_bin: str) -> list[dict[str, Any]]:
    """The cards of a BIN in the staged payments (the latest row of each), as pivot matches."""
    with _StagedTable(workspace, "payments") as src:
        if not src.has("payment_id", "card_bin"):
            return []
        extra = [c for c in ("card_last4", "billing_country") if c in src.columns]
        picked = "".join(f', arg_max("{c}", _row) AS "{c}"' for c in extra)
        # Column names are fixed above, never from input.
        cur = src.con.execute(
            f'SELECT payment_id{picked} FROM {src.relation} WHERE card_bin = $v GROUP BY 1 ORDER BY 1',  # noqa: S608
            {"v": card_bin},
        )
        names = [d[0] for d in cur.description]
        return [{"label": Label.PAYMENT_METHOD.value, "value": str(r[0]), **dict(zip(names[1:], r[1:], strict=True))}
                for r in cur.fetchall()]


# Kinds that stand for several values, of which the graph holds only those two accounts share
# (a BIN's cards, a prompt's templates): staging, which holds every use, answers them whole.
_STAGING_WHOLE = ("card_bin", "prompt")
USES_STAGED = "uses_staged"
"""A template node's property: its SENT_TEMPLATE uses are not (all) in the graph but in staging
(a hub template, more senders than the setting ``graph_template_hub_senders``; loaders/graph_write.py)."""


def uses_staged(store: GraphStore, kind: str, value: str) -> bool:
    """Whether the graph's node of a ``template`` value says its senders are in staging only."""
    if kind != "template":
        return False
    node = store.get_node(Label.PROMPT_TEMPLATE, value)
    return node is not None and node.props.get(USES_STAGED) is True


def accounts_behind(store: GraphStore, workspace: Path, kind: str, value: str) -> Pivot:
    """Every account behind one value of ``kind`` (see ``Pivot``), from the graph when it
    holds the value, else from the staged rows; a BIN or prompt text from the staged rows
    when they have it (the graph holds only the cards and templates that link accounts), and
    a hub template (``uses_staged``: its node is in the graph, its uses are not) from them too."""
    if kind not in KINDS:
        raise ValueError(f"unknown search kind {kind!r}; use one of {', '.join(KINDS)}")
    aggs, matched = _graph_pivot(store, workspace, kind, value)
    source = "graph"
    if not aggs or kind in _STAGING_WHOLE or uses_staged(store, kind, value):
        staged, staged_matched = _staged_pivot(workspace, kind, value)
        if staged and len(staged) >= len(aggs):
            aggs, matched, source = staged, staged_matched or matched, "staging"
    return Pivot(kind=kind, value=value, source=source if aggs else "", rows=_rows(aggs), matched=matched)


def clusters_of(store: GraphStore, accounts: Sequence[str]) -> dict[str, str]:
    """account_id -> the cluster it is a member of (for the accounts that are in one)."""
    if not accounts:
        return {}
    sub = store.neighbours([(Label.ACCOUNT.value, a) for a in accounts], [Rel.MEMBER_OF], limit=ALL, degree_cap=None)
    return {r.start[1]: r.end[1] for r in sub.relationships if r.start[0] == Label.ACCOUNT}


def values_of_account(store: GraphStore, account_id: str, workspace: Path | None = None) -> list[dict[str, Any]]:
    """The other way round: every value one account uses, with its own counts and how many
    accounts use each value overall (the smallest first: a rare value is the strong lead).
    The graph holds the values that link accounts (``source`` ``graph``); with ``workspace``
    the values this account alone used are added from the staged rows (``source`` ``staging``)."""
    me: NodeKey = (Label.ACCOUNT.value, account_id)
    types = [r.value for r in INFRASTRUCTURE_RELS]
    sub = store.neighbours([me], types, limit=ALL, degree_cap=None)
    uses = [(r.end, r) for r in sub.relationships if r.start == me]
    degrees = store.degrees([ref for ref, _ in uses], types) if uses else {}
    # a hub template keeps its sender count on its node (its uses may be partly in the graph)
    degrees.update({n.ref: int(n.props["accounts"]) for n in sub.nodes
                    if n.props.get(USES_STAGED) is True and isinstance(n.props.get("accounts"), int)})
    rows = [
        {"kind": KIND_OF_LABEL.get(ref[0], ""), "label": ref[0], "value": ref[1], "accounts_using": degrees.get(ref, 0),
         "exchanges": r.props.get("count"), "first_seen": r.props.get("first_seen") or "", "last_seen": r.props.get("last_seen") or "",
         "source": "graph"}
        for ref, r in uses
    ]
    if workspace is not None:
        rows += staged_values_of_account(workspace, account_id, {(str(r["label"]), str(r["value"])) for r in rows})
    rows.sort(key=lambda r: (r["accounts_using"], r["label"], r["value"]))
    return rows


# The values an account page lists from staging: the node labels with a staged source (a
# network is reached through its IPs, as in the graph).
_VALUE_LABELS = (Label.IP, Label.PAYMENT_METHOD, Label.DEVICE, Label.CLIENT_FINGERPRINT, Label.EMAIL_DOMAIN,
                 Label.PROMPT_TEMPLATE)


def staged_values_of_account(workspace: Path, account_id: str, skip: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The values of ``account_id``'s staged rows that are not in ``skip`` (those the graph
    gave), with the account's own count and first/last use and the number of accounts whose
    staged rows hold each value: two DuckDB scans per staged table."""
    by_table: dict[str, list[tuple[Label, str]]] = {}
    for label in _VALUE_LABELS:
        for table, column in ENTITY_SOURCES[label]:
            by_table.setdefault(table, []).append((label, column))
    found: dict[tuple[str, str], _Agg] = {}
    users: dict[tuple[str, str], set[str]] = {}
    for table, wanted in by_table.items():
        count, first, last = _STAGED_AGG[table]
        with _StagedTable(workspace, table) as src:
            cols = [(label, c) for label, c in wanted if src.has("account_id", c)]
            if table == "exchanges" and not src.has("exchange_id", "ts"):
                cols = []
            if not cols:
                continue
            times = [c for c in ("ts", "first_seen", "last_seen", "created_at") if c in src.columns]
            if not times:
                first = last = "NULL"
            # the account's rows, once; then each column's values among them
            src.con.execute(f"CREATE TEMP TABLE mine AS SELECT * FROM {src.relation} WHERE account_id = $a",  # noqa: S608 - our file list
                            {"a": account_id})
            for label, column in cols:
                # Column and table names come from the schema's registry, never from input.
                mine = src.con.execute(
                    f'SELECT CAST("{column}" AS VARCHAR), {count}, {first}, {last} FROM mine '  # noqa: S608
                    f'WHERE "{column}" IS NOT NULL GROUP BY 1'
                ).fetchall()
                values = [str(v) for v, *_ in mine if (label.value, str(v)) not in skip]
                if not values:
                    continue
                for v, n, f, last_use in mine:
                    if (label.value, str(v)) not in skip:
                        found.setdefault((label.value, str(v)), _Agg()).add(n, f, last_use)
                for v, account in src.con.execute(
                    f'SELECT DISTINCT CAST("{column}" AS VARCHAR), account_id FROM {src.relation} '  # noqa: S608
                    f'WHERE CAST("{column}" AS VARCHAR) = ANY($v)', {"v": values}
                ).fetchall():
                    users.setdefault((label.value, str(v)), set()).add(str(account))
    return [
        {"kind": KIND_OF_LABEL.get(label, ""), "label": label, "value": value, "accounts_using": len(users.get((label, value), ())) or 1,
         "exchanges": agg.exchanges, "first_seen": agg.first, "last_seen": agg.last, "source": "staging"}
        for (label, value), agg in sorted(found.items())
    ]


# ---- prompt text ---------------------------------------------------------------------------------


def matching_templates(workspace: Path, text: str, limit: int = PROMPT_TEMPLATE_LIMIT) -> list[dict[str, Any]]:
    """Prompt templates whose normalised text or example contains ``text`` (case-insensitive),
    from templates.parquet (the graph holds template ids, not their text)."""
    path = staging.templates_path(workspace)
    if not text.strip() or not path.exists():
        return []
    with staging.connect(threads=staging.INTERACTIVE_THREADS) as con:
        rows = con.execute(
            "SELECT template_id, template, capability FROM read_parquet($p) "
            "WHERE template ILIKE $q OR example ILIKE $q ORDER BY template_id LIMIT $n",
            {"p": str(path), "q": f"%{text.strip()}%", "n": limit},
        ).fetchall()
    return [{"template_id": str(t), "template": str(tpl or "")[:200], "capability": cap} for t, tpl, cap in rows]


# ---- links ------------------------------------------------------------------------------------------

PIVOT_PARAM = "pivot"
SEARCH_PAGE = "search"
# Characters a pivot link keeps as they are (so a link reads as the value it names).
_LINK_SAFE = ":/@._-~"


def pivot_link(kind: str, value: str) -> str:
    """The search page's address for the pivot from one value, relative to the app's root
    (``search?pivot=ip:203.0.113.7``); the search page reads it back with ``parse_pivot``."""
    return f"{SEARCH_PAGE}?{PIVOT_PARAM}={quote(f'{kind}:{value}', safe=_LINK_SAFE)}"


def parse_pivot(text: str | None) -> tuple[str, str] | None:
    """(kind, value) from a ``pivot`` query parameter (``kind:value``; the value may itself
    hold colons, as an IPv6 address does); None when it names no known kind."""
    if not text or ":" not in text:
        return None
    kind, _, value = text.partition(":")
    if kind not in KINDS or not value.strip():
        return None
    return kind, value


def entity_pivot(label: str, key: str) -> tuple[str, str] | None:
    """The pivot a detector's entity (``label``, ``key``) leads to: its node's kind, or for the
    detector's synthetic entities (a BIN + billing pattern, an e-mail shape on a domain) the
    real value inside them (a phone's hash, a creation burst's domain); None for entities no
    pivot answers (a family of near-duplicate templates)."""
    if label in KIND_OF_LABEL:
        return KIND_OF_LABEL[label], key
    if label == "BillingPattern" and key.split("|", 1)[0]:
        return "card_bin", key.split("|", 1)[0]
    if label == "EmailPattern" and "/" in key:
        return "email_domain", key.split("/", 1)[0]
    if label == "CreationBurst" and "@" in key:
        return "email_domain", key.rsplit("@", 1)[0]
    if label == "Phone":
        return "phone_hash", key
    return None
