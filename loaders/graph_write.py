"""Writing the graph from the staging area: aggregates over every staged bundle, as MERGEs.

Every node and relationship property is recomputed in DuckDB from all staged rows (not added
to what the graph holds), so writing twice, writing after a killed run, or writing after a
second bundle all converge on the same graph. Exchanges are never nodes: accounts carry their
totals and the account-entity relationships carry counts and first/last times. An exchange id
staged by two bundles counts once (the earlier bundle's row). ``labels`` is never written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb

from graph.private_files import private_dir
from graph.schema import Label, Rel
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
from loaders.graph_sink import BATCH_ROWS, GraphSink, StoreSink

ISO = "'%Y-%m-%dT%H:%M:%SZ'"


def _iso(col: str) -> str:
    return f"strftime({col}, {ISO})"


class GraphWriter:
    """Aggregates the staging area of ``workspace`` into ``sink``: a store (batched MERGEs) or
    a bulk sink such as the import files of a fresh Neo4j database (loaders/graph_csv.py)."""

    def __init__(self, workspace: Path, sink: GraphStore | GraphSink, phase: Callable[[str], None] | None = None) -> None:
        self.workspace = workspace
        self.sink: GraphSink = StoreSink(sink) if isinstance(sink, GraphStore) else sink
        self.phase = phase or (lambda _text: None)
        self.counts: dict[str, int] = {}

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
        sql = f"""SELECT account_id, {_iso('created_at')} AS created_at, email_domain, email_hash, email_shape,
                    phone_hash, signup_ip, country, org_id, verification, status,
                    coalesce(exchanges, 0)::BIGINT AS exchanges, coalesce(input_tokens, 0)::BIGINT AS input_tokens,
                    coalesce(output_tokens, 0)::BIGINT AS output_tokens, {_iso('first_ts')} AS first_seen,
                    {_iso('last_ts')} AS last_seen, coalesce(active_days, 0)::BIGINT AS active_days,
                    coalesce(models, []) AS models
                FROM acc {totals} ORDER BY account_id"""  # noqa: S608
        self._emit_nodes(Label.ACCOUNT, _rows(con, sql))

    # ---- IPs, networks, ASNs ------------------------------------------------------------------

    def _ips(self, con: duckdb.DuckDBPyConnection) -> None:
        self.phase("writing IPs and networks")
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
        networks: dict[str, dict[str, Any]] = {}
        reader = con.sql("SELECT DISTINCT ip FROM used_ip ORDER BY ip").to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            addrs, nets = resolver.resolve_many(batch.column(0))
            ips: list[dict[str, Any]] = []
            for ip, net in zip(addrs.to_pylist(), nets.to_pylist(), strict=True):
                if ip is None or net is None:
                    continue
                intel = intel_by_net.get(net)
                if net not in networks:
                    networks[net] = _network_props(net, intel)
                props = networks[net]
                ips.append({"ip": ip, "version": 6 if ":" in ip else 4, "network": net, "kind": props["kind"],
                            "asn": props["asn"], "provider": props["provider"], "country": props["country"]})
            self._emit_nodes(Label.IP, ips)
            self._emit_rels(Rel.IN_NETWORK, Label.IP, Label.NETWORK,
                            ({"start": r["ip"], "end": r["network"]} for r in ips))
        self._emit_nodes(Label.NETWORK, (networks[k] for k in sorted(networks)))
        asns: dict[str, dict[str, Any]] = {}
        for net in networks.values():
            if net["asn"] and (net["asn"] not in asns or (net["as_org"] and not asns[net["asn"]].get("as_org"))):
                asns[net["asn"]] = {"asn": net["asn"], "as_org": net["as_org"]}
        self._emit_nodes(Label.ASN, (asns[k] for k in sorted(asns)))
        self._emit_rels(Rel.USED_IP, Label.ACCOUNT, Label.IP, _rows(
            con,
            f"""SELECT account_id AS start, ip AS "end", {_iso('f')} AS first_seen, {_iso('l')} AS last_seen,
                       n AS count, signup FROM used_ip ORDER BY account_id, ip""",  # noqa: S608
        ))
        self._emit_rels(Rel.IN_ASN, Label.NETWORK, Label.ASN,
                        ({"start": n["cidr"], "end": n["asn"]} for n in networks.values() if n["asn"]))

    # ---- exchanges: templates, clients --------------------------------------------------------

    def _exchange_entities(self, con: duckdb.DuckDBPyConnection) -> None:
        self.phase("writing templates and clients")
        path = templates_path(self.workspace)
        con.execute(f"CREATE TEMP TABLE sent AS {SENT_TEMPLATES}")  # noqa: S608 - fixed text
        self._emit_nodes(Label.PROMPT_TEMPLATE, _rows(
            con,
            f"""SELECT DISTINCT template_id, '' AS template, '' AS example, 'other' AS capability, false AS cot,
                      true AS hashed
               FROM sent WHERE starts_with(template_id, {sql_str(WITHHELD_PREFIX)}) ORDER BY 1""",  # noqa: S608 - constant
        ))
        if path.exists():
            sql = f"""SELECT t.template_id, t.template, left(t.example, 2000) AS example, t.capability, t.cot
                      FROM read_parquet({sql_str(str(path))}) t
                      SEMI JOIN (SELECT DISTINCT template_id FROM sent) s USING (template_id)
                      ORDER BY t.template_id"""  # noqa: S608
            self._emit_nodes(Label.PROMPT_TEMPLATE, _rows(con, sql))
        self._emit_rels(Rel.SENT_TEMPLATE, Label.ACCOUNT, Label.PROMPT_TEMPLATE, _rows(
            con,
            f"""SELECT account_id AS start, template_id AS "end", n AS count, {_iso('f')} AS first_seen,
                       {_iso('l')} AS last_seen FROM sent ORDER BY account_id, template_id""",  # noqa: S608
        ))
        self._emit_nodes(Label.CLIENT_FINGERPRINT, _rows(
            con,
            """SELECT client_fingerprint AS fingerprint, mode(user_agent) AS user_agent FROM ex
               WHERE client_fingerprint IS NOT NULL GROUP BY ALL ORDER BY fingerprint""",
        ))
        self._emit_rels(Rel.USED_CLIENT, Label.ACCOUNT, Label.CLIENT_FINGERPRINT, _rows(
            con,
            f"""SELECT account_id AS start, client_fingerprint AS "end", count(*) AS count,
                       {_iso('min(ts)')} AS first_seen, {_iso('max(ts)')} AS last_seen
                FROM ex WHERE client_fingerprint IS NOT NULL GROUP BY ALL ORDER BY 1, 2""",  # noqa: S608
        ))

    # ---- payments, devices, e-mail, operators -------------------------------------------------

    def _payments(self, con: duckdb.DuckDBPyConnection) -> None:
        self.phase("writing payments")
        known = "account_id IN (SELECT account_id FROM acc)"
        self._emit_nodes(Label.PAYMENT_METHOD, _rows(
            con,
            f"""SELECT payment_id, card_bin, card_last4, billing_country, billing_name_hash, billing_postal FROM (
                    SELECT *, row_number() OVER (PARTITION BY payment_id ORDER BY _seq DESC NULLS LAST, _file DESC, _row DESC) AS rn
                    FROM payments_all WHERE {known}) WHERE rn = 1 ORDER BY payment_id""",  # noqa: S608
        ))
        self._emit_rels(Rel.PAID_WITH, Label.ACCOUNT, Label.PAYMENT_METHOD, _rows(
            con,
            f"""SELECT account_id AS start, payment_id AS "end", {_iso('min(first_seen)')} AS first_seen
                FROM payments_all WHERE {known} GROUP BY ALL ORDER BY 1, 2""",  # noqa: S608
        ))

    def _devices(self, con: duckdb.DuckDBPyConnection) -> None:
        self.phase("writing devices")
        known = "account_id IN (SELECT account_id FROM acc)"
        self._emit_nodes(Label.DEVICE, _rows(
            con, f"SELECT DISTINCT device_id FROM devices_all WHERE {known} ORDER BY 1"  # noqa: S608
        ))
        self._emit_rels(Rel.USED_DEVICE, Label.ACCOUNT, Label.DEVICE, _rows(
            con,
            f"""SELECT account_id AS start, device_id AS "end", {_iso('min(first_seen)')} AS first_seen,
                       {_iso('max(coalesce(last_seen, first_seen))')} AS last_seen
                FROM devices_all WHERE {known} GROUP BY ALL ORDER BY 1, 2""",  # noqa: S608
        ))

    def _email(self, con: duckdb.DuckDBPyConnection) -> None:
        domains = [r[0] for r in con.execute(
            "SELECT DISTINCT email_domain FROM acc WHERE email_domain IS NOT NULL ORDER BY 1").fetchall()]
        self._emit_nodes(Label.EMAIL_DOMAIN, ({"domain": d, "webmail": d in WEBMAIL} for d in domains))
        self._emit_rels(Rel.HAS_EMAIL_DOMAIN, Label.ACCOUNT, Label.EMAIL_DOMAIN, _rows(
            con,
            f"""SELECT account_id AS start, email_domain AS "end", {_iso('created_at')} AS first_seen
                FROM acc WHERE email_domain IS NOT NULL ORDER BY 1""",  # noqa: S608
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


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> Iterator[dict[str, Any]]:
    """A query's rows as dicts, streamed in record batches."""
    reader = con.sql(sql).to_arrow_reader(BATCH_ROWS)
    for batch in reader:
        for row in batch.to_pylist():
            yield {k: v for k, v in row.items()}
