"""``sybilscope generate OUT_DIR --scale tiny|small|medium|seed --seed N``: a synthetic world.

Writes an input bundle plus ``labels.csv`` and ``groups.csv`` (see loaders/synthetic.py) and
prints a summary JSON on stdout; progress goes to stderr when it is a terminal.
"""

from __future__ import annotations

from pathlib import Path

import click

from app.commands.common import common_options, emit_json, show_progress
from graph.settings import Settings
from loaders.synthetic_spec import DEFAULT_CHUNK_ROWS, SCALES


@click.command("generate")
@common_options
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--scale", type=click.Choice(list(SCALES)), default="small", show_default=True)
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, byte-identical bundle.")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=DEFAULT_CHUNK_ROWS, show_default=True,
              help="Exchanges per Parquet row group (bounds memory; the data do not depend on it).")
def generate_cmd(settings: Settings, out_dir: Path, scale: str, seed: int, chunk_rows: int) -> None:
    """Write a synthetic input bundle with labels and groups."""
    from loaders.synthetic import generate  # numpy/pyarrow/duckdb only when generating

    if not show_progress():
        emit_json(generate(out_dir, scale, seed, chunk_rows=chunk_rows))
        return
    from rich.progress import Progress

    with Progress(transient=True, console=_stderr_console()) as bar:
        task = bar.add_task(f"generating {scale} world (exchanges)", total=None)
        result = generate(
            out_dir, scale, seed, chunk_rows=chunk_rows,
            on_plan=lambda total: bar.update(task, total=total),
            progress=lambda n: bar.advance(task, n),
        )
    emit_json(result)


def _stderr_console():  # noqa: ANN202 - rich Console
    from rich.console import Console

    return Console(stderr=True)
