"""A local Neo4j Community server for one workspace, gathered from Maven Central.

A small package: ``paths`` (where things live), ``jars`` (Java, Maven and the jar cache),
``launch`` (the launch plan and JVM arguments) and ``process`` (start, stop, status). There is
no entry point of its own: scripts use ``sybilscope neo4j start|stop|status``.

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

from app.neo4j_local.jars import find_java, find_mvn, gather_jars, java_major_version
from app.neo4j_local.launch import _jvm_args, _keep_cds_archive, _launch_plan
from app.neo4j_local.paths import (
    HOME_MARK,
    PID_FILE,
    STATE_FILE,
    LocalNeo4jError,
    ServerStatus,
    cache_root,
    deploy_dir,
    server_home,
    version_dir,
)
from app.neo4j_local.process import (
    _key_line,
    _log_tail,
    is_our_server,
    port_in_use,
    process_cmdline,
    read_pid,
    start,
    status,
    stop,
)

__all__ = [
    "HOME_MARK",
    "PID_FILE",
    "STATE_FILE",
    "LocalNeo4jError",
    "ServerStatus",
    "_jvm_args",
    "_keep_cds_archive",
    "_key_line",
    "_launch_plan",
    "_log_tail",
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
