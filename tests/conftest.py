"""Shared fixtures: a store of each kind for the contract suite.

The Neo4j half needs the live local server that ``make test`` starts (``SYBILSCOPE_TEST_BOLT_URI``,
default bolt://127.0.0.1:7687). It is never skipped silently: if the server is unreachable those
tests fail; deselect them explicitly with ``-m "not neo4j"`` when working without one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from graph.schema import Label
from graph.store import GraphStore

TEST_BOLT_URI = os.environ.get("SYBILSCOPE_TEST_BOLT_URI", "bolt://127.0.0.1:7687")


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
