"""The server process: start (returns once Bolt answers), stop (only the recorded pid, and only when /proc shows it is this workspace's Launcher), status, pid and state files."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.neo4j_local.jars import find_java, gather_jars
from app.neo4j_local.launch import _jvm_args, _keep_cds_archive, _launch_plan
from app.neo4j_local.paths import (
    CONSOLE_LOG,
    HOME_MARK,
    LAUNCHER_CLASS,
    LOG_TAIL_LINES,
    PID_FILE,
    STATE_FILE,
    LocalNeo4jError,
    ServerStatus,
    _bolt_uri,
    _locked,
    _port,
    _version,
    _write_atomic,
    server_home,
)
from graph.settings import Settings

# Servers started by this Python process: kept so they are reaped (no zombie, no ResourceWarning).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def read_pid(home: Path) -> int | None:
    """The pid recorded in ``home/neo4j.pid``; None when absent or unreadable."""
    try:
        text = (home / PID_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def _read_state(home: Path) -> dict[str, Any]:
    try:
        data = json.loads((home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _clear_records(home: Path) -> None:
    for name in (PID_FILE, STATE_FILE):
        with contextlib.suppress(FileNotFoundError):
            (home / name).unlink()


def process_cmdline(pid: int) -> list[str] | None:
    """The argv of a live (non-zombie) process, or None when there is no such process."""
    proc = Path("/proc") / str(pid)
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
            if stat[stat.rfind(")") + 2 :].startswith(("Z", "X")):
                return None
            raw = (proc / "cmdline").read_bytes()
        except OSError:
            return None
        return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]
    try:  # no /proc (macOS): ask ps
        out = subprocess.run(
            ["ps", "-p", str(pid), "-o", "stat=", "-o", "command="],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
    except OSError:
        return None
    if not out or out.startswith("Z"):
        return None
    return out.split()[1:]


def is_our_server(pid: int, home: Path) -> bool:
    """True when ``pid`` is alive and is the Launcher of the server whose home is ``home``."""
    argv = process_cmdline(pid)
    if not argv:
        return False
    has_launcher = any(Path(arg).name in {LAUNCHER_CLASS, f"{LAUNCHER_CLASS}.java"} for arg in argv)
    return has_launcher and f"{HOME_MARK}{home}" in argv


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)


def _alive(pid: int, home: Path) -> bool:
    _reap(pid)
    return is_our_server(pid, home)


def _launcher_on_port(port: int) -> tuple[int, str] | None:
    """A Sybilscope Launcher (any workspace) whose Bolt port is ``port``: (pid, home)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        argv = process_cmdline(int(entry.name)) or []
        for i, arg in enumerate(argv):
            if Path(arg).name in {LAUNCHER_CLASS, f"{LAUNCHER_CLASS}.java"} and len(argv) > i + 2:
                if argv[i + 2] == str(port):
                    return int(entry.name), argv[i + 1]
                break
    return None


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _log_tail(log: Path, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines this start wrote to the console log (from byte ``offset``)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip() and not line.startswith("=== ")]
    return "\n".join(kept[-lines:])


def _key_line(tail: str) -> str:
    """The most telling line of a log tail: the Launcher's complaint, else the last exception."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("sybilscope-neo4j") and re.search(r"failed|bad argument|usage", line):
            return line[:300]
    for line in reversed(lines):
        if not line.startswith("at ") and re.search(r"\b[\w.$]*(Exception|Error)\b:", line):
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def status(settings: Settings) -> ServerStatus:
    """Running only when the recorded pid is alive and is this workspace's Launcher."""
    home = server_home(settings)
    pid = read_pid(home)
    if pid is not None and _alive(pid, home):
        state = _read_state(home)
        port = state.get("bolt_port")
        return ServerStatus(
            running=True,
            pid=pid,
            bolt_uri=str(
                state.get("bolt_uri") or _bolt_uri(int(port) if port else _port(settings))
            ),
            version=str(state.get("version") or settings["neo4j_version"]),
            home=str(home),
        )
    return ServerStatus(
        running=False,
        pid=None,
        bolt_uri=_bolt_uri(int(settings["neo4j_bolt_port"])),
        version=str(settings["neo4j_version"]),
        home=str(home),
    )


