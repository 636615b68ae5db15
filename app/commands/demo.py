"""``sybilscope demo``: generate (small) -> load -> detect -> ui, on the embedded store by default.

Each step runs the real command as a user would (the CLI contract is the interface), so the
demo proves the pipeline end to end. Re-running reuses the generated bundle (generation is
deterministic for a seed) and loading is idempotent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from app.commands.common import CommandError, common_options
from graph.settings import Settings
from graph.workspace import demo_bundle_dir, demo_load_report_path


def _step(title: str, args: list[str], settings: Settings) -> None:
    click.echo(f"==> {title}", err=True)
    command = [sys.executable, "-m", "app", *args, "--workspace", str(settings.workspace), "--store", settings["store"]]
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise CommandError(f"demo stopped: '{' '.join(['sybilscope', *args])}' failed (exit {result.returncode})")


@click.command("demo")
@common_options
@click.option("--scale", type=click.Choice(["tiny", "small", "medium"]), default="small", show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--port", type=int, default=None, help="UI port [default: setting ui_port].")
@click.option("--no-ui", is_flag=True, help="Stop after detection instead of opening the UI.")
def demo(settings: Settings, scale: str, seed: int, port: int | None, no_ui: bool) -> None:
    """generate (small) -> load -> detect -> evaluate -> ui, on the embedded store unless --store says otherwise.

    Re-running reuses the generated bundle; loading and detection are idempotent."""
    bundle = demo_bundle_dir(settings.workspace, scale, seed)
    if not (bundle / "accounts.csv").exists():
        _step(f"generate a {scale} synthetic world into {bundle}", ["generate", str(bundle), "--scale", scale, "--seed", str(seed)], settings)
    else:
        click.echo(f"==> reuse the generated world in {bundle}", err=True)
    report = demo_load_report_path(settings.workspace)
    _step("load it", ["load", str(bundle), "--report-json", str(report)], settings)
    _step("detect clusters", ["detect"], settings)
    labels = Path(bundle) / "labels.csv"
    if labels.exists():
        _step("evaluate against the ground truth", ["evaluate", str(labels)], settings)
    if no_ui:
        return
    ui_args = ["ui"] + (["--port", str(port)] if port else [])
    _step("open the investigation UI (Ctrl-C to stop)", ui_args, settings)
