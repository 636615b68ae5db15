"""Payment evidence: one instrument behind several accounts, and look-alike instruments.

The same processor fingerprint on two accounts is nearly conclusive that one payer is behind
both (a family or a company card too: linking says "related", scoring decides "malicious").
Different cards with the same BIN and the same billing pattern (country, postal code, hashed
billing name) are the signature of a batch of cards bought together.
"""

from __future__ import annotations

from collections.abc import Mapping

from graph.linkage.evidence import Evidence
from graph.linkage.facts import Facts, Use
from graph.linkage.hubs import link_shared_values, shared_reason, shared_weights
from graph.schema import Label

FAMILY = "payment"
SHARED_BASE = 0.9
PATTERN_BASE = 0.5
PATTERN_FIELDS = ("card_bin", "billing_country", "billing_postal", "billing_name_hash")


def billing_pattern(props: Mapping[str, object]) -> str | None:
    """The BIN + billing pattern key of an instrument, or None when too little is known
    (a BIN alone is shared by millions of cards)."""
    values = [str(props.get(f) or "") for f in PATTERN_FIELDS]
    if not values[0] or not (values[2] or values[3]):
        return None
    return "|".join(values)


def pattern_users(facts: Facts) -> dict[str, dict[str, Use]]:
    """pattern -> accounts paying with any instrument of that pattern."""
    out: dict[str, dict[str, Use]] = {}
    for payment_id, users in facts.users(Label.PAYMENT_METHOD.value).items():
        pattern = billing_pattern(facts.props(Label.PAYMENT_METHOD.value, payment_id))
        if pattern is None:
            continue
        bucket = out.setdefault(pattern, {})
        for account, use in users.items():
            bucket.setdefault(account, Use()).merge(use)
    return out


def link_payment(evidence: Evidence, facts: Facts, cap: int) -> int:
    """Add shared-instrument and same-BIN-and-billing-pattern reasons."""
    label = Label.PAYMENT_METHOD.value
    added = link_shared_values(
        evidence, family=FAMILY, label=label, values=facts.table(label), cap=cap,
        reason_for=shared_reason(FAMILY, "shared_payment", label, SHARED_BASE), weights_of=shared_weights(SHARED_BASE),
    )
    added += link_shared_values(
        evidence, family=FAMILY, label="BillingPattern", values=pattern_users(facts), cap=cap,
        reason_for=shared_reason(FAMILY, "card_pattern", "BillingPattern", PATTERN_BASE), weights_of=shared_weights(PATTERN_BASE),
    )
    return added
