"""Evaluation: metrics, ARI, baselines and the evaluate command on the hand-made world."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from click.testing import CliRunner

from app.cli import main
from graph.detection import run_detection
from graph.evaluation import (
    adjusted_rand_index,
    evaluate,
    fraud_rule_components,
    purity,
    score_method,
    shared_infrastructure_components,
)
from graph.linkage.facts import read_facts
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir
from tests.worlds.detection import CAP, build_world, settings_for


def _labels(tmp_path: Path, groups: dict[str, list[str]]) -> Path:
    path = tmp_path / "labels.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["account_id", "operator_id"])
        for name, ids in groups.items():
            for a in ids:
                w.writerow([a, name if name.startswith("op-") else ""])
    with open(tmp_path / "groups.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["account_id", "group"])
        for name, ids in groups.items():
            for a in ids:
                w.writerow([a, "attack" if name.startswith("op-") else f"{name}:g1"])
    return path


def test_ari_and_purity() -> None:
    assert adjusted_rand_index(list("aabb"), list("xxyy")) == 1.0
    assert adjusted_rand_index(list("aabbcc"), list("xyzxyz")) < 0.0
    assert purity([["a", "b", "c"]], {"a": "op", "b": "op", "c": ""}) == 2 / 3


def test_score_method_counts() -> None:
    labels = {"a": "op1", "b": "op1", "c": "", "d": "", "e": "op2"}
    groups = {"c": "family", "d": "ordinary"}
    m = score_method([["a", "b", "c"]], [["a", "b", "c"]], labels, groups)
    assert (m["true_positives"], m["false_positives"], m["false_negatives"]) == (2, 1, 1)
    assert m["precision"] == round(2 / 3, 4) and m["recall"] == round(2 / 3, 4)
    assert m["recall_per_operator"] == {"op1": {"accounts": 2, "recall": 1.0, "clusters": 1, "cohesion": 1.0},
                                        "op2": {"accounts": 1, "recall": 0.0, "clusters": 0, "cohesion": 0.0}}
    assert m["fp_rate_per_group"]["family"]["fp_rate"] == 1.0 and m["fp_rate_per_group"]["ordinary"]["fp_rate"] == 0.0


def test_cohesion_says_how_many_pieces_an_operator_came_out_in() -> None:
    labels = {"a": "op", "b": "op", "c": "op", "d": "op", "x": ""}
    m = score_method([["a", "b", "x"], ["c"]], [["a", "b", "x"], ["c"]], labels, {})
    assert m["recall_per_operator"]["op"] == {"accounts": 4, "recall": 0.75, "clusters": 2, "cohesion": round(2 / 3, 4)}
    whole = score_method([["a", "b", "c", "d"]], [["a", "b", "c", "d"]], labels, {})
    assert whole["recall_per_operator"]["op"]["cohesion"] == 1.0


def test_detection_beats_baselines_on_the_world(tmp_path: Path) -> None:
    store = EmbeddedStore(embedded_dir(tmp_path))
    groups = build_world(store)
    run_detection(store, settings_for(tmp_path))
    report = evaluate(store, _labels(tmp_path, groups))
    det = report["detection"]
    assert det["precision"] == 1.0 and det["recall"] == 1.0
    assert det["attribution"]["accuracy"] == 1.0
    assert det["fp_rate_per_group"]["family"]["fp_rate"] == 0.0
    for name in ("shared_infrastructure", "neo4j_fraud_rule"):
        assert report["baselines"][name]["fp_rate_per_group"]["family"]["fp_rate"] == 1.0
        assert report["baselines"][name]["f1"] < det["f1"]
    facts = read_facts(store)
    assert any(set(groups["family"]) <= set(c) for c in fraud_rule_components(facts))
    assert any(set(groups["vpn"]) <= set(c) for c in shared_infrastructure_components(facts))


def test_evaluate_and_detect_commands(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    ws = tmp_path / "ws"
    store = EmbeddedStore(embedded_dir(ws))
    groups = build_world(store)
    labels = _labels(tmp_path, groups)
    monkeypatch.setenv("SYBILSCOPE_HUB_MAX_ACCOUNTS", str(CAP))
    runner = CliRunner()
    result = runner.invoke(main, ["detect", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["flagged"] == 1
    out = tmp_path / "eval.json"
    result = runner.invoke(main, ["evaluate", str(labels), "--workspace", str(ws), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "precision" in result.output and "Neo4j fraud rule" in result.output
    report = json.loads(out.read_text())
    assert report["detection"]["recall"] == 1.0 and set(report["baselines"]) == {"shared_infrastructure", "neo4j_fraud_rule"}


def test_detect_writes_a_line_per_step_for_logs_when_asked(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    ws = tmp_path / "ws"
    build_world(EmbeddedStore(embedded_dir(ws)))
    monkeypatch.setenv("SYBILSCOPE_HUB_MAX_ACCOUNTS", str(CAP))
    monkeypatch.setenv("SYBILSCOPE_PROGRESS", "lines")
    result = CliRunner().invoke(main, ["detect", "--workspace", str(ws)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["flagged"] == 1  # the summary alone on stdout
    lines = result.stderr.splitlines()
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d \+\d+m\d\ds \d+\.\d GiB  detect: .+", line) for line in lines), lines
    assert lines[0].endswith("detect: reading accounts, shared values and uses")
    assert any("clustering" in line and "linked pairs" in line for line in lines) and lines[-1].endswith("1 flagged")
    assert any("scoring" in line and "stability of each flagged one" in line for line in lines)
    monkeypatch.setenv("SYBILSCOPE_PROGRESS", "loud")
    result = CliRunner().invoke(main, ["detect", "--workspace", str(ws)])
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.strip().splitlines() == ["Error: setting progress (SYBILSCOPE_PROGRESS) is 'loud'; use one of auto, lines, off"]
