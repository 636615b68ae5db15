"""``sybilscope stats [--json]``: counts of nodes by label and relationships by type."""

from __future__ import annotations

import click

from app.commands.common import common_options, emit_json, open_configured_store
from graph.settings import Settings


@click.command("stats")
@common_options
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def stats_cmd(settings: Settings, as_json: bool) -> None:
    """Counts of nodes by label and relationships by type in the store."""
    with open_configured_store(settings) as store:
        counts = store.counts()
    if as_json:
        emit_json(counts)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Store: {settings['store']}")
    table.add_column("kind")
    table.add_column("name")
    table.add_column("count", justify="right")
    for kind in ("nodes", "relationships"):
        for name, n in counts[kind].items():
            table.add_row(kind, name, f"{n:,}")
    Console().print(table)
