"""The attacking operators of the synthetic world, each with its own tradecraft.

1. hydra: residential-proxy exits, a handful of shared virtual cards, round-robin volumes.
2. dcfarm: one hosting ASN, one card per account from one BIN, sequential throw-away e-mails,
   accounts created in bursts.
3. edufarm: education verification behind education-looking egress, chain-of-thought prompts.
4. reseller: stolen old accounts (benign-looking history) driven through a 3-IP relay, onset
   synchronised.
5. startup: startup-credit accounts hiding among ExampleVPN users, linked by shared devices
   and rotating cards; absent from operators.csv (an unknown operator).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from loaders.synthetic_accounts import PROFILE_OPERATOR, TIMING_ATTACK, AccountBook, ip_str
from loaders.synthetic_benign import home_ips
from loaders.synthetic_spec import (
    BENIGN_CLIENTS,
    EDU_FARM_NET,
    HOSTING_NET,
    OPERATOR_CLIENTS,
    OPERATORS,
    PROXY_NETS,
    RELAY_NET,
    VPN_NET,
    WORLD_END,
    Operator,
    Scale,
    epoch,
)
from loaders.synthetic_text import PREAMBLES, WORDS

if TYPE_CHECKING:
    from loaders.synthetic_world import World

Builder = Callable[..., list[dict[str, Any]]]

HYDRA_DOMAINS = ("inboxly.example", "mailpod.example", "quickpost.example")


def client_offsets() -> dict[str, int]:
    """Index of each operator's first client profile in the combined (benign + operator) list."""
    offsets, at = {}, len(BENIGN_CLIENTS)
    for op, clients in OPERATOR_CLIENTS.items():
        offsets[op] = at
        at += len(clients)
    return offsets


