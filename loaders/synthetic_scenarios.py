"""Accounts only scenario worlds have (see synthetic_world.py for the library).

- shared-proxy: ``swarm_pool`` (the SwarmNet exits), the two SwarmNet operators and the benign
  SwarmNet customers. Every request of any of them leaves through an exit drawn afresh from the
  whole pool, so the operators share exits with each other and with the benign customers; what
  tells the operators apart is how they pay, what they send and when.
- takeover: old accounts whose rightful owners used them normally (home IP, a benign client,
  their own card and device, their own time zone) until a moment on ``TAKEOVER_DAY``; from then
  on the ring drives them through ``TAKEOVER_NET`` with one client, around the clock. Nothing of
  the ring is an indicator and no device is shared. ``takeover_rows`` gives takeovers.csv.
- prompt-commons: ordinary people whose prompt profile mixes in shared prompts (synthetic_world).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from loaders.synthetic_accounts import TIMING_TAKEOVER, AccountBook, ip_str, iso
from loaders.synthetic_attack import Builder, _card, _named, _spread
from loaders.synthetic_benign import _own_card, _own_devices, home_ips, person, usage
from loaders.synthetic_spec import (
    BENIGN_CLIENTS,
    ISP_TZ,
    ISPS,
    SWARM_NETS,
    SWARM_OPERATORS,
    TAKEOVER_DAY,
    TAKEOVER_HOME_DAY,
    TAKEOVER_NET,
    WEBMAIL,
    Scale,
    epoch,
)
from loaders.synthetic_text import WORDS
from loaders.synthetic_world import SWARM_PREAMBLES, World, group_profile

DAY = 86400
SWARM_BINS = {"op-swarm-night": "535522", "op-swarm-day": "428837"}
_EXITS_PER_ROW = 1 / 8  # pool size per exchange the SwarmNet buyers send: ~8 requests per exit


def swarm_pool(seed: int, scale: Scale) -> np.ndarray:
    """SwarmNet's exits: sized so each exit carries a handful of the buyers' requests (a large
    residential network rotates through far more exits than any one customer sees)."""
    rows = sum(op.exchange_share for op in SWARM_OPERATORS) * scale.attack_exchanges
    per_net = SWARM_NETS[0].size
    size = int(min(per_net * len(SWARM_NETS), max(256, rows * _EXITS_PER_ROW)))
    picks = np.sort(np.random.default_rng([seed, 7]).choice(per_net * len(SWARM_NETS), size=size, replace=False))
    firsts = np.array([n.first for n in SWARM_NETS], dtype=np.int64)
    return (firsts[picks // per_net] + picks % per_net).astype(np.int64)


class ScenarioAccounts:
    """Builds a scenario world's extra accounts into one ``AccountBook``."""

    def __init__(self, world: World, book: AccountBook, scale: Scale, seed: int) -> None:
        self.world, self.book, self.scale = world, book, scale
        self.swarm_exits = swarm_pool(seed, scale) if world.has("shared-proxy") else np.zeros(0, np.int64)
        self.swarm_span = book.shared_span(self.swarm_exits) if world.has("shared-proxy") else (0, 0)
        self.onsets: dict[int, int] = {}  # account index -> takeover onset
        self.takers: dict[int, str] = {}  # account index -> the ring that took it over

    def _exit(self) -> int:
        return int(self.swarm_exits[int(self.book.rng.integers(0, len(self.swarm_exits)))])

    # ---- benign groups ------------------------------------------------------------------------

    def benign_group(self, group: str, size: int) -> None:
        """One scenario benign group: SwarmNet customers or prompt-commons people."""
        book, scale = self.book, self.scale
        profile = group_profile(self.world, group)
        for _ in range(size):
            if group.startswith("resproxy_benign:"):
                person(book, scale, group, ips=[self._exit()], ip_span=self.swarm_span, factor=0.7)
            elif profile == "app":  # the extension runs in a desktop browser
                person(book, scale, group, profile=self.world.profile(profile), client=book.pick((0, 1), (0.7, 0.3)))
            elif profile is not None:
                person(book, scale, group, profile=self.world.profile(profile))
            else:
                raise ValueError(f"no builder for scenario group {group!r}")

    # ---- operators ----------------------------------------------------------------------------

    def builders(self) -> dict[str, Builder]:
        return {"op-swarm-night": self._swarm_night, "op-swarm-day": self._swarm_day, "op-takeover": self._takeover,
                "op-takeover-home": self._takeover_home}

    def _swarm_night(self, book: AccountBook, n: int, add: Callable[..., int], pool: np.ndarray) -> list[dict[str, Any]]:
        """Night shift: a few shared virtual cards round-robin, agent-task template, 01-05 UTC."""
        cards = [_card(book, SWARM_BINS["op-swarm-night"]) for _ in range(max(2, n // 40))]
        for i, when in enumerate(_spread(book.rng, n, "2025-04-12T00:00:00Z", "2025-04-22T00:00:00Z", max(4, n // 8), 3 * 3600)):
            exit_ip = self._exit()
            local = f"{book.pick(WORDS)}.{book.pick(WORDS)}{int(book.rng.integers(1000, 9999))}"
            index = add(when, [exit_ip], i, ip_span=self.swarm_span, email=f"{local}@outlook.com", phone="",
                        signup_ip=ip_str(exit_ip), country=book.pick(("NO", "JP", "IN")), org_id="", verification="none")
            book.pay(index, *cards[i % len(cards)], "US", _named(book), f"{int(book.rng.integers(10000, 99999))}", when)
        return [
            *({"indicator_type": "payment", "indicator_value": c[0], "source": "processor-report", "confidence": 0.85} for c in cards[:2]),
            {"indicator_type": "prompt_template", "indicator_value": SWARM_PREAMBLES["op-swarm-night"].split("\n")[0],
             "source": "partner-share", "confidence": 0.7},
        ]

    def _swarm_day(self, book: AccountBook, n: int, add: Callable[..., int], pool: np.ndarray) -> list[dict[str, Any]]:
        """Day shift: a fresh prepaid card per account from one BIN, replaced after ~3 weeks,
        coding template, 13-18 UTC."""
        bin6 = SWARM_BINS["op-swarm-day"]
        for i, when in enumerate(_spread(book.rng, n, "2025-04-14T00:00:00Z", "2025-04-25T00:00:00Z", 3, 12 * 3600)):
            exit_ip = self._exit()
            first, last = book.person()
            index = add(when, [exit_ip], i, ip_span=self.swarm_span,
                        email=f"{first}{last}{int(book.rng.integers(10, 99))}@yahoo.com",
                        phone=f"+1555{int(book.rng.integers(1_000_000, 9_999_999))}", signup_ip=ip_str(exit_ip),
                        country="US", org_id="", verification="phone")
            name = f"{first.title()} {last.title()}"
            book.pay(index, *_card(book, bin6), "US", name, "10001", when)
            book.pay(index, *_card(book, bin6), "US", name, "10001", when + int(book.rng.integers(18, 24)) * DAY)
        return [
            {"indicator_type": "card_bin", "indicator_value": bin6, "source": "processor-report", "confidence": 0.6},
            {"indicator_type": "prompt_template", "indicator_value": SWARM_PREAMBLES["op-swarm-day"].split("\n")[0],
             "source": "partner-share", "confidence": 0.7},
        ]

    def _takeover(self, book: AccountBook, n: int, add: Callable[..., int], pool: np.ndarray) -> list[dict[str, Any]]:
        """Old accounts with their owners' long ordinary history, taken over on one day and
        driven through one hosting range."""
        return self._taken_over(book, n, add, "op-takeover", TAKEOVER_DAY, keep_network=False)

    def _takeover_home(self, book: AccountBook, n: int, add: Callable[..., int], pool: np.ndarray) -> list[dict[str, Any]]:
        """Old accounts taken over on one day and driven through their owners' own networks."""
        return self._taken_over(book, n, add, "op-takeover-home", TAKEOVER_HOME_DAY, keep_network=True)

    def _taken_over(self, book: AccountBook, n: int, add: Callable[..., int], operator: str, day: int,
                    keep_network: bool) -> list[dict[str, Any]]:
        """``n`` old accounts with their owners' history, each taken over on ``day``; from then
        on through the ring's hosting range, or (``keep_network``) the owner's home address."""
        hosting = [TAKEOVER_NET.first + 1 + i for i in range(TAKEOVER_NET.size - 2)]
        for i in range(n):
            when = int(book.rng.integers(epoch("2021-06-01T00:00:00Z"), epoch("2024-10-01T00:00:00Z")))
            home, isp = home_ips(book, 1)
            first, last = book.person()
            onset = day + int(book.rng.integers(0, 20 * 3600))
            history_n = max(15, usage(book, self.scale.benign_mean_exchanges, 1.5))
            history = (history_n, home[0], book.pick(range(len(BENIGN_CLIENTS)), (0.35, 0.2, 0.2, 0.15, 0.1)))
            domain = book.pick(WEBMAIL, (0.45, 0.2, 0.12, 0.08, 0.08, 0.07))
            index = add(when, [home[0]] if keep_network else hosting, i, history=history, timing=TIMING_TAKEOVER,
                        extra={"history_last_day": onset // DAY - 1, "history_tz": ISP_TZ[isp], "onset": onset},
                        email=f"{first}.{last}{int(book.rng.integers(1, 99))}@{domain}",
                        phone=f"+1{int(book.rng.integers(2_000_000_000, 9_999_999_999))}" if book.rng.random() < 0.6 else "",
                        signup_ip=ip_str(home[0]), country=ISPS[isp].country, org_id="",
                        verification=book.pick(("none", "phone"), (0.6, 0.4)))
            _own_card(book, index, f"{first.title()} {last.title()}", ISPS[isp].country, when)
            known = len(book.devices)
            _own_devices(book, index, when)
            locked_out = onset - int(book.rng.integers(1, 5)) * DAY  # the owner's devices stop; the ring shows none
            for k in range(known, len(book.devices)):
                account, device, seen_first, seen_last = book.devices[k]
                book.devices[k] = (account, device, seen_first, max(seen_first, min(seen_last, locked_out)))
            self.onsets[index] = onset
            self.takers[index] = operator
        return []


def takeover_rows(onsets: dict[int, int], ids: list[str], operator: str | dict[int, str] = "op-takeover") -> dict[str, list[str]]:
    """takeovers.csv: account_id, operator_id, onset (ISO-8601), in account-id order;
    ``operator`` is one ring for all, or each account index's ring."""
    rows = sorted((ids[i], operator if isinstance(operator, str) else operator[i], iso(t)) for i, t in onsets.items())
    return {"account_id": [a for a, _, _ in rows], "operator_id": [o for _, o, _ in rows], "onset": [t for _, _, t in rows]}