def start(settings: Settings, *, echo: Callable[[str], None] = print) -> ServerStatus:
    """Start this workspace's server and return once Bolt answers; idempotent."""
    home = server_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    with _locked(home / ".neo4j.lock"):
        current = status(settings)
        if current.running:
            echo(
                f"Neo4j {current.version} is already running on {current.bolt_uri} (pid {current.pid})"
            )
            return current
        _keep_cds_archive(_read_state(home), clean_exit=False)
        _clear_records(home)  # stale pid of a server that died or was never ours
        version = _version(settings)
        port = _port(settings)
        pagecache = str(settings["neo4j_pagecache"]).strip()
        timeout = float(settings["neo4j_start_timeout"])
        java = find_java()
        jvm_args = _jvm_args(settings, home)
        if port_in_use(port):
            raise LocalNeo4jError(_port_taken_message(port))
        lib = gather_jars(settings, echo=echo)
        plan = _launch_plan(lib, java)
        for sub in ("data", "logs", "tmp"):
            (home / sub).mkdir(exist_ok=True)
        cmd = [java, *jvm_args, *plan.jvm_args, "-cp", plan.classpath, plan.main]
        cmd += [str(home), str(port), pagecache]
        log = home / "logs" / CONSOLE_LOG
        uri = _bolt_uri(port)
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
        _CHILDREN[proc.pid] = proc
        state = {
            "pid": proc.pid,
            "version": version,
            "bolt_port": port,
            "bolt_uri": uri,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cds_dump": str(plan.cds_dump) if plan.cds_dump else None,
        }
        _write_atomic(home / STATE_FILE, json.dumps(state, indent=2))
        _write_atomic(home / PID_FILE, f"{proc.pid}\n")
        try:
            agent = _wait_for_bolt(proc, uri, port, timeout, log, log_offset)
        except BaseException as exc:
            _kill_started(proc)
            _keep_cds_archive(state, clean_exit=False)
            _clear_records(home)
            if isinstance(exc, LocalNeo4jError) and exc.log_tail:
                echo(f"Last lines of {log}:\n{exc.log_tail}")
            raise
        if agent.startswith("Neo4j/"):
            state["version"] = agent.split("/", 1)[1]
            _write_atomic(home / STATE_FILE, json.dumps(state, indent=2))
        echo(
            f"Neo4j {state['version']} is ready on {uri} (pid {proc.pid}, {time.monotonic() - started:.1f} s)"
        )
        return status(settings)


def _port_taken_message(port: int) -> str:
    owner = _launcher_on_port(port)
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
            tail = _log_tail(log, log_offset)
            raise LocalNeo4jError(
                f"Neo4j exited during start (exit {code}): {_key_line(tail)} (log: {log})",
                log_tail=tail,
            )
        if _port_answers(port):
            try:
                return _verify_bolt(uri)
            except Exception as exc:  # noqa: BLE001 - not ready yet; keep polling
                last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            tail = _log_tail(log, log_offset)
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


def _kill_started(proc: subprocess.Popen[bytes]) -> None:
    """End a server this call started (the JVM only; it is the leader of its own session)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=15)
    _CHILDREN.pop(proc.pid, None)


def stop(settings: Settings, *, timeout: float = 60) -> ServerStatus:
    """Stop the server this workspace recorded: SIGTERM, then SIGKILL after ``timeout`` seconds."""
    home = server_home(settings)
    if not home.is_dir():
        return status(settings)
    with _locked(home / ".neo4j.lock"):
        pid = read_pid(home)
        state = _read_state(home)
        if pid is None or not _alive(pid, home):
            _keep_cds_archive(state, clean_exit=False)
            _clear_records(home)  # nothing of ours runs: a stale pid is only forgotten
            return status(settings)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        clean_exit = _wait_gone(pid, home, timeout)
        if not clean_exit:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not _wait_gone(pid, home, 15):
                raise LocalNeo4jError(f"Neo4j (pid {pid}) did not end even after SIGKILL")
        _keep_cds_archive(state, clean_exit=clean_exit)
        _clear_records(home)
        return status(settings)


def _wait_gone(pid: int, home: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid, home):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True
