"""Attribution suggestions: which known operator a cluster most likely belongs to, and why.

Two sources of knowledge, matched the same way against the infrastructure a cluster's members
use (IPs, networks, ASNs, cards and BINs, e-mail domains, devices, client fingerprints, prompt
templates):

- known operators' indicators (``Operator-[HAS_INDICATOR]->Indicator``, from the operators
  table), each with its source's confidence;
- clusters an analyst already attributed (``ATTRIBUTED_TO``): the accounts they held and the
  non-hub values those accounts used become learned indicators of that operator.

For one operator, each matching indicator gives ``confidence * coverage`` (coverage: the share
of members touching it) and these combine by noisy-OR. A suggestion resting on a single kind of
indicator is capped at ``SINGLE_KIND_CAP``, so attribution never rests on one signal alone.
An indicator that names shared infrastructure (an ASN, or a proxy network's, VPN's or hosting
range's addresses: ``Indicator.shared``) supports a suggestion but never makes one alone: any
paying customer of that provider, benign people included, matches it, so it says nothing about
*which* operator runs a cluster (graph/separation.py applies the same rule to links).
Suggestions are only suggestions: the analyst's ATTRIBUTED_TO is never written here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from graph.linkage.evidence import noisy_or
from graph.linkage.facts import Facts
from graph.linkage.template_props import TemplateProps
from graph.schema import Label, Rel
from graph.separation import is_provider_value
from graph.store import GraphStore

MIN_SUGGESTION = 0.2
SINGLE_KIND_CAP = 0.5
MIN_STRENGTH = 0.05  # a match weaker than this is a trace: it adds no kind and no basis
LEARNED_CONFIDENCE = 0.8
PREVIOUS_MEMBERS_MIN_SHARE = 0.3

EntityRef = tuple[str, str]


class AccountsUsing(Protocol):
    """Who uses a set of entities: ``Facts`` in detection, the saved figure context of the
    last run in an analyst's merge or split (graph/saved_context.py)."""

    def accounts_using(self, entities: frozenset[EntityRef]) -> frozenset[str]: ...


@dataclass(frozen=True)
class Indicator:
    """One thing known about an operator: the entities it matches and how much to trust it."""

    operator_id: str
    indicator_id: str
    type: str
    value: str
    confidence: float
    source: str
    entities: frozenset[EntityRef]
    shared: bool = False  # names shared infrastructure only (``shared_infrastructure``)


@dataclass
class Suggestion:
    operator_id: str
    confidence: float
    indicators: list[dict[str, Any]] = field(default_factory=list)


