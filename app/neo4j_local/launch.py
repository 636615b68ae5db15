"""How a server is launched: the JVM options and how the Launcher runs.

``deploy/neo4j/Launcher.java`` (embedded API, Bolt on 127.0.0.1 only, no auth, no HTTP, no usage
reporting) is compiled once into a jar in the cache when ``javac`` is there (the JVM then also
keeps a class-data sharing archive there, see :func:`launch_plan`), else run in Java's
source-file mode (about 2 s slower per start). Every JVM option keeps the server's files inside
its home, and the home is marked on the command line so the process can be recognised later.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.neo4j_local.errors import LocalNeo4jError
from app.neo4j_local.paths import deploy_dir
from graph.settings import Settings

LAUNCHER_CLASS = "Launcher"
HOME_MARK = "-Dsybilscope.neo4j.home="
# The line the Launcher prints once the default database is available.
READY_MARK = "sybilscope-neo4j ready"

_MEMORY_RE = re.compile(r"^[0-9]+[kKmMgG]?$")
_CDS_DUMP_RE = re.compile(r"^launcher-[0-9a-f]{12}-[0-9a-f]{8}\.jsa\.tmp-[0-9a-f]{8}$")


@dataclass
class LaunchPlan:
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


def launch_plan(lib: Path, java: str) -> LaunchPlan:
    """How to run the Launcher: from its compiled jar with a class-data sharing (CDS) archive
    when javac is there, else in Java's source-file mode.

    The first server of a cache writes a dynamic CDS archive of the ~20k classes Neo4j loads when
    it stops (``-XX:ArchiveClassesAtExit``; that stop takes some seconds longer); later starts map
    it (``-XX:SharedArchiveFile``), which cuts the JVM's start by about a third. A stale or foreign
    archive is ignored by the JVM; its warnings are silenced.
    """
    jar = _launcher_jar(lib, java)
    if jar is None:
        return LaunchPlan(str(lib / "*"), str(deploy_dir() / "Launcher.java"), [])
    java_key = hashlib.sha256(os.path.realpath(java).encode()).hexdigest()[:8]
    cds_dir = lib.parent / "cds"
    archive = cds_dir / f"{jar.stem}-{java_key}.jsa"
    quiet = ["-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
    classpath = f"{lib / '*'}{os.pathsep}{jar}"
    if archive.is_file():
        return LaunchPlan(classpath, LAUNCHER_CLASS, [f"-XX:SharedArchiveFile={archive}", *quiet])
    cds_dir.mkdir(exist_ok=True)
    for old in cds_dir.glob("*.tmp-*"):  # left by servers that were killed or died
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > 600:
                old.unlink()
    dump = cds_dir / f"{archive.name}.tmp-{secrets.token_hex(4)}"
    return LaunchPlan(
        classpath, LAUNCHER_CLASS, [f"-XX:ArchiveClassesAtExit={dump}", *quiet], dump
    )


def keep_cds_archive(state: dict[str, Any], clean_exit: bool) -> None:
    """After the server ended: move the archive it dumped into place, or drop a partial one."""
    dump = Path(str(state.get("cds_dump") or ""))
    if dump.parent.name != "cds" or not _CDS_DUMP_RE.match(dump.name):
        return  # only ever touch a file this package named
    with contextlib.suppress(OSError):
        if clean_exit and dump.is_file() and dump.stat().st_size > 1 << 20:
            os.replace(dump, dump.with_name(dump.name.split(".tmp-")[0]))
        else:
            dump.unlink()


def jvm_args(settings: Settings, home: Path) -> list[str]:
    """The JVM options of a server whose home is ``home`` (heap from ``neo4j_heap``)."""
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
