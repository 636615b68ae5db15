"""What only the embedded store has to prove: persistence, atomic batches (in memory too),
sharing between processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from graph.store import StoreError
from graph.stores.embedded import GRAPH_FILE, LEGACY_FILE, EmbeddedStore


def test_writes_persist_and_another_instance_sees_them(tmp_path: Path) -> None:
    first = EmbeddedStore(tmp_path)
    first.upsert_nodes("Account", [{"account_id": "a1", "country": "DE"}])
    second = EmbeddedStore(tmp_path)
    node = second.get_node("Account", "a1")
    assert node is not None and node.props == {"country": "DE"}
    # and a later write by the first instance is picked up by the second without reopening
    first.upsert_nodes("Account", [{"account_id": "a2"}])
    assert second.counts()["nodes"] == {"Account": 2}


def test_failed_batch_is_discarded_as_a_whole(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    store.upsert_nodes("Account", [{"account_id": "keep"}])
    with pytest.raises(RuntimeError), store.batch():
        store.upsert_nodes("Account", [{"account_id": "lost"}])
        raise RuntimeError("killed midway")
    assert [n.key for n in store.find_nodes("Account")] == ["keep"]
    assert [n.key for n in EmbeddedStore(tmp_path).find_nodes("Account")] == ["keep"]


def test_batch_writes_the_file_once_at_the_end(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    with store.batch():
        store.upsert_nodes("Account", [{"account_id": "a1"}])
        assert not (tmp_path / GRAPH_FILE).exists()
        store.upsert_nodes("Account", [{"account_id": "a2"}])
    assert GRAPH_FILE == "graph.jsonl.gz" and (tmp_path / GRAPH_FILE).exists()
    assert not (tmp_path / LEGACY_FILE).exists()  # never a pickle again
    assert not list(tmp_path.glob(".graph-*.tmp"))


def test_writers_in_two_processes_do_not_lose_updates(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    store.upsert_nodes("Account", [{"account_id": "mine"}])
    script = (
        "import sys; from graph.stores.embedded import EmbeddedStore; "
        "EmbeddedStore(sys.argv[1]).upsert_nodes('Account', [{'account_id': 'theirs'}])"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True)
    # this instance has a stale copy; its next write must merge with the other process's
    store.upsert_nodes("Account", [{"account_id": "later"}])
    assert sorted(n.key for n in EmbeddedStore(tmp_path).iter_nodes("Account")) == ["later", "mine", "theirs"]


def test_memory_only_store_rolls_a_failed_batch_back_too() -> None:
    store = EmbeddedStore(None)
    store.upsert_relationships("USED_IP", "Account", "IP", [{"start": "keep", "end": "10.0.0.1", "count": 1}])
    with pytest.raises(RuntimeError), store.batch():
        store.upsert_relationships("USED_IP", "Account", "IP", [{"start": "keep", "end": "10.0.0.1", "count": 9}])
        store.delete_nodes([("IP", "10.0.0.1")])
        store.upsert_nodes("Account", [{"account_id": "lost"}])
        raise RuntimeError("killed midway")
    assert [n.key for n in store.find_nodes("Account")] == ["keep"]
    (rel,) = store.iter_relationships("USED_IP")
    assert rel.props == {"count": 1}


def test_a_commit_that_cannot_write_the_file_keeps_nothing_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EmbeddedStore(tmp_path)
    store.upsert_nodes("Account", [{"account_id": "keep"}])

    def disk_full() -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_persist", disk_full)
    with pytest.raises(StoreError, match="No space left"), store.batch():
        store.upsert_nodes("Account", [{"account_id": "unsaved"}])
    monkeypatch.undo()
    assert [n.key for n in store.find_nodes("Account")] == ["keep"]
    store.upsert_nodes("Account", [{"account_id": "later"}])
    assert sorted(n.key for n in EmbeddedStore(tmp_path).iter_nodes("Account")) == ["keep", "later"]


def test_memory_only_store_needs_no_directory() -> None:
    store = EmbeddedStore(None)
    store.upsert_nodes("Device", [{"device_id": "d1"}])
    assert store.counts() == {"nodes": {"Device": 1}, "relationships": {}}
