"""The outside programs the local Neo4j needs: Java 17+ (to run it) and Maven (to gather it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from app.neo4j_local.errors import LocalNeo4jError

INSTALL_HINT = "install with: apt-get install openjdk-17-jre-headless maven"
MIN_JAVA = 17


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
    """``mvn`` on PATH; only the first start of a Neo4j version needs it."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalNeo4jError(
            f"mvn (Maven) not found on PATH; it is needed once to gather the Neo4j jars ({INSTALL_HINT})"
        )
    return mvn
