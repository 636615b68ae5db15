"""The live local Neo4j server that the test command started (``sybilscope neo4j start``).

The server is found through the usual settings (``SYBILSCOPE_WORKSPACE``,
``SYBILSCOPE_NEO4J_BOLT_PORT``, ...); ``SYBILSCOPE_TEST_WORKSPACE`` overrides the workspace. Its Bolt
URI is ``SYBILSCOPE_TEST_BOLT_URI`` (default bolt://127.0.0.1:7687).
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlparse

import pytest

from app import neo4j_local
from graph.settings import Settings

pytestmark = pytest.mark.neo4j

TEST_BOLT_URI = os.environ.get("SYBILSCOPE_TEST_BOLT_URI", "bolt://127.0.0.1:7687")


def _settings() -> Settings:
    overrides: dict[str, object] = {
        "workspace": os.environ.get("SYBILSCOPE_TEST_WORKSPACE") or None,
        "neo4j_bolt_port": urlparse(TEST_BOLT_URI).port or 7687,
    }
    return Settings(overrides)


def test_status_reports_the_running_server() -> None:
    status = neo4j_local.status(_settings())
    assert status.running, (
        f"no local Neo4j recorded in {status.home}; start it with 'sybilscope neo4j start' "
        "(and point SYBILSCOPE_WORKSPACE / SYBILSCOPE_TEST_WORKSPACE at its workspace)"
    )
    assert isinstance(status.pid, int) and status.pid > 0
    assert status.version.startswith("5.")
    assert urlparse(status.bolt_uri).port == urlparse(TEST_BOLT_URI).port
    assert urlparse(status.bolt_uri).hostname == "127.0.0.1"
    data = status.to_json()
    assert data["running"] is True and data["pid"] == status.pid


def test_driver_creates_and_reads_a_node() -> None:
    from neo4j import GraphDatabase

    marker = f"local-server-test-{uuid.uuid4()}"
    with GraphDatabase.driver(TEST_BOLT_URI, auth=None) as driver:
        driver.verify_connectivity()
        assert driver.get_server_info().agent.startswith("Neo4j/5.")
        try:
            driver.execute_query("CREATE (:SybilscopeLocalServerTest {marker: $m})", m=marker)
            records, _, _ = driver.execute_query(
                "MATCH (n:SybilscopeLocalServerTest {marker: $m}) RETURN n.marker AS marker",
                m=marker,
            )
            assert [r["marker"] for r in records] == [marker]
        finally:
            driver.execute_query(
                "MATCH (n:SybilscopeLocalServerTest {marker: $m}) DETACH DELETE n", m=marker
            )
        records, _, _ = driver.execute_query(
            "MATCH (n:SybilscopeLocalServerTest {marker: $m}) RETURN count(n) AS n", m=marker
        )
        assert records[0]["n"] == 0
