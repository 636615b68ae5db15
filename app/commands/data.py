"""``sybilscope load BUNDLE_DIR [--report-json PATH]``: load an input bundle (input-bundle.md).

Stages and checks the whole bundle before touching the store; a file-level fault exits non-zero
with one line naming the file and the fault. The report (counts per table, ignored files,
quarantine path) goes to ``--report-json`` and, as JSON, to stdout; progress bars and a summary
table go to stderr when it is a terminal (setting ``progress``: 'lines' writes one line per step
instead, 'off' nothing). Into an empty database of this workspace's running local
Neo4j the graph is written by Neo4j's importer (the server is stopped and started again for it);
the report's ``graph_path`` says which path ran.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from app.commands.common import (
    StepLines,
    common_options,
    emit_json,
    open_configured_store,
    progress_lines,
    show_progress,
)
from graph.settings import Settings

if TYPE_CHECKING:
    from loaders.progress import LoadProgress


def _load_progress(settings: Settings) -> bool | LoadProgress:
    if progress_lines(settings):
        from loaders.progress import LineProgress

        return LineProgress(StepLines("load"))
    return show_progress(settings)


@click.command("load")
@common_options
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--report-json", "report_json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the load report as JSON to PATH.")
def load_cmd(settings: Settings, bundle_dir: Path, report_json: Path | None) -> None:
    """Load an input bundle into the staging area and the store."""
    from loaders.load import load_bundle

    with open_configured_store(settings) as store:
        importer = None
        if settings.is_neo4j:
            from app.neo4j_local.importer import LocalGraphImport

            importer = LocalGraphImport(settings, store, echo=lambda text: click.echo(text, err=True))
        report = load_bundle(bundle_dir, settings, store, progress=_load_progress(settings), importer=importer)
    data = report.to_json()
    if report_json is not None:
        report_json.parent.mkdir(parents=True, exist_ok=True)
        report_json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    emit_json(data)
