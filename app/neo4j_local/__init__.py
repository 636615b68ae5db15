"""A local Neo4j Community server for one workspace, gathered from Maven Central.

``sybilscope neo4j start|stop|status`` call :func:`start`, :func:`stop` and :func:`status`.

* Jars (jars.py): ``mvn dependency:copy-dependencies`` on ``deploy/neo4j/pom.xml`` gathers Neo4j
  ``settings["neo4j_version"]`` (with the Bolt connector) into ``<cache>/neo4j-<version>/lib``,
  once; the download goes to a temporary directory that is renamed only when Maven succeeded, so
  an interrupted download is never taken for a complete cache. Java and Maven are found by
  tools.py.
* Server (launch.py): ``deploy/neo4j/Launcher.java`` (embedded API, Bolt on 127.0.0.1 only, no
  auth, no HTTP, no usage reporting). It is compiled once into a jar in the cache when ``javac``
  is there (the JVM then also keeps a class-data sharing archive there), else run in Java's
  source-file mode (about 2 s slower per start).
* Everything the server writes is under ``<workspace>/neo4j/`` (paths.py): ``data/``, ``logs/``
  (Neo4j's own logs and ``console.log``, the JVM's stdout/stderr), ``tmp/``, the pid file
  ``neo4j.pid`` and ``server.json`` (version and Bolt port of the running server).
* Only the recorded pid is ever signalled, and only when ``/proc/<pid>/cmdline`` shows that it is
  this workspace's Launcher, so a recycled pid is never killed (process.py). Starting, stopping
  and waiting for Bolt are server.py.
"""

from __future__ import annotations

from app.neo4j_local.errors import LocalNeo4jError
from app.neo4j_local.jars import gather_jars
from app.neo4j_local.launch import HOME_MARK, LAUNCHER_CLASS, READY_MARK
from app.neo4j_local.paths import (
    CONSOLE_LOG,
    PID_FILE,
    STATE_FILE,
    cache_root,
    deploy_dir,
    server_home,
    version_dir,
)
from app.neo4j_local.process import is_our_server, port_in_use, process_cmdline, read_pid
from app.neo4j_local.server import ServerStatus, start, status, stop
from app.neo4j_local.tools import INSTALL_HINT, MIN_JAVA, find_java, find_mvn, java_major_version

__all__ = [
    "CONSOLE_LOG",
    "HOME_MARK",
    "INSTALL_HINT",
    "LAUNCHER_CLASS",
    "MIN_JAVA",
    "PID_FILE",
    "READY_MARK",
    "STATE_FILE",
    "LocalNeo4jError",
    "ServerStatus",
    "cache_root",
    "deploy_dir",
    "find_java",
    "find_mvn",
    "gather_jars",
    "is_our_server",
    "java_major_version",
    "port_in_use",
    "process_cmdline",
    "read_pid",
    "server_home",
    "start",
    "status",
    "stop",
    "version_dir",
]
