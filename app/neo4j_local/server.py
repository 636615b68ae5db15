"""Start, stop and status of this workspace's server: what ``sybilscope neo4j …`` calls.

``start`` is idempotent and returns once Bolt answers a query; ``stop`` sends SIGTERM, then
SIGKILL after a timeout; ``status`` reports running only when the recorded pid is this
workspace's Launcher. A lock file in the server home keeps two of them from racing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.neo4j_local.errors import LocalNeo4jError
from app.neo4j_local.jars import gather_jars
from app.neo4j_local.launch import jvm_args, keep_cds_archive, launch_plan
from app.neo4j_local.logs import key_line, log_tail
from app.neo4j_local.paths import (
    CONSOLE_LOG,
    PID_FILE,
    STATE_FILE,
    bolt_port,
    bolt_uri,
    locked,
    neo4j_version,
    server_home,
)
from app.neo4j_local.process import (
    alive,
    clear_records,
    kill_started,
    launcher_on_port,
    port_answers,
    port_in_use,
    read_pid,
    read_state,
    remember_child,
    wait_gone,
    write_atomic,
)
from app.neo4j_local.tools import find_java
from graph.settings import Settings


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


def status(settings: Settings) -> ServerStatus:
    """Running only when the recorded pid is alive and is this workspace's Launcher."""
    home = server_home(settings)
    pid = read_pid(home)
    if pid is not None and alive(pid, home):
        state = read_state(home)
        port = state.get("bolt_port")
        return ServerStatus(
            running=True,
            pid=pid,
            bolt_uri=str(
                state.get("bolt_uri") or bolt_uri(int(port) if port else bolt_port(settings))
            ),
            version=str(state.get("version") or settings["neo4j_version"]),
            home=str(home),
        )
    return ServerStatus(
        running=False,
        pid=None,
        bolt_uri=bolt_uri(int(settings["neo4j_bolt_port"])),
        version=str(settings["neo4j_version"]),
        home=str(home),
    )


def start(settings: Settings, *, echo: Callable[[str], None] = print) -> ServerStatus:
    """Start this workspace's server and return once Bolt answers; idempotent."""
    home = server_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    with locked(home / ".neo4j.lock"):
        current = status(settings)
        if current.running:
            echo(
                f"Neo4j {current.version} is already running on {current.bolt_uri} (pid {current.pid})"
            )
            return current
        keep_cds_archive(read_state(home), clean_exit=False)
        clear_records(home)  # stale pid of a server that died or was never ours
        version = neo4j_version(settings)
        port = bolt_port(settings)
        pagecache = str(settings["neo4j_pagecache"]).strip()
        timeout = float(settings["neo4j_start_timeout"])
        java = find_java()
        args = jvm_args(settings, home)
        if port_in_use(port):
            raise LocalNeo4jError(_port_taken_message(port))
        lib = gather_jars(settings, echo=echo)
        plan = launch_plan(lib, java)
        for sub in ("data", "logs", "tmp"):
            (home / sub).mkdir(exist_ok=True)
        cmd = [java, *args, *plan.jvm_args, "-cp", plan.classpath, plan.main]
        cmd += [str(home), str(port), pagecache]
        log = home / "logs" / CONSOLE_LOG
        uri = bolt_uri(port)
        echo(
            f"Starting Neo4j {version} on {uri} (heap {settings['neo4j_heap']}, "
            f"page cache {pagecache}); log: {log}"
        )
        started = time.monotonic()
        log_offset = log.stat().st_size if log.is_file() else 0
        with open(log, "ab") as out:
            out.write(
                f"\n=== {datetime.now(UTC).isoformat(timespec='seconds')} start: {' '.join(cmd)}\n".encode()
            )
            out.flush()
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=str(home), start_new_session=True, close_fds=True,
            )  # fmt: skip
        remember_child(proc)
        state = {
            "pid": proc.pid,
            "version": version,
            "bolt_port": port,
            "bolt_uri": uri,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cds_dump": str(plan.cds_dump) if plan.cds_dump else None,
        }
        write_atomic(home / STATE_FILE, json.dumps(state, indent=2))
        write_atomic(home / PID_FILE, f"{proc.pid}\n")
        try:
            agent = _wait_for_bolt(proc, uri, port, timeout, log, log_offset)
        except BaseException as exc:
            kill_started(proc)
            keep_cds_archive(state, clean_exit=False)
            clear_records(home)
            if isinstance(exc, LocalNeo4jError) and exc.log_tail:
                echo(f"Last lines of {log}:\n{exc.log_tail}")
            raise
        if agent.startswith("Neo4j/"):
            state["version"] = agent.split("/", 1)[1]
            write_atomic(home / STATE_FILE, json.dumps(state, indent=2))
        echo(
            f"Neo4j {state['version']} is ready on {uri} (pid {proc.pid}, {time.monotonic() - started:.1f} s)"
        )
        return status(settings)


