"""Files holding personal data, or the key that hashes it: owner-only, whatever the umask.

The salt (the HMAC key of ``loaders.enrich.salted_hash``), the staging area and the quarantine
are for the workspace's owner only: directories 0700, files 0600. The mode is set with
``chmod``/``fchmod`` right after creation, never left to the umask, so a permissive umask
(0000, 0022) leaves no file wider and a strict one (0077) none unusable. Files that other
libraries write (DuckDB's COPY, pyarrow's Parquet writer) are written inside an owner-only
directory and narrowed before they are moved into place.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import IO

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as owner-only directories; an existing ``path``
    is narrowed to 0700 too. Existing parents are left as they are."""
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        # another process may make it first: it is narrowed all the same
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=PRIVATE_DIR)
        os.chmod(directory, PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """Narrow an existing file to 0600 (before it is moved into the staging area)."""
    os.chmod(path, PRIVATE_FILE)
    return path


def open_private(path: Path, mode: str = "w", *, exclusive: bool = False) -> IO[str]:
    """Open a UTF-8 text file for writing (``w``) or appending (``a``), created 0600 from the
    first byte; ``exclusive`` fails with FileExistsError when it exists."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    if exclusive:
        flags |= os.O_EXCL
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return open(fd, mode, encoding="utf-8")  # noqa: SIM115 - the caller closes it


def write_private_text(path: Path, text: str) -> None:
    """Write ``path`` as a 0600 file (truncating it)."""
    with open_private(path) as fh:
        fh.write(text)


def secure_tree(root: Path) -> None:
    """Narrow ``root`` and everything under it to 0700 directories and 0600 files: workspaces
    written by earlier versions had 0644 files. Symbolic links are left alone."""
    if not root.is_dir() or root.is_symlink():
        return
    os.chmod(root, PRIVATE_DIR)
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames + filenames:
            try:
                _narrow(base / name)
            except FileNotFoundError:
                continue  # a temporary file another process removed meanwhile


def _narrow(target: Path) -> None:
    mode = target.lstat().st_mode
    if stat.S_ISDIR(mode) and stat.S_IMODE(mode) != PRIVATE_DIR:
        os.chmod(target, PRIVATE_DIR)
    elif stat.S_ISREG(mode) and stat.S_IMODE(mode) != PRIVATE_FILE:
        os.chmod(target, PRIVATE_FILE)
