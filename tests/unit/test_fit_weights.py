"""Fitted scoring weights: the weights file is read and validated, the non-negative logistic
fit keeps every weight >= 0, and leave-one-scenario-out computes what it says."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graph import scoring, takeover
from graph.scoring import INDICATORS, PENALTIES, WeightsError, read_weights, score_of

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("fit_weights", ROOT / "bench" / "fit_weights.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["fit_weights"] = module
    spec.loader.exec_module(module)
    return module


fw = _bench()


def _write(tmp_path: Path, **changes: Any) -> Path:
    data = json.loads(scoring.WEIGHTS_FILE.read_text())
    data.update(changes)
    path = tmp_path / "weights.json"
    path.write_text(json.dumps(data))
    return path


def test_the_shipped_weights_name_every_indicator_and_are_non_negative() -> None:
    fitted = read_weights()
    assert list(fitted.weights) == list(INDICATORS) and list(fitted.penalties) == list(PENALTIES)
    assert all(v >= 0 for v in [*fitted.weights.values(), *fitted.penalties.values()])
    assert fitted.weights == scoring.WEIGHTS
    assert takeover.weight() == fitted.weights["synchronised_takeover"]  # not hand-set in takeover.py


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weights": {k: 0.1 for k in INDICATORS[:-1]}}, "missing"),
        ({"weights": {**{k: 0.1 for k in INDICATORS}, "made_up": 0.2}}, "unknown"),
        ({"weights": {**{k: 0.1 for k in INDICATORS}, "size": -0.1}}, ">= 0"),
        ({"weights": {**{k: 0.1 for k in INDICATORS}, "size": "0.1"}}, ">= 0"),
        ({"penalties": {"behaviour_only": 0.2}}, "missing"),
        ({"version": 99}, "version"),
        ({"weights": {k: 0.0 for k in INDICATORS}}, "nothing could ever be flagged"),
    ],
)
def test_a_bad_weights_file_is_refused_with_a_clear_error(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(WeightsError, match=message):
        read_weights(_write(tmp_path, **change))


def test_an_unreadable_weights_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "weights.json").write_text("{not json")
    with pytest.raises(WeightsError, match="cannot read"):
        read_weights(tmp_path / "weights.json")
    with pytest.raises(WeightsError, match="cannot read"):
        read_weights(tmp_path / "absent.json")


def test_score_of_matches_weights_times_strengths_minus_penalties() -> None:
    weights = {k: 0.0 for k in INDICATORS} | {"size": 0.5, "lockstep_activity": 0.4}
    penalties = {"behaviour_only": 0.3, "clockwork_schedule": 0.0}
    assert score_of({"size": 1.0, "lockstep_activity": 0.5}, weights, penalties) == pytest.approx(0.7)
    assert score_of({"size": 1.0, "behaviour_only": 1.0}, weights, penalties) == pytest.approx(0.2)
    assert score_of({"behaviour_only": 1.0}, weights, penalties) == 0.0  # clipped at 0


def test_the_fit_keeps_every_weight_non_negative_and_separates_the_classes() -> None:
    rng = np.random.default_rng(1)
    n = 200
    y = (rng.random(n) < 0.4).astype(float)
    good = np.clip(y * 0.8 + rng.normal(0, 0.1, n), 0, 1)  # rises with being an operator
    bad = np.clip((1 - y) * 0.8 + rng.normal(0, 0.1, n), 0, 1)  # rises with being benign
    x = np.column_stack([good, bad])
    coef, intercept = fw.fit_nonnegative_logistic(x, y, np.ones(n))
    assert coef[0] > 1.0 and coef[1] == 0.0 and intercept < 0  # a negative evidence gets weight 0, not < 0
    assert np.mean(((x @ coef + intercept) >= 0) == (y > 0)) > 0.95
    with pytest.raises(ValueError, match="both kinds"):
        fw.fit_nonnegative_logistic(x, np.zeros(n), np.ones(n))


def test_weights_are_scaled_so_the_threshold_is_the_decision_boundary() -> None:
    coef = np.zeros(len(INDICATORS) + len(PENALTIES))
    coef[INDICATORS.index("size")] = 4.0
    weights, penalties = fw.to_weights(coef, -2.0, 0.5)
    assert weights["size"] == 1.0 and set(penalties) == set(PENALTIES)
    # strength 0.5 puts the logit at 0 (P = 0.5) and the score at the threshold
    assert score_of({"size": 0.5}, weights, penalties) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="intercept"):
        fw.to_weights(coef, 0.1, 0.5)


def _world(scenario: str, seed: int = 1, operator_strength: float = 1.0) -> Any:
    labels = {"a1": "op-x", "a2": "op-x", "a3": "op-x", "a4": "op-y", "a5": "op-x", "b1": "", "b2": "", "b3": ""}
    clusters = [
        {"members": ["a1", "a2", "a3"], "strengths": {"lockstep_activity": operator_strength}, "operator": "op-x"},
        {"members": ["b1", "b2"], "strengths": {}, "operator": ""},
        {"members": ["a4", "b3"], "strengths": {"lockstep_activity": operator_strength}, "operator": "op-y"},
    ]
    return fw.World(scenario, seed, labels, {"b1": "family", "b2": "family", "b3": "vpn"}, clusters)


def test_evaluate_world_counts_accounts_mixed_clusters_and_misattribution() -> None:
    weights = {k: 0.0 for k in INDICATORS} | {"lockstep_activity": 0.6}
    penalties = dict.fromkeys(PENALTIES, 0.0)
    got = fw.evaluate_world(_world("s"), weights, penalties, 0.5)
    # flagged: {a1 a2 a3} and {a4 b3}; a5 never clustered
    assert got["precision"] == 0.8 and got["recall"] == 0.8
    assert got["worst_operator_recall"] == 0.75  # op-x: 3 of 4; op-y: 1 of 1
    assert got["worst_group_fp_rate"] == 1.0  # the one vpn account is flagged
    assert (got["mixed_clusters"], got["mixed_accounts"]) == (1, 2)
    assert (got["misattributed"], got["benign_attributed"]) == (0, 1)
    low = fw.evaluate_world(_world("s"), weights | {"lockstep_activity": 0.4}, penalties, 0.5)
    assert low["recall"] == 0.0 and low["mixed_clusters"] == 0


def test_design_labels_clusters_by_their_majority_and_weights_rows_by_accounts() -> None:
    x, y, w = fw.design([_world("s")])
    assert y.tolist() == [1.0, 0.0, 0.0]  # {a4, b3}: a tie is not an operator's cluster
    assert w.tolist() == [3.0, 2.0, 2.0]
    assert x.shape == (3, len(INDICATORS) + len(PENALTIES))
    assert x[0, INDICATORS.index("lockstep_activity")] == 1.0


def test_loso_fits_without_the_held_out_scenario_and_scores_it_with_those_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    worlds = [_world("alpha", 1), _world("alpha", 2), _world("beta", 1), _world("gamma", 1, operator_strength=0.3)]
    trained_on: list[list[str]] = []
    real_fit = fw.fit

    def recording_fit(train: list[Any], threshold: float, l2: float = fw.DEFAULT_L2) -> Any:
        trained_on.append(sorted({w.scenario for w in train}))
        return real_fit(train, threshold, l2)

    monkeypatch.setattr(fw, "fit", recording_fit)
    rows = fw.loso(worlds, 0.5)
    assert [r["scenario"] for r in rows] == ["alpha", "beta", "gamma"]
    assert trained_on == [["alpha", "beta", "gamma"], ["beta", "gamma"], ["alpha", "gamma"], ["alpha", "beta"]]
    assert rows[0]["seeds"] == [1, 2]
    for row in rows:
        held = [w for w in worlds if w.scenario == row["scenario"]]
        figures = [fw.evaluate_world(w, row["weights"], row["penalties"], 0.5) for w in held]
        assert row["held_out"] == fw.worst(figures)
    # gamma's operators show a weaker signal than the training worlds': held out, they are missed
    assert rows[2]["held_out"]["recall"] <= rows[2]["in_sample"]["recall"]
    table = fw.loso_table(rows)
    assert "held out: " in table and "gamma" in table


def test_worst_takes_the_worst_direction_per_metric() -> None:
    a = {k: 1.0 for k, _, _ in fw.METRICS} | {"mixed_clusters": 0}
    b = {k: 0.5 for k, _, _ in fw.METRICS} | {"mixed_clusters": 3}
    got = fw.worst([a, b])
    assert got["precision"] == 0.5 and got["mixed_clusters"] == 3 and got["worst_group_fp_rate"] == 1.0
