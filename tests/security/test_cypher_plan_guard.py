"""Team queries are user-written Cypher a colleague runs: against the live Neo4j server, each
hostile query is refused when saved, refused by its plan alone (the text pass left out), and
refused when run even if it reached the graph some other way; legitimate reads still work, and
the timeout and row limit hold."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from graph.queries import guard
from graph.queries.guard import UnsafeCypher
from graph.queries.library import QueryError
from graph.queries.runner import run_query, run_spec
from graph.queries.team import get_team_query, save_team_query
from graph.schema import Label
from graph.store import GraphStore, StoreError
from tests.conftest import clear_store
from tests.worlds.evidence import build_world

pytestmark = pytest.mark.neo4j

# id -> (cypher, parameters as a team query declares them)
HOSTILE: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "load_csv_file": ("LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row", []),
    "load_csv_comment_trick": (
        "LOAD/**/CSV FROM $path AS row RETURN row",
        [{"name": "path", "type": "string", "example": "file:///etc/passwd"}],
    ),
    "load_csv_in_subquery": ("CALL () { LOAD CSV FROM 'http://127.0.0.1:9/x.csv' AS row RETURN row } RETURN row", []),
    "backticked_dbms": ("CALL `dbms`.listConfig() YIELD name, value RETURN name, value", []),
    "dbms_list_config": ("CALL dbms.listConfig()", []),
    "dbms_components": ("CALL dbms.components() YIELD name RETURN name", []),
    "query_collector": ("CALL db.stats.retrieve('QUERIES') YIELD data RETURN data", []),
    "show_transactions": ("SHOW TRANSACTIONS", []),
    "show_transactions_yield": (
        "SHOW TRANSACTIONS YIELD currentQuery, parameters RETURN currentQuery, parameters", []),
    "terminate_transactions": ("TERMINATE TRANSACTIONS 'neo4j-transaction-1'", []),
    "show_settings": ("SHOW SETTINGS", []),
    "show_users": ("SHOW USERS", []),
    "create_database": ("CREATE DATABASE intruder", []),
    "create_index": ("CREATE INDEX intruder IF NOT EXISTS FOR (n:Account) ON (n.intruder)", []),
    "write_in_call_subquery": (
        "MATCH (a:Account) CALL (a) { SET a.owned = true } RETURN count(*) AS n", []),
    "create_in_unit_subquery": (
        "MATCH (a:Account {account_id: 'acct-a1'}) CALL (a) { CREATE (:Account {account_id: 'intruder'}) } "
        "RETURN a.account_id AS id", []),
    "commented_delete": ("MATCH (n) /* harmless */ DETACH/**/DELETE n", []),
}


def _raw(qid: str, cypher: str, params: list[dict[str, Any]], owner: str = "mallory") -> dict[str, Any]:
    return {"id": qid, "name": qid, "category": "security", "description": "hostile", "owner": owner,
            "parameters": params, "cypher": cypher}


@pytest.fixture()
def neo(neo4j_store_session: GraphStore) -> Iterator[GraphStore]:
    store = neo4j_store_session
    clear_store(store)
    build_world(store)
    yield store
    clear_store(store)


def _plant(store: GraphStore, qid: str, cypher: str, params: list[dict[str, Any]]) -> None:
    """Put a team query in the graph without going through save (an old or hand-made node)."""
    import json

    store.upsert_nodes(Label.SAVED_QUERY, [{
        "query_id": qid, "name": qid, "category": "security", "description": "planted",
        "parameters": json.dumps(params), "cypher": cypher, "revision": 1, "nodes": "{}", "owner": "mallory",
    }])


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_cypher_is_refused_at_save_by_its_plan_and_at_run(neo: GraphStore, case: str) -> None:
    cypher, params = HOSTILE[case]
    qid = f"hostile_{case}"
    before = neo.counts()
    with pytest.raises(QueryError, match="read-only|cannot plan"):
        save_team_query(neo, _raw(qid, cypher, params))
    assert get_team_query(neo, qid) is None

    # The plan alone is enough: the text pass is only the friendly first look.
    example = {p["name"]: p["example"] for p in params}
    with pytest.raises(UnsafeCypher):
        guard.vet_plan(neo, qid, cypher, example, timeout=30)  # type: ignore[arg-type]

    _plant(neo, qid, cypher, params)
    with pytest.raises(UnsafeCypher):
        run_query(neo, qid, example)
    after = neo.counts()
    assert after["nodes"].pop("SavedQuery") == 1  # the planted query itself, nothing else
    assert after == before
    assert neo.get_node(Label.ACCOUNT, "intruder") is None
    assert not neo.find_nodes(Label.ACCOUNT, {"owned": True})


@pytest.mark.parametrize(
    ("cypher", "reason"),
    [
        ("LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row", "LOAD CSV"),
        ("CALL dbms.listConfig() YIELD name RETURN name", "procedure dbms.listConfig"),
        ("CALL db.stats.retrieve('QUERIES') YIELD data RETURN data", "procedure db.stats.retrieve"),
        ("SHOW TRANSACTIONS", "administration command (ShowTransactions)"),
        ("TERMINATE TRANSACTIONS 'x'", "administration command (TerminateTransactions)"),
        ("SHOW USERS", "administration command (AdministrationCommand)"),
        ("MATCH (a:Account) CALL (a) { SET a.owned = true } RETURN count(*) AS n", "writes (SetProperty)"),
        ("CREATE INDEX intruder IF NOT EXISTS FOR (n:Account) ON (n.intruder)", "schema or administration"),
    ],
)
def test_the_plan_says_what_the_query_does(neo: GraphStore, cypher: str, reason: str) -> None:
    with pytest.raises(UnsafeCypher, match=re.escape(reason)):
        guard.vet_plan(neo, "q", cypher, {}, timeout=30)  # type: ignore[arg-type]


def test_terminate_cannot_kill_a_colleagues_transaction(neo: GraphStore) -> None:
    driver = neo.driver  # type: ignore[attr-defined]
    with driver.session(database=neo.database) as colleague:  # type: ignore[attr-defined]
        tx = colleague.begin_transaction(metadata={"who": "colleague"})
        tx.run("MATCH (a:Account {account_id: $id}) RETURN a", id="acct-a1").consume()
        records, _, _ = driver.execute_query("SHOW TRANSACTIONS YIELD transactionId, metaData RETURN *")
        victim = next(r["transactionId"] for r in records if r["metaData"].get("who") == "colleague")
        _plant(neo, "kill_colleague", "TERMINATE TRANSACTIONS $id",
               [{"name": "id", "type": "string", "example": "x"}])
        with pytest.raises(UnsafeCypher, match="TERMINATE"):
            run_query(neo, "kill_colleague", {"id": victim})
        # The colleague's transaction is still alive and commits.
        assert tx.run("RETURN 1 AS ok").single()["ok"] == 1
        tx.commit()


def test_show_transactions_does_not_expose_a_colleagues_parameters(neo: GraphStore) -> None:
    _plant(neo, "spy", "SHOW TRANSACTIONS YIELD currentQuery, parameters RETURN currentQuery, parameters", [])
    with pytest.raises(UnsafeCypher, match="SHOW TRANSACTIONS"):
        run_query(neo, "spy", {})


@pytest.mark.parametrize(
    "cypher",
    [
        "MATCH (a:Account)-[:PAID_WITH]->(p:PaymentMethod {payment_id: $payment_id}) "
        "RETURN a.account_id AS account_id ORDER BY account_id",
        # Keywords inside strings and comments are data, not clauses.
        "MATCH (a:Account)-[:PAID_WITH]->(p:PaymentMethod {payment_id: $payment_id}) "
        "WHERE a.account_id <> 'SET x = 1; LOAD CSV FROM file:///etc/passwd' // then DETACH DELETE\n"
        "RETURN a.account_id AS account_id ORDER BY account_id",
        "MATCH (a:Account)-[:PAID_WITH]->(p:PaymentMethod {payment_id: $payment_id}) "
        "CALL (a) { MATCH (a)-[:USED_IP]->(ip:IP) RETURN count(ip) AS ips } "
        "RETURN a.account_id AS account_id ORDER BY account_id",
    ],
)
def test_a_legitimate_read_is_saved_and_runs(neo: GraphStore, cypher: str) -> None:
    saved = save_team_query(neo, _raw("team_card_sharers", cypher,
                                      [{"name": "payment_id", "type": "string", "example": "pay-1"}], owner="alice"))
    result = run_query(neo, saved.id, {"payment_id": "pay-1"})
    assert [r["account_id"] for r in result.rows] == ["acct-a1", "acct-a2", "acct-a3"]
    assert not result.truncated


def test_allow_listed_procedures_and_built_in_functions_run(neo: GraphStore) -> None:
    save_team_query(neo, _raw("team_labels", "CALL db.labels() YIELD label RETURN label ORDER BY label", []))
    labels = [r["label"] for r in run_query(neo, "team_labels", {}).rows]
    assert "Account" in labels and "PaymentMethod" in labels
    save_team_query(neo, _raw(
        "team_durations",
        "MATCH (a:Account {account_id: 'acct-a1'}) "
        "RETURN duration.inSeconds(datetime(a.created_at), datetime('2025-04-23T10:00:00Z')).hours AS hours", []))
    assert run_query(neo, "team_durations", {}).rows == [{"hours": 24}]


def test_only_plugin_functions_are_refused(neo: GraphStore) -> None:
    """Whatever plugins a server has, a namespaced function that is not built in is refused
    (a plan never shows what a plugin function does). Built-ins here are the real list."""
    builtins = neo.builtin_functions()  # type: ignore[attr-defined]
    assert "point.distance" in builtins and "apoc.cypher.runFirstColumnSingle" not in builtins
    explained = neo.explain_query("RETURN 1 AS x", {})  # type: ignore[attr-defined]
    guard.check_plan("q", explained, builtins, "RETURN 1 AS x")
    with pytest.raises(UnsafeCypher, match="function apoc.cypher.runFirstColumnSingle"):
        guard.check_plan("q", explained, builtins,
                         "RETURN `apoc`./**/cypher.runFirstColumnSingle('LOAD CSV FROM \"file:///etc/passwd\"', {}) AS x")


def test_the_server_stops_a_query_at_the_timeout(neo: GraphStore) -> None:
    save_team_query(neo, _raw("team_forever", "UNWIND range(1, 100000000000) AS x WITH x WHERE x < 0 RETURN count(*) AS n", []))
    with pytest.raises(StoreError, match="ran longer than 0.5 s"):
        run_query(neo, "team_forever", {}, timeout=0.5)


def test_the_timeout_setting_is_what_runs_use(neo: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    save_team_query(neo, _raw("team_forever", "UNWIND range(1, 100000000000) AS x WITH x WHERE x < 0 RETURN count(*) AS n", []))
    monkeypatch.setenv("SYBILSCOPE_USER_QUERY_TIMEOUT_S", "0.5")
    with pytest.raises(StoreError, match="user_query_timeout_s"):
        run_query(neo, "team_forever", {})


def test_the_row_limit_cuts_and_says_so(neo: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = save_team_query(neo, _raw("team_many", "UNWIND range(1, 50) AS x RETURN x", []))
    cut = run_spec(neo, spec, {}, max_rows=10)
    assert [r["x"] for r in cut.rows] == list(range(1, 11))
    assert cut.truncated and cut.to_json()["row_limit"] == 10 and "first 10 rows" in cut.truncation_note()
    whole = run_spec(neo, spec, {}, max_rows=50)
    assert len(whole.rows) == 50 and not whole.truncated and whole.truncation_note() == ""
    monkeypatch.setenv("SYBILSCOPE_USER_QUERY_ROW_LIMIT", "7")
    assert len(run_spec(neo, spec, {}).rows) == 7


def test_cli_run_notes_a_cut_result(neo: GraphStore, tmp_path: Any) -> None:
    from click.testing import CliRunner

    from app.cli import main
    from tests.conftest import TEST_BOLT_URI

    save_team_query(neo, _raw("team_many", "UNWIND range(1, 50) AS x RETURN x", []))
    result = CliRunner().invoke(main, ["query", "run", "team_many", "--max-rows", "5", "--json",
                                       "--store", TEST_BOLT_URI, "--workspace", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert "only the first 5 rows" in result.stderr
    import json

    data = json.loads(result.stdout)
    assert len(data["rows"]) == 5 and data["truncated"] is True and data["row_limit"] == 5


# ---- the server itself, reached directly (our check bypassed) -------------------------------


def test_the_launched_server_refuses_file_urls() -> None:
    from neo4j import GraphDatabase
    from neo4j.exceptions import ClientError

    from tests.conftest import TEST_BOLT_URI

    with GraphDatabase.driver(TEST_BOLT_URI, auth=None) as driver:
        for url in ("file:///etc/passwd", "file:///../../../../etc/passwd", "file:///salt"):
            with pytest.raises(ClientError, match="allow_csv_import_from_file_urls"):
                driver.execute_query(f"LOAD CSV FROM '{url}' AS row RETURN row LIMIT 1")


def test_the_launched_server_refuses_remote_urls() -> None:
    """A local HTTP server is listening; LOAD CSV is refused before any request reaches it."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from neo4j import GraphDatabase
    from neo4j.exceptions import ClientError

    from tests.conftest import TEST_BOLT_URI

    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
            requests.append(self.path)
            body = b"a,b\n1,2\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    http = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    port = http.server_address[1]
    try:
        with GraphDatabase.driver(TEST_BOLT_URI, auth=None) as driver:
            for host in ("127.0.0.1", "localhost", "[::1]"):
                with pytest.raises(ClientError, match="cypher_ip_blocklist"):
                    driver.execute_query(f"LOAD CSV FROM 'http://{host}:{port}/x.csv' AS row RETURN row")
    finally:
        http.shutdown()
        http.server_close()
    assert requests == []
