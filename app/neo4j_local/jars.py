"""The Neo4j jars of one version, gathered from Maven Central into the cache once.

``mvn dependency:copy-dependencies`` on ``deploy/neo4j/pom.xml`` writes them into a temporary
directory that is renamed to ``<cache>/neo4j-<version>/lib`` only when Maven succeeded and both
the server and Bolt jars are there, so an interrupted download is never taken for a complete cache.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from app.neo4j_local.errors import LocalNeo4jError
from app.neo4j_local.paths import cache_root, deploy_dir, locked, neo4j_version, version_dir
from app.neo4j_local.tools import find_java, find_mvn
from graph.settings import Settings


def _lib_complete(lib: Path, version: str) -> bool:
    return (lib / f"neo4j-{version}.jar").is_file() and (
        lib / f"neo4j-bolt-{version}.jar"
    ).is_file()


def gather_jars(settings: Settings, *, echo: Callable[[str], None] = print) -> Path:
    """The directory of Neo4j jars for ``settings["neo4j_version"]``; runs Maven the first time."""
    version = neo4j_version(settings)
    vdir = version_dir(settings)
    lib = vdir / "lib"
    if _lib_complete(lib, version):
        return lib
    with locked(cache_root(settings) / f"neo4j-{version}.lock"):
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
    """One line for a failed Maven run: an unknown version said plainly, else Maven's first error."""
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
