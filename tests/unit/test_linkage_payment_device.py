"""Payment and device evidence: shared instruments, billing patterns, devices, fingerprints."""

from __future__ import annotations

from graph.linkage.device import link_device
from graph.linkage.evidence import Evidence
from graph.linkage.facts import Facts, Use
from graph.linkage.payment import billing_pattern, link_payment
from graph.schema import Label


def test_shared_card_is_strong_evidence() -> None:
    facts = Facts()
    facts.uses[Label.PAYMENT_METHOD.value] = {"pm1": {"a": Use(1), "b": Use(1)}}
    ev = Evidence()
    link_payment(ev, facts, cap=50)
    (reason,) = ev.reasons(("a", "b"))
    assert reason.kind == "shared_payment" and reason.key == "pm1" and reason.weight >= 0.9


def test_same_bin_and_billing_pattern_links_different_cards() -> None:
    facts = Facts()
    facts.uses[Label.PAYMENT_METHOD.value] = {"pm1": {"a": Use(1)}, "pm2": {"b": Use(1)}, "pm3": {"c": Use(1)}}
    facts.entities[Label.PAYMENT_METHOD.value] = {
        "pm1": {"card_bin": "459812", "billing_country": "US", "billing_postal": "89501"},
        "pm2": {"card_bin": "459812", "billing_country": "US", "billing_postal": "89501"},
        "pm3": {"card_bin": "459812", "billing_country": "US", "billing_postal": "10001"},
    }
    ev = Evidence()
    link_payment(ev, facts, cap=50)
    assert ev.families(("a", "b")) == ["payment"]
    assert ev.reasons(("a", "b"))[0].kind == "card_pattern"
    assert ev.weight(("a", "c")) == 0.0
    assert billing_pattern({"card_bin": "459812"}) is None  # a BIN alone says nothing


def test_device_links_and_default_fingerprints_are_hubs() -> None:
    facts = Facts()
    facts.uses[Label.DEVICE.value] = {"dev1": {"a": Use(1), "b": Use(1)}}
    facts.uses[Label.CLIENT_FINGERPRINT.value] = {
        "default-sdk": {f"u{i}": Use(3) for i in range(80)},
        "rare-tls": {"a": Use(2), "c": Use(2)},
    }
    ev = Evidence()
    link_device(ev, facts, cap=50)
    assert ev.reasons(("a", "b"))[0].kind == "shared_device"
    assert ev.reasons(("a", "c"))[0].kind == "shared_client"
    assert ev.weight(("a", "c")) < ev.weight(("a", "b"))
    assert ev.weight(("u1", "u2")) == 0.0
    assert [(h.key, h.why) for h in ev.hubs] == [("default-sdk", "over_cap")]
