"""A small hand-made world for detection tests, written through the GraphStore API.

One operator (``op-a``, 12 accounts) with the tradecraft detection looks for, and every hard
negative next to it: ordinary users, a university behind one egress IP, a family on one card
and tablet, VPN users, carrier-NAT users and strangers pasting one viral prompt. Each group's
accounts are returned so tests can assert who is (not) flagged.
"""

from __future__ import annotations

from typing import Any

from graph.schema import Label, Rel
from graph.settings import Settings
from graph.store import GraphStore

CAP = 20
DAY = "2025-04-{:02d}T{:02d}:00:00Z"


def settings_for(workspace: Any, **overrides: Any) -> Settings:
    return Settings({"workspace": str(workspace), "hub_max_accounts": CAP, **overrides}, environ={})


def _ts(day: int, hour: int = 10) -> str:
    return DAY.format(day, hour)


class WorldWriter:
    """Collects rows, then writes them in one batch."""

    def __init__(self) -> None:
        self.nodes: dict[str, list[dict[str, Any]]] = {}
        self.rels: dict[tuple[str, str, str], list[dict[str, Any]]] = {}

    def node(self, label: str, **props: Any) -> None:
        self.nodes.setdefault(label, []).append(props)

    def rel(self, rel_type: str, start_label: str, end_label: str, start: str, end: str, **props: Any) -> None:
        self.rels.setdefault((rel_type, start_label, end_label), []).append({"start": start, "end": end, **props})

    def account(self, aid: str, *, created: str, first: str, last: str, exchanges: int, domain: str,
                webmail: bool = True, ips: tuple[str, ...] = (), ip_kind: str = "residential",
                payment: str | None = None, device: str | None = None, templates: dict[str, int] | None = None,
                tokens: int = 100, **extra: Any) -> None:
        self.node(Label.ACCOUNT, account_id=aid, created_at=created, first_seen=first, last_seen=last,
                  exchanges=exchanges, input_tokens=tokens * exchanges, output_tokens=2 * tokens * exchanges,
                  email_domain=domain, **extra)
        self.node(Label.EMAIL_DOMAIN, domain=domain, webmail=webmail)
        self.rel(Rel.HAS_EMAIL_DOMAIN, Label.ACCOUNT, Label.EMAIL_DOMAIN, aid, domain)
        for ip in ips:
            self.node(Label.IP, ip=ip, kind=ip_kind)
            self.rel(Rel.USED_IP, Label.ACCOUNT, Label.IP, aid, ip, first_seen=first, last_seen=last,
                     count=max(1, exchanges // max(1, len(ips))), signup=False)
        if payment:
            self.rel(Rel.PAID_WITH, Label.ACCOUNT, Label.PAYMENT_METHOD, aid, payment, first_seen=created)
        if device:
            self.rel(Rel.USED_DEVICE, Label.ACCOUNT, Label.DEVICE, aid, device, first_seen=first, last_seen=last)
        for tid, count in (templates or {}).items():
            self.rel(Rel.SENT_TEMPLATE, Label.ACCOUNT, Label.PROMPT_TEMPLATE, aid, tid, count=count,
                     first_seen=first, last_seen=last)

    def write(self, store: GraphStore) -> None:
        with store.batch():
            for label, rows in self.nodes.items():
                store.upsert_nodes(label, rows)
            for (rel_type, start, end), rows in self.rels.items():
                store.upsert_relationships(rel_type, start, end, rows)


def build_world(store: GraphStore) -> dict[str, list[str]]:
    """Write the world; returns group name -> account ids."""
    w = WorldWriter()
    groups: dict[str, list[str]] = {}
    templates = [
        ("t-hi", "hi", "other", False), ("t-trip", "help me plan a trip to <city>", "other", False),
        ("t-mail", "write an email to my landlord about <word>", "other", False),
        ("t-viral", "the single most underrated productivity trick", "other", False),
        ("t-op1", "You are an expert software agent. Think step by step. Task: <code>", "coding", True),
        ("t-op2", "You are an expert software agent. Plan the tool calls for <task>", "agentic", True),
        ("t-homework", "explain <topic> for my class", "reasoning", False),
    ]
    for tid, text, cap, cot in templates:
        w.node(Label.PROMPT_TEMPLATE, template_id=tid, template=text, example=text, capability=cap, cot=cot)
    benign_mix = {"t-hi": 3, "t-trip": 2, "t-mail": 2}

    def group(name: str, ids: list[str]) -> list[str]:
        groups[name] = ids
        return ids

    for i, aid in enumerate(group("ordinary", [f"ord{i:02d}" for i in range(40)])):
        w.account(aid, created=f"2024-0{1 + i % 9}-1{i % 10}T0{i % 10}:00:00Z", first=_ts(1 + i % 20), last="2025-06-20T10:00:00Z",
                  exchanges=7 + i % 5, domain="gmail.example", ips=(f"73.0.{i}.{i + 1}",), payment=f"pm-own-{i}",
                  device=f"dev-own-{i}", templates=benign_mix)
        w.node(Label.PAYMENT_METHOD, payment_id=f"pm-own-{i}", card_bin="414720", billing_country="US",
               billing_postal=f"{10000 + i}", billing_name_hash=f"h{i}")
    w.node(Label.IP, ip="141.20.0.10", kind="education")
    for i, aid in enumerate(group("university", [f"uni{i:02d}" for i in range(15)])):
        w.account(aid, created=f"2024-09-0{1 + i % 9}T10:00:00Z", first=_ts(2 + i % 10), last="2025-06-01T10:00:00Z",
                  exchanges=9, domain="u00.university.example", webmail=False, ips=("141.20.0.10",), ip_kind="education",
                  device=f"dev-uni-{i}", templates={"t-hi": 2, "t-homework": 7})
    w.node(Label.PAYMENT_METHOD, payment_id="pm-family", card_bin="426684", billing_country="US", billing_postal="30301")
    for i, aid in enumerate(group("family", [f"fam{i}" for i in range(4)])):
        w.account(aid, created=f"2024-03-0{1 + i}T12:00:00Z", first=_ts(3 + i), last="2025-06-10T10:00:00Z",
                  exchanges=8, domain="gmail.example", ips=("73.1.1.1",), payment="pm-family", device="dev-tablet",
                  templates=benign_mix)
    for i, aid in enumerate(group("vpn", [f"vpn{i}" for i in range(8)])):
        w.account(aid, created=f"2024-05-0{1 + i}T12:00:00Z", first=_ts(4 + i), last="2025-06-10T10:00:00Z",
                  exchanges=10, domain="gmail.example", ips=("185.220.64.1", "185.220.64.2"), ip_kind="vpn",
                  templates=benign_mix)
    for i, aid in enumerate(group("carrier_nat", [f"nat{i}" for i in range(8)])):
        w.account(aid, created=f"2024-06-0{1 + i}T12:00:00Z", first=_ts(5 + i), last="2025-06-10T10:00:00Z",
                  exchanges=10, domain="gmail.example", ips=("37.152.0.1",), ip_kind="mobile", templates=benign_mix)
    for i, aid in enumerate(group("viral_prompt", [f"vir{i:02d}" for i in range(CAP + 5)])):
        w.account(aid, created=f"2024-07-{1 + i % 28:02d}T12:00:00Z", first=_ts(1 + i % 28), last="2025-06-10T10:00:00Z",
                  exchanges=6, domain="gmail.example", ips=(f"91.32.{i}.7",), templates={"t-viral": 4, "t-hi": 2})
    # the operator: shared proxy exits (four accounts each), two cards, two devices, one
    # throw-away domain, created in one burst, high-volume CoT coding/agentic templates
    op = group("op-a", [f"opa{i:02d}" for i in range(12)])
    w.node(Label.PAYMENT_METHOD, payment_id="pm-op-1", card_bin="537410", billing_country="US", billing_postal="89501")
    w.node(Label.PAYMENT_METHOD, payment_id="pm-op-2", card_bin="537410", billing_country="US", billing_postal="89501")
    for i, aid in enumerate(op):
        w.account(aid, created=f"2025-04-20T03:0{i % 3}:00Z", first="2025-04-22T00:00:00Z", last="2025-06-05T00:00:00Z",
                  exchanges=400, domain="throwmail.example", webmail=False,
                  ips=(f"73.8.0.{i // 4}", f"73.8.1.{(i + 2) // 4}"), ip_kind="proxy",
                  payment=f"pm-op-{1 + i % 2}", device=f"dev-op-{i % 2}", templates={"t-op1": 200, "t-op2": 180, "t-hi": 20},
                  tokens=900)
    w.node(Label.OPERATOR, operator_id="op-a", name="Operator A")
    for itype, value, conf in (("payment", "pm-op-1", 0.9), ("email_domain", "throwmail.example", 0.7)):
        iid = f"{itype}:{value}"
        w.node(Label.INDICATOR, indicator_id=iid, type=itype, value=value)
        w.rel(Rel.HAS_INDICATOR, Label.OPERATOR, Label.INDICATOR, "op-a", iid, source="test", confidence=conf)
    w.write(store)
    return groups