def proxy_pool(rng: np.random.Generator, scale: Scale) -> np.ndarray:
    """Exit addresses of the proxy provider: shared by the hydra and its benign customers."""
    hydra = round(OPERATORS[0].account_share * scale.attack_accounts)
    size = min(max(64, 3 * hydra), 40_000)
    per_net = PROXY_NETS[0].size
    picks = np.sort(rng.choice(per_net * len(PROXY_NETS), size=size, replace=False))
    firsts = np.array([n.first for n in PROXY_NETS], dtype=np.int64)
    return (firsts[picks // per_net] + picks % per_net).astype(np.int64)


def account_counts(scale: Scale, operators: Sequence[Operator] = OPERATORS) -> list[int]:
    """Accounts per operator: the baseline five share ``attack_accounts`` exactly (the hydra
    takes the rest); a scenario's extra operators come on top."""
    counts = [max(3, round(op.account_share * scale.attack_accounts)) for op in operators]
    counts[0] += scale.attack_accounts - sum(c for c, op in zip(counts, operators, strict=True) if op in OPERATORS)
    return counts


def exchange_counts(rng: np.random.Generator, op: Operator, n: int, scale: Scale) -> list[int]:
    """Per-account volumes summing exactly to the operator's share of the attack target."""
    if op is OPERATORS[0]:  # hydra takes what the others leave, so the total is exact
        total = scale.attack_exchanges - sum(round(o.exchange_share * scale.attack_exchanges) for o in OPERATORS[1:])
        weights = np.ones(n)  # round-robin: every account just under the same limit
    else:
        total = round(op.exchange_share * scale.attack_exchanges)
        weights = rng.lognormal(0.0, 0.4, n)
    counts = np.floor(weights / weights.sum() * total).astype(np.int64)
    counts[: total - int(counts.sum())] += 1
    return [int(c) for c in counts]


def _spread(rng: np.random.Generator, n: int, start: str, end: str, burst: int, burst_s: int) -> list[int]:
    """Creation times in bursts of ``burst`` accounts, each burst within ``burst_s`` seconds."""
    lo, hi = epoch(start), epoch(end)
    starts = np.sort(rng.integers(lo, hi, size=(n + burst - 1) // burst))
    return sorted(int(starts[i // burst] + rng.integers(0, burst_s)) for i in range(n))


def build_attack(book: AccountBook, scale: Scale, pool: np.ndarray, world: World | None = None,
                 extra_builders: Mapping[str, Builder] | None = None) -> dict[str, Any]:
    """Invent every operator's accounts; returns the known-operator indicator rows.

    ``world`` (a scenario world) may add operators, built by ``extra_builders``, and may drop
    every indicator (``no-indicators``)."""
    offsets = client_offsets()
    clients = {op: tuple(offsets[op] + k for k in range(len(c))) for op, c in OPERATOR_CLIENTS.items()}
    if world is not None:
        clients = dict(world.operator_clients)
    builders: dict[str, Builder] = {
        "op-hydra": _hydra, "op-dcfarm": _dcfarm, "op-edufarm": _edufarm, "op-reseller": _reseller, "op-startup": _startup,
        **(extra_builders or {}),
    }
    operators = world.operators if world is not None else OPERATORS
    listed = world is None or not world.has("no-indicators")
    indicators: list[dict[str, Any]] = []
    for index, (op, n) in enumerate(zip(operators, account_counts(scale, operators), strict=True)):
        volumes = exchange_counts(book.rng, op, n, scale)

        def add(created: int, ips: list[int], i: int, _op: Operator = op, _index: int = index,
                _volumes: list[int] = volumes, **account: Any) -> int:
            own = clients[_op.operator_id]
            client = own[int(book.rng.integers(0, len(own)))]
            timing = account.pop("timing", TIMING_ATTACK)
            return book.add(group="attack", operator=_op.operator_id, created=created, ips=ips,
                            n_exchanges=_volumes[i], tz=0.0, client=client, profile=PROFILE_OPERATOR + _index,
                            timing=timing, op_index=_index, status="active" if book.rng.random() > 0.03 else "suspended",
                            **account)

        rows = builders[op.operator_id](book, n, add, pool)
        if op.known and listed:
            indicators.extend({"operator_id": op.operator_id, "name": op.name, **row} for row in rows)
    return {"indicators": indicators}


def _card(book: AccountBook, bin6: str) -> tuple[str, str, str]:
    return f"pmfp_{book.hex(24)}", bin6, f"{int(book.rng.integers(0, 10000)):04d}"


def _named(book: AccountBook) -> str:
    first, last = book.person()
    return f"{first.title()} {last.title()}"


def _hydra(book: AccountBook, n: int, add: Callable[..., int], pool: np.ndarray) -> list[dict[str, Any]]:
    cards = [_card(book, "537410") for _ in range(max(3, n // 60))]
    phones = [f"+4477009{int(book.rng.integers(0, 100000)):05d}" for _ in range(max(2, n // 20))]
    devices = [f"dev_{book.hex(16)}" for _ in range(max(2, n // 25))]
    for i, when in enumerate(_spread(book.rng, n, "2025-04-08T00:00:00Z", "2025-04-20T00:00:00Z", max(5, n // 10), 4 * 3600)):
        exits = [int(x) for x in pool[book.rng.integers(0, len(pool), size=48)]]  # sticky exits, may repeat
        local = f"{book.pick(WORDS)}{book.pick(WORDS)}{int(book.rng.integers(1000, 9999))}"
        index = add(when, exits, i, email=f"{local}@{book.pick(HYDRA_DOMAINS)}", phone=phones[i % len(phones)],
                    signup_ip=ip_str(exits[0]), country=book.pick(("US", "DE", "AR")), org_id="", verification="phone")
        card = cards[i % len(cards)]  # round-robin over a few virtual cards
        book.pay(index, *card, "US", _named(book), f"{int(book.rng.integers(10000, 99999))}", when)
        book.device(index, devices[int(book.rng.integers(0, len(devices)))], when, epoch("2025-06-05T00:00:00Z"))
    fp = OPERATOR_CLIENTS["op-hydra"][0][1]
    return [
        {"indicator_type": "client_fingerprint", "indicator_value": fp, "source": "partner-share", "confidence": 0.8},
        {"indicator_type": "network", "indicator_value": PROXY_NETS[0].cidr, "source": "proxy-vendor-feed", "confidence": 0.5},
        {"indicator_type": "email_domain", "indicator_value": HYDRA_DOMAINS[0], "source": "internal-ban-2025-03", "confidence": 0.7},
        *({"indicator_type": "payment", "indicator_value": c[0], "source": "processor-report", "confidence": 0.9} for c in cards[:2]),
    ]


def _dcfarm(book: AccountBook, n: int, add: Callable[..., int], pool: np.ndarray) -> list[dict[str, Any]]:
    farm = [HOSTING_NET.first + 1024 + i for i in range(max(8, n // 10))]
    for i, when in enumerate(_spread(book.rng, n, "2025-04-10T00:00:00Z", "2025-04-23T00:00:00Z", 25, 180)):
        ips = [int(x) for x in book.rng.choice(farm, size=4, replace=False)]
        index = add(when, ips, i, email=f"dev.ops{400 + i:04d}@throwmail.example", phone="", signup_ip=ip_str(ips[0]),
                    country="US", org_id="", verification="none")
        book.pay(index, *_card(book, "459812"), "US", _named(book), "89501", when)
        book.device(index, f"dev_{book.hex(16)}", when, epoch("2025-06-05T00:00:00Z"))
    return [
        {"indicator_type": "asn", "indicator_value": str(HOSTING_NET.asn), "source": "abuse-desk", "confidence": 0.4},
        {"indicator_type": "card_bin", "indicator_value": "459812", "source": "processor-report", "confidence": 0.6},
        {"indicator_type": "email_domain", "indicator_value": "throwmail.example", "source": "internal-ban-2025-03", "confidence": 0.9},
    ]


def _edufarm(book: AccountBook, n: int, add: Callable[..., int], pool: np.ndarray) -> list[dict[str, Any]]:
    egress = [EDU_FARM_NET.first + 20 + i for i in range(4)]
    lab = [f"dev_{book.hex(16)}" for _ in range(max(3, n // 15))]  # cloned VM images
    for i, when in enumerate(_spread(book.rng, n, "2025-04-14T00:00:00Z", "2025-04-25T00:00:00Z", max(3, n // 11), 6 * 3600)):
        index = add(when, egress, i, email=f"s25{10000 + i:05d}@students.polytechnic-open.example", phone="",
                    signup_ip=ip_str(egress[i % 4]), country="SG", org_id="org-polytechnic-open", verification="education")
        book.device(index, lab[i % len(lab)], when, epoch("2025-06-05T00:00:00Z"))
    return [
        {"indicator_type": "network", "indicator_value": EDU_FARM_NET.cidr, "source": "partner-share", "confidence": 0.6},
        {"indicator_type": "prompt_template", "indicator_value": PREAMBLES["op-edufarm"].split("\n")[0], "source": "partner-share", "confidence": 0.7},
    ]


def _reseller(book: AccountBook, n: int, add: Callable[..., int], pool: np.ndarray) -> list[dict[str, Any]]:
    relay = [RELAY_NET.first + 1 + i for i in range(3)]
    relay_device = f"dev_{book.hex(16)}"
    onset = OPERATORS[3].start
    for i in range(n):
        when = int(book.rng.integers(epoch("2022-06-01T00:00:00Z"), epoch("2024-10-01T00:00:00Z")))
        home, _ = home_ips(book, 1)
        first, last = book.person()
        owner_history = (int(book.rng.integers(5, 40)), home[0], int(book.rng.integers(0, len(BENIGN_CLIENTS))))
        index = add(when, relay, i, history=owner_history, email=f"{first}.{last}{int(book.rng.integers(1, 99))}@gmail.com",
                    phone=f"+1{int(book.rng.integers(2_000_000_000, 9_999_999_999))}", signup_ip=ip_str(home[0]),
                    country="US", org_id="", verification="phone")
        book.pay(index, *_card(book, "414720"), "US", f"{first.title()} {last.title()}", f"{int(book.rng.integers(10000, 99999))}", when)
        book.device(index, f"dev_{book.hex(16)}", when, onset - int(book.rng.integers(20, 200)) * 86400)
        book.device(index, relay_device, onset, epoch("2025-06-05T00:00:00Z"))
    return [
        {"indicator_type": "ip", "indicator_value": ip_str(relay[0]), "source": "law-enforcement", "confidence": 0.9},
        {"indicator_type": "ip", "indicator_value": ip_str(relay[1]), "source": "law-enforcement", "confidence": 0.9},
        {"indicator_type": "device", "indicator_value": relay_device, "source": "internal-investigation", "confidence": 0.8},
    ]


def _startup(book: AccountBook, n: int, add: Callable[..., int], pool: np.ndarray) -> list[dict[str, Any]]:
    exits = [VPN_NET.first + 1 + i for i in range(16)]
    devices = [f"dev_{book.hex(16)}" for _ in range(max(2, n // 15))]
    cards = [_card(book, "486216") for _ in range(max(1, n // 3))]
    for i, when in enumerate(_spread(book.rng, n, "2025-04-28T00:00:00Z", "2025-05-05T00:00:00Z", max(3, n // 4), 900)):
        company = f"{book.pick(WORDS)}{book.pick(WORDS)}{int(book.rng.integers(10, 99))}"
        index = add(when, exits, i, email=f"{book.person()[0]}@{company}.app.example", phone="", signup_ip=ip_str(exits[i % 16]),
                    country="NL", org_id=f"org-{company}", verification="startup")
        book.pay(index, *cards[i // 3 % len(cards)], "NL", _named(book), "1012", when)
        book.device(index, devices[i % len(devices)], when, WORLD_END - 86400)
    return []
