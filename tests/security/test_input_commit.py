"""A graph write that fails midway leaves nothing half-done that detection would trust.

Observed before: a full disk during the graph commit left the staging area updated and the
graph half-written; ``detect`` then failed with ``error: 'acct-0000352'`` until the load was
run again. Now the staging commit marks the graph pending and only a finished graph write
clears the mark: detection refuses a staging area whose load did not finish, saying to run
the load again, and the re-run (idempotent, as the bundle contract wants) ends in the graph of
one clean load.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from app.cli import main
from graph.detection import run_detection
from graph.schema import Label
from graph.store import GraphStore
from graph.stores.embedded import EmbeddedStore
from loaders.errors import LoadIncomplete
from loaders.load import load_bundle
from loaders.synthetic import generate
from tests.conftest import clear_store
from tests.contract.test_load import snapshot
from tests.security.input_loads import settings_for
from tests.worlds.bundles import write_bundle

KEY = "commit-test-key"  # one key for every workspace here, so their graphs compare
FIRST = {
    "accounts.csv": "account_id,created_at,email\nfirst-1,2025-04-01T00:00:00Z,a@first.example\nfirst-2,2025-04-01T00:00:00Z,\n",
    "exchanges.csv": "exchange_id,account_id,ts,ip\nf1,first-1,2025-04-02T00:00:00Z,10.9.0.1\nf2,first-2,2025-04-02T00:00:00Z,10.9.0.1\n",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "bundle"
    generate(out, "tiny", 7)
    return out


def _dies_after(monkeypatch: pytest.MonkeyPatch, store: GraphStore, rows: int, exc: BaseException) -> None:
    """Make the store fail once it has been handed ``rows`` rows (nodes and relationships)."""
    written = {"rows": 0}

    def wrap(real: Callable[..., int]) -> Callable[..., int]:
        def dying(kind: Any, *args: Any, **kwargs: Any) -> int:
            batch = args[-1] if args else kwargs.get("rows", [])
            written["rows"] += len(batch)
            if written["rows"] > rows:
                raise exc
            return real(kind, *args, **kwargs)

        return dying

    monkeypatch.setattr(store, "upsert_nodes", wrap(store.upsert_nodes))
    monkeypatch.setattr(store, "upsert_relationships", wrap(store.upsert_relationships))


def _clean_graph(store: GraphStore, tmp_path: Path, bundles: list[Path]) -> Any:
    for bundle in bundles:
        load_bundle(bundle, settings_for(tmp_path / "clean", hash_salt=KEY), store)
    graph = snapshot(store)
    clear_store(store)
    return graph


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt("killed")],
                         ids=["disk-full", "killed"])
def test_a_failed_graph_write_is_refused_by_detection_until_the_load_runs_again(
        store: GraphStore, tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    first = write_bundle(tmp_path / "first", FIRST)
    clean = _clean_graph(store, tmp_path, [first, tiny])
    ws = tmp_path / "ws"
    settings = settings_for(ws, hash_salt=KEY)
    load_bundle(first, settings, store)

    _dies_after(monkeypatch, store, 500, exc)
    with pytest.raises(LoadIncomplete if isinstance(exc, OSError) else KeyboardInterrupt) as failed:
        load_bundle(tiny, settings, store)
    monkeypatch.undo()
    if isinstance(exc, OSError):
        assert str(failed.value) == (
            f"writing the graph failed ([Errno 28] No space left on device); {tiny} is staged but the graph holds "
            "only part of it, and detection refuses to run until the load is run again")
    # the graph holds the first bundle and part of the second, staging all of both
    assert {"first-1", "first-2"} <= {n.key for n in store.iter_nodes(Label.ACCOUNT)}
    assert snapshot(store) != clean

    with pytest.raises(LoadIncomplete) as refused:
        run_detection(store, settings)
    message = str(refused.value)
    assert message.startswith(f"the load of {tiny} (started ")
    assert f"run 'sybilscope load {tiny}' again" in message and "\n" not in message

    report = load_bundle(tiny, settings, store)
    assert report.tables["accounts"]["loaded"] == 302
    assert snapshot(store) == clean
    assert not (ws / "staging" / ".graph-pending.json").exists()
    summary = run_detection(store, settings)
    assert summary["clusters"] > 0


def test_the_cli_detect_says_to_run_the_load_again(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    store = EmbeddedStore(ws / "embedded")
    _dies_after(monkeypatch, store, 300, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(LoadIncomplete):
        load_bundle(tiny, settings_for(ws), store)
    monkeypatch.undo()
    store.close()

    runner = CliRunner()
    result = runner.invoke(main, ["detect", "--workspace", str(ws)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("sybilscope: error: the load of ")
    assert f"run 'sybilscope load {tiny}' again" in lines[0]
    assert "acct-" not in lines[0]

    assert runner.invoke(main, ["load", str(tiny), "--workspace", str(ws)]).exit_code == 0
    result = runner.invoke(main, ["detect", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
