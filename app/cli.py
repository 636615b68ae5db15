"""The ``sybilscope`` command line (see shared/spec/cli.md for the contract it keeps).

This module is only the group and the list of its commands; each command lives in
app/commands/ beside the others of its kind, and what they share (``--workspace`` / ``--store``,
one-line errors, JSON output) is app/commands/common.py. Every command takes ``--workspace`` and
``--store``. Failures print one line on stderr and exit non-zero; ``SYBILSCOPE_DEBUG=1`` shows
the traceback instead.
"""

from __future__ import annotations

import click

from app.commands.data import load_cmd
from app.commands.demo import demo
from app.commands.detection import detect_cmd, evaluate_cmd
from app.commands.exports import export_group
from app.commands.generate import generate_cmd
from app.commands.migrate import migrate
from app.commands.neo4j_server import neo4j_group
from app.commands.queries import query_group
from app.commands.settings import settings_cmd
from app.commands.stats import stats_cmd
from app.commands.ui import ui


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sybilscope")
def main() -> None:
    """Sybilscope: find, explain and attribute the account clusters behind distillation attacks."""


main.add_command(settings_cmd)
main.add_command(neo4j_group)
main.add_command(generate_cmd)
main.add_command(load_cmd)
main.add_command(stats_cmd)
main.add_command(detect_cmd)
main.add_command(evaluate_cmd)
main.add_command(export_group)
main.add_command(query_group)
main.add_command(ui)
main.add_command(demo)
main.add_command(migrate)


if __name__ == "__main__":
    main()
