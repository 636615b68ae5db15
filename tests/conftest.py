"""Shared fixtures: a store of each kind for the contract suite.

The Neo4j half needs the live local server that ``make test`` starts (``SYBILSCOPE_TEST_BOLT_URI``,
default bolt://127.0.0.1:7687). It is never skipped silently: if the server is unreachable those
tests fail; deselect them explicitly with ``-m "not neo4j"`` when working without one.

The contract tests empty that database before and after each test, so the suite refuses one
that already holds data unless it is the suite's own server (the one ``make test`` runs from
``SYBILSCOPE_TEST_WORKSPACE`` on that port): pointed at a real server by mistake, it would
delete a loaded world.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from graph.schema import Label
from graph.store import GraphStore

TEST_BOLT_URI = os.environ.get("SYBILSCOPE_TEST_BOLT_URI", "bolt://127.0.0.1:7687")


def suites_own_server(uri: str) -> bool:
    """Whether ``uri`` is the server ``make test`` started from ``SYBILSCOPE_TEST_WORKSPACE``
    (its launcher's state file names that Bolt port)."""
    workspace = os.environ.get("SYBILSCOPE_TEST_WORKSPACE")
    if not workspace:
        return False
    try:
        state = json.loads((Path(workspace) / "neo4j" / "server.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and state.get("bolt_port") == urlsplit(uri).port


def refuse_foreign_data(store: GraphStore, uri: str) -> None:
    """Fail before the first test empties a database that is not the suite's and holds data."""
    held = sum(store.counts()["nodes"].values())
    if held and not suites_own_server(uri):
        pytest.fail(
            f"{uri} holds {held:,} nodes and is not the test server 'make test' starts; the contract tests "
            "delete everything in it. Point SYBILSCOPE_TEST_BOLT_URI at an empty server (or run 'make test')."
        )


def clear_store(store: GraphStore) -> None:
    for label in Label:
        store.delete_label(label)


@pytest.fixture(scope="session")
def neo4j_store_session() -> Iterator[GraphStore]:
    from graph.settings import Settings
    from graph.store import StoreUnavailable
    from graph.stores import open_store

    settings = Settings({"store": TEST_BOLT_URI, "batch_size": 500}, environ={})
    try:
        store = open_store(settings)
    except StoreUnavailable as exc:
        pytest.fail(f"the Neo4j test server is not reachable ({exc}); run the suite with 'make test'")
    refuse_foreign_data(store, TEST_BOLT_URI)
    yield store
    store.close()


@pytest.fixture(params=["embedded", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    """An empty store of each kind."""
    if request.param == "embedded":
        from graph.stores.embedded import EmbeddedStore

        yield EmbeddedStore(tmp_path / "embedded")
    else:
        neo = request.getfixturevalue("neo4j_store_session")
        clear_store(neo)
        yield neo
        clear_store(neo)
