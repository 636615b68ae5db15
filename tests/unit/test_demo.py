"""``sybilscope demo`` (the README's main job) runs the whole pipeline as a user would."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.test_cli_foundation import run


def test_demo_generates_loads_detects_and_evaluates(tmp_path: Path) -> None:
    result = run("demo", "--scale", "tiny", "--no-ui", "--workspace", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for step in ("generate a tiny synthetic world", "load it", "detect clusters", "evaluate against the ground truth"):
        assert f"==> {step}" in result.stderr
    stats = json.loads(run("stats", "--json", "--workspace", str(tmp_path)).stdout)
    assert stats["nodes"]["Account"] > 0 and stats["nodes"]["Cluster"] > 0
    assert stats["relationships"]["MEMBER_OF"] > 0 and stats["relationships"]["LINKED"] > 0
    # a second run reuses the bundle and ends in the same graph
    again = run("demo", "--scale", "tiny", "--no-ui", "--workspace", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert "==> reuse the generated world" in again.stderr
    assert json.loads(run("stats", "--json", "--workspace", str(tmp_path)).stdout) == stats


def test_demo_stops_with_one_line_when_a_step_fails(tmp_path: Path) -> None:
    result = run("demo", "--scale", "tiny", "--no-ui", "--workspace", str(tmp_path), "--store", "bolt://127.0.0.1:1")
    assert result.returncode != 0
    assert "demo stopped:" in result.stderr.strip().splitlines()[-1]
