"""Neo4jStore against a mocked driver: parameters, routing, database, error translation."""

from __future__ import annotations

from unittest.mock import MagicMock

import neo4j
import pytest
from neo4j import RoutingControl
from neo4j.exceptions import AuthError, ClientError, ServiceUnavailable

from graph.store import StoreError, StoreUnavailable
from graph.stores.neo4j_store import Neo4jStore


def make_store(**kwargs: object) -> tuple[Neo4jStore, MagicMock]:
    driver = MagicMock(spec=neo4j.Driver)
    return Neo4jStore(driver, "sybil", uri="bolt://db:7687", **kwargs), driver  # type: ignore[arg-type]


def test_upserts_are_chunked_unwind_batches_with_parameters() -> None:
    store, driver = make_store(batch_size=2)
    driver.execute_query.return_value = ([{"written": 2}], None, None)
    written = store.upsert_nodes("Account", [{"account_id": f"a{i}", "country": "DE"} for i in range(4)])
    assert written == 4
    assert driver.execute_query.call_count == 2
    query = driver.execute_query.call_args.args[0]
    kwargs = driver.execute_query.call_args.kwargs
    assert query.startswith("UNWIND $rows AS row MERGE (n:`Account`")
    assert kwargs["parameters_"]["rows"] == [
        {"key": "a2", "props": {"country": "DE"}},
        {"key": "a3", "props": {"country": "DE"}},
    ]
    assert kwargs["database_"] == "sybil"
    assert kwargs["routing_"] == RoutingControl.WRITE


def test_reads_route_to_readers() -> None:
    store, driver = make_store()
    driver.execute_query.return_value = ([], None, None)
    assert store.get_node("Account", "a1") is None
    kwargs = driver.execute_query.call_args.kwargs
    assert kwargs["routing_"] == RoutingControl.READ
    assert kwargs["parameters_"] == {"key": "a1"}


def test_unreachable_server_names_the_uri_and_the_fix() -> None:
    store, driver = make_store()
    driver.verify_connectivity.side_effect = ServiceUnavailable("Connection refused")
    with pytest.raises(StoreUnavailable) as info:
        store.ping()
    message = str(info.value)
    assert "bolt://db:7687" in message and "sybilscope neo4j start" in message


def test_bad_credentials_say_which_variables_to_set() -> None:
    store, driver = make_store()
    driver.execute_query.side_effect = AuthError("unauthorized")
    with pytest.raises(StoreUnavailable, match="SYBILSCOPE_NEO4J_PASSWORD"):
        store.counts()


def test_server_errors_become_store_errors_naming_the_operation() -> None:
    store, driver = make_store()
    driver.execute_query.side_effect = ClientError("boom")
    with pytest.raises(StoreError, match="neo4j store: find_nodes failed"):
        store.find_nodes("Account", {"country": "DE"})


def test_closing_closes_only_a_driver_it_was_told_to_own() -> None:
    store, driver = make_store()
    store.close()
    driver.close.assert_not_called()
    owned, owned_driver = make_store(close_driver=True)
    owned.close()
    owned_driver.close.assert_called_once()


def _recording_driver() -> tuple[Neo4jStore, list[list[dict[str, object]]]]:
    """A store whose driver records every batch it is sent (from whichever writer thread)."""
    import threading

    store, driver = make_store(batch_size=2, writers=2)
    sent: list[list[dict[str, object]]] = []
    lock = threading.Lock()

    def execute_query(query: str, parameters_: dict[str, object], **_: object) -> object:
        rows = parameters_["rows"]
        assert isinstance(rows, list)
        with lock:
            sent.append(rows)
        return ([{"written": len(rows)}], None, None)

    driver.execute_query.side_effect = execute_query
    return store, sent


def test_two_writers_send_every_row_exactly_once_and_keep_last_row_wins() -> None:
    store, sent = _recording_driver()
    rows = [{"start": f"a{i % 7}", "end": f"10.0.0.{i % 5}", "count": i} for i in range(40)]
    assert store.upsert_relationships("USED_IP", "Account", "IP", rows) == 40
    flat = [row for batch in sent for row in batch]
    assert sorted(r["props"]["count"] for r in flat) == list(range(40))  # type: ignore[index]
    # a repeated (start, end) pair is sent in input order, so its last row wins as on embedded
    per_pair: dict[tuple[object, object], list[int]] = {}
    for row in flat:
        per_pair.setdefault((row["start"], row["end"]), []).append(row["props"]["count"])  # type: ignore[index]
    assert all(counts == sorted(counts) for counts in per_pair.values())
    assert any(len(counts) > 1 for counts in per_pair.values())
    assert len(sent) >= 20  # batch_size 2: really chunked


def test_two_writers_for_nodes_split_keys_without_loss() -> None:
    store, sent = _recording_driver()
    rows = [{"account_id": f"a{i:02d}", "n": i} for i in range(16)]
    assert store.upsert_nodes("Account", rows) == 16
    assert sorted(str(r["key"]) for batch in sent for r in batch) == [f"a{i:02d}" for i in range(16)]
