"""``sybilscope ui [--port N]``: the Streamlit investigation app on this workspace and store.

Streamlit runs as a child process (its server owns the event loop); the workspace and store
reach the app through ``SYBILSCOPE_WORKSPACE`` / ``SYBILSCOPE_STORE``, which ``Settings`` reads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from app.commands.common import CommandError, common_options
from graph.settings import Settings

APP = Path(__file__).resolve().parent.parent / "main.py"


def streamlit_command(port: int, address: str | None = None) -> list[str]:
    """The ``streamlit run`` command line for the app."""
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
    ]
    if address:
        cmd += ["--server.address", address]
    return cmd


def app_environment(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: the resolved workspace and store exported."""
    env = dict(os.environ if base is None else base)
    env["SYBILSCOPE_WORKSPACE"] = str(settings.workspace)
    env["SYBILSCOPE_STORE"] = str(settings["store"])
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    return env


@click.command("ui")
@common_options
@click.option("--port", type=int, default=None, help="Port to serve on [default: setting ui_port].")
@click.option("--address", default=None, help="Address to bind (Streamlit's default when omitted).")
def ui(settings: Settings, port: int | None, address: str | None) -> None:
    """The Streamlit investigation app on this workspace and store."""
    chosen = port or int(settings["ui_port"])
    click.echo(f"Sybilscope UI on http://localhost:{chosen} (workspace {settings.workspace}, store {settings['store']})", err=True)
    try:
        result = subprocess.run(streamlit_command(chosen, address), env=app_environment(settings), check=False)
    except KeyboardInterrupt:
        return
    if result.returncode not in (0, -2, 130):
        raise CommandError(f"streamlit exited with status {result.returncode}")
