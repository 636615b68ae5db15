"""Attribution suggestions: indicator matching, the single-kind cap, learning from analysts."""

from __future__ import annotations

from graph.attribution import (
    SINGLE_KIND_CAP,
    Indicator,
    indicator_entities,
    learned_indicators,
    shared_infrastructure,
    suggest,
)
from graph.linkage.facts import Facts, Use
from graph.schema import Label


def _facts() -> Facts:
    facts = Facts()
    facts.uses[Label.PAYMENT_METHOD.value] = {"pm1": {"a": Use(1), "b": Use(1)}, "pm9": {"x": Use(1), "y": Use(1)}}
    facts.uses[Label.EMAIL_DOMAIN.value] = {"throwmail.example": {"a": Use(1), "b": Use(1), "c": Use(1)}}
    facts.uses[Label.IP.value] = {"193.170.0.21": {"a": Use(1), "c": Use(1)}}
    facts.entities[Label.PAYMENT_METHOD.value] = {"pm1": {"card_bin": "459812"}, "pm9": {"card_bin": "111111"}}
    facts.entities[Label.PROMPT_TEMPLATE.value] = {"t7": {"template": "You are PolyTutor. Think step by step", "example": ""}}
    return facts


def _ind(op: str, itype: str, value: str, conf: float, facts: Facts) -> Indicator:
    return Indicator(op, f"{itype}:{value}", itype, value, conf, "test", indicator_entities(facts, itype, value))


def test_indicator_types_resolve_to_entities() -> None:
    facts = _facts()
    assert indicator_entities(facts, "card_bin", "459812") == {("PaymentMethod", "pm1")}
    assert ("IP", "193.170.0.21") in indicator_entities(facts, "network", "193.170.0.0/24")
    assert ("PromptTemplate", "t7") in indicator_entities(facts, "prompt_template", "you are polytutor")
    assert indicator_entities(facts, "email_domain", "ThrowMail.example") == {("EmailDomain", "throwmail.example")}


def test_two_kinds_of_indicators_give_a_confident_suggestion() -> None:
    facts = _facts()
    inds = [_ind("op-a", "payment", "pm1", 0.9, facts), _ind("op-a", "email_domain", "throwmail.example", 0.7, facts),
            _ind("op-b", "payment", "pm9", 0.9, facts)]
    s = suggest(["a", "b", "c"], facts, inds)
    assert s is not None and s.operator_id == "op-a" and s.confidence > SINGLE_KIND_CAP
    assert {m["type"] for m in s.indicators} == {"payment", "email_domain"}
    assert s.indicators[0]["coverage"] in (round(2 / 3, 3), 1.0)


def test_one_kind_alone_is_capped_and_nothing_matching_gives_none() -> None:
    facts = _facts()
    s = suggest(["a", "b"], facts, [_ind("op-a", "payment", "pm1", 0.99, facts)])
    assert s is not None and s.confidence == SINGLE_KIND_CAP
    assert suggest(["q", "r"], facts, [_ind("op-a", "payment", "pm1", 0.99, facts)]) is None


def test_analyst_attributed_clusters_teach_new_indicators() -> None:
    facts = _facts()
    learned = learned_indicators(facts, {"cl-old": ("op-z", 1.0)}, {"cl-old": ["x"]}, cap=50)
    assert [i.entities for i in learned] == [frozenset({("PaymentMethod", "pm9")})]
    s = suggest(["x", "y"], facts, learned, {"cl-old": ("op-z", 0.9, frozenset({"x"}))})
    assert s is not None and s.operator_id == "op-z"
    assert {m["type"] for m in s.indicators} == {"learned_PaymentMethod", "analyst_attribution"}


def test_a_providers_pool_supports_a_suggestion_but_never_makes_one_alone() -> None:
    """Benign people who rent the same residential proxy an operator is known to use match its
    network indicator; that alone says nothing about who runs them."""
    facts = _facts()
    facts.uses[Label.IP.value]["73.8.0.9"] = {"p": Use(1), "q": Use(1), "a": Use(1), "b": Use(1)}
    facts.entities[Label.IP.value] = {"73.8.0.9": {"network": "73.8.0.0/18"}}
    facts.entities[Label.NETWORK.value] = {"73.8.0.0/18": {"kind": "proxy"}}
    proxy = Indicator("op-a", "network:73.8.0.0/18", "network", "73.8.0.0/18", 0.9, "test",
                      indicator_entities(facts, "network", "73.8.0.0/18"), shared=True)
    asn = Indicator("op-a", "asn:64601", "asn", "64601", 0.9, "test", frozenset({("ASN", "64601")}), shared=True)
    facts.uses[Label.ASN.value] = {"64601": {"p": Use(1), "q": Use(1)}}
    assert suggest(["p", "q"], facts, [proxy, asn]) is None
    with_card = suggest(["a", "b"], facts, [proxy, _ind("op-a", "payment", "pm1", 0.9, facts)])
    assert with_card is not None and with_card.operator_id == "op-a" and with_card.confidence > SINGLE_KIND_CAP
    assert {m["type"]: m["shared_infrastructure"] for m in with_card.indicators} == {"network": True, "payment": False}


def test_known_indicators_on_a_providers_pool_are_marked_shared() -> None:
    facts = _facts()
    facts.entities[Label.NETWORK.value] = {"73.8.0.0/18": {"kind": "proxy"}, "193.170.0.0/24": {"kind": "education"}}
    assert shared_infrastructure(facts, indicator_entities(facts, "network", "73.8.0.0/18"))
    assert not shared_infrastructure(facts, indicator_entities(facts, "network", "193.170.0.0/24"))
    assert not shared_infrastructure(facts, indicator_entities(facts, "payment", "pm1"))
