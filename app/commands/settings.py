"""``sybilscope settings [--json]``: every setting, its value, where it came from, and help."""

from __future__ import annotations

import click

from app.commands.common import common_options, emit_json
from graph.settings import Settings


@click.command("settings")
@common_options
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
def settings_cmd(settings: Settings, as_json: bool) -> None:
    """List every setting, its value, where the value came from, and help."""
    rows = settings.rows()
    if as_json:
        emit_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Sybilscope settings", show_lines=False)
    for col in ("name", "value", "source", "env var", "help"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(row["name"], str(row["value"]), row["source"], row["env_var"], row["help"])
    Console(width=160).print(table)
