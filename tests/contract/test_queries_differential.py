"""Every built-in query, with its example parameters, gives the same rows on both stores.

On the embedded store a query runs as its Python twin; on Neo4j as its Cypher text. Each test
writes the fixture world into the parametrised ``store`` and compares the result with the
Python twin run on an in-memory embedded copy of the same world; on Neo4j it also runs the
Python twin against Neo4j itself (the twin uses only the GraphStore API), so the Cypher text and
the Python code are checked against each other on identical data.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from graph.queries.library import QueryError, builtin_queries
from graph.queries.runner import QueryResult, is_cypher_store, run_query
from graph.store import GraphStore
from graph.stores.embedded import EmbeddedStore
from tests.worlds.evidence import build_world

QUERY_IDS = sorted(builtin_queries())


@pytest.fixture(scope="module")
def reference_world() -> EmbeddedStore:
    store = EmbeddedStore(None)
    build_world(store)
    return store


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) and type(a) is type(b)


def _assert_same(got: QueryResult, want: QueryResult) -> None:
    assert got.columns == want.columns
    assert len(got.rows) == len(want.rows), (got.rows, want.rows)
    for g, w in zip(got.rows, want.rows, strict=True):
        for col in want.columns:
            assert _same(g[col], w[col]), (col, g, w)


@pytest.mark.parametrize("query_id", QUERY_IDS)
def test_builtin_query_agrees_across_stores(store: GraphStore, reference_world: EmbeddedStore, query_id: str) -> None:
    build_world(store)
    params = builtin_queries()[query_id].example_params()
    want = run_query(reference_world, query_id, params, engine="python")
    assert want.rows, f"{query_id}: the fixture gives no rows, so the comparison would prove nothing"
    got = run_query(store, query_id, params)
    assert got.engine == ("cypher" if is_cypher_store(store) else "python")
    _assert_same(got, want)
    if is_cypher_store(store):
        _assert_same(run_query(store, query_id, params, engine="python"), want)


@pytest.mark.neo4j
def test_saved_cypher_runs_read_only_on_neo4j(neo4j_store_session: GraphStore) -> None:
    store = neo4j_store_session
    before = store.counts()
    with pytest.raises(QueryError, match="read-only") as info:
        store.run_read_query("CREATE (n:Account {account_id: $id}) RETURN n", {"id": "intruder"})  # type: ignore[attr-defined]
    assert "CREATE" in str(info.value)
    assert store.get_node("Account", "intruder") is None
    assert store.counts() == before
    with pytest.raises(QueryError) as syntax:
        store.run_read_query("MATCH (n RETURN n", {})  # type: ignore[attr-defined]
    assert "SyntaxError" in str(syntax.value) and "Traceback" not in str(syntax.value)


def test_team_cypher_runs_on_neo4j_and_is_refused_on_embedded(store: GraphStore) -> None:
    from graph.queries.team import save_team_query

    build_world(store)
    save_team_query(store, {
        "id": "team_card_sharers", "name": "Accounts on a card", "category": "payment", "description": "d",
        "owner": "alice", "parameters": [{"name": "payment_id", "type": "string", "example": "pay-1"}],
        "cypher": "MATCH (a:Account)-[:PAID_WITH]->(p:PaymentMethod {payment_id: $payment_id}) "
                  "RETURN a.account_id AS account_id, a ORDER BY account_id",
        "nodes": {"account_id": "Account"},
    })
    if not is_cypher_store(store):
        with pytest.raises(QueryError, match="only runs on Neo4j"):
            run_query(store, "team_card_sharers", {"payment_id": "pay-1"})
        return
    result = run_query(store, "team_card_sharers", {"payment_id": "x' OR 1=1 //"})
    assert result.rows == []
    result = run_query(store, "team_card_sharers", {"payment_id": "pay-1"})
    assert [r["account_id"] for r in result.rows] == ["acct-a1", "acct-a2", "acct-a3"]
    assert result.rows[0]["a"]["label"] == "Account" and result.rows[0]["a"]["key"] == "acct-a1"
    assert result.node_refs() == [("Account", "acct-a1"), ("Account", "acct-a2"), ("Account", "acct-a3")]
