"""Writing the graph from the staging area: aggregates over every staged bundle, as MERGEs.

Every node and relationship property is recomputed in DuckDB from all staged rows (not added
to what the graph holds), so writing twice, writing after a killed run, or writing after a
second bundle all converge on the same graph. Exchanges are never nodes: accounts carry their
totals and the account-entity relationships carry counts and first/last times. An exchange id
staged by two bundles counts once (the earlier bundle's row). ``labels`` is never written.

The graph holds what links: a value (IP, network, ASN, card, device, client, e-mail domain,
prompt template) is written only when it ties two accounts or more, or an operator indicator
names it; a value one account used stays in staging, where search, evidence and detection read
it. Because the selection is recomputed over every staged bundle, the load that makes a value
shared writes it with all its users. A value that ties accounts only through a wider one is
kept with it: the IPs of a shared network or ASN (the graph reaches a network only through its
IPs), and the cards of a shared BIN + billing pattern.

A hub template, one sent by more accounts than ``template_hub_senders`` (setting
``graph_template_hub_senders``: an app's system prompt, a common one-liner), is written as its
node with ``accounts``, ``exchanges``, ``first_seen`` and ``last_seen`` over all its senders and
``uses_staged`` true, but without its SENT_TEMPLATE relationships, which stay in staging (they
were most of the template uses, and link nobody a hub summary would not already show). Every
template node carries those counts, ``uses_staged`` false when its uses are in the graph.
The choice is made per load over all staged bundles: a template that a later load pushes over
the threshold keeps the uses written while it was under (MERGE removes nothing; its node then
says ``uses_staged`` and readers take its senders from staging), and one still under writes
every new use.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from graph.private_files import private_dir
from graph.schema import Label, Rel
from graph.settings import Settings
from graph.staging import (
    SENT_TEMPLATES,
    WITHHELD_PREFIX,
    connect,
    create_bundles_table,
    create_exchange_view,
    create_staged_view,
    read_bundles,
    sql_str,
)
from graph.store import GraphStore
from graph.workspace import scratch_dir, templates_path
from loaders.enrich import WEBMAIL, IntelIndex, IpResolver
from loaders.graph_sink import BATCH_ROWS, ArrowRows, GraphSink, StoreSink

ISO = "'%Y-%m-%dT%H:%M:%SZ'"
# A value is written to the graph when this many accounts use it (or an indicator names it).
LINKS = 2


def _iso(col: str) -> str:
    return f"strftime({col}, {ISO})"


class GraphWriter:
    """Aggregates the staging area of ``workspace`` into ``sink``: a store (batched MERGEs) or
    a bulk sink such as the import files of a fresh Neo4j database (loaders/graph_csv.py)."""

    def __init__(self, workspace: Path, sink: GraphStore | GraphSink, phase: Callable[[str], None] | None = None,
                 template_hub_senders: int | None = None) -> None:
        self.workspace = workspace
        self.template_hub_senders = (int(Settings()["graph_template_hub_senders"]) if template_hub_senders is None
                                     else template_hub_senders)
        self.sink: GraphSink = StoreSink(sink) if isinstance(sink, GraphStore) else sink
        self.phase = phase or (lambda _text: None)
        self.counts: dict[str, int] = {}
        self.networks: dict[str, dict[str, Any]] = {}

    def _view(self, con: duckdb.DuckDBPyConnection, table: str) -> bool:
        return create_staged_view(con, self.workspace, table)

    def write(self) -> dict[str, int]:
        tmp = private_dir(scratch_dir(self.workspace, "graph"))
        con = connect(temp_directory=tmp / "duckdb", preserve_insertion_order=False)
        try:
            bundles = read_bundles(self.workspace)
            create_bundles_table(con, bundles)
            present = {t: self._view(con, t) for t in ("accounts", "exchanges", "payments", "devices", "ip_intel", "operators")}
            if not present["accounts"]:
                return {}
            self._prepare(con, present, len(bundles))
            with self.sink.session():
                self._accounts(con, present["exchanges"])
                self._ips(con)
                if present["exchanges"]:
                    self._exchange_entities(con)
                if present["payments"]:
                    self._payments(con)
                if present["devices"]:
                    self._devices(con)
                self._email(con)
                if present["operators"]:
                    self._operators(con)
                self._load_runs(bundles)
        finally:
            con.close()
        return self.counts

    # ---- preparation ----------------------------------------------------------------------------

    def _prepare(self, con: duckdb.DuckDBPyConnection, present: dict[str, bool], n_bundles: int) -> None:
        self.phase("aggregating")
        # The latest bundle's version of an account wins.
        con.execute(
            "CREATE TEMP TABLE acc AS SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER "
            "(PARTITION BY account_id ORDER BY _seq DESC NULLS LAST) AS rn FROM accounts_all) WHERE rn = 1"
        )
        if present["exchanges"]:
            create_exchange_view(con, n_bundles)
            con.execute(f"CREATE TEMP TABLE sent AS {SENT_TEMPLATES}")  # noqa: S608 - fixed text
        _named_values(con, present["operators"])
        self._resolve_ips(con)

    def _emit_nodes(self, label: Label, rows: Iterable[dict[str, Any]]) -> None:
        n = self.sink.nodes(label, rows)
        self.counts[label.value] = self.counts.get(label.value, 0) + n

    def _emit_rels(self, rel: Rel, start: Label, end: Label, rows: Iterable[dict[str, Any]]) -> None:
        n = self.sink.relationships(rel, start, end, rows)
        self.counts[rel.value] = self.counts.get(rel.value, 0) + n

    # ---- accounts -----------------------------------------------------------------------------

    def _accounts(self, con: duckdb.DuckDBPyConnection, has_exchanges: bool) -> None:
        self.phase("writing accounts")
        totals = (
            """LEFT JOIN (SELECT account_id, count(*) AS exchanges,
                       sum(coalesce(input_tokens, 0)) AS input_tokens, sum(coalesce(output_tokens, 0)) AS output_tokens,
                       min(ts) AS first_ts, max(ts) AS last_ts, count(DISTINCT CAST(ts AS DATE)) AS active_days,
                       list(DISTINCT model ORDER BY model) FILTER (WHERE model IS NOT NULL) AS models
                FROM ex GROUP BY account_id) t USING (account_id)"""
            if has_exchanges
            else "LEFT JOIN (SELECT NULL::VARCHAR AS account_id, 0 AS exchanges, 0 AS input_tokens, 0 AS output_tokens, "
            "NULL::TIMESTAMP AS first_ts, NULL::TIMESTAMP AS last_ts, 0 AS active_days, NULL::VARCHAR[] AS models) t USING (account_id)"
        )
        # Per-account aggregates of the values that stay in staging: the IP uses by network
        # kind (what scoring's proxy/hosting share reads) and the capability mix of the prompts.
        ip_kinds = """LEFT JOIN (SELECT account_id, CAST(to_json(map(list(kind ORDER BY kind), list(uses ORDER BY kind))) AS VARCHAR)
                                  AS ip_uses_by_kind
                           FROM (SELECT u.account_id, coalesce(p.kind, '') AS kind,
                                        sum(CASE WHEN u.n > 0 THEN u.n ELSE 1 END)::BIGINT AS uses
                                 FROM used_ip u LEFT JOIN ip_net r ON r.raw = u.ip LEFT JOIN net_props p USING (network)
                                 GROUP BY ALL) GROUP BY account_id) k USING (account_id)"""
        caps = "LEFT JOIN (SELECT NULL::VARCHAR AS account_id, NULL::VARCHAR AS capability_mix, NULL::BIGINT AS cot_exchanges) c USING (account_id)"
        path = templates_path(self.workspace)
        if has_exchanges and path.exists():
            caps = f"""LEFT JOIN (SELECT account_id,
                                  CAST(to_json(map(list(capability ORDER BY capability), list(n ORDER BY capability))) AS VARCHAR) AS capability_mix,
                                  sum(cot)::BIGINT AS cot_exchanges
                           FROM (SELECT s.account_id, coalesce(t.capability, 'other') AS capability, sum(s.n)::BIGINT AS n,
                                        sum(CASE WHEN t.cot THEN s.n ELSE 0 END) AS cot
                                 FROM sent s JOIN read_parquet({sql_str(str(path))}) t USING (template_id) GROUP BY ALL)
                           GROUP BY account_id) c USING (account_id)"""  # noqa: S608
        sql = f"""SELECT account_id, {_iso('created_at')} AS created_at, email_domain, email_hash, email_shape,
                    phone_hash, signup_ip, country, org_id, verification, status,
                    coalesce(exchanges, 0)::BIGINT AS exchanges, coalesce(input_tokens, 0)::BIGINT AS input_tokens,
                    coalesce(output_tokens, 0)::BIGINT AS output_tokens, {_iso('first_ts')} AS first_seen,
                    {_iso('last_ts')} AS last_seen, coalesce(active_days, 0)::BIGINT AS active_days,
                    coalesce(models, []) AS models, coalesce(ip_uses_by_kind, '{{}}') AS ip_uses_by_kind,
                    coalesce(capability_mix, '{{}}') AS capability_mix, coalesce(cot_exchanges, 0)::BIGINT AS cot_exchanges
                FROM acc {totals} {ip_kinds} {caps} ORDER BY account_id"""  # noqa: S608
        self._emit_nodes(Label.ACCOUNT, _rows(con, sql))

    # ---- IPs, networks, ASNs ------------------------------------------------------------------

    def _resolve_ips(self, con: duckdb.DuckDBPyConnection) -> None:
        """Every IP an account used (``used_ip``), its network (``ip_net``: raw, ip, network),
        the networks' intel (``net_props``) and what the graph keeps of them (``keep_net``,
        ``keep_ip``): an IP used by two accounts or more, every IP of a network or ASN that
        two accounts or more reach (through any of its IPs), and what an indicator names."""
        has_ex = _exists(con, "ex")
        used = (
            "SELECT account_id, ip, min(ts) AS f, max(ts) AS l, count(*) AS n FROM ex WHERE ip IS NOT NULL GROUP BY ALL"
            if has_ex
            else "SELECT NULL::VARCHAR AS account_id, NULL::VARCHAR AS ip, NULL::TIMESTAMP AS f, NULL::TIMESTAMP AS l, 0 AS n WHERE false"
        )
        con.execute(
            f"""CREATE TEMP TABLE used_ip AS
            WITH e AS ({used}),
                 s AS (SELECT account_id, signup_ip AS ip, created_at FROM acc WHERE signup_ip IS NOT NULL)
            SELECT coalesce(e.account_id, s.account_id) AS account_id, coalesce(e.ip, s.ip) AS ip,
                   least(e.f, s.created_at) AS f, greatest(e.l, s.created_at) AS l,
                   coalesce(e.n, 0)::BIGINT AS n, s.ip IS NOT NULL AS signup
            FROM e FULL OUTER JOIN s ON e.account_id = s.account_id AND e.ip = s.ip"""  # noqa: S608
        )
        intel_rows = []
        if _exists(con, "ip_intel_all"):
            intel_rows = [
                dict(zip(("network", "asn", "as_org", "kind", "country", "provider"), r, strict=True))
                for r in con.execute(
                    "SELECT network, asn, as_org, kind, country, provider FROM (SELECT *, row_number() OVER "
                    "(PARTITION BY network ORDER BY _seq DESC NULLS LAST) AS rn FROM ip_intel_all) WHERE rn = 1"
                ).fetchall()
            ]
        resolver = IpResolver(IntelIndex(intel_rows))
        intel_by_net = {str(r["network"]): r for r in resolver.index.rows()}
        self.networks = {}
        con.execute("CREATE TEMP TABLE ip_net (raw VARCHAR, ip VARCHAR, network VARCHAR)")
        # fetched whole first: an open result is lost when the same connection inserts
        distinct = con.sql("SELECT DISTINCT ip FROM used_ip ORDER BY ip").to_arrow_table().column(0).combine_chunks()
        for offset in range(0, len(distinct), BATCH_ROWS * 10):
            raw = distinct.slice(offset, BATCH_ROWS * 10)
            addrs, nets = resolver.resolve_many(raw)
            for net in nets.unique().to_pylist():
                if net is not None and net not in self.networks:
                    self.networks[net] = _network_props(net, intel_by_net.get(net))
            con.register("ip_part", pa.table({"raw": raw, "ip": addrs, "network": nets}))
            con.execute("INSERT INTO ip_net SELECT raw, ip, network FROM ip_part")
            con.unregister("ip_part")
        props = pa.table({
            "network": pa.array(list(self.networks), pa.string()),
            "kind": pa.array([n["kind"] for n in self.networks.values()], pa.string()),
            "asn": pa.array([n["asn"] for n in self.networks.values()], pa.string()),
        })
        con.register("net_part", props)
        con.execute("CREATE TEMP TABLE net_props AS SELECT * FROM net_part")
        con.unregister("net_part")
        _named_networks(con)
        con.execute(
            f"""CREATE TEMP TABLE keep_asn AS
            SELECT asn FROM (SELECT DISTINCT u.account_id, p.asn FROM used_ip u JOIN ip_net r ON r.raw = u.ip
                             JOIN net_props p USING (network) WHERE p.asn IS NOT NULL)
            GROUP BY 1 HAVING count(*) >= {LINKS}
            UNION SELECT value FROM named WHERE type = 'asn'"""  # noqa: S608 - constant
        )
        con.execute(
            f"""CREATE TEMP TABLE keep_net AS
            SELECT network FROM (SELECT DISTINCT u.account_id, r.network FROM used_ip u JOIN ip_net r ON r.raw = u.ip
                                 WHERE r.network IS NOT NULL)
            GROUP BY 1 HAVING count(*) >= {LINKS}
            UNION SELECT network FROM net_props WHERE asn IN (SELECT asn FROM keep_asn)
            UNION SELECT cidr FROM named_net"""  # noqa: S608 - constant
        )
        con.execute(
            f"""CREATE TEMP TABLE keep_ip AS
            SELECT ip AS raw FROM used_ip GROUP BY 1 HAVING count(DISTINCT account_id) >= {LINKS}
            UNION SELECT raw FROM ip_net WHERE network IN (SELECT network FROM keep_net)
            UNION SELECT raw FROM ip_net WHERE raw IN (SELECT value FROM named WHERE type = 'ip')
                                          OR ip IN (SELECT value FROM named WHERE type = 'ip')
            UNION SELECT raw FROM ip_net r JOIN named_net n ON NOT n.v6 AND r.ip NOT LIKE '%:%'
                  AND {_ipv4_int('r.ip')} BETWEEN n.lo AND n.hi"""  # noqa: S608 - constant
        )
        self._named_v6_ips(con)

    def _named_v6_ips(self, con: duckdb.DuckDBPyConnection) -> None:
        """IPv6 addresses inside a network an indicator names, added to ``keep_ip`` (checked in
        Python: DuckDB has no 128-bit address arithmetic here; indicators name few networks)."""
        nets = [ipaddress.ip_network(c) for (c,) in con.execute("SELECT cidr FROM named_net WHERE v6").fetchall()]
        if not nets:
            return
        inside = []
        for raw, ip in con.execute("SELECT raw, ip FROM ip_net WHERE ip LIKE '%:%'").fetchall():
            addr = ipaddress.ip_address(ip)
            if any(addr in net for net in nets):
                inside.append((raw,))
        if inside:
            con.executemany("INSERT INTO keep_ip VALUES (?)", inside)

    def _ips(self, con: duckdb.DuckDBPyConnection) -> None:
        self.phase("writing IPs and networks")
        networks = self.networks
        written: set[str] = {r[0] for r in con.execute("SELECT network FROM keep_net").fetchall()} & set(networks)
        asns_kept = {r[0] for r in con.execute("SELECT asn FROM keep_asn").fetchall()}
        reader = con.sql(
            "SELECT DISTINCT r.ip, r.network FROM ip_net r SEMI JOIN keep_ip k USING (raw) "
            "WHERE r.ip IS NOT NULL AND r.network IS NOT NULL ORDER BY r.ip"
        ).to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            ips: list[dict[str, Any]] = []
            for ip, net in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
                props = networks[net]
                ips.append({"ip": ip, "version": 6 if ":" in ip else 4, "network": net, "kind": props["kind"],
                            "asn": props["asn"], "provider": props["provider"], "country": props["country"]})
            self._emit_nodes(Label.IP, ips)
            self._emit_rels(Rel.IN_NETWORK, Label.IP, Label.NETWORK,
                            ({"start": r["ip"], "end": r["network"]} for r in ips if r["network"] in written))
        self._emit_nodes(Label.NETWORK, (networks[k] for k in sorted(written)))
        asns: dict[str, dict[str, Any]] = {}
        for key in sorted(written):
            net = networks[key]
            if net["asn"] in asns_kept and (net["asn"] not in asns or (net["as_org"] and not asns[net["asn"]].get("as_org"))):
                asns[net["asn"]] = {"asn": net["asn"], "as_org": net["as_org"]}
        self._emit_nodes(Label.ASN, (asns[k] for k in sorted(asns)))
        self._emit_rels(Rel.USED_IP, Label.ACCOUNT, Label.IP, _rows(
            con,
            f"""SELECT account_id AS start, ip AS "end", {_iso('f')} AS first_seen, {_iso('l')} AS last_seen,
                       n AS count, signup FROM used_ip WHERE ip IN (SELECT raw FROM keep_ip)
                ORDER BY account_id, ip""",  # noqa: S608
        ))
        self._emit_rels(Rel.IN_ASN, Label.NETWORK, Label.ASN,
                        ({"start": networks[k]["cidr"], "end": networks[k]["asn"]} for k in sorted(written)
                         if networks[k]["asn"] in asns))

    # ---- exchanges: templates, clients --------------------------------------------------------

    def _exchange_entities(self, con: duckdb.DuckDBPyConnection) -> None:
        self.phase("writing templates and clients")
        path = templates_path(self.workspace)
        named_text = ""
        if path.exists():
            # a prompt_template indicator names a template by id or by text it contains (as attribution matches it)
            named_text = f"""UNION SELECT t.template_id FROM read_parquet({sql_str(str(path))}) t
                    JOIN named n ON n.type = 'prompt_template' AND trim(n.value) <> ''
                     AND contains(lower(coalesce(t.template, '') || chr(10) || coalesce(left(t.example, 2000), '')), lower(trim(n.value)))"""  # noqa: S608
        con.execute(
            f"""CREATE TEMP TABLE keep_tpl AS
            SELECT template_id FROM sent GROUP BY 1 HAVING count(*) >= {LINKS}
            UNION SELECT value FROM named WHERE type = 'prompt_template' {named_text}"""  # noqa: S608
        )
        con.execute(template_senders_sql(self.template_hub_senders))
        senders = f"""s.accounts, s.exchanges, {_iso('s.f')} AS first_seen, {_iso('s.l')} AS last_seen,
                      s.uses_staged"""
        self._emit_nodes(Label.PROMPT_TEMPLATE, _rows(
            con,
            f"""SELECT s.template_id, '' AS template, '' AS example, 'other' AS capability, false AS cot,
                      true AS hashed, {senders}
               FROM tpl_senders s WHERE starts_with(s.template_id, {sql_str(WITHHELD_PREFIX)}) ORDER BY 1""",  # noqa: S608 - constant
        ))
        if path.exists():
            sql = f"""SELECT t.template_id, t.template, left(t.example, 2000) AS example, t.capability, t.cot, {senders}
                      FROM read_parquet({sql_str(str(path))}) t JOIN tpl_senders s USING (template_id)
                      ORDER BY t.template_id"""  # noqa: S608
            self._emit_nodes(Label.PROMPT_TEMPLATE, _rows(con, sql))
        self._emit_rels(Rel.SENT_TEMPLATE, Label.ACCOUNT, Label.PROMPT_TEMPLATE, _rows(
            con,
            f"""SELECT account_id AS start, template_id AS "end", n AS count, {_iso('f')} AS first_seen,
                       {_iso('l')} AS last_seen
                FROM sent SEMI JOIN (SELECT template_id FROM tpl_senders WHERE NOT uses_staged) USING (template_id)
                ORDER BY account_id, template_id""",  # noqa: S608
        ))
        con.execute(
            f"""CREATE TEMP TABLE keep_fp AS
            SELECT client_fingerprint FROM ex WHERE client_fingerprint IS NOT NULL GROUP BY 1
            HAVING count(DISTINCT account_id) >= {LINKS}
            UNION SELECT value FROM named WHERE type = 'client_fingerprint'"""  # noqa: S608 - constant
        )
        self._emit_nodes(Label.CLIENT_FINGERPRINT, _rows(
            con,
            """SELECT client_fingerprint AS fingerprint, mode(user_agent) AS user_agent FROM ex
               WHERE client_fingerprint IN (SELECT client_fingerprint FROM keep_fp) GROUP BY ALL ORDER BY fingerprint""",
        ))
        self._emit_rels(Rel.USED_CLIENT, Label.ACCOUNT, Label.CLIENT_FINGERPRINT, _rows(
            con,
            f"""SELECT account_id AS start, client_fingerprint AS "end", count(*) AS count,
                       {_iso('min(ts)')} AS first_seen, {_iso('max(ts)')} AS last_seen
                FROM ex WHERE client_fingerprint IN (SELECT client_fingerprint FROM keep_fp) GROUP BY ALL ORDER BY 1, 2""",  # noqa: S608
        ))

    # ---- payments, devices, e-mail, operators -------------------------------------------------

    def _payments(self, con: duckdb.DuckDBPyConnection) -> None:
        self.phase("writing payments")
        known = "account_id IN (SELECT account_id FROM acc)"
        con.execute(
            f"""CREATE TEMP TABLE pm AS SELECT payment_id, card_bin, card_last4, billing_country, billing_name_hash,
                       billing_postal FROM (
                    SELECT *, row_number() OVER (PARTITION BY payment_id ORDER BY _seq DESC NULLS LAST, _file DESC, _row DESC) AS rn
                    FROM payments_all WHERE {known}) WHERE rn = 1"""  # noqa: S608
        )
        # A card is kept when two accounts pay with it, when its BIN + billing pattern (as
        # graph.linkage.payment.billing_pattern keys it) ties two accounts, or an indicator names it or its BIN.
        field = "coalesce(CAST(m.{} AS VARCHAR), '')"
        bin_, country, postal, name = (field.format(c) for c in ("card_bin", "billing_country", "billing_postal", "billing_name_hash"))
        con.execute(
            f"""CREATE TEMP TABLE keep_pm AS
            WITH u AS (SELECT DISTINCT p.account_id, p.payment_id,
                              CASE WHEN {bin_} <> '' AND ({postal} <> '' OR {name} <> '')
                                   THEN {bin_} || '|' || {country} || '|' || {postal} || '|' || {name} END AS pattern
                       FROM payments_all p JOIN pm m USING (payment_id) WHERE p.{known})
            SELECT payment_id FROM u GROUP BY 1 HAVING count(DISTINCT account_id) >= {LINKS}
            UNION SELECT payment_id FROM u WHERE pattern IN (
                SELECT pattern FROM u WHERE pattern IS NOT NULL GROUP BY 1 HAVING count(DISTINCT account_id) >= {LINKS})
            UNION SELECT payment_id FROM pm WHERE payment_id IN (SELECT value FROM named WHERE type = 'payment')
                                              OR CAST(card_bin AS VARCHAR) IN (SELECT value FROM named WHERE type = 'card_bin')"""  # noqa: S608
        )
        self._emit_nodes(Label.PAYMENT_METHOD, _rows(
            con,
            """SELECT payment_id, card_bin, card_last4, billing_country, billing_name_hash, billing_postal
               FROM pm SEMI JOIN keep_pm USING (payment_id) ORDER BY payment_id""",
        ))
        self._emit_rels(Rel.PAID_WITH, Label.ACCOUNT, Label.PAYMENT_METHOD, _rows(
            con,
            f"""SELECT account_id AS start, payment_id AS "end", {_iso('min(first_seen)')} AS first_seen
                FROM payments_all WHERE {known} AND payment_id IN (SELECT payment_id FROM keep_pm)
                GROUP BY ALL ORDER BY 1, 2""",  # noqa: S608
        ))

    def _devices(self, con: duckdb.DuckDBPyConnection) -> None:
        self.phase("writing devices")
        known = "account_id IN (SELECT account_id FROM acc)"
        con.execute(
            f"""CREATE TEMP TABLE keep_dev AS
            SELECT device_id FROM devices_all WHERE {known} GROUP BY 1 HAVING count(DISTINCT account_id) >= {LINKS}
            UNION SELECT value FROM named WHERE type = 'device'"""  # noqa: S608
        )
        kept = f"{known} AND device_id IN (SELECT device_id FROM keep_dev)"  # noqa: S608 - constant
        self._emit_nodes(Label.DEVICE, _rows(
            con, f"SELECT DISTINCT device_id FROM devices_all WHERE {kept} ORDER BY 1"  # noqa: S608
        ))
        self._emit_rels(Rel.USED_DEVICE, Label.ACCOUNT, Label.DEVICE, _rows(
            con,
            f"""SELECT account_id AS start, device_id AS "end", {_iso('min(first_seen)')} AS first_seen,
                       {_iso('max(coalesce(last_seen, first_seen))')} AS last_seen
                FROM devices_all WHERE {kept} GROUP BY ALL ORDER BY 1, 2""",  # noqa: S608
        ))

    def _email(self, con: duckdb.DuckDBPyConnection) -> None:
        kept = f"""email_domain IN (SELECT email_domain FROM acc WHERE email_domain IS NOT NULL GROUP BY 1
                                    HAVING count(*) >= {LINKS}
                                    UNION SELECT lower(value) FROM named WHERE type = 'email_domain')"""  # noqa: S608
        domains = [r[0] for r in con.execute(
            f"SELECT DISTINCT email_domain FROM acc WHERE {kept} ORDER BY 1").fetchall()]  # noqa: S608 - constant
        self._emit_nodes(Label.EMAIL_DOMAIN, ({"domain": d, "webmail": d in WEBMAIL} for d in domains))
        self._emit_rels(Rel.HAS_EMAIL_DOMAIN, Label.ACCOUNT, Label.EMAIL_DOMAIN, _rows(
            con,
            f"""SELECT account_id AS start, email_domain AS "end", {_iso('created_at')} AS first_seen
                FROM acc WHERE {kept} ORDER BY 1""",  # noqa: S608
        ))

    def _operators(self, con: duckdb.DuckDBPyConnection) -> None:
        self.phase("writing operators")
        con.execute(
            """CREATE TEMP TABLE ops AS SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER
               (PARTITION BY operator_id, indicator_type, indicator_value ORDER BY _seq DESC NULLS LAST) AS rn
               FROM operators_all) WHERE rn = 1"""
        )
        self._emit_nodes(Label.OPERATOR, _rows(
            con, "SELECT operator_id, max(name) AS name FROM ops GROUP BY 1 ORDER BY 1"))
        self._emit_nodes(Label.INDICATOR, _rows(
            con,
            """SELECT DISTINCT lower(indicator_type) || ':' || indicator_value AS indicator_id,
                      lower(indicator_type) AS type, indicator_value AS value FROM ops ORDER BY 1""",
        ))
        self._emit_rels(Rel.HAS_INDICATOR, Label.OPERATOR, Label.INDICATOR, _rows(
            con,
            """SELECT operator_id AS start, lower(indicator_type) || ':' || indicator_value AS "end",
                      source, confidence FROM ops ORDER BY 1, 2""",
        ))

    def _load_runs(self, bundles: list[dict[str, Any]]) -> None:
        self._emit_nodes(Label.LOAD_RUN, (
            {"run_id": b["bundle_id"], "path": b.get("path"), "loaded_at": b.get("loaded_at"), "seq": b.get("seq"),
             "tables": json.dumps(b.get("tables", {}), sort_keys=True)}
            for b in bundles
        ))


def template_senders_sql(hub_senders: int) -> str:
    """The statement creating the temp table ``tpl_senders`` (template_id, accounts, exchanges,
    f, l, uses_staged) from ``sent`` and ``keep_tpl``: each template the graph keeps, with how
    many accounts sent it, how many exchanges, first and last time, and whether its uses stay
    in staging (``uses_staged``: more than ``hub_senders`` senders; see the module docstring)."""
    if hub_senders < 0:
        raise ValueError(f"graph_template_hub_senders must be at least 0, got {hub_senders}")
    return f"""CREATE TEMP TABLE tpl_senders AS
        SELECT template_id, count(*)::BIGINT AS accounts, sum(n)::BIGINT AS exchanges, min(f) AS f, max(l) AS l,
               count(*) > {int(hub_senders)} AS uses_staged
        FROM sent SEMI JOIN keep_tpl USING (template_id) GROUP BY 1"""  # noqa: S608 - an int


def _named_values(con: duckdb.DuckDBPyConnection, has_operators: bool) -> None:
    """The temp table ``named`` (type, value): every value an operator indicator names, kept
    in the graph however few accounts use it (attribution looks them up there)."""
    if has_operators:
        con.execute(
            "CREATE TEMP TABLE named AS SELECT DISTINCT lower(indicator_type) AS type, CAST(indicator_value AS VARCHAR) AS value "
            "FROM operators_all WHERE indicator_value IS NOT NULL AND indicator_type IS NOT NULL"
        )
    else:
        con.execute("CREATE TEMP TABLE named (type VARCHAR, value VARCHAR)")


def _named_networks(con: duckdb.DuckDBPyConnection) -> None:
    """The temp table ``named_net`` (cidr, v6, lo, hi): the networks indicators name, as
    normalised CIDRs with their IPv4 address range (an IP inside one is kept, as attribution
    counts the accounts on any IP of the network)."""
    con.execute("CREATE TEMP TABLE named_net (cidr VARCHAR, v6 BOOLEAN, lo BIGINT, hi BIGINT)")
    rows = []
    for (value,) in con.execute("SELECT value FROM named WHERE type = 'network'").fetchall():
        try:
            net = ipaddress.ip_network(str(value).strip(), strict=False)
        except ValueError:
            continue
        v6 = net.version == 6
        rows.append((str(net), v6, None if v6 else int(net.network_address), None if v6 else int(net.broadcast_address)))
    if rows:
        con.executemany("INSERT INTO named_net VALUES (?, ?, ?, ?)", rows)


def _ipv4_int(col: str) -> str:
    """SQL for the integer of a dotted-quad IPv4 address in ``col``."""
    parts = [f"TRY_CAST(split_part({col}, '.', {i}) AS BIGINT)" for i in (1, 2, 3, 4)]
    return f"({parts[0]} * 16777216 + {parts[1]} * 65536 + {parts[2]} * 256 + {parts[3]})"


def _network_props(cidr: str, intel: dict[str, Any] | None) -> dict[str, Any]:
    """Network node properties: the intel row's, or a derived network's (source 'derived')."""
    intel = intel or {}
    asn = str(intel["asn"]) if intel.get("asn") is not None else None
    return {"cidr": cidr, "kind": intel.get("kind"), "asn": asn, "as_org": intel.get("as_org"),
            "provider": intel.get("provider"), "country": intel.get("country"),
            "source": "intel" if intel else "derived"}


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE view_name = $n AND temporary "
        "UNION ALL SELECT table_name FROM duckdb_tables() WHERE table_name = $n AND temporary",
        {"n": name},
    ).fetchall()
    return bool(found)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> ArrowRows:
    """A query's rows, streamed in record batches when iterated (as dicts, or batches whole)."""
    return ArrowRows(lambda: con.sql(sql).to_arrow_reader(BATCH_ROWS))
