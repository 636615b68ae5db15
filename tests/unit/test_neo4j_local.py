"""app.neo4j_local (the package) without a Neo4j server: pid files, process identity, tools, jar cache."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import neo4j_local as nl
from app.neo4j_local import launch, logs
from graph.settings import SETTINGS, Settings

INSTALL = "apt-get install openjdk-17-jre-headless maven"


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "workspace": str(tmp_path / "ws"),
        "neo4j_cache_dir": str(tmp_path / "cache"),
    }
    values.update(overrides)
    return Settings(values, environ={})


def write_script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory that is the whole PATH (no JAVA_HOME either)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    return bin_dir


@pytest.fixture
def fake_java(fake_bin: Path) -> Path:
    return write_script(
        fake_bin / "java", "echo 'openjdk version \"17.0.15\" 2025-04-15' >&2\nexit 0\n"
    )


def spawn(*argv: str, ignore_term: bool = False) -> subprocess.Popen[bytes]:
    """A Python sleeper whose command line carries ``argv`` (as a Launcher's would)."""
    code = "import signal, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('up', flush=True)\ntime.sleep(120)\n"
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    return proc


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def fake_launcher(home: Path, *, ignore_term: bool = False) -> subprocess.Popen[bytes]:
    return spawn(
        f"{nl.HOME_MARK}{home}", "Launcher", str(home), "7687", "1g", ignore_term=ignore_term
    )


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---- status and pid files --------------------------------------------------------------------


def test_status_when_nothing_runs(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, neo4j_bolt_port=7999)
    st = nl.status(settings)
    assert st.running is False and st.pid is None
    assert st.bolt_uri == "bolt://127.0.0.1:7999"
    assert st.version == settings["neo4j_version"]
    assert st.home == str(tmp_path / "ws" / "neo4j")
    assert set(st.to_json()) == {"running", "pid", "bolt_uri", "version", "home"}
    assert not (tmp_path / "ws").exists(), "status must not create the workspace"


def test_stop_when_nothing_runs(tmp_path: Path) -> None:
    assert nl.stop(make_settings(tmp_path)).running is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4242\n", 4242), ("  17 ", 17), ("", None), ("0", None), ("-3", None), ("abc", None)],
)
def test_read_pid(tmp_path: Path, text: str, expected: int | None) -> None:
    (tmp_path / nl.PID_FILE).write_text(text)
    assert nl.read_pid(tmp_path) == expected


def test_read_pid_missing_file(tmp_path: Path) -> None:
    assert nl.read_pid(tmp_path) is None


