"""Scores: indicator contributions add up, lock-step high-volume targeting outranks a family."""

from __future__ import annotations

import pytest

from graph import scoring
from graph.scoring import (
    INDICATORS,
    AccountProfile,
    Baseline,
    densest_window_share,
    score_cluster,
    template_concentration,
    volume_evenness,
)

BASE = Baseline(capability={"other": 0.9, "coding": 0.1}, cot=0.02, exchanges=20.0, tokens=6000.0)


def _operator(i: int) -> AccountProfile:
    return AccountProfile(
        exchanges=400, tokens=400 * 900, created=1_745_000_000.0, first=1_745_100_000.0 + i, first_iso="2025-04-22T00:00:00Z",
        last_iso="2025-06-05T00:00:00Z", capabilities={"coding": 300, "agentic": 100}, cot=350,
        templates={"t-op": 400}, anonymised=400.0, ip_uses=400, payments={"pm-op"}, model_onset=1_747_000_000.0 + i,
    )


def _family(i: int) -> AccountProfile:
    return AccountProfile(
        exchanges=5 + 10 * i, tokens=3000, created=1_600_000_000.0 + 9_000_000 * i, first=1_742_000_000.0 + 2_000_000 * i,
        capabilities={"other": 10}, templates={"t-hi": 5, f"t-own{i}": 5}, ip_uses=10, payments={"pm-fam"},
    )


def test_contributions_sum_to_the_score() -> None:
    profiles = {f"op{i}": _operator(i) for i in range(10)}
    result = score_cluster(sorted(profiles), profiles, BASE, {"t-op": 10}, lockstep_members=10)
    assert abs(result.score - sum(i["contribution"] for i in result.indicators)) < 1e-3
    assert {i["name"] for i in result.indicators} == set(INDICATORS) - {"synchronised_takeover"}  # that one: graph.takeover
    assert set(result.strengths) == set(INDICATORS) | {"behaviour_only", "clockwork_schedule"}
    assert result.indicators[0]["contribution"] >= result.indicators[-1]["contribution"]
    assert result.capability_profile == {"agentic": 0.25, "coding": 0.75}
    assert result.exchanges == 4000 and result.first_seen == "2025-04-22T00:00:00Z"


def test_operator_outranks_family_and_only_operator_passes_default_threshold() -> None:
    ops = {f"op{i}": _operator(i) for i in range(10)}
    fam = {f"f{i}": _family(i) for i in range(4)}
    op_score = score_cluster(sorted(ops), ops, BASE, {"t-op": 10}, lockstep_members=10).score
    fam_score = score_cluster(sorted(fam), fam, BASE, {"t-hi": 5000, **{f"t-own{i}": 1 for i in range(4)}}, lockstep_members=0).score
    assert op_score >= 0.8 and fam_score < 0.3


def test_helpers() -> None:
    assert densest_window_share([0, 10, 20, 10_000_000], 3600) == 2 / 3
    assert densest_window_share([None, 5.0], 3600) == 0.0
    assert volume_evenness([100, 100, 100]) == 1.0 and volume_evenness([1, 1]) == 0.0
    assert volume_evenness([1, 1, 500]) < 0.1
    profiles = {"a": AccountProfile(templates={"t-op": 9, "t-hi": 1}), "b": AccountProfile(templates={"t-op": 10})}
    # t-op is sent only inside the cluster; t-hi by thousands outside it
    assert template_concentration(["a", "b"], profiles, {"t-op": 2, "t-hi": 5000}) == 19 / 20


@pytest.fixture
def even_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights summing to 1 and the penalties at stated values, so a test of how contributions
    combine does not depend on what the last fit found (graph/data/weights.json)."""
    monkeypatch.setattr(scoring, "WEIGHTS", {n: 1.0 / len(INDICATORS) for n in INDICATORS})
    monkeypatch.setattr(scoring, "BEHAVIOUR_ONLY_PENALTY", 0.2)
    monkeypatch.setattr(scoring, "CLOCKWORK_PENALTY", 0.25)


@pytest.mark.usefixtures("even_weights")
def test_behaviour_alone_is_penalised_explicitly() -> None:
    """Scheduled jobs of unrelated companies on one template look lock-step: without any
    shared infrastructure the score carries a negative, named contribution."""
    ops = {f"op{i}": _operator(i) for i in range(10)}
    with_infra = score_cluster(sorted(ops), ops, BASE, {"t-op": 10}, 10, families=["network", "timing"])
    behaviour = score_cluster(sorted(ops), ops, BASE, {"t-op": 10}, 10, families=["prompt", "timing"])
    penalty = [i for i in behaviour.indicators if i["name"] == "behaviour_only"]
    assert penalty and penalty[0]["contribution"] < 0
    assert not [i for i in with_infra.indicators if i["name"] == "behaviour_only"]
    assert abs(with_infra.score - behaviour.score + penalty[0]["contribution"]) < 1e-3
    assert abs(behaviour.score - sum(i["contribution"] for i in behaviour.indicators)) < 1e-3


@pytest.mark.usefixtures("even_weights")
def test_clockwork_schedules_are_named_and_lower_the_score() -> None:
    ops = {f"op{i}": _operator(i) for i in range(10)}
    jobs = {f"job{i}": _operator(i) for i in range(10)}
    for prof in jobs.values():  # a cron job: nearly every exchange at the same minute
        prof.minute_top, prof.minute_total = 390, 400
    for prof in ops.values():
        prof.minute_top, prof.minute_total = 12, 400
    op_score = score_cluster(sorted(ops), ops, BASE, {"t-op": 10}, 10, families=["network"])
    job_score = score_cluster(sorted(jobs), jobs, BASE, {"t-op": 10}, 10, families=["network"])
    named = {i["name"]: i for i in job_score.indicators}
    assert named["clockwork_schedule"]["contribution"] < -0.2
    assert "clockwork_schedule" not in {i["name"] for i in op_score.indicators}
    assert job_score.score < op_score.score - 0.2


def test_withheld_prompts_leave_capability_and_cot_shares_alone() -> None:
    """A withheld prompt (a hashed template) says nothing about capability: counted as
    "other" it would dilute an operator's targeting twentyfold where 95% of texts are withheld."""
    from graph.linkage.facts import Facts
    from graph.linkage.uses import Use
    from graph.scoring import account_profiles

    label = "PromptTemplate"
    facts = Facts(
        accounts={"a": {"exchanges": 200}},
        entities={label: {
            "t-code": {"capability": "coding", "cot": True},
            "t-hi": {"capability": "other", "cot": False},
            "h:1": {"capability": "other", "cot": False, "hashed": True},
        }},
        uses={label: {"t-code": {"a": Use(8)}, "t-hi": {"a": Use(2)}, "h:1": {"a": Use(190)}}},
    )
    prof = account_profiles(facts)["a"]
    assert prof.capabilities == {"coding": 8, "other": 2} and prof.cot == 8
    assert sorted(prof.template_counts.tolist()) == [2, 8, 190]  # still its templates
    score = score_cluster(["a", "a2"], {"a": prof, "a2": prof}, BASE, {}, 0)
    assert next(i for i in score.indicators if i["name"] == "capability_targeting")["value"] == 0.7