def _port_taken_message(port: int) -> str:
    owner = launcher_on_port(port)
    if owner is not None:
        pid, other_home = owner
        workspace = Path(other_home).parent
        return (
            f"port {port} is already used by the local Neo4j of workspace {workspace} (pid {pid}); "
            f"stop it with 'sybilscope --workspace {workspace} neo4j stop' or set "
            "SYBILSCOPE_NEO4J_BOLT_PORT to a free port"
        )
    return (
        f"port {port} on 127.0.0.1 is already in use by another program; stop it or set "
        "SYBILSCOPE_NEO4J_BOLT_PORT to a free port"
    )


def _wait_for_bolt(
    proc: subprocess.Popen[bytes], uri: str, port: int, timeout: float, log: Path, log_offset: int
) -> str:
    """Poll until Bolt answers a query; the server agent string. Raises LocalNeo4jError."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        code = proc.poll()
        if code is not None:
            tail = log_tail(log, log_offset)
            raise LocalNeo4jError(
                f"Neo4j exited during start (exit {code}): {key_line(tail)} (log: {log})",
                log_tail=tail,
            )
        if port_answers(port):
            try:
                return _verify_bolt(uri)
            except Exception as exc:  # noqa: BLE001 - not ready yet; keep polling
                last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            tail = log_tail(log, log_offset)
            detail = f"; last Bolt error: {last_error}" if last_error else ""
            raise LocalNeo4jError(
                f"Neo4j did not answer on {uri} within {timeout:g} s{detail} "
                f"(raise SYBILSCOPE_NEO4J_START_TIMEOUT; log: {log})",
                log_tail=tail,
            )
        time.sleep(0.25)


def _verify_bolt(uri: str) -> str:
    from neo4j import GraphDatabase

    with GraphDatabase.driver(
        uri, auth=None, connection_timeout=5.0, max_transaction_retry_time=0
    ) as driver:
        driver.verify_connectivity()
        driver.execute_query("RETURN 1")
        return str(driver.get_server_info().agent)


def stop(settings: Settings, *, timeout: float = 60) -> ServerStatus:
    """Stop the server this workspace recorded: SIGTERM, then SIGKILL after ``timeout`` seconds."""
    home = server_home(settings)
    if not home.is_dir():
        return status(settings)
    with locked(home / ".neo4j.lock"):
        pid = read_pid(home)
        state = read_state(home)
        if pid is None or not alive(pid, home):
            keep_cds_archive(state, clean_exit=False)
            clear_records(home)  # nothing of ours runs: a stale pid is only forgotten
            return status(settings)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        clean_exit = wait_gone(pid, home, timeout)
        if not clean_exit:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not wait_gone(pid, home, 15):
                raise LocalNeo4jError(f"Neo4j (pid {pid}) did not end even after SIGKILL")
        keep_cds_archive(state, clean_exit=clean_exit)
        clear_records(home)
        return status(settings)
