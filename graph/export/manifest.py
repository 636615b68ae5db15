"""SHA-256 manifests: every exported file with its digest, in ``sha256sum`` format, so a
recipient can check the evidence with ``sha256sum -c MANIFEST.sha256`` or ``verify_manifest``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

MANIFEST_NAME = "MANIFEST.sha256"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path, files: Iterable[Path] | None = None) -> Path:
    """Write the manifest of ``files`` (default: every file under ``directory`` but the
    manifest itself), paths relative to ``directory``, sorted."""
    directory = directory.resolve()
    chosen = sorted(
        (p.resolve() for p in (files if files is not None else directory.rglob("*")) if p.is_file()),
        key=lambda p: str(p),
    )
    lines = []
    for path in chosen:
        if path.name == MANIFEST_NAME and path.parent == directory:
            continue
        lines.append(f"{sha256_file(path)}  {path.relative_to(directory).as_posix()}")
    manifest = directory / MANIFEST_NAME
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def verify_manifest(directory: Path) -> list[str]:
    """Problems found (empty when every listed file exists with its digest and no unlisted
    file sits beside them)."""
    manifest = directory / MANIFEST_NAME
    if not manifest.is_file():
        return [f"no {MANIFEST_NAME} in {directory}"]
    problems, listed = [], set()
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        listed.add(name)
        path = directory / name
        if not path.is_file():
            problems.append(f"missing: {name}")
        elif sha256_file(path) != digest:
            problems.append(f"changed: {name}")
    for path in directory.rglob("*"):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and rel != MANIFEST_NAME and rel not in listed:
            problems.append(f"not in manifest: {rel}")
    return problems
