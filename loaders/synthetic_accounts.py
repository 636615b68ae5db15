"""The account book of the synthetic world: one row per account plus its traffic plan.

``AccountBook`` collects accounts as they are invented (benign groups, then operators): the
account-table fields, payment and device rows, and the numbers the traffic generator needs
(exchange count, the slice of the shared IP table the account's requests come from, time zone,
client, prompt profile, operator). ``freeze`` turns it into numpy columns in account-id order,
so the traffic generator can work on chunks of accounts with vectorised numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from loaders.synthetic_spec import CAMPAIGN_START, FIRST_NAMES, LAST_NAMES

T = TypeVar("T")

# Prompt profiles: which template families an account draws from (see synthetic_traffic).
PROFILE_ORDINARY, PROFILE_UNIVERSITY, PROFILE_VIRAL, PROFILE_JOB = 0, 1, 2, 3  # JOB..JOB+2
PROFILE_OPERATOR = 6  # + operator index
TIMING_HUMAN, TIMING_CRON, TIMING_ATTACK, TIMING_TAKEOVER = 0, 1, 2, 3
# Per-account plan values only some accounts set (scenario worlds), with their defaults: the
# last day (epoch day number) and time zone of a stolen account's benign history, and the
# moment it was taken over (0: never).
EXTRA_DEFAULTS: dict[str, float] = {"history_last_day": CAMPAIGN_START // 86400 - 1, "history_tz": -5.0, "onset": 0.0}
ACCOUNT_COLUMNS = ("account_id", "created_at", "email", "phone", "signup_ip", "country", "org_id", "verification", "status")


def iso(ts: int | float) -> str:
    """ISO-8601 UTC with a Z, the bundle's timestamp form."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ip_str(value: int) -> str:
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


