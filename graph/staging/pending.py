"""Whether the graph holds everything the staging area does: the marker of an unfinished load.

A load moves its staged files into place first and writes the graph after, so between the two
(or after a graph write that failed or was killed) staging holds rows of accounts the graph
lacks. The stager writes ``staging/.graph-pending.json`` before it moves anything; only a
graph write that succeeded removes it. Detection reads staging directly, so it refuses to run
while the marker stands; running the same load again converges on the graph of one clean load.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graph.private_files import write_private_text
from graph.workspace import graph_pending_path


class LoadIncomplete(Exception):
    """A load staged its bundle but did not finish writing the graph: the graph and the staging
    area disagree until the load is run again (detection refuses to run meanwhile)."""


def mark_graph_pending(workspace: Path, bundle_id: str, bundle_path: str) -> None:
    """Record that the graph is about to be rewritten from a changed staging area."""
    marker = {"bundle_id": bundle_id, "path": bundle_path,
              "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    final = graph_pending_path(workspace)
    tmp = final.with_name(f".graph-pending.{bundle_id}.json")
    write_private_text(tmp, json.dumps(marker))
    os.replace(tmp, final)


def finish_graph(workspace: Path) -> None:
    """The graph now holds every aggregate of the staging area: the load is finished."""
    graph_pending_path(workspace).unlink(missing_ok=True)


def unfinished_load(workspace: Path) -> dict[str, Any] | None:
    """The marker of a load whose graph write failed, was stopped, or is running; else None."""
    try:
        data: dict[str, Any] = json.loads(graph_pending_path(workspace).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        data = {}  # a marker cut short: still a load that did not finish
    return data


def require_finished_load(workspace: Path) -> None:
    """Raise LoadIncomplete when the last load did not finish writing the graph: detection
    over a graph that holds only part of the staging area would read some accounts' uses
    without the accounts. The way out is to run that load again."""
    pending = unfinished_load(workspace)
    if pending is None:
        return
    path = pending.get("path") or "BUNDLE_DIR"
    raise LoadIncomplete(
        f"the load of {path} (started {pending.get('started_at', '?')}) did not finish writing the graph, "
        f"so the graph and the staging area of {workspace} disagree; run 'sybilscope load {path}' again "
        "(it converges on the graph of one clean load), then detect"
    )
