"""Benign accounts of the synthetic world, including the hard negatives detection must not flag.

Ordinary users have home IPs, webmail, their own card and heavy-tailed (lognormal) usage. The
hard negatives share exactly the kinds of values attackers share, for innocent reasons:
university and company egress IPs, a company card and an automated job on one template, a
family card and home IP, popular-VPN exits, carrier NAT, a viral prompt, and the same
residential-proxy exits the hydra uses (at low volume).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from loaders.synthetic_accounts import (
    PROFILE_JOB,
    PROFILE_ORDINARY,
    PROFILE_UNIVERSITY,
    PROFILE_VIRAL,
    TIMING_CRON,
    TIMING_HUMAN,
    AccountBook,
    ip_str,
)
from loaders.synthetic_spec import (
    CARRIER_NAT,
    HARD_NEGATIVE_SHARES,
    ISP_TZ,
    ISPS,
    VPN_NAME,
    VPN_NET,
    WEBMAIL,
    WORLD_END,
    Scale,
    company_net,
    epoch,
    university_net,
)

_CREATED_FROM = epoch("2023-01-01T00:00:00Z")
_CREATED_TO = epoch("2025-06-15T00:00:00Z")
_COMMON_BINS = ("414720", "426684", "440066", "455600", "510510", "521729", "540168", "601100")
_CLIENT_P = (0.35, 0.2, 0.2, 0.15, 0.1)


def home_ips(book: AccountBook, k: int) -> tuple[list[int], int]:
    """``k`` addresses in one /24 of a random ISP's lower half (DHCP churn), and the ISP index."""
    isp = int(book.rng.integers(0, len(ISPS)))
    net = ISPS[isp]
    base = net.first + int(book.rng.integers(0, net.size // 2)) & ~0xFF
    return [base + int(x) for x in book.rng.integers(1, 255, size=k)], isp


def usage(book: AccountBook, mean: float, factor: float = 1.0) -> int:
    """Heavy-tailed exchange count: lognormal with the given mean, at least one."""
    sigma = 1.2
    mu = np.log(mean * factor) - sigma**2 / 2
    return int(max(1, min(50 * mean, round(float(book.rng.lognormal(mu, sigma))))))


def created(book: AccountBook) -> int:
    """Sign-up time skewed towards recent dates, as for a growing product."""
    return int(_CREATED_FROM + (_CREATED_TO - _CREATED_FROM) * float(book.rng.random()) ** 0.6)


def _email(book: AccountBook, domain: str | None = None) -> tuple[str, str]:
    first, last = book.person()
    domain = domain or book.pick(WEBMAIL, (0.45, 0.2, 0.12, 0.08, 0.08, 0.07))
    sep = book.pick((".", "_", ""))
    suffix = str(int(book.rng.integers(1, 99))) if book.rng.random() < 0.5 else ""
    return f"{first}{sep}{last}{suffix}@{domain}", f"{first.title()} {last.title()}"


def _phone(book: AccountBook) -> str:
    return f"+1{int(book.rng.integers(2_000_000_000, 9_999_999_999))}" if book.rng.random() < 0.6 else ""


def _own_card(book: AccountBook, index: int, name: str, country: str, since: int) -> None:
    if book.rng.random() < 0.7:
        book.pay(index, f"pmfp_{book.hex(24)}", book.pick(_COMMON_BINS),
                 f"{int(book.rng.integers(0, 10000)):04d}", country, name, f"{int(book.rng.integers(10000, 99999))}", since)


def _own_devices(book: AccountBook, index: int, since: int) -> None:
    for _ in range(1 + int(book.rng.random() < 0.4)):
        last = WORLD_END - int(book.rng.integers(0, 40 * 86400))
        book.device(index, f"dev_{book.hex(16)}", since, max(since + 86400, last))


def person(book: AccountBook, scale: Scale, group: str, *, ips: list[int] | None = None, tz: float | None = None,
           domain: str | None = None, org: str = "", verification: str | None = None, profile: int = PROFILE_ORDINARY,
           factor: float = 1.0, card: bool = True, client: int | None = None, timing: int = TIMING_HUMAN,
           ip_span: tuple[int, int] | None = None) -> int:
    """One benign human account with its own e-mail, devices and (usually) card (``ip_span``:
    its requests come from a shared run of the IP table, e.g. rotating proxy exits)."""
    home, isp = home_ips(book, 1 + int(book.rng.integers(0, 3)))
    ips = ips if ips is not None else home
    when = created(book)
    email, name = _email(book, domain)
    country = ISPS[isp].country
    index = book.add(
        group=group, operator="", created=when, ips=ips, ip_span=ip_span, n_exchanges=usage(book, scale.benign_mean_exchanges, factor),
        tz=ISP_TZ[isp] if tz is None else tz, profile=profile, timing=timing,
        client=book.pick(range(5), _CLIENT_P) if client is None else client, email=email, phone=_phone(book), signup_ip=ip_str(ips[0]), country=country, org_id=org,
        verification=verification or book.pick(("none", "phone"), (0.6, 0.4)),
        status="active" if book.rng.random() > 0.005 else "suspended",
    )
    if card:
        _own_card(book, index, name, country, when)
    _own_devices(book, index, when)
    return index


def kind_sizes(scale: Scale, extra_shares: Mapping[str, float] | None = None) -> dict[str, int]:
    """Accounts per hard-negative kind; every kind present even at the tiny scale. A scenario's
    extra groups (``extra_shares``: group -> share of benign accounts) come out of "ordinary"."""
    sizes = {k: max(3, round(share * scale.benign_accounts)) for k, share in HARD_NEGATIVE_SHARES.items()}
    extra = {group: max(3, round(share * scale.benign_accounts)) for group, share in (extra_shares or {}).items()}
    sizes["ordinary"] = scale.benign_accounts - sum(sizes.values()) - sum(extra.values())
    return {**sizes, **extra}


def build_benign(book: AccountBook, scale: Scale, proxy_pool: np.ndarray, extra_shares: Mapping[str, float] | None = None,
                 build_extra: Callable[[str, int], None] | None = None) -> None:
    """Invent every benign account, group by group (a scenario's extra groups last, each built
    by ``build_extra(group, size)``)."""
    sizes = kind_sizes(scale, extra_shares)
    for _ in range(sizes["ordinary"]):
        person(book, scale, "ordinary")
    _universities(book, scale, sizes["university"])
    _companies(book, scale, sizes["company"])
    _families(book, scale, sizes["family"])
    vpn_exits = [VPN_NET.first + 1 + i for i in range(16)]
    for _ in range(sizes["vpn"]):
        person(book, scale, f"vpn:{VPN_NAME}", ips=vpn_exits, tz=float(book.pick((-5, 0, 1, 8))))
    nat = [CARRIER_NAT.first + 1 + i for i in range(scale.carrier_nat_ips)]
    for _ in range(sizes["carrier_nat"]):
        person(book, scale, "carrier_nat", ips=nat, tz=-5)
    for _ in range(sizes["viral_prompt"]):
        person(book, scale, "viral_prompt", profile=PROFILE_VIRAL)
    for _ in range(sizes["resproxy_benign"]):
        exits = [int(x) for x in proxy_pool[book.rng.integers(0, len(proxy_pool), size=6)]]
        person(book, scale, "resproxy_benign", ips=exits, factor=0.5)
    for group in extra_shares or {}:
        assert build_extra is not None
        build_extra(group, sizes[group])


def _split(book: AccountBook, total: int, parts: int) -> list[int]:
    """Split ``total`` members into ``parts`` uneven groups of at least one."""
    weights = book.rng.pareto(1.5, parts) + 1
    sizes = np.maximum(1, np.floor(weights / weights.sum() * total)).astype(int)
    sizes[0] += total - sizes.sum()
    return [int(s) for s in sizes]


def _universities(book: AccountBook, scale: Scale, total: int) -> None:
    for u, size in enumerate(_split(book, total, scale.universities)):
        net = university_net(u)
        egress = [net.first + 10 + i for i in range(1 + u % 3)]
        for _ in range(size):
            person(book, scale, f"university:u{u:02d}", ips=egress, tz=-5, domain=f"u{u:02d}.university.example",
                   org=f"org-u{u:02d}", verification="education", profile=PROFILE_UNIVERSITY, card=False)


def _companies(book: AccountBook, scale: Scale, total: int) -> None:
    for c, size in enumerate(_split(book, total, scale.companies)):
        net = company_net(c)
        egress = [net.first + 1 + i for i in range(1 + c % 2)]
        group, org, domain = f"company:c{c:02d}", f"org-c{c:02d}", f"c{c:02d}.corp.example"
        card = (f"pmfp_corp{c:03d}_{book.hex(16)}", "552220", f"{int(book.rng.integers(0, 10000)):04d}")
        for m in range(size):
            # one member per company is the automated job: one template, high volume, on a schedule
            job = m == 0
            index = person(book, scale, group, ips=egress, tz=1, domain=domain, org=org, verification="enterprise",
                           profile=PROFILE_JOB + c % 3 if job else PROFILE_ORDINARY, factor=25.0 if job else 1.0,
                           card=False, client=3 if job else None, timing=TIMING_CRON if job else TIMING_HUMAN)
            book.pay(index, card[0], card[1], card[2], "DE", f"Company c{c:02d} GmbH", "10115", epoch("2024-01-10T09:00:00Z"))


def _families(book: AccountBook, scale: Scale, total: int) -> None:
    remaining, f = total, 0
    while remaining > 0:
        size = min(remaining, int(book.rng.integers(2, 6)))
        remaining -= size
        home, isp = home_ips(book, 1)
        surname = book.person()[1]
        card = (f"pmfp_{book.hex(24)}", book.pick(_COMMON_BINS), f"{int(book.rng.integers(0, 10000)):04d}")
        tablet = f"dev_{book.hex(16)}"
        for _ in range(size):
            index = person(book, scale, f"family:f{f:03d}", ips=home, tz=ISP_TZ[isp], card=False)
            book.pay(index, card[0], card[1], card[2], ISPS[isp].country, f"{surname.title()} Household", "30301",
                     epoch("2024-03-01T12:00:00Z"))
            book.device(index, tablet, epoch("2024-03-01T12:00:00Z"), WORLD_END - 86400)
        f += 1