def test_stale_pid_is_not_running_and_stop_forgets_it(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    home = nl.server_home(settings)
    home.mkdir(parents=True)
    (home / nl.PID_FILE).write_text(f"{dead_pid()}\n")
    (home / nl.STATE_FILE).write_text('{"version": "5.26.0", "bolt_port": 7001}')
    assert nl.status(settings).running is False
    assert nl.stop(settings).running is False
    assert not (home / nl.PID_FILE).exists() and not (home / nl.STATE_FILE).exists()


def test_recycled_pid_is_never_signalled(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    settings = make_settings(tmp_path)
    home = nl.server_home(settings)
    home.mkdir(parents=True)
    stranger = spawn("--not-neo4j")  # a live process that now owns the recorded pid
    procs.append(stranger)
    (home / nl.PID_FILE).write_text(f"{stranger.pid}\n")
    assert nl.status(settings).running is False
    assert nl.stop(settings, timeout=1).running is False
    time.sleep(0.2)
    assert stranger.poll() is None, "stop() killed a process that is not our server"
    assert not (home / nl.PID_FILE).exists()


def test_launcher_of_another_workspace_is_not_ours(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    settings = make_settings(tmp_path)
    home = nl.server_home(settings)
    home.mkdir(parents=True)
    other = fake_launcher(tmp_path / "other" / "neo4j")
    procs.append(other)
    (home / nl.PID_FILE).write_text(f"{other.pid}\n")
    assert nl.is_our_server(other.pid, tmp_path / "other" / "neo4j")
    assert not nl.is_our_server(other.pid, home)
    assert nl.stop(settings, timeout=1).running is False
    assert other.poll() is None


def test_status_and_stop_of_our_server(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    settings = make_settings(tmp_path)
    home = nl.server_home(settings)
    home.mkdir(parents=True)
    server = fake_launcher(home)
    procs.append(server)
    (home / nl.PID_FILE).write_text(f"{server.pid}\n")
    (home / nl.STATE_FILE).write_text(
        '{"version": "5.26.30", "bolt_port": 7711, "bolt_uri": "bolt://127.0.0.1:7711"}'
    )
    st = nl.status(settings)
    assert st.running and st.pid == server.pid
    assert st.version == "5.26.30" and st.bolt_uri == "bolt://127.0.0.1:7711"
    assert nl.stop(settings, timeout=10).running is False
    assert server.wait(timeout=10) != 0  # ended by SIGTERM
    assert not (home / nl.PID_FILE).exists()


def test_stop_escalates_to_sigkill(tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    settings = make_settings(tmp_path)
    home = nl.server_home(settings)
    home.mkdir(parents=True)
    server = fake_launcher(home, ignore_term=True)
    procs.append(server)
    (home / nl.PID_FILE).write_text(f"{server.pid}\n")
    started = time.monotonic()
    assert nl.stop(settings, timeout=0.5).running is False
    assert server.wait(timeout=10) == -9
    assert time.monotonic() - started < 10


def test_zombie_is_not_alive(procs: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    proc = fake_launcher(tmp_path)
    procs.append(proc)
    proc.kill()
    time.sleep(0.3)  # not reaped yet: a zombie
    assert nl.process_cmdline(proc.pid) is None
    assert not nl.is_our_server(proc.pid, tmp_path)


# ---- tools -----------------------------------------------------------------------------------


def test_missing_java_says_what_to_install(tmp_path: Path, fake_bin: Path) -> None:
    with pytest.raises(nl.LocalNeo4jError, match="java not found") as info:
        nl.find_java()
    assert INSTALL in str(info.value)
    with pytest.raises(nl.LocalNeo4jError, match=re.escape(INSTALL)):
        nl.start(make_settings(tmp_path, neo4j_bolt_port=free_port()))
    assert nl.status(make_settings(tmp_path)).running is False


def test_old_java_is_refused(fake_bin: Path) -> None:
    write_script(fake_bin / "java", "echo 'java version \"1.8.0_392\"' >&2\n")
    with pytest.raises(nl.LocalNeo4jError, match=r"Java 8; .*17\+"):
        nl.find_java()


def test_java_home_is_preferred(
    tmp_path: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jdk = tmp_path / "jdk" / "bin"
    jdk.mkdir(parents=True)
    java = write_script(jdk / "java", "echo 'openjdk version \"21.0.1\"' >&2\n")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    assert nl.find_java() == str(java)


def test_missing_mvn_says_what_to_install(tmp_path: Path, fake_java: Path) -> None:
    with pytest.raises(nl.LocalNeo4jError, match="mvn") as info:
        nl.gather_jars(make_settings(tmp_path), echo=lambda _: None)
    assert INSTALL in str(info.value)


def test_cached_jars_need_no_maven(tmp_path: Path, fake_bin: Path) -> None:
    settings = make_settings(tmp_path)
    version = settings["neo4j_version"]
    lib = tmp_path / "cache" / f"neo4j-{version}" / "lib"
    lib.mkdir(parents=True)
    (lib / f"neo4j-{version}.jar").write_bytes(b"")
    (lib / f"neo4j-bolt-{version}.jar").write_bytes(b"")
    assert nl.gather_jars(settings, echo=lambda _: None) == lib


FAKE_MVN = """
out=""
for a in "$@"; do case "$a" in -DoutputDirectory=*) out="${a#-DoutputDirectory=}";; esac; done
/bin/mkdir -p "$out"
: > "$out/neo4j-$VERSION.jar"
: > "$out/slf4j-api-2.0.9.jar"
"""


def test_gather_renames_only_a_complete_download(
    tmp_path: Path, fake_java: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    version = settings["neo4j_version"]
    monkeypatch.setenv("VERSION", version)
    vdir = tmp_path / "cache" / f"neo4j-{version}"
    # A download that dies half-way: nothing is taken for a cache.
    write_script(fake_bin / "mvn", FAKE_MVN + "echo '[ERROR] Connection reset'\nexit 1\n")
    with pytest.raises(nl.LocalNeo4jError, match="Connection reset"):
        nl.gather_jars(settings, echo=lambda _: None)
    assert not (vdir / "lib").exists()
    assert not list(vdir.glob("lib.tmp-*"))
    # Maven "succeeds" without the Bolt jar: still refused.
    write_script(fake_bin / "mvn", FAKE_MVN + "exit 0\n")
    with pytest.raises(nl.LocalNeo4jError, match="neo4j-bolt"):
        nl.gather_jars(settings, echo=lambda _: None)
    assert not (vdir / "lib").exists()
    # A complete download is renamed into place and reused without Maven.
    write_script(fake_bin / "mvn", FAKE_MVN + ': > "$out/neo4j-bolt-$VERSION.jar"\nexit 0\n')
    lines: list[str] = []
    lib = nl.gather_jars(settings, echo=lines.append)
    assert lib == vdir / "lib" and (lib / f"neo4j-bolt-{version}.jar").is_file()
    assert any("Maven Central" in line for line in lines)
    (fake_bin / "mvn").unlink()
    assert nl.gather_jars(settings, echo=lambda _: None) == lib


def test_unknown_version_is_reported_plainly(
    tmp_path: Path, fake_java: Path, fake_bin: Path
) -> None:
    write_script(
        fake_bin / "mvn",
        "echo '[ERROR] Failed to execute goal on project x: Could not resolve dependencies: "
        "Could not find artifact org.neo4j:neo4j:jar:5.26.99 in central'\nexit 1\n",
    )
    with pytest.raises(nl.LocalNeo4jError, match="5.26.99 is not on Maven Central"):
        nl.gather_jars(make_settings(tmp_path, neo4j_version="5.26.99"), echo=lambda _: None)


@pytest.mark.parametrize("version", ["latest", "5.26.30; rm -rf /", "../5.26.30", ""])
def test_bad_version_strings(tmp_path: Path, version: str) -> None:
    with pytest.raises(nl.LocalNeo4jError, match="neo4j_version"):
        nl.gather_jars(make_settings(tmp_path, neo4j_version=version), echo=lambda _: None)


# ---- ports -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_port_taken_by_another_program(tmp_path: Path, fake_java: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert nl.port_in_use(port)
        with pytest.raises(nl.LocalNeo4jError, match=f"port {port} .*already in use"):
            nl.start(make_settings(tmp_path, neo4j_bolt_port=port), echo=lambda _: None)
    assert not (tmp_path / "ws" / "neo4j" / nl.PID_FILE).exists()


def test_bad_heap_is_refused(tmp_path: Path, fake_java: Path) -> None:
    with pytest.raises(nl.LocalNeo4jError, match="neo4j_heap"):
        nl.start(make_settings(tmp_path, neo4j_heap="lots", neo4j_bolt_port=free_port()))


# ---- deploy files ----------------------------------------------------------------------------


def test_deploy_dir_and_pom_default_match_settings() -> None:
    deploy = nl.deploy_dir()
    assert (deploy / "Launcher.java").is_file()
    pom = (deploy / "pom.xml").read_text()
    default = next(s.default for s in SETTINGS if s.name == "neo4j_version")
    assert f"<neo4j.version>{default}</neo4j.version>" in pom
    assert "<artifactId>neo4j-bolt</artifactId>" in pom
    assert "copy-dependencies" in pom or "maven-dependency-plugin" in pom


def test_cache_dir_default_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert nl.cache_root(Settings(environ={})) == tmp_path / "home" / ".cache" / "sybilscope"
    assert nl.cache_root(make_settings(tmp_path)) == tmp_path / "cache"
    assert nl.version_dir(make_settings(tmp_path, neo4j_version="5.26.1")).name == "neo4j-5.26.1"


def test_jvm_args_keep_everything_in_home(tmp_path: Path) -> None:
    home = tmp_path / "ws" / "neo4j"
    args = launch.jvm_args(make_settings(tmp_path, neo4j_heap="512m"), home)
    assert "-Xmx512m" in args and "-XX:-UsePerfData" in args
    assert f"-Djava.io.tmpdir={home / 'tmp'}" in args and f"-Djna.tmpdir={home / 'tmp'}" in args
    assert f"{nl.HOME_MARK}{home}" in args


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")
def test_process_cmdline_of_self() -> None:
    argv = nl.process_cmdline(os.getpid())
    assert argv and "python" in Path(argv[0]).name


# ---- launch plan and class-data sharing archive ----------------------------------------------


def test_without_javac_the_launcher_runs_in_source_file_mode(
    tmp_path: Path, fake_java: Path
) -> None:
    lib = tmp_path / "cache" / "neo4j-5.26.30" / "lib"
    lib.mkdir(parents=True)
    plan = launch.launch_plan(lib, str(fake_java))
    assert plan.main.endswith("Launcher.java") and plan.classpath == str(lib / "*")
    assert plan.jvm_args == [] and plan.cds_dump is None


def test_cds_archive_is_kept_only_after_a_clean_exit(tmp_path: Path) -> None:
    cds = tmp_path / "cds"
    cds.mkdir()
    final = cds / "launcher-0123456789ab-89abcdef.jsa"
    dump = cds / f"{final.name}.tmp-0badc0de"
    dump.write_bytes(b"x" * (2 << 20))
    launch.keep_cds_archive({"cds_dump": str(dump)}, clean_exit=False)
    assert not dump.exists() and not final.exists()
    dump.write_bytes(b"x" * (2 << 20))
    launch.keep_cds_archive({"cds_dump": str(dump)}, clean_exit=True)
    assert final.is_file() and not dump.exists()
    stranger = tmp_path / "cds" / "notes.txt"
    stranger.write_text("keep me")
    launch.keep_cds_archive({"cds_dump": str(stranger)}, clean_exit=False)
    launch.keep_cds_archive({"cds_dump": None}, clean_exit=False)
    assert stranger.read_text() == "keep me"


def test_log_tail_covers_only_this_start(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text("=== old start\nsybilscope-neo4j ready old\n")
    offset = log.stat().st_size
    with open(log, "a") as fh:
        fh.write("=== start: java -XX:+ExitOnOutOfMemoryError ...\n")
        fh.write("sybilscope-neo4j starting\njava.lang.IllegalStateException: boom\n\tat x.y(Z)\n")
    tail = logs.log_tail(log, offset)
    assert "old" not in tail and "===" not in tail
    assert logs.key_line(tail) == "java.lang.IllegalStateException: boom"
    assert logs.key_line("sybilscope-neo4j bad argument: 'lots'\nmore") == (
        "sybilscope-neo4j bad argument: 'lots'"
    )
    assert logs.key_line("") == "no output"
    assert logs.log_tail(tmp_path / "missing.log") == ""
