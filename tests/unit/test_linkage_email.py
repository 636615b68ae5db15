"""E-mail evidence: throw-away domains, shapes, phones and creation bursts; webmail is a hub."""

from __future__ import annotations

from graph.linkage.email import link_email
from graph.linkage.evidence import Evidence
from graph.linkage.facts import Facts, Use
from graph.schema import Label


def _facts(accounts: dict[str, dict[str, object]], webmail: set[str]) -> Facts:
    facts = Facts()
    facts.accounts = {a: dict(p) for a, p in accounts.items()}
    domains: dict[str, dict[str, Use]] = {}
    for a, p in accounts.items():
        domains.setdefault(str(p["email_domain"]), {})[a] = Use(1)
    facts.uses[Label.EMAIL_DOMAIN.value] = domains
    facts.entities[Label.EMAIL_DOMAIN.value] = {d: {"webmail": d in webmail} for d in domains}
    return facts


def test_throwaway_domain_burst_and_shape_link() -> None:
    facts = _facts(
        {
            "a": {"email_domain": "throwmail.example", "email_shape": "aaa.aaa9999", "created_at": "2025-04-10T10:00:05Z"},
            "b": {"email_domain": "throwmail.example", "email_shape": "aaa.aaa9999", "created_at": "2025-04-10T10:01:10Z"},
            "c": {"email_domain": "gmail.com", "email_shape": "aaa.aaa9999", "created_at": "2025-04-10T10:00:30Z"},
            "d": {"email_domain": "gmail.com", "email_shape": "aaa.aaa9999", "created_at": "2025-04-10T10:00:40Z"},
        },
        webmail={"gmail.com"},
    )
    ev = Evidence()
    link_email(ev, facts, cap=50)
    kinds = {r.kind for r in ev.reasons(("a", "b"))}
    assert kinds == {"shared_email_domain", "email_pattern", "creation_burst"}
    assert ev.weight(("c", "d")) == 0.0  # webmail alone, even in the same minute, is no evidence
    assert any(h.key == "gmail.com" and h.why == "webmail" for h in ev.hubs)


def test_shared_phone_hash_links() -> None:
    facts = _facts(
        {"a": {"email_domain": "gmail.com", "phone_hash": "p1"}, "b": {"email_domain": "gmail.com", "phone_hash": "p1"}},
        webmail={"gmail.com"},
    )
    ev = Evidence()
    link_email(ev, facts, cap=50)
    assert [r.kind for r in ev.reasons(("a", "b"))] == ["shared_phone"]
