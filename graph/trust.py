"""What a workspace file must be before it is trusted: this user's, and writable by no one else.

The default workspace is ``./.sybilscope``, so running a command in a directory someone else
controls would read their files: a planted graph, staging area or hashing salt. Every file the
store trusts is therefore checked first: it must belong to this user and not be writable by the
group or by others (a missing path passes; what is created later is created private). The
checks follow symlinks, because what matters is who can change what is finally read.

New directories and files the store creates are 0700 and 0600.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


class UntrustedPath(PermissionError):
    """A workspace path another user could have written: refused before it is read."""


def untrusted_reason(path: Path, st: os.stat_result, what: str) -> str | None:
    """Why ``path`` (with the status ``st``) must not be trusted, with the fix; None if it may be."""
    me = os.geteuid()
    quoted = shlex.quote(str(path))
    if st.st_uid != me:
        return (
            f"refusing to use the {what} {path}: it belongs to uid {st.st_uid}, not to you (uid {me}), "
            "so another user could have planted its contents; use a workspace of your own (--workspace DIR), "
            f"or, if you trust it, take it over: chown {me} {quoted} && chmod go-w {quoted}"
        )
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable:
        who = "the group and by others" if writable == stat.S_IWGRP | stat.S_IWOTH else (
            "the group" if writable == stat.S_IWGRP else "others")
        return (
            f"refusing to use the {what} {path}: it is writable by {who} "
            f"(mode {stat.S_IMODE(st.st_mode):04o}), so another user could have planted its contents; "
            f"fix: chmod go-w {quoted}"
        )
    return None


def check_stat(path: Path, st: os.stat_result, what: str) -> None:
    """Raise UntrustedPath unless the status ``st`` of ``path`` is this user's and private
    (for a file already open: check its ``os.fstat``, so it cannot be swapped in between)."""
    reason = untrusted_reason(path, st, what)
    if reason is not None:
        raise UntrustedPath(reason)


def check_private(path: Path, what: str) -> None:
    """Raise UntrustedPath if ``path`` exists and another user could have written it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    check_stat(path, st, what)


def make_private_dir(path: Path, what: str) -> None:
    """Create ``path`` and any missing parents as 0700 directories, then check that the
    directory (new or not) is this user's and private."""
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first: checked below
            directory.mkdir(mode=PRIVATE_DIR_MODE)
    check_private(path, what)


def check_workspace(workspace: Path) -> None:
    """The workspace directory and what is read from it besides the store's own files (which
    the embedded store checks as it reads them): the staging area and the hashing salt."""
    from graph.workspace import salt_path, staging_dir

    check_private(workspace, "workspace")
    check_private(staging_dir(workspace), "staging area")
    check_private(salt_path(workspace), "hashing salt")
