"""``sybilscope migrate [--yes]``: convert a workspace's old pickled embedded graph, once.

Earlier versions kept the embedded store as ``embedded/graph.pickle``; loading a pickle runs
whatever code it carries, so the store no longer opens one (it points here instead). This
command is the one place a pickle is still read, and only when the user asks for it knowingly:
it says what it will do, wants ``--yes`` or a confirmation, refuses a pickle other users could
have written, admits only the networkx graph classes a stored graph is made of (so a planted
``os.system`` is refused, not run), rebuilds the graph from its nodes, relationships and
properties alone, writes ``embedded/graph.jsonl.gz`` and renames the pickle to
``graph.pickle.migrated``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import click

from app.commands.common import CommandError, common_options
from graph.settings import Settings

# The modules whose classes make up a pickled MultiDiGraph: the graph class and its bases, and
# the views networkx caches on the instance (and so pickles with it).
_GRAPH_MODULES = frozenset({
    "networkx.classes.graph",
    "networkx.classes.digraph",
    "networkx.classes.multigraph",
    "networkx.classes.multidigraph",
    "networkx.classes.coreviews",
    "networkx.classes.reportviews",
})


class GraphUnpickler(pickle.Unpickler):
    """An unpickler that admits only classes defined in networkx's graph modules: the pickle
    cannot name ``os.system``, ``builtins.eval`` or anything else it could call."""

    def find_class(self, module: str, name: str) -> Any:
        if module in _GRAPH_MODULES and "." not in name:
            found = super().find_class(module, name)
            if isinstance(found, type) and found.__module__ == module:
                return found
        raise pickle.UnpicklingError(
            f"the pickle asks for {module}.{name}, which is no part of a stored graph: refused, not loaded"
        )


def unpickle_graph(path: Path) -> Any:
    """The object in the old pickle at ``path``, through GraphUnpickler (the only pickle load
    left in sybilscope)."""
    from graph.trust import check_stat

    with open(path, "rb") as fh:
        check_stat(path, os.fstat(fh.fileno()), "pickled embedded graph")
        return GraphUnpickler(fh).load()


@click.command("migrate")
@common_options
@click.option("--yes", is_flag=True, help="Do it without asking for confirmation.")
def migrate(settings: Settings, yes: bool) -> None:
    """Convert the workspace's old pickled embedded graph (embedded/graph.pickle) to
    embedded/graph.jsonl.gz, once.

    WARNING: this unpickles the old file, and a pickle can carry code that runs when it is
    loaded. Only the networkx graph classes are admitted (anything else is refused), but run it
    only on a workspace you created yourself, never on one you were given or found. The pickle
    is kept as embedded/graph.pickle.migrated.
    """
    from graph.stores.embedded import GRAPH_FILE, LEGACY_FILE, MIGRATED_SUFFIX, install_migrated
    from graph.trust import UntrustedPath, check_private
    from graph.workspace import embedded_dir

    if settings.is_neo4j:
        raise CommandError("migrate converts the embedded store's file in the workspace; it does not apply to Neo4j")
    workspace = settings.workspace
    directory = embedded_dir(workspace)
    legacy, target = directory / LEGACY_FILE, directory / GRAPH_FILE
    if not legacy.exists():
        if target.exists():
            click.echo(f"nothing to migrate: {target} is already in the current format")
            return
        raise CommandError(f"nothing to migrate: there is no {legacy}")
    if target.exists():
        raise CommandError(f"both {legacy} and {target} exist; migrate will not overwrite {target}: move one away")
    try:
        check_private(workspace, "workspace")
        check_private(directory, "embedded store directory")
        check_private(legacy, "pickled embedded graph")
    except UntrustedPath as exc:
        raise CommandError(f"{exc} (and do not migrate a pickle you did not write)") from exc
    click.echo(
        "sybilscope migrate will:\n"
        f"  1. unpickle {legacy}: a pickle can carry code that runs when it is loaded; only\n"
        "     networkx graph classes are admitted, but do this only for a workspace you created\n"
        f"  2. write its nodes, relationships and properties to {target}\n"
        f"  3. rename the pickle to {legacy.name}{MIGRATED_SUFFIX}"
    )
    if not yes:
        click.confirm("Go ahead?", abort=True)
    try:
        graph = unpickle_graph(legacy)
    except pickle.UnpicklingError as exc:
        raise CommandError(f"{legacy}: {exc}") from exc
    try:
        nodes, rels = install_migrated(directory, graph)
    except ValueError as exc:
        raise CommandError(f"{legacy} is not a graph the store wrote, so it was not migrated: {exc}") from exc
    click.echo(
        f"migrated {nodes:,} nodes and {rels:,} relationships into {target}; the pickle is now "
        f"{legacy.name}{MIGRATED_SUFFIX} (delete it once the workspace looks right)"
    )
