"""Where the local Neo4j's pieces live, read from settings and checked before use.

The deploy files (pom.xml, Launcher.java) ship with the source tree, or inside the wheel; the jar
cache is per user and per Neo4j version; everything a server writes is under
``<workspace>/neo4j/``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from app.neo4j_local.errors import LocalNeo4jError
from graph.settings import Settings
from graph.workspace import neo4j_dir

PID_FILE = "neo4j.pid"
STATE_FILE = "server.json"
CONSOLE_LOG = "console.log"

_VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+){1,3}$")


def deploy_dir() -> Path:
    """``deploy/neo4j`` of the source tree, else the copy the wheel carries in ``app/_deploy``."""
    here = Path(__file__).resolve()
    candidates = [
        here.parents[2] / "deploy" / "neo4j",
        here.parents[1] / "_deploy" / "neo4j",
    ]
    for candidate in candidates:
        if (candidate / "pom.xml").is_file() and (candidate / "Launcher.java").is_file():
            return candidate
    raise LocalNeo4jError(
        f"the Neo4j deploy files (pom.xml, Launcher.java) are missing; looked in {candidates[0]} "
        f"and {candidates[1]}; reinstall sybilscope"
    )


def server_home(settings: Settings) -> Path:
    """The directory this workspace's server writes to (data, logs, tmp, pid and state files)."""
    return neo4j_dir(settings.workspace)


def cache_root(settings: Settings) -> Path:
    """The per-user jar cache: ``neo4j_cache_dir`` when set, else ``~/.cache/sybilscope``."""
    raw = str(settings["neo4j_cache_dir"] or "").strip()
    return Path(raw).expanduser().resolve() if raw else Path.home() / ".cache" / "sybilscope"


def neo4j_version(settings: Settings) -> str:
    """``neo4j_version``, refused unless it is a plain release number (it becomes a path)."""
    version = str(settings["neo4j_version"]).strip()
    if not _VERSION_RE.match(version):
        raise LocalNeo4jError(
            f"neo4j_version {version!r} is not a release number like 5.26.30 "
            "(set SYBILSCOPE_NEO4J_VERSION)"
        )
    return version


def version_dir(settings: Settings) -> Path:
    """The cache directory of one Neo4j version (its ``lib/``, launcher jar and CDS archives)."""
    return cache_root(settings) / f"neo4j-{neo4j_version(settings)}"


def bolt_port(settings: Settings) -> int:
    """``neo4j_bolt_port``, refused unless it is a TCP port."""
    port = int(settings["neo4j_bolt_port"])
    if not 1 <= port <= 65535:
        raise LocalNeo4jError(
            f"neo4j_bolt_port {port} is not a TCP port (set SYBILSCOPE_NEO4J_BOLT_PORT)"
        )
    return port


def bolt_uri(port: int) -> str:
    """The server only ever listens on loopback."""
    return f"bolt://127.0.0.1:{port}"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the lock file ``path`` so two processes never gather or start at once."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield
