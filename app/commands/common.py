"""What every ``sybilscope`` command shares: options, errors, output and the store.

Failures print one line on stderr and exit non-zero; ``SYBILSCOPE_DEBUG=1`` shows the traceback
instead. Commands import from here (never from app/cli.py, which imports them), so there is no
import cycle.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import sys
import time
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


PROGRESS_MODES = ("auto", "lines", "off")


def progress_mode(settings: Settings | None = None) -> str:
    """The setting ``progress`` checked: 'auto', 'lines' or 'off'."""
    mode = str((settings or Settings())["progress"]).strip().lower()
    if mode not in PROGRESS_MODES:
        raise click.ClickException(f"setting progress (SYBILSCOPE_PROGRESS) is {mode!r}; use one of {', '.join(PROGRESS_MODES)}")
    return mode


def show_progress(settings: Settings | None = None) -> bool:
    """Progress bars only when a person watches stderr (never in pipes or logs), unless the
    setting ``progress`` says otherwise."""
    return progress_mode(settings) == "auto" and sys.stderr.isatty()


def progress_lines(settings: Settings | None = None) -> bool:
    """Whether to write one line per step on stderr (setting ``progress`` = 'lines')."""
    return progress_mode(settings) == "lines"


class StepLines:
    """Timestamped step lines on stderr: ``12:04:31 +1m05s 1.8 GiB  detect: clustering …``.

    The peak memory is this process's and its children's high-water mark so far (what
    ``/usr/bin/time -v`` reports at the end), so a log shows where a run grew."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.started = time.monotonic()

    def __call__(self, text: str) -> None:
        elapsed = int(time.monotonic() - self.started)
        peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        stamp = time.strftime("%H:%M:%S")
        click.echo(f"{stamp} +{elapsed // 60}m{elapsed % 60:02d}s {peak / 2**20:.1f} GiB  {self.command}: {text}", err=True)


def open_configured_store(settings: Settings):  # noqa: ANN201 - GraphStore
    """The store ``--store`` names; imported late so ``--help`` never loads a store."""
    from graph.stores import open_store

    return open_store(settings)


def emit_json(data: Any) -> None:
    """Machine-readable output on stdout, indented for people who read it too."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
