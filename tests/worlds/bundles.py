"""Writing small hand-made input bundles for the loader tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_bundle(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write ``files`` (name relative to the bundle -> text or raw bytes) under ``root``;
    bytes are written as they are, so tests can include BOMs, bad encodings and truncated gzip."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root
