"""The ``sybilscope`` command line (see shared/spec/cli.md for the contract it keeps).

Every command takes ``--workspace`` and ``--store``. Failures print one line on stderr and exit
non-zero; ``SYBILSCOPE_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from graph.settings import Settings


class CommandError(click.ClickException):
    """A user-facing failure: printed as one line, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"sybilscope: error: {self.format_message()}", err=True)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any failure into a one-line CommandError (unless SYBILSCOPE_DEBUG is set)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the contract wants one line, not a trace
            if os.environ.get("SYBILSCOPE_DEBUG"):
                raise
            raise CommandError(_one_line(exc)) from exc

    return wrapper


def common_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--workspace`` and ``--store`` on every command; resolves them into ``settings``."""

    @click.option(
        "--workspace",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Workspace directory [default: $SYBILSCOPE_WORKSPACE, else ./.sybilscope].",
    )
    @click.option(
        "--store",
        default=None,
        metavar="URI",
        help="'embedded', or bolt://… / neo4j://… for Neo4j [default: $SYBILSCOPE_STORE, else embedded].",
    )
    @functools.wraps(fn)
    @friendly_errors
    def wrapper(*args: Any, workspace: Path | None, store: str | None, **kwargs: Any) -> Any:
        settings = Settings({"workspace": str(workspace) if workspace else None, "store": store})
        return fn(*args, settings=settings, **kwargs)

    return wrapper


def show_progress() -> bool:
    return sys.stderr.isatty()


def open_configured_store(settings: Settings):  # noqa: ANN201 - GraphStore
    from graph.stores import open_store

    return open_store(settings)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sybilscope")
def main() -> None:
    """Sybilscope: find, explain and attribute the account clusters behind distillation attacks."""


# ---- settings --------------------------------------------------------------------------------


@main.command("settings")
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


# ---- local Neo4j -----------------------------------------------------------------------------


@main.group("neo4j")
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


# ---- stats -----------------------------------------------------------------------------------


@main.command("stats")
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


# ---- the commands of later stages (registered in their modules) ------------------------------


def _register_optional(module: str) -> None:
    """Commands of a stage live beside its code; a stage not built yet answers 'not yet available'."""
    import importlib

    try:
        importlib.import_module(module).register(main)
    except ModuleNotFoundError as exc:
        if not exc.name or not module.startswith(exc.name):
            raise


for _module in (
    "app.commands.generate",
    "app.commands.data",
    "app.commands.detection",
    "app.commands.exports",
    "app.commands.queries",
    "app.commands.ui",
    "app.commands.demo",
    "app.commands.migrate",
):
    _register_optional(_module)


def _not_yet(name: str, help_text: str) -> None:
    if name in main.commands:
        return

    @main.command(name, help=help_text + " (not yet available)", context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def placeholder(args: tuple[str, ...]) -> None:
        raise CommandError(f"'{name}' is not yet available in this build")


for _name, _help in (
    ("generate", "Write a synthetic input bundle with labels and groups."),
    ("load", "Load an input bundle into the store."),
    ("detect", "Compute links, clusters, scores and attribution suggestions."),
    ("evaluate", "Score the current detection against labels, beside the baselines."),
    ("export", "Export clusters and evidence."),
    ("query", "Saved queries."),
    ("ui", "The Streamlit investigation app."),
    ("demo", "generate (small) -> load -> detect -> ui."),
):
    _not_yet(_name, _help)


if __name__ == "__main__":
    main()
