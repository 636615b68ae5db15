"""The text pass: the first, friendly look at user Cypher, and the only check the embedded
store (no Cypher engine) can make when a team query is saved there. Comments, quoting and
string literals must neither hide a clause nor invent one."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph.queries.guard import Explained, code_text, plan_refusals, plan_steps, text_refusal
from graph.queries.library import QueryError
from graph.queries.team import list_team_queries, save_team_query
from graph.stores.embedded import EmbeddedStore


@pytest.mark.parametrize(
    ("cypher", "why"),
    [
        ("LOAD/**/CSV FROM $path AS row RETURN row", "'LOAD CSV'"),
        ("LOAD // a comment\n CSV FROM $path AS row RETURN row", "'LOAD CSV'"),
        ("CALL `dbms`.listConfig() YIELD name RETURN name", "'dbms.listConfig'"),
        ("CALL `dbms` . `listConfig`", "'dbms.listConfig'"),
        ("CALL apoc.load.json('file:///etc/passwd') YIELD value RETURN value", "'apoc.load.json'"),
        ("CALL db.stats.retrieve('QUERIES')", "'db.stats.retrieve'"),
        ("SHOW TRANSACTIONS", "'SHOW TRANSACTIONS'"),
        ("show  settings", "'SHOW SETTINGS'"),
        ("TERMINATE TRANSACTIONS 'neo4j-transaction-7'", "'TERMINATE'"),
        ("MATCH (a) CALL (a) { SET a.x = 1 } RETURN count(*) AS n", "'SET'"),
        ("MATCH (n) DETACH/**/DELETE n", "'DETACH'"),
        ("CREATE DATABASE intruder", "'CREATE'"),
    ],
)
def test_disguised_clauses_are_seen(cypher: str, why: str) -> None:
    refusal = text_refusal(cypher)
    assert refusal is not None and why in refusal


@pytest.mark.parametrize(
    "cypher",
    [
        "MATCH (a:Account) WHERE a.note = 'SET x; LOAD CSV FROM file:///etc/passwd' RETURN a.account_id AS id",
        'MATCH (a:Account) WHERE a.note <> "it\'s \\" DELETE" RETURN a.account_id AS id',
        "MATCH (a:Account) // then DETACH DELETE a\nRETURN a.account_id AS id",
        "MATCH (a:Account) /* CALL dbms.listConfig() */ RETURN a.set AS set_value, a.created_at AS created",
        "MATCH (a:`Account`) RETURN a {.account_id, show: 1} AS row",
        "CALL db.labels() YIELD label RETURN label",
        "MATCH (a:Account) CALL (a) { MATCH (a)-[:USED_IP]->(i:IP) RETURN count(i) AS n } RETURN n",
    ],
)
def test_plain_reads_pass(cypher: str) -> None:
    assert text_refusal(cypher) is None


def test_code_text_blanks_strings_and_comments_and_unquotes_names() -> None:
    assert code_text("RETURN 'a // b' AS x // c") == "RETURN '' AS x  "
    assert code_text("MATCH (n:`My Label`) /* x */ RETURN n") == "MATCH (n:My_Label)   RETURN n"
    assert code_text("RETURN `a``b`") == "RETURN a_b"


def test_the_embedded_store_refuses_disguised_writes_at_save(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    for cypher in ("LOAD/**/CSV FROM $ip AS row RETURN row", "CALL `dbms`.listConfig()"):
        with pytest.raises(QueryError, match="read-only"):
            save_team_query(store, {"id": "team_x", "name": "n", "category": "c", "description": "d",
                                    "owner": "mallory", "cypher": cypher,
                                    "parameters": [{"name": "ip", "type": "string", "example": "x"}]})
    assert list_team_queries(store) == []


def test_plan_steps_read_the_driver_plan_shape() -> None:
    """The shape ResultSummary.plan has (as the 5.26 server returns it for a SHOW USERS)."""
    plan = {"operatorType": "AdministrationCommand@system", "identifiers": [],
            "args": {"runtime": "SYSTEM", "planner": "ADMINISTRATION"}, "children": []}
    steps = plan_steps(plan)
    assert [(s.operator, s.database, s.runtime) for s in steps] == [("AdministrationCommand", "system", "SYSTEM")]
    reasons = plan_refusals(Explained("s", "neo4j", steps), ["count"])
    assert any("administration command" in r for r in reasons)
    assert any("database 'system'" in r for r in reasons)
    nested = {"operatorType": "ProduceResults@neo4j", "args": {"Details": "x"}, "children": [
        {"operatorType": "Expand(All)@neo4j", "args": {"Details": "(a)-[r]->(b)"}, "children": []}]}
    assert [s.operator for s in plan_steps(nested)] == ["ProduceResults", "Expand"]
    assert plan_refusals(Explained("r", "neo4j", plan_steps(nested)), []) == []
