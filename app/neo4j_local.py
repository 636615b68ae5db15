"""A local Neo4j Community server for one workspace, gathered from Maven Central.

``sybilscope neo4j start|stop|status`` call :func:`start`, :func:`stop` and :func:`status`.

* Jars: ``mvn dependency:copy-dependencies`` on ``deploy/neo4j/pom.xml`` gathers Neo4j
  ``settings["neo4j_version"]`` (with the Bolt connector) into
  ``<cache>/neo4j-<version>/lib``, once; the download goes to a temporary directory that is renamed
  only when Maven succeeded, so an interrupted download is never taken for a complete cache.
* Server: ``deploy/neo4j/Launcher.java`` (embedded API, Bolt on 127.0.0.1 only, no auth, no HTTP,
  no usage reporting). It is compiled once into a jar in the cache when ``javac`` is there (the
  JVM then also keeps a class-data sharing archive there, see :func:`_launch_plan`), else run in
  Java's source-file mode (about 2 s slower per start).
* Everything the server writes is under ``<workspace>/neo4j/``: ``data/``, ``logs/`` (Neo4j's own
  logs and ``console.log``, the JVM's stdout/stderr), ``tmp/``, the pid file ``neo4j.pid`` and
  ``server.json`` (version and Bolt port of the running server).
* Only the recorded pid is ever signalled, and only when ``/proc/<pid>/cmdline`` shows that it is
  this workspace's Launcher, so a recycled pid is never killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graph.settings import Settings

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

# Servers started by this Python process: kept so they are reaped (no zombie, no ResourceWarning).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


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


# ---- paths -----------------------------------------------------------------------------------


def deploy_dir() -> Path:
    """``deploy/neo4j`` of the source tree, else the copy the wheel carries in ``app/_deploy``."""
    candidates = [
        Path(__file__).resolve().parents[1] / "deploy" / "neo4j",
        Path(__file__).resolve().parent / "_deploy" / "neo4j",
    ]
    for candidate in candidates:
        if (candidate / "pom.xml").is_file() and (candidate / "Launcher.java").is_file():
            return candidate
    raise LocalNeo4jError(
        f"the Neo4j deploy files (pom.xml, Launcher.java) are missing; looked in {candidates[0]} "
        f"and {candidates[1]}; reinstall sybilscope"
    )


def server_home(settings: Settings) -> Path:
    return settings.workspace / "neo4j"


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


# ---- tools -----------------------------------------------------------------------------------


def find_java() -> str:
    """The ``java`` to use: ``$JAVA_HOME/bin/java``, else the one on PATH; must be Java 17+."""
    java_home = os.environ.get("JAVA_HOME", "").strip()
    java: str | None = None
    if java_home and os.access(Path(java_home) / "bin" / "java", os.X_OK):
        java = str(Path(java_home) / "bin" / "java")
    if java is None:
        java = shutil.which("java")
    if java is None:
        raise LocalNeo4jError(
            f"java not found on PATH; the local Neo4j needs Java {MIN_JAVA}+ ({INSTALL_HINT})"
        )
    major = java_major_version(java)
    if major is not None and major < MIN_JAVA:
        raise LocalNeo4jError(
            f"{java} is Java {major}; the local Neo4j needs Java {MIN_JAVA}+ ({INSTALL_HINT})"
        )
    return java


def java_major_version(java: str) -> int | None:
    """The major version ``java -version`` reports, or None when it cannot be told."""
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise LocalNeo4jError(f"cannot run {java}: {exc} ({INSTALL_HINT})") from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_x" is Java 8
        major = int(match.group(2))
    return major


def find_mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalNeo4jError(
            f"mvn (Maven) not found on PATH; it is needed once to gather the Neo4j jars ({INSTALL_HINT})"
        )
    return mvn


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield


# ---- jars ------------------------------------------------------------------------------------


def _lib_complete(lib: Path, version: str) -> bool:
    return (lib / f"neo4j-{version}.jar").is_file() and (
        lib / f"neo4j-bolt-{version}.jar"
    ).is_file()


def gather_jars(settings: Settings, *, echo: Callable[[str], None] = print) -> Path:
    """The directory of Neo4j jars for ``settings["neo4j_version"]``; runs Maven the first time."""
    version = _version(settings)
    vdir = version_dir(settings)
    lib = vdir / "lib"
    if _lib_complete(lib, version):
        return lib
    with _locked(cache_root(settings) / f"neo4j-{version}.lock"):
        if _lib_complete(lib, version):  # another process gathered them meanwhile
            return lib
        find_java()  # Maven runs on it; say so plainly if it is missing
        mvn = find_mvn()
        pom = deploy_dir() / "pom.xml"
        vdir.mkdir(parents=True, exist_ok=True)
        for stale in vdir.glob("lib.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = vdir / f"lib.tmp-{os.getpid()}"
        log = vdir / "mvn.log"
        cmd = [
            mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(pom),
            f"-Dneo4j.version={version}", f"-DoutputDirectory={tmp}",
            "dependency:copy-dependencies",
        ]  # fmt: skip
        echo(
            f"Gathering Neo4j {version} jars from Maven Central into {lib} (first time only, ~125 MB)..."
        )
        started = time.monotonic()
        try:
            with open(log, "wb") as out:
                rc = subprocess.run(
                    cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    cwd=str(vdir), check=False,
                ).returncode  # fmt: skip
            if rc != 0:
                raise LocalNeo4jError(_mvn_failure(version, rc, log))
            if not _lib_complete(tmp, version):
                raise LocalNeo4jError(
                    f"Maven finished but neo4j-{version}.jar / neo4j-bolt-{version}.jar are missing "
                    f"from {tmp}; see {log}"
                )
            if lib.exists():  # an incomplete leftover from an older layout
                shutil.rmtree(lib)
            tmp.rename(lib)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        echo(
            f"Gathered {sum(1 for _ in lib.glob('*.jar'))} jars in {time.monotonic() - started:.0f} s"
        )
    return lib


def _mvn_failure(version: str, rc: int, log: Path) -> str:
    text = log.read_text(errors="replace") if log.is_file() else ""
    errors = [
        line.strip()
        for line in text.splitlines()
        if line.startswith("[ERROR]") and line.strip() != "[ERROR]"
    ]
    if re.search(
        rf"org\.neo4j:neo4j(-bolt)?:(jar|pom):{re.escape(version)}\b.*(was not found|could not be found)|"
        rf"Could not find artifact org\.neo4j:neo4j(-bolt)?:(jar|pom):{re.escape(version)}",
        text,
    ):
        return (
            f"Neo4j {version} is not on Maven Central; set SYBILSCOPE_NEO4J_VERSION to an existing "
            f"5.26.x release (see {log})"
        )
    first = errors[0] if errors else (text.strip().splitlines() or ["no output"])[-1]
    return f"Maven could not gather Neo4j {version} (exit {rc}): {first[:400]} (full log: {log})"


@dataclass
class _LaunchPlan:
    classpath: str
    main: str
    jvm_args: list[str]
    cds_dump: Path | None = None  # where this JVM writes its class-data archive at exit


def _launcher_jar(lib: Path, java: str) -> Path | None:
    """Launcher.java compiled once into ``<cache>/neo4j-<v>/launcher-<digest>.jar``; None without javac."""
    source = deploy_dir() / "Launcher.java"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    jar = lib.parent / f"launcher-{digest}.jar"
    if jar.is_file():
        return jar
    javac = Path(os.path.realpath(java)).parent / "javac"
    if not os.access(javac, os.X_OK):
        return None
    tmp = lib.parent / f"launcher.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        proc = subprocess.run(
            [str(javac), "-nowarn", "-cp", str(lib / "*"), "-d", str(tmp / "classes"), str(source)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        classes = sorted((tmp / "classes").rglob("*.class"))
        if proc.returncode != 0 or not classes:
            return None  # source-file mode then; its compile error lands in the console log
        # A jar, not a class directory: the JVM's class-data sharing refuses directories.
        with zipfile.ZipFile(tmp / "launcher.jar", "w", zipfile.ZIP_DEFLATED) as zf:
            for path in classes:
                zf.write(path, path.relative_to(tmp / "classes").as_posix())
        os.replace(tmp / "launcher.jar", jar)
        return jar
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _launch_plan(lib: Path, java: str) -> _LaunchPlan:
    """How to run the Launcher: from its compiled jar with a class-data sharing (CDS) archive
    when javac is there, else in Java's source-file mode.

    The first server of a cache writes a dynamic CDS archive of the ~20k classes Neo4j loads when
    it stops (``-XX:ArchiveClassesAtExit``; that stop takes some seconds longer); later starts map
    it (``-XX:SharedArchiveFile``), which cuts the JVM's start by about a third. A stale or foreign
    archive is ignored by the JVM; its warnings are silenced.
    """
    jar = _launcher_jar(lib, java)
    if jar is None:
        return _LaunchPlan(str(lib / "*"), str(deploy_dir() / "Launcher.java"), [])
    java_key = hashlib.sha256(os.path.realpath(java).encode()).hexdigest()[:8]
    cds_dir = lib.parent / "cds"
    archive = cds_dir / f"{jar.stem}-{java_key}.jsa"
    quiet = ["-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
    classpath = f"{lib / '*'}{os.pathsep}{jar}"
    if archive.is_file():
        return _LaunchPlan(classpath, LAUNCHER_CLASS, [f"-XX:SharedArchiveFile={archive}", *quiet])
    cds_dir.mkdir(exist_ok=True)
    for old in cds_dir.glob("*.tmp-*"):  # left by servers that were killed or died
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > 600:
                old.unlink()
    dump = cds_dir / f"{archive.name}.tmp-{secrets.token_hex(4)}"
    return _LaunchPlan(
        classpath, LAUNCHER_CLASS, [f"-XX:ArchiveClassesAtExit={dump}", *quiet], dump
    )


def _keep_cds_archive(state: dict[str, Any], clean_exit: bool) -> None:
    """After the server ended: move the archive it dumped into place, or drop a partial one."""
    dump = Path(str(state.get("cds_dump") or ""))
    if dump.parent.name != "cds" or not _CDS_DUMP_RE.match(dump.name):
        return  # only ever touch a file this module named
    with contextlib.suppress(OSError):
        if clean_exit and dump.is_file() and dump.stat().st_size > 1 << 20:
            os.replace(dump, dump.with_name(dump.name.split(".tmp-")[0]))
        else:
            dump.unlink()


# ---- pid file and processes ------------------------------------------------------------------


def read_pid(home: Path) -> int | None:
    """The pid recorded in ``home/neo4j.pid``; None when absent or unreadable."""
    try:
        text = (home / PID_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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


# ---- the API the CLI uses --------------------------------------------------------------------


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


def _jvm_args(settings: Settings, home: Path) -> list[str]:
    heap = str(settings["neo4j_heap"]).strip()
    if not _MEMORY_RE.match(heap):
        raise LocalNeo4jError(
            f"neo4j_heap {heap!r} is not a size like 2g or 512m (set SYBILSCOPE_NEO4J_HEAP)"
        )
    tmp = home / "tmp"
    return [
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        # G1 shrinks the young generation to meet its pause goal when the CPU is shared (pauses
        # look long), then collects every few MB and promotes transaction state early: bulk MERGE
        # spent about half the server's CPU in GC. A floor of 30% of the heap for young objects
        # keeps short-lived per-transaction garbage out of the old generation.
        "-XX:+UnlockExperimentalVMOptions",
        "-XX:G1NewSizePercent=30",
        "-XX:+ExitOnOutOfMemoryError",
        "-XX:-OmitStackTraceInFastThrow",
        "-XX:-UsePerfData",  # no /tmp/hsperfdata_*
        "-Dfile.encoding=UTF-8",
        f"-Djava.io.tmpdir={tmp}",
        f"-Djna.tmpdir={tmp}",  # JNA would unpack into ~/.cache/JNA
        "-Djdk.nio.maxCachedBufferSize=1024",
        "-Dio.netty.tryReflectionSetAccessible=true",
        "-Dlog4j2.disable.jmx=true",
        "--add-opens=java.base/java.nio=ALL-UNNAMED",
        "--add-opens=java.base/java.io=ALL-UNNAMED",
        "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
        "--add-opens=java.base/java.lang=ALL-UNNAMED",
        f"{HOME_MARK}{home}",
    ]


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


def main(argv: list[str] | None = None) -> int:
    """``python -m app.neo4j_local start|stop|status`` (for scripts that run before the CLI)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in {"start", "stop", "status"}:
        print("usage: python -m app.neo4j_local start|stop|status", file=sys.stderr)
        return 2
    settings = Settings()
    try:
        if args[0] == "start":
            result = start(settings)
        elif args[0] == "stop":
            result = stop(settings)
        else:
            result = status(settings)
    except LocalNeo4jError as exc:
        if exc.log_tail:
            print(exc.log_tail, file=sys.stderr)
        print(f"sybilscope: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_json()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
