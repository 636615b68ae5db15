"""The staging floor: the one DuckDB connection factory, SQL literals, the layout on disk, and the
registry of which staged column backs each shared entity."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graph import workspace as ws_paths
from graph.schema import ACCOUNT_SOURCE, ENTITY_SOURCES, Label, primary_source
from graph.settings import Settings
from graph.staging import TABLES, connect, has_table, sql_list, sql_str, table_dir, table_glob
from graph.stores.embedded import EmbeddedStore
from loaders.load import load_bundle
from tests.contract.test_load import _full


def _setting(con: object, name: str) -> object:
    return con.execute("SELECT current_setting($n)", {"n": name}).fetchone()[0]  # type: ignore[attr-defined]


def test_connect_applies_every_option_and_always_utc(tmp_path: Path) -> None:
    with connect(threads=1, memory_limit="1GB", temp_directory=tmp_path / "spill", preserve_insertion_order=False) as con:
        assert _setting(con, "TimeZone") == "UTC"
        assert _setting(con, "threads") == 1
        with connect() as default:
            assert _setting(con, "memory_limit") != _setting(default, "memory_limit")
        assert _setting(con, "temp_directory") == str(tmp_path / "spill")
        assert _setting(con, "preserve_insertion_order") is False
        # a zoned time is shown in UTC, whatever the machine's zone
        shown = con.execute("SELECT CAST(TIMESTAMPTZ '2025-04-22 12:00:00+02' AS VARCHAR)").fetchone()[0]
        assert shown == "2025-04-22 10:00:00+00"
    with connect() as plain:
        assert _setting(plain, "TimeZone") == "UTC"
        assert _setting(plain, "preserve_insertion_order") is True


def test_sql_literals_survive_quotes_in_paths_and_ids(tmp_path: Path) -> None:
    odd = tmp_path / "it's here"
    odd.mkdir()
    for i in range(2):
        pq.write_table(pa.table({"n": [i]}), odd / f"o'{i}.parquet")
    files = sorted(odd.glob("*.parquet"))
    with connect() as con:
        assert con.execute(f"SELECT {sql_str(chr(39) + 'x' + chr(39) * 2)}").fetchone()[0] == "'x''"
        rows = con.execute(f"SELECT n FROM read_parquet({sql_list(files)}) ORDER BY n").fetchall()  # noqa: S608
    assert rows == [(0,), (1,)]
    assert sql_list([]) == "[]"


def test_workspace_layout_is_what_existing_workspaces_hold(tmp_path: Path) -> None:
    """Workspaces on disk were written with these names: renaming one loses their data."""
    w = tmp_path
    assert ws_paths.staging_dir(w) == w / "staging"
    assert table_dir(w, "exchanges") == w / "staging" / "exchanges"
    assert ws_paths.templates_path(w) == w / "staging" / "templates.parquet"
    assert ws_paths.bundles_path(w) == w / "staging" / "bundles.json"
    assert ws_paths.load_lock_path(w) == w / "staging" / ".load.lock"
    assert ws_paths.stage_tmp_dir(w, "abc") == w / "staging" / ".tmp-abc"
    assert ws_paths.scratch_dir(w, "graph") == w / "staging" / ".graph-duckdb"
    assert ws_paths.quarantine_path(w, "abc") == w / "quarantine" / "abc.jsonl"
    assert ws_paths.salt_path(w) == w / "salt"
    assert ws_paths.embedded_dir(w) == w / "embedded"
    assert ws_paths.neo4j_dir(w) == w / "neo4j"
    assert ws_paths.hubs_path(w) == w / "detection" / "hubs.json"
    assert ws_paths.last_run_path(w) == w / "detection" / "last_run.json"
    assert ws_paths.demo_bundle_dir(w, "small", 7) == w / "demo-bundle-small-7"
    assert ws_paths.demo_load_report_path(w) == w / "demo-load-report.json"


def test_stage_tmp_dirs_finds_only_loads_in_progress(tmp_path: Path) -> None:
    for name in (".tmp-b", ".tmp-a", "exchanges", ".graph-duckdb"):
        (ws_paths.staging_dir(tmp_path) / name).mkdir(parents=True)
    assert ws_paths.stage_tmp_dirs(tmp_path) == [ws_paths.stage_tmp_dir(tmp_path, "a"), ws_paths.stage_tmp_dir(tmp_path, "b")]
    assert ws_paths.stage_tmp_dirs(tmp_path / "none") == []


def test_unknown_table_is_refused_before_any_path_is_built(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown staged table"):
        table_glob(tmp_path, "../salt")
    assert not has_table(tmp_path, "exchanges")


def test_registered_sources_trace_every_entity_the_loader_writes(tmp_path: Path) -> None:
    """Every shared-entity node a load gives is found in the staged columns the registry names
    for its label, so the report and the UI can show the rows behind any of them."""
    ws = tmp_path / "ws"
    store = EmbeddedStore(ws_paths.embedded_dir(ws))
    load_bundle(_full(tmp_path / "b"), Settings({"workspace": str(ws), "hash_salt": "s"}, environ={}), store)
    with connect() as con:
        for label, sources in ENTITY_SOURCES.items():
            keys = {n.key for n in store.iter_nodes(label)}
            assert keys, label
            staged: set[str] = set()
            for table, column in sources:
                assert table in TABLES and has_table(ws, table), (label, table)
                staged |= {str(r[0]) for r in con.execute(
                    f'SELECT DISTINCT "{column}" FROM read_parquet($g) WHERE "{column}" IS NOT NULL',  # noqa: S608
                    {"g": table_glob(ws, table)},
                ).fetchall()}
            assert keys <= staged, (label, keys - staged)
        accounts = {n.key for n in store.iter_nodes(Label.ACCOUNT)}
        staged_accounts = con.execute(
            f'SELECT list(DISTINCT "{ACCOUNT_SOURCE.column}") FROM read_parquet($g)',  # noqa: S608
            {"g": table_glob(ws, ACCOUNT_SOURCE.table)},
        ).fetchone()[0]
    assert accounts == set(staged_accounts)


def test_primary_source_is_the_first_registered_one() -> None:
    assert primary_source(Label.IP) == ("exchanges", "ip")
    assert primary_source("PaymentMethod") == ("payments", "payment_id")
    assert primary_source(Label.CLUSTER) is None
    assert primary_source("NoSuchLabel") is None
