"""The server as an operating-system process: its pid and state files, its identity, its port.

Only the recorded pid is ever signalled, and only when ``/proc/<pid>/cmdline`` shows that it is
this workspace's Launcher, so a recycled pid is never killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from app.neo4j_local.launch import HOME_MARK, LAUNCHER_CLASS
from app.neo4j_local.paths import PID_FILE, STATE_FILE

# Servers started by this Python process: kept so they are reaped (no zombie, no ResourceWarning).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def read_pid(home: Path) -> int | None:
    """The pid recorded in ``home/neo4j.pid``; None when absent or unreadable."""
    try:
        text = (home / PID_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` whole, so a reader never sees half a pid or state file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_state(home: Path) -> dict[str, Any]:
    """``server.json`` of the recorded server (version, Bolt port, CDS dump); {} when unreadable."""
    try:
        data = json.loads((home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def clear_records(home: Path) -> None:
    """Forget the recorded server (pid and state files)."""
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


def remember_child(proc: subprocess.Popen[bytes]) -> None:
    """Keep a server this process started, so it is reaped once it ends."""
    _CHILDREN[proc.pid] = proc


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)


def alive(pid: int, home: Path) -> bool:
    """``pid`` is still this workspace's server (a child of ours that ended is reaped first)."""
    _reap(pid)
    return is_our_server(pid, home)


def wait_gone(pid: int, home: Path, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the server to end; False when it is still there."""
    deadline = time.monotonic() + timeout
    while alive(pid, home):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def kill_started(proc: subprocess.Popen[bytes]) -> None:
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


def launcher_on_port(port: int) -> tuple[int, str] | None:
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
    """Something (ours or not) already holds ``port`` on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def port_answers(port: int) -> bool:
    """A TCP connection to ``port`` on loopback succeeds (Bolt may still not be ready)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False
