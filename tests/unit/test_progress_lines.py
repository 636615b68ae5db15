"""Setting ``progress`` = 'lines': one line per step of a load, for logs and batch jobs."""

from __future__ import annotations

from pathlib import Path

from graph.settings import Settings
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir
from loaders.load import load_bundle
from loaders.progress import LineProgress
from loaders.synthetic import generate


def test_a_load_reports_each_table_and_step_once(tmp_path: Path) -> None:
    generate(tmp_path / "world", "tiny", 3)
    lines: list[str] = []
    ws = tmp_path / "ws"
    report = load_bundle(tmp_path / "world", Settings({"workspace": str(ws)}, environ={}), EmbeddedStore(embedded_dir(ws)),
                         progress=LineProgress(lines.append))
    accounts = report.to_json()["tables"]["accounts"]["read"]
    assert f"read accounts: {accounts:,} rows" in "\n".join(lines)
    assert lines.index("reading accounts (1 file)") < lines.index("checking accounts")
    assert any(line.startswith("graph: batched") for line in lines)
    assert len(lines) == len(set(lines)) < 60  # a step per line, no per-row chatter
