"""``sybilscope export clusters|graph`` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest
import stix2
from click.testing import CliRunner

from app.cli import main
from graph.export.manifest import verify_manifest
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir
from tests.worlds.evidence import build_world, write_staging


@pytest.fixture()
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("SYBILSCOPE_STORE", "SYBILSCOPE_WORKSPACE", "SYBILSCOPE_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    ws = tmp_path / "ws"
    build_world(EmbeddedStore(embedded_dir(ws)))
    write_staging(ws)
    return ws


def _cli(workspace: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--workspace", str(workspace)])
    return result.exit_code, result.stdout, result.stderr


def test_export_clusters_csv_and_json(workspace: Path, tmp_path: Path) -> None:
    code, _, err = _cli(workspace, "export", "clusters", "-o", str(tmp_path / "c.csv"), "--format", "csv")
    assert code == 0, err
    lines = (tmp_path / "c.csv").read_text().splitlines()
    assert lines[0] == "cluster_id,account_id,score,flagged,operator_id" and len(lines) == 9
    assert "c-3,acct-c1,0.2,false," in lines
    code, _, _ = _cli(workspace, "export", "clusters", "-o", str(tmp_path / "c.json"), "--format", "json")
    assert code == 0 and len(json.loads((tmp_path / "c.json").read_text())["clusters"]) == 3


def test_export_graph_formats(workspace: Path, tmp_path: Path) -> None:
    code, out, err = _cli(workspace, "export", "graph", "-o", str(tmp_path / "g.graphml"), "--format", "graphml",
                          "--cluster", "c-1", "--json")
    assert code == 0, err
    summary = json.loads(out)
    g = nx.read_graphml(tmp_path / "g.graphml")
    assert g.number_of_nodes() == summary["nodes"] and summary["clusters"] == ["c-1"]
    code, _, err = _cli(workspace, "export", "graph", "-o", str(tmp_path / "b.json"), "--format", "stix", "--operator", "op-alpha")
    assert code == 0, err
    stix2.parse((tmp_path / "b.json").read_text(), allow_custom=False)


def test_export_report_with_redaction(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "evidence"
    code, _, err = _cli(workspace, "export", "graph", "-o", str(out), "--format", "report", "--cluster", "c-1", "--redact")
    assert code == 0, err
    assert verify_manifest(out) == []
    text = (out / "report.md").read_text()
    assert "payments.csv row" in text and "acct-a1" not in text


def test_export_errors_are_one_line(workspace: Path, tmp_path: Path) -> None:
    code, _, err = _cli(workspace, "export", "graph", "-o", str(tmp_path / "x"), "--format", "json", "--cluster", "nope")
    assert code != 0 and "no cluster 'nope'" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli(workspace, "export", "graph", "-o", str(tmp_path / "x"), "--format", "json", "--cluster", "c-1",
                        "--operator", "op-alpha")
    assert code != 0 and "not both" in err
