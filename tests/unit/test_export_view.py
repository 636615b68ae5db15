"""The Streamlit export view, driven headlessly with AppTest: the downloads it offers are the
real exports (the report zip verifies against its manifest)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from graph.export.manifest import verify_manifest
from tests.worlds.evidence import evidence_workspace, run_view

EXPORT_APP = "from app.views import export\nexport.render()\n"


@pytest.fixture()
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return evidence_workspace(tmp_path, monkeypatch)


_run = run_view


def test_export_view_offers_a_verified_report(workspace: Path) -> None:
    app = _run(EXPORT_APP)
    app.multiselect(key="export_clusters_pick").set_value(["c-1"])
    app.selectbox(key="export_fmt").set_value("report").run()
    app.button(key="export_go").click().run()
    assert not app.exception, app.exception
    name, data = app.session_state["export_file"]
    assert name == "sybilscope-report.zip"
    out = workspace.parent / "unzipped"
    zipfile.ZipFile(io.BytesIO(data)).extractall(out)
    assert verify_manifest(out) == []
    assert "payments.csv row 1" in (out / "report.md").read_text()
    app.button(key="export_clusters_go").click().run()
    fname, content = app.session_state["export_clusters_file"]
    assert fname == "clusters.csv" and content.startswith(b"cluster_id,account_id,score,flagged,operator_id\n")
