"""Loading hand-made hostile bundles through the real loader, and reading back what it left."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from graph.settings import Settings
from graph.stores.embedded import EmbeddedStore
from loaders.load import LoadReport, load_bundle
from tests.worlds.bundles import write_bundle


def settings_for(ws: Path, **overrides: Any) -> Settings:
    """Settings of a test workspace (the real defaults otherwise, the salt file included)."""
    return Settings({"workspace": str(ws), **overrides}, environ={})


def load(tmp_path: Path, files: Mapping[str, str | bytes], **overrides: Any) -> tuple[LoadReport, EmbeddedStore, Path]:
    """Write ``files`` as a bundle and load it into a fresh workspace's embedded store."""
    bundle = write_bundle(tmp_path / "bundle", files)
    ws = tmp_path / "ws"
    store = EmbeddedStore(ws / "embedded")
    return load_bundle(bundle, settings_for(ws, **overrides), store), store, ws


def quarantine(report: LoadReport) -> list[dict[str, Any]]:
    text = Path(report.quarantine_path).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def assert_files_balance(report: LoadReport) -> None:
    """input-bundle.md: for every file, rows read = loaded + quarantined + duplicates."""
    for rel, counts in report.files.items():
        assert counts["read"] == counts["loaded"] + counts["quarantined"] + counts["duplicates"], rel


def staged_rows(ws: Path, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted((ws / "staging" / table).glob("*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def workspace_texts(ws: Path) -> dict[str, bytes]:
    """Every file of the workspace as bytes to search: Parquet decoded to its values (its
    pages are compressed, so a raw search would find nothing even if a value were there),
    everything else (JSON, JSONL, the pickled embedded graph, the salt) as it is on disk."""
    out: dict[str, bytes] = {}
    for path in sorted(p for p in ws.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".parquet":
            rows = pq.read_table(path).to_pylist()
            data = json.dumps(rows, ensure_ascii=False, default=str).encode("utf-8")
        out[path.relative_to(ws).as_posix()] = data
    return out


def files_holding(ws: Path, values: Iterable[str]) -> list[tuple[str, str]]:
    """(file, value) for every planted value found anywhere in the workspace."""
    texts = workspace_texts(ws)
    return [(name, value) for value in values for name, data in texts.items() if value.encode("utf-8") in data]


def modes(root: Path) -> dict[str, int]:
    """Permission bits of ``root`` and everything under it, by path relative to ``root``."""
    out = {".": os.stat(root).st_mode & 0o777}
    for path in root.rglob("*"):
        out[path.relative_to(root).as_posix()] = os.lstat(path).st_mode & 0o777
    return out
