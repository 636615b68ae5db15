"""Where everything lives in a workspace (the ``workspace`` setting): the one module that builds
workspace paths, so that each name on disk is written once and every floor finds the same files.

Layout (``<workspace>/``)::

    staging/                       the staged rows (graph.staging.layout describes its contents)
        <table>/<bundle_id>-<part>.parquet
        templates.parquet
        bundles.json
        .tmp-<bundle_id>/          a load's work in progress, moved into place on commit
        .load.lock                 held by the one load running in this workspace
        .<job>-duckdb/             DuckDB spill space of a big job (graph writing, detection)
    quarantine/<bundle_id>.jsonl   the rows a load refused, one JSON object per row
    salt                           the hashing salt generated for this workspace
    embedded/                      the embedded graph store (graph.stores.embedded)
        graph.jsonl.gz             the graph, as data (graph.stores.embedded_format)
        graph.lock                 held by the store's writers
    neo4j/                         the local Neo4j server's home (data, logs, pid file)
    detection/hubs.json            every shared value detection refused as evidence
    detection/last_run.json        the last detection run's summary
    detection/figures.npz          the last run's figure context (graph.saved_context)
    demo-bundle-<scale>-<seed>/    the bundle ``sybilscope demo`` generated
    demo-load-report.json          that demo load's report

The paths are plain: nothing here creates, checks or reads anything (graph.trust checks that
what is trusted is this user's and writable by no one else).
"""

from __future__ import annotations

from pathlib import Path

STAGE_TMP_PREFIX = ".tmp-"


def staging_dir(workspace: Path) -> Path:
    """The staging area: every accepted input row, as Parquet per table."""
    return workspace / "staging"


def staged_table_dir(workspace: Path, table: str) -> Path:
    """The directory of one staged table's Parquet files (``graph.staging.table_dir`` checks
    the table name first)."""
    return staging_dir(workspace) / table


def templates_path(workspace: Path) -> Path:
    """One row per prompt template of every bundle, with its MinHash."""
    return staging_dir(workspace) / "templates.parquet"


def bundles_path(workspace: Path) -> Path:
    """The record of the bundles loaded: id, path, loaded_at, counts."""
    return staging_dir(workspace) / "bundles.json"


def graph_pending_path(workspace: Path) -> Path:
    """The marker of a load whose graph write has not finished (graph.staging.pending)."""
    return staging_dir(workspace) / ".graph-pending.json"


def load_lock_path(workspace: Path) -> Path:
    """The lock that keeps two loads into one workspace from interleaving."""
    return staging_dir(workspace) / ".load.lock"


def stage_tmp_dir(workspace: Path, bundle_id: str) -> Path:
    """Where a load builds a bundle's staged files before committing them."""
    return staging_dir(workspace) / f"{STAGE_TMP_PREFIX}{bundle_id}"


def stage_tmp_dirs(workspace: Path) -> list[Path]:
    """Every load-in-progress directory present (under the load lock: killed loads' leftovers)."""
    return sorted(staging_dir(workspace).glob(f"{STAGE_TMP_PREFIX}*"))


def scratch_dir(workspace: Path, job: str) -> Path:
    """DuckDB's spill space for one kind of big job over the staging area (``graph``,
    ``detect``), kept apart so that concurrent jobs never share temporary files."""
    return staging_dir(workspace) / f".{job}-duckdb"


def quarantine_dir(workspace: Path) -> Path:
    """The rows loads refused, one JSONL file per bundle."""
    return workspace / "quarantine"


def quarantine_path(workspace: Path, bundle_id: str) -> Path:
    """One bundle's quarantined rows: table, file, row, reason, raw per line."""
    return quarantine_dir(workspace) / f"{bundle_id}.jsonl"


def salt_path(workspace: Path) -> Path:
    """The random hashing salt generated once per workspace (when no ``hash_salt`` is set)."""
    return workspace / "salt"


def embedded_dir(workspace: Path) -> Path:
    """The embedded (networkx) graph store's directory."""
    return workspace / "embedded"


def neo4j_dir(workspace: Path) -> Path:
    """The local Neo4j server's home: its data, logs and pid file."""
    return workspace / "neo4j"


def detection_dir(workspace: Path) -> Path:
    """The reports of the last detection run."""
    return workspace / "detection"


def hubs_path(workspace: Path) -> Path:
    """Every shared value detection refused as evidence (carrier NAT, webmail, over the cap)."""
    return detection_dir(workspace) / "hubs.json"


def last_run_path(workspace: Path) -> Path:
    """The summary of the last detection run."""
    return detection_dir(workspace) / "last_run.json"


def figures_path(workspace: Path) -> Path:
    """The figure context of the last detection run, which merges and splits refigure with."""
    return detection_dir(workspace) / "figures.npz"


def demo_bundle_dir(workspace: Path, scale: str, seed: int) -> Path:
    """The synthetic bundle ``sybilscope demo`` generates for a scale and seed."""
    return workspace / f"demo-bundle-{scale}-{seed}"


def demo_load_report_path(workspace: Path) -> Path:
    """The load report of the demo's bundle."""
    return workspace / "demo-load-report.json"
