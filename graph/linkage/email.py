"""Account-identity evidence: e-mail domains and patterns, shared phones, creation bursts.

Big webmail domains are hubs by rule (their ``webmail`` flag) as well as by count. A throw-away
or custom domain shared by a few accounts, the same local-part shape on such a domain (the
sequential ``dev.ops0401``, ``dev.ops0402`` style), one phone number on several accounts, and
accounts created within minutes of each other on one domain all point at one operator.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from graph.linkage.evidence import Evidence
from graph.linkage.facts import Facts, Use
from graph.linkage.hubs import link_shared_values, shared_reason, shared_weights
from graph.schema import Label

FAMILY = "email"
DOMAIN_BASE = 0.35
SHAPE_BASE = 0.45
PHONE_BASE = 0.8
BURST_BASE = 0.5
BURST_WINDOW_S = 300


def _is_webmail(facts: Facts, domain: str) -> bool:
    return bool(facts.props(Label.EMAIL_DOMAIN.value, domain).get("webmail"))


def _group(facts: Facts, key_of: Callable[[str, dict[str, Any]], str]) -> dict[str, dict[str, Use]]:
    """Accounts grouped by a key computed from their properties (empty key: left out)."""
    out: dict[str, dict[str, Use]] = {}
    for account, props in sorted(facts.accounts.items()):
        key = key_of(account, props)
        if key:
            out.setdefault(key, {})[account] = Use(count=1, first=str(props.get("created_at") or ""))
    return out


def _domain(facts: Facts, props: dict[str, Any]) -> str:
    domain = str(props.get("email_domain") or "")
    return "" if not domain or _is_webmail(facts, domain) else domain


def _burst_key(facts: Facts, props: dict[str, Any]) -> str:
    domain, created = _domain(facts, props), str(props.get("created_at") or "")
    if not domain or not created:
        return ""
    try:
        ts = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return ""
    return f"{domain}@{int(ts // BURST_WINDOW_S) * BURST_WINDOW_S}"


def link_email(evidence: Evidence, facts: Facts, cap: int) -> int:
    """Add shared-domain, local-part-shape, shared-phone and creation-burst reasons."""
    label = Label.EMAIL_DOMAIN.value
    added = link_shared_values(
        evidence, family=FAMILY, label=label, values=facts.table(label), cap=cap,
        reason_for=shared_reason(FAMILY, "shared_email_domain", label, DOMAIN_BASE), weights_of=shared_weights(DOMAIN_BASE),
        hub_rule=lambda d: "webmail" if _is_webmail(facts, d) else None,
    )
    shapes = _group(facts, lambda a, p: f"{_domain(facts, p)}/{p.get('email_shape')}" if _domain(facts, p) and p.get("email_shape") else "")
    added += link_shared_values(
        evidence, family=FAMILY, label="EmailPattern", values=shapes, cap=cap,
        reason_for=shared_reason(FAMILY, "email_pattern", "EmailPattern", SHAPE_BASE), weights_of=shared_weights(SHAPE_BASE),
    )
    phones = _group(facts, lambda a, p: str(p.get("phone_hash") or ""))
    added += link_shared_values(
        evidence, family=FAMILY, label="Phone", values=phones, cap=cap,
        reason_for=shared_reason(FAMILY, "shared_phone", "Phone", PHONE_BASE), weights_of=shared_weights(PHONE_BASE),
    )
    bursts = _group(facts, lambda a, p: _burst_key(facts, p))
    added += link_shared_values(
        evidence, family=FAMILY, label="CreationBurst", values=bursts, cap=cap,
        reason_for=shared_reason(FAMILY, "creation_burst", "CreationBurst", BURST_BASE), weights_of=shared_weights(BURST_BASE),
    )
    return added
