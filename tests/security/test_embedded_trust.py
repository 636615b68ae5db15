"""A workspace or store file other users could write is refused before it is read, with the path
and the fix; what the store creates is private whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from graph import trust
from graph.settings import Settings
from graph.store import StoreError
from graph.stores import open_store
from graph.stores.embedded import GRAPH_FILE, LOCK_FILE, EmbeddedStore
from graph.trust import UntrustedPath
from graph.workspace import embedded_dir, salt_path, staging_dir
from tests.security.helpers import run


def settings_for(ws: Path) -> Settings:
    return Settings({"workspace": str(ws), "store": "embedded"}, environ={})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_a_graph(ws: Path) -> None:
    with open_store(settings_for(ws)) as store:
        store.upsert_relationships("USED_IP", "Account", "IP", [{"start": "a1", "end": "10.0.0.1"}])


@pytest.fixture
def no_umask() -> Iterator[None]:
    """The most permissive umask, so only the modes the store asks for protect its files."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_a_world_writable_workspace_is_refused_by_the_cli(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write_a_graph(ws)
    ws.chmod(0o777)
    result = run("stats", "--workspace", str(ws))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"workspace {ws}" in lines[0] and "writable by the group and by others" in lines[0]
    assert f"chmod go-w {ws}" in lines[0]
    ws.chmod(0o700)
    assert run("stats", "--workspace", str(ws)).returncode == 0


@pytest.mark.parametrize(
    ("where", "what"),
    [
        (embedded_dir, "embedded store directory"),
        (lambda ws: embedded_dir(ws) / GRAPH_FILE, "embedded graph file"),
        (staging_dir, "staging area"),
        (salt_path, "hashing salt"),
    ],
    ids=["store-dir", "store-file", "staging", "salt"],
)
def test_a_group_writable_path_in_the_workspace_is_refused(
    tmp_path: Path, where: Callable[[Path], Path], what: str
) -> None:
    ws = tmp_path / "ws"
    write_a_graph(ws)
    staging_dir(ws).mkdir(mode=0o755)
    salt_path(ws).write_text("0123abcd")
    path = where(ws)
    path.chmod(mode(path) | stat.S_IWGRP)
    with pytest.raises(UntrustedPath) as refused:
        open_store(settings_for(ws))
    assert str(refused.value).startswith(f"refusing to use the {what} {path}: it is writable by the group")
    assert str(refused.value).endswith(f"fix: chmod go-w {path}")


def test_a_store_file_owned_by_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_a_graph(tmp_path / "ws")
    directory = embedded_dir(tmp_path / "ws")
    me = os.geteuid()
    real_stat = os.fstat

    def as_if_theirs(fd: int) -> os.stat_result:  # the file as another uid's file would look
        st = list(real_stat(fd))
        st[stat.ST_UID] = me + 1
        return os.stat_result(st)

    monkeypatch.setattr(os, "fstat", as_if_theirs)
    with pytest.raises(UntrustedPath, match=f"belongs to uid {me + 1}, not to you"):
        EmbeddedStore(directory)


def test_a_workspace_owned_by_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    write_a_graph(ws)
    monkeypatch.setattr(trust.os, "geteuid", lambda: os.getuid() + 1)
    with pytest.raises(UntrustedPath, match=f"workspace {ws}: it belongs to uid {os.getuid()}"):
        open_store(settings_for(ws))


def test_a_store_file_made_writable_while_open_is_refused_on_the_next_read(tmp_path: Path) -> None:
    directory = tmp_path / "embedded"
    reader, writer = EmbeddedStore(directory), EmbeddedStore(directory)
    writer.upsert_nodes("Account", [{"account_id": "a1"}])
    (directory / GRAPH_FILE).chmod(0o666)
    with pytest.raises(StoreError, match="chmod go-w"):
        reader.get_node("Account", "a1")
    # and the refused write released the file lock: fixing the mode is enough to go on
    with pytest.raises(StoreError, match="chmod go-w"):
        writer.upsert_nodes("Account", [{"account_id": "a2"}])
    (directory / GRAPH_FILE).chmod(0o600)
    writer.upsert_nodes("Account", [{"account_id": "a2"}])
    assert [n.key for n in reader.find_nodes("Account")] == ["a1", "a2"]


def test_what_the_store_creates_is_private_whatever_the_umask(tmp_path: Path, no_umask: None) -> None:
    ws = tmp_path / "new" / "ws"
    with open_store(settings_for(ws)) as store:
        with store.batch():
            store.upsert_nodes("Account", [{"account_id": "a1"}])
            lock = embedded_dir(ws) / LOCK_FILE
            assert lock.exists() and mode(lock) == 0o600
        assert mode(tmp_path / "new") == 0o700
        assert mode(ws) == 0o700
        assert mode(embedded_dir(ws)) == 0o700
        assert mode(embedded_dir(ws) / GRAPH_FILE) == 0o600
        store.upsert_nodes("Account", [{"account_id": "a2"}])  # a rewrite stays private
        assert mode(embedded_dir(ws) / GRAPH_FILE) == 0o600


def test_an_existing_private_workspace_keeps_its_mode(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir(mode=0o755)
    ws.chmod(0o755)  # readable by others, as a user may want: allowed, and left alone
    write_a_graph(ws)
    assert mode(ws) == 0o755
    assert trust.untrusted_reason(ws, ws.stat(), "workspace") is None
