"""``sybilscope neo4j start|stop|status``: this workspace's local Neo4j Community server.

The work is done by app/neo4j_local/ (imported inside each command so ``--help`` stays fast);
``status --json`` prints running, pid, Bolt URI and version.
"""

from __future__ import annotations

from typing import Any

import click

from app.commands.common import common_options, emit_json
from graph.settings import Settings


@click.group("neo4j")
def neo4j_group() -> None:
    """A local Neo4j Community server for this workspace (Bolt on 127.0.0.1)."""


def _print_status(status: Any, as_json: bool) -> None:
    if as_json:
        emit_json(status.to_json())
    elif status.running:
        click.echo(f"Neo4j {status.version} running, pid {status.pid}, {status.bolt_uri}")
    else:
        click.echo("Neo4j is not running")


@neo4j_group.command("start")
@common_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def neo4j_start(settings: Settings, as_json: bool) -> None:
    """Start the server (gathering its jars from Maven Central on first use); returns once Bolt answers."""
    from app import neo4j_local

    status = neo4j_local.start(settings, echo=lambda m: click.echo(m, err=True))
    _print_status(status, as_json)


@neo4j_group.command("stop")
@common_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def neo4j_stop(settings: Settings, as_json: bool) -> None:
    """Stop the server this workspace started."""
    from app import neo4j_local

    before = neo4j_local.status(settings)
    after = neo4j_local.stop(settings)
    if as_json:
        emit_json(after.to_json())
    elif before.running:
        click.echo(f"Neo4j stopped (pid {before.pid})")
    else:
        click.echo("Neo4j was not running")


@neo4j_group.command("status")
@common_options
@click.option("--json", "as_json", is_flag=True, help="Print running, pid, bolt URI and version as JSON.")
def neo4j_status(settings: Settings, as_json: bool) -> None:
    """Whether this workspace's server is running."""
    from app import neo4j_local

    _print_status(neo4j_local.status(settings), as_json)