@dataclass
class AccountBook:
    """Accounts in invention order; ``freeze`` assigns ids and sorts by them."""

    rng: np.random.Generator
    fields: list[dict[str, Any]] = field(default_factory=list)
    plans: list[tuple[float, ...]] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    operators: list[str] = field(default_factory=list)
    ip_table: list[int] = field(default_factory=list)
    api_keys: list[str] = field(default_factory=list)
    key_spans: list[tuple[int, int]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    devices: list[tuple[int, str, int, int]] = field(default_factory=list)
    extras: dict[int, dict[str, float]] = field(default_factory=dict)

    def hex(self, n: int = 16) -> str:
        """A random lowercase hex token (ids, fingerprints) from the world's seeded stream."""
        return f"{int(self.rng.integers(0, 2**62)):016x}{int(self.rng.integers(0, 2**62)):016x}"[:n]

    def pick(self, options: Sequence[T], weights: Sequence[float] | None = None) -> T:
        """One of ``options`` (optionally weighted); much cheaper than Generator.choice per call."""
        if weights is None:
            return options[int(self.rng.integers(0, len(options)))]
        cumulative = np.cumsum(weights)
        return options[min(len(options) - 1, int(np.searchsorted(cumulative, self.rng.random() * cumulative[-1], side="right")))]

    def person(self) -> tuple[str, str]:
        return self.pick(FIRST_NAMES), self.pick(LAST_NAMES)

    def add(
        self,
        *,
        group: str,
        operator: str,
        created: int,
        ips: list[int],
        n_exchanges: int,
        tz: float,
        client: int,
        profile: int,
        timing: int,
        op_index: int = -1,
        history: tuple[int, int, int] = (0, 0, 0),
        ip_span: tuple[int, int] | None = None,
        extra: dict[str, float] | None = None,
        **account: Any,
    ) -> int:
        """Record one account; returns its internal index (for payments and devices).

        ``history`` is (exchanges, home IP, client) of a benign past before the campaign: the
        rightful owner's use of an account that an operator later stole. ``ip_span`` points at
        a run of the IP table that many accounts share (``shared_span``) instead of copying
        ``ips``; ``extra`` sets plan values of ``EXTRA_DEFAULTS``.
        """
        index = len(self.fields)
        account["created_at"] = iso(created)
        self.fields.append(account)
        self.groups.append(group)
        self.operators.append(operator)
        n_keys = 1 + int(self.rng.random() < 0.3)
        key_off = len(self.api_keys)
        self.api_keys.extend(f"ak_{self.hex(20)}" for _ in range(n_keys))
        if ip_span is None:
            ip_span = (len(self.ip_table), len(ips))
            self.ip_table.extend(ips)
        self.plans.append((n_exchanges, *ip_span, tz, client, profile, timing, op_index, created, *history))
        self.key_spans.append((key_off, n_keys))
        if extra:
            self.extras[index] = dict(extra)
        return index

    def shared_span(self, ips: Sequence[int] | np.ndarray) -> tuple[int, int]:
        """Put ``ips`` into the IP table once and return its (offset, length) for ``ip_span``:
        accounts whose every request may come from any address of a large pool."""
        span = (len(self.ip_table), len(ips))
        self.ip_table.extend(int(x) for x in ips)
        return span

    def pay(self, index: int, payment_id: str, bin6: str, last4: str, country: str, name: str, postal: str, first_seen: int) -> None:
        self.payments.append(
            {
                "account": index,
                "payment_id": payment_id,
                "card_bin": bin6,
                "card_last4": last4,
                "billing_country": country,
                "billing_name": name,
                "billing_postal": postal,
                "first_seen": iso(first_seen),
            }
        )

    def device(self, index: int, device_id: str, first_seen: int, last_seen: int) -> None:
        self.devices.append((index, device_id, first_seen, last_seen))


@dataclass(frozen=True)
class Plan:
    """Per-account traffic plan in account-id order (numpy columns) plus shared lookup tables."""

    account_ids: pa.Array
    n_exchanges: np.ndarray
    ip_off: np.ndarray
    ip_k: np.ndarray
    tz: np.ndarray
    client: np.ndarray
    profile: np.ndarray
    timing: np.ndarray
    op_index: np.ndarray
    created: np.ndarray
    history_n: np.ndarray  # benign pre-theft exchanges, before the account's own plan
    history_ip: np.ndarray
    history_client: np.ndarray
    history_last_day: np.ndarray
    history_tz: np.ndarray
    onset: np.ndarray  # epoch seconds an account was taken over (0: never)
    key_off: np.ndarray
    key_k: np.ndarray
    ip_table: np.ndarray
    api_keys: pa.Array


def freeze(book: AccountBook) -> tuple[Plan, np.ndarray, list[str]]:
    """Assign shuffled ids (so id order leaks no group) and return the plan, the order and ids."""
    n = len(book.fields)
    numbers = book.rng.permutation(n) + 1
    ids = [f"acct-{int(k):07d}" for k in numbers]
    order = np.argsort(numbers, kind="stable")
    plans = np.array(book.plans, dtype=np.float64).reshape(n, 12)[order]
    spans = np.array(book.key_spans, dtype=np.int64).reshape(n, 2)[order]
    extras = {name: np.array([book.extras.get(i, {}).get(name, default) for i in order], dtype=np.float64)
              for name, default in EXTRA_DEFAULTS.items()}
    plan = Plan(
        account_ids=pa.array([ids[i] for i in order], pa.string()),
        n_exchanges=plans[:, 0].astype(np.int64),
        ip_off=plans[:, 1].astype(np.int64),
        ip_k=plans[:, 2].astype(np.int64),
        tz=plans[:, 3],
        client=plans[:, 4].astype(np.int64),
        profile=plans[:, 5].astype(np.int64),
        timing=plans[:, 6].astype(np.int64),
        op_index=plans[:, 7].astype(np.int64),
        created=plans[:, 8].astype(np.int64),
        history_n=plans[:, 9].astype(np.int64),
        history_ip=plans[:, 10].astype(np.int64),
        history_client=plans[:, 11].astype(np.int64),
        history_last_day=extras["history_last_day"].astype(np.int64),
        history_tz=extras["history_tz"],
        onset=extras["onset"].astype(np.int64),
        key_off=spans[:, 0],
        key_k=spans[:, 1],
        ip_table=np.array(book.ip_table, dtype=np.uint32),
        api_keys=pa.array(book.api_keys, pa.string()),
    )
    return plan, order, ids