def _network_of(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def indicator_entities(facts: Facts, itype: str, value: str) -> frozenset[EntityRef]:
    """The graph entities an indicator of ``itype`` with ``value`` names."""
    itype = itype.lower()
    direct = {
        "ip": Label.IP.value,
        "asn": Label.ASN.value,
        "payment": Label.PAYMENT_METHOD.value,
        "email_domain": Label.EMAIL_DOMAIN.value,
        "device": Label.DEVICE.value,
        "client_fingerprint": Label.CLIENT_FINGERPRINT.value,
    }
    if itype in direct:
        label = direct[itype]
        key = value.lower() if itype == "email_domain" else value
        return frozenset({(label, key)})
    if itype == "network":
        net = _network_of(value)
        out = {(Label.NETWORK.value, value)}
        if net is not None:
            out.add((Label.NETWORK.value, str(net)))
            for ip in facts.users(Label.IP.value):
                try:
                    if ipaddress.ip_address(ip) in net:
                        out.add((Label.IP.value, ip))
                except ValueError:
                    continue
        return frozenset(out)
    if itype == "card_bin":
        return frozenset(
            (Label.PAYMENT_METHOD.value, pid)
            for pid, props in facts.entities.get(Label.PAYMENT_METHOD.value, {}).items()
            if str(props.get("card_bin") or "") == value
        )
    if itype == "prompt_template":
        needle = value.strip().lower()
        out = {(Label.PROMPT_TEMPLATE.value, value)}
        templates = facts.entities.get(Label.PROMPT_TEMPLATE.value, {})
        if needle and isinstance(templates, TemplateProps):
            out.update((Label.PROMPT_TEMPLATE.value, tid) for tid in templates.containing(needle))
        elif needle:
            for tid, props in templates.items():
                text = f"{props.get('template') or ''}\n{props.get('example') or ''}".lower()
                if needle in text:
                    out.add((Label.PROMPT_TEMPLATE.value, tid))
        return frozenset(out)
    return frozenset()


def shared_infrastructure(facts: Facts, entities: frozenset[EntityRef]) -> bool:
    """Whether every one of ``entities`` is infrastructure strangers share: an ASN, or an IP
    or network of a provider's pool (``separation.is_provider_value``).

    >>> shared_infrastructure(Facts(), frozenset({("ASN", "64601")}))
    True
    >>> shared_infrastructure(Facts(), frozenset({("ASN", "64601"), ("Device", "d1")}))
    False
    """
    return bool(entities) and all(
        label == Label.ASN.value or is_provider_value(facts, label, key) for label, key in entities
    )


def known_indicators(store: GraphStore, facts: Facts) -> list[Indicator]:
    """Indicators of known operators from the store."""
    nodes = {n.key: n.props for n in store.iter_nodes(Label.INDICATOR)}
    out = []
    for rel in sorted(store.iter_relationships(Rel.HAS_INDICATOR), key=lambda r: (r.start[1], r.end[1])):
        props = nodes.get(rel.end[1], {})
        itype = str(props.get("type") or rel.end[1].split(":", 1)[0])
        value = str(props.get("value") or rel.end[1].split(":", 1)[-1])
        conf = rel.props.get("confidence")
        entities = indicator_entities(facts, itype, value)
        out.append(
            Indicator(
                operator_id=rel.start[1], indicator_id=rel.end[1], type=itype, value=value,
                confidence=float(conf) if isinstance(conf, int | float) else 0.5,
                source=str(rel.props.get("source") or ""),
                entities=entities, shared=shared_infrastructure(facts, entities),
            )
        )
    return out


def learned_indicators(
    facts: Facts, attributed: Mapping[str, tuple[str, float]], previous_members: Mapping[str, Sequence[str]], cap: int
) -> list[Indicator]:
    """Non-hub values used by accounts of clusters an analyst attributed, as indicators of that
    operator (``attributed``: cluster id -> (operator id, the analyst's confidence))."""
    entities_of = facts.account_entities({a for cid in attributed for a in previous_members.get(cid, [])})
    out = []
    for cluster_id, (operator_id, confidence) in sorted(attributed.items()):
        seen: set[EntityRef] = set()
        for account in previous_members.get(cluster_id, []):
            seen.update(entities_of.get(account, set()))
        for label, key in sorted(seen):
            if not 2 <= len(facts.accounts_using(frozenset({(label, key)}))) <= cap:
                continue
            out.append(
                Indicator(
                    operator_id=operator_id, indicator_id=f"learned:{label}:{key}", type=f"learned_{label}",
                    value=key, confidence=LEARNED_CONFIDENCE * confidence, source=f"analyst attribution of {cluster_id}",
                    entities=frozenset({(label, key)}), shared=shared_infrastructure(facts, frozenset({(label, key)})),
                )
            )
    return out


def _coverage(members: frozenset[str], entities: frozenset[EntityRef], facts: AccountsUsing) -> float:
    """Share of ``members`` that use any of ``entities``."""
    return len(members & facts.accounts_using(entities)) / len(members) if members else 0.0


def suggest(
    members: Sequence[str],
    facts: AccountsUsing,
    indicators: Iterable[Indicator],
    previous: Mapping[str, tuple[str, float, frozenset[str]]] | None = None,
) -> Suggestion | None:
    """The best-supported operator for a cluster, or None below ``MIN_SUGGESTION``.

    ``previous``: analyst-attributed clusters as cluster id -> (operator, confidence, members);
    a cluster mostly made of such members is evidence for that operator too."""
    member_set = frozenset(members)
    by_operator: dict[str, list[dict[str, Any]]] = {}
    for ind in indicators:
        if not ind.entities:
            continue
        cov = _coverage(member_set, ind.entities, facts)
        if cov <= 0:
            continue
        by_operator.setdefault(ind.operator_id, []).append(
            {"indicator_id": ind.indicator_id, "type": ind.type, "value": ind.value, "source": ind.source,
             "confidence": round(ind.confidence, 3), "coverage": round(cov, 3), "strength": round(ind.confidence * cov, 4),
             "shared_infrastructure": ind.shared}
        )
    for cluster_id, (operator_id, confidence, old_members) in sorted((previous or {}).items()):
        share = len(member_set & old_members) / len(member_set) if member_set else 0.0
        if share >= PREVIOUS_MEMBERS_MIN_SHARE:
            by_operator.setdefault(operator_id, []).append(
                {"indicator_id": f"cluster:{cluster_id}", "type": "analyst_attribution", "value": cluster_id,
                 "source": "analyst", "confidence": round(confidence, 3), "coverage": round(share, 3),
                 "strength": round(confidence * share, 4)}
            )
    best: Suggestion | None = None
    for operator_id in sorted(by_operator):
        matches = sorted(by_operator[operator_id], key=lambda m: (-m["strength"], m["indicator_id"]))
        conf = noisy_or(m["strength"] for m in matches)
        kinds = {m["type"].removeprefix("learned_") for m in matches if m["strength"] >= MIN_STRENGTH}
        if not any(m["strength"] >= MIN_STRENGTH and not m.get("shared_infrastructure") for m in matches):
            continue  # only a provider's pool matched: any of its customers would
        if len(kinds) < 2:
            conf = min(conf, SINGLE_KIND_CAP)
        if best is None or conf > best.confidence:
            best = Suggestion(operator_id, round(conf, 4), matches[:20])
    if best is None or best.confidence < MIN_SUGGESTION:
        return None
    return best
