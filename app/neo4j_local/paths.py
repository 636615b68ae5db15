"""Where the local Neo4j lives: the deploy files, the jar cache, this workspace's server home, its port and URI, and the small file helpers (lock, atomic write) the other modules share."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.settings import Settings
from graph.workspace import neo4j_dir

INSTALL_HINT = "install with: apt-get install openjdk-17-jre-headless maven"


MIN_JAVA = 17


LAUNCHER_CLASS = "Launcher"


HOME_MARK = "-Dsybilscope.neo4j.home="


READY_MARK = "sybilscope-neo4j ready"


PID_FILE = "neo4j.pid"


STATE_FILE = "server.json"


CONSOLE_LOG = "console.log"


LOG_TAIL_LINES = 20


_VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+){1,3}$")


_MEMORY_RE = re.compile(r"^[0-9]+[kKmMgG]?$")


_CDS_DUMP_RE = re.compile(r"^launcher-[0-9a-f]{12}-[0-9a-f]{8}\.jsa\.tmp-[0-9a-f]{8}$")


class LocalNeo4jError(Exception):
    """A user-facing failure of the local server, with a one-line message.

    ``log_tail`` holds the last lines of the server's console log when there is one.
    """

    def __init__(self, message: str, *, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


@dataclass
class ServerStatus:
    running: bool
    pid: int | None
    bolt_uri: str
    version: str
    home: str

    def to_json(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "pid": self.pid,
            "bolt_uri": self.bolt_uri,
            "version": self.version,
            "home": self.home,
        }


def deploy_dir() -> Path:
    """``deploy/neo4j`` of the source tree, else the copy the wheel carries in ``app/_deploy``."""
    candidates = [
        Path(__file__).resolve().parents[2] / "deploy" / "neo4j",
        Path(__file__).resolve().parents[1] / "_deploy" / "neo4j",
    ]
    for candidate in candidates:
        if (candidate / "pom.xml").is_file() and (candidate / "Launcher.java").is_file():
            return candidate
    raise LocalNeo4jError(
        f"the Neo4j deploy files (pom.xml, Launcher.java) are missing; looked in {candidates[0]} "
        f"and {candidates[1]}; reinstall sybilscope"
    )


def server_home(settings: Settings) -> Path:
    return neo4j_dir(settings.workspace)


def cache_root(settings: Settings) -> Path:
    raw = str(settings["neo4j_cache_dir"] or "").strip()
    return Path(raw).expanduser().resolve() if raw else Path.home() / ".cache" / "sybilscope"


def _version(settings: Settings) -> str:
    version = str(settings["neo4j_version"]).strip()
    if not _VERSION_RE.match(version):
        raise LocalNeo4jError(
            f"neo4j_version {version!r} is not a release number like 5.26.30 "
            "(set SYBILSCOPE_NEO4J_VERSION)"
        )
    return version


def version_dir(settings: Settings) -> Path:
    return cache_root(settings) / f"neo4j-{_version(settings)}"


def _port(settings: Settings) -> int:
    port = int(settings["neo4j_bolt_port"])
    if not 1 <= port <= 65535:
        raise LocalNeo4jError(
            f"neo4j_bolt_port {port} is not a TCP port (set SYBILSCOPE_NEO4J_BOLT_PORT)"
        )
    return port


def _bolt_uri(port: int) -> str:
    return f"bolt://127.0.0.1:{port}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
