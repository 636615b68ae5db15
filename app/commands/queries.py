"""``sybilscope query …``: the saved-query library (built-in and the team's).

``query list [--json]``, ``query show NAME``, ``query run NAME [--param k=v …] [--json]``, and
for team queries ``query import FILE|DIR … [--owner NAME] [--force]``, ``query export -o DIR
[NAME …]`` and ``query delete NAME``. Query names must match a strict id pattern; parameter
values are typed and sent as parameters, never spliced into query text.

Import and delete are audited under the investigator running the command, which on the command
line is the operating-system user (the same name that becomes a query's owner by default);
importing over a query another investigator owns needs ``--force``, and the audit trail says it
was forced.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import click

from app.commands.common import common_options, emit_json, open_configured_store
from graph.settings import Settings


def _owner(owner: str | None) -> str:
    if owner:
        return owner
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "analyst"


def _who() -> str:
    """The investigator a command acts as (and is audited as): the operating-system user, as
    in the UI's single-user mode."""
    from app.auth import single_user

    return single_user()


def _cell(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return "" if value is None else str(value)


@click.group("query")
def query_group() -> None:
    """Saved queries: list, run, share."""

@query_group.command("list")
@common_options
@click.option("--json", "as_json", is_flag=True, help="Print the queries as JSON.")
def list_cmd(settings: Settings, as_json: bool) -> None:
    """Every built-in and team query with its parameters."""
    from graph.queries.runner import all_queries

    with open_configured_store(settings) as store:
        specs = all_queries(store)
    rows = [
        {**spec.to_dict(), "source": "builtin" if spec.builtin else "team"}
        for spec in specs.values()
    ]
    if as_json:
        emit_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Saved queries")
    for col in ("id", "category", "source", "parameters", "name"):
        table.add_column(col, overflow="fold")
    for row in rows:
        params = ", ".join(f"{p['name']}:{p['type']}" for p in row["parameters"])
        table.add_row(row["id"], row["category"], row["source"], params, row["name"])
    Console(width=160).print(table)

@query_group.command("show")
@common_options
@click.argument("name")
def show_cmd(settings: Settings, name: str) -> None:
    """Print a query's definition (YAML)."""
    import yaml

    from graph.queries.runner import resolve

    with open_configured_store(settings) as store:
        spec = resolve(store, name)
    click.echo(yaml.safe_dump(spec.to_dict(), sort_keys=False, allow_unicode=True), nl=False)

@query_group.command("run")
@common_options
@click.argument("name")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A parameter value (repeatable).")
@click.option("--example", is_flag=True, help="Use the query's example values for parameters not given.")
@click.option("--max-rows", type=click.IntRange(min=1), default=None,
              help="Most rows to return [default: the setting user_query_row_limit].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run_cmd(
    settings: Settings, name: str, params: tuple[str, ...], example: bool, max_rows: int | None, as_json: bool
) -> None:
    """Run a saved query by name with typed parameters."""
    from graph.queries.library import parse_assignments
    from graph.queries.runner import resolve, run_spec

    given: dict[str, Any] = parse_assignments(params)
    with open_configured_store(settings) as store:
        spec = resolve(store, name)
        if example:
            given = {**spec.example_params(), **given}
        result = run_spec(
            store, spec, given,
            max_rows=max_rows or int(settings["user_query_row_limit"]),
            timeout=float(settings["user_query_timeout_s"]),
        )
    if result.truncated:
        click.echo(f"note: {result.truncation_note()}", err=True)
    if as_json:
        emit_json(result.to_json())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{spec.name} ({len(result.rows)} rows{', truncated' if result.truncated else ''})")
    for col in result.columns:
        table.add_column(col, overflow="fold")
    for row in result.rows:
        table.add_row(*(_cell(row.get(c)) for c in result.columns))
    Console(width=200).print(table)

@query_group.command("import")
@common_options
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--owner", help="Owner recorded on the team queries [default: the file's owner, else your user name].")
@click.option("--force", is_flag=True,
              help="Overwrite team queries that other investigators own (recorded in the audit trail).")
def import_cmd(settings: Settings, paths: tuple[Path, ...], owner: str | None, force: bool) -> None:
    """Save YAML query files (or directories of them) as team queries; all or nothing."""
    from graph.queries.team import import_team_queries

    with open_configured_store(settings) as store:
        specs = import_team_queries(store, list(paths), owner, default_owner=_who(), who=_who(), force=force)
    click.echo(f"imported {len(specs)} team quer{'y' if len(specs) == 1 else 'ies'}: "
               + ", ".join(s.id for s in specs), err=True)

@query_group.command("export")
@common_options
@click.argument("names", nargs=-1)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory to write.")
def export_cmd(settings: Settings, names: tuple[str, ...], output: Path) -> None:
    """Write team queries (all, or the named ones) as YAML files."""
    from graph.queries.team import export_team_queries

    with open_configured_store(settings) as store:
        files = export_team_queries(store, output, names or None)
    click.echo(f"wrote {len(files)} file(s) to {output}", err=True)

@query_group.command("delete")
@common_options
@click.argument("name")
def delete_cmd(settings: Settings, name: str) -> None:
    """Delete a team query."""
    from app.commands.common import CommandError
    from graph.queries.team import delete_team_query

    with open_configured_store(settings) as store:
        if not delete_team_query(store, name, who=_who()):
            raise CommandError(f"no team query {name!r}")
    click.echo(f"deleted {name}", err=True)

