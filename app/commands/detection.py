"""``sybilscope detect`` and ``sybilscope evaluate LABELS_FILE [--json PATH]``.

``detect`` runs graph/detection.py over the configured store and prints its summary JSON.
``evaluate`` scores the stored detection against labels.csv (groups.csv beside it when present)
beside the two baselines of graph/evaluation.py: a rich table on the terminal, the full report
as JSON with ``--json``.
"""

from __future__ import annotations

import json
from pathlib import Path

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

METHOD_TITLES = ("detection", "baseline: shared IP/card/device", "baseline: Neo4j fraud rule")


@click.command("detect")
@common_options
def detect_cmd(settings: Settings) -> None:
    """Compute links, clusters, scores and attribution suggestions; write them to the store."""
    from graph.detection import run_detection

    with open_configured_store(settings) as store:
        if show_progress(settings):
            from rich.console import Console

            with Console(stderr=True).status("detecting") as status:
                summary = run_detection(store, settings, phase=lambda text: status.update(f"detecting: {text}"))
        elif progress_lines(settings):
            say = StepLines("detect")
            summary = run_detection(store, settings, phase=say)
            say(f"done: {summary['clusters']:,} clusters, {summary['flagged']:,} flagged")
        else:
            summary = run_detection(store, settings)
    emit_json(summary)


@click.command("evaluate")
@common_options
@click.argument("labels_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the full report as JSON to this path.")
def evaluate_cmd(settings: Settings, labels_file: Path, json_path: Path | None) -> None:
    """Score the current detection against LABELS_FILE (labels.csv), beside the baselines."""
    from rich.console import Console
    from rich.table import Table

    from graph.evaluation import evaluate, table_rows

    with open_configured_store(settings) as store:
        report = evaluate(store, labels_file)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2))
    table = Table(title=f"Evaluation against {labels_file}")
    table.add_column("metric")
    for title in METHOD_TITLES:
        table.add_column(title, justify="right")
    for row in table_rows(report):
        table.add_row(*row)
    Console(width=140).print(table)
