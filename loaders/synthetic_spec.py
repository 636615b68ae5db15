"""Fixed facts of the synthetic world: scales, dates, operators, networks and client profiles.

Kept apart from the generation code so tests and the summary can name the same constants
(campaign window, operator ids, which operators are publicly known) the generator uses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


def epoch(iso: str) -> int:
    """Epoch seconds of an ISO-8601 UTC timestamp (``2025-04-22T00:00:00Z``)."""
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


WORLD_START = epoch("2025-03-15T00:00:00Z")  # benign traffic window
WORLD_END = epoch("2025-06-30T00:00:00Z")
CAMPAIGN_START = epoch("2025-04-22T00:00:00Z")
CAMPAIGN_END = epoch("2025-06-05T23:59:59Z")
MODEL_RELEASE = epoch("2025-05-13T16:00:00Z")  # the new model attackers jump to within 24 h
NEW_MODEL = "atlas-3.5"
OLD_MODELS = ("atlas-3", "atlas-3-mini")
MODELS = (*OLD_MODELS, NEW_MODEL)


DEFAULT_CHUNK_ROWS = 250_000  # exchanges generated (and held in memory) at a time: one row group
DEFAULT_PART_ROWS = 5_000_000  # exchanges per Parquet part file


@dataclass(frozen=True)
class Scale:
    """Sizes of one world; exchange totals are targets the generator meets exactly."""

    benign_accounts: int
    attack_accounts: int
    attack_exchanges: int
    benign_mean_exchanges: float
    universities: int
    companies: int
    carrier_nat_ips: int
    prompt_text_every: int = 1  # keep prompt text on 1 row in N (others get prompt_hash only)


SCALES: dict[str, Scale] = {
    "tiny": Scale(262, 40, 2_400, 7.0, 2, 2, 4),
    "small": Scale(4_500, 500, 100_000, 22.0, 5, 6, 6),
    "medium": Scale(45_000, 5_000, 1_500_000, 33.0, 12, 20, 8),
    "seed": Scale(250_000, 25_000, 28_900_000, 40.0, 40, 120, 16, prompt_text_every=20),
}


@dataclass(frozen=True)
class Operator:
    """One attacking operator: share of attack accounts/exchanges, tradecraft knobs."""

    operator_id: str
    name: str
    account_share: float
    exchange_share: float
    camouflage: float  # fraction of its traffic that is ordinary prompts
    start: int  # first burst (reseller: the synchronised onset)
    switch_delay_h: float  # hours after the model release it moves its traffic
    burst_every_h: float
    burst_len_h: float
    known: bool  # listed in operators.csv
    burst_jitter_h: float | None = None  # how late a burst may open; None: anywhere in its period


OPERATORS: tuple[Operator, ...] = (
    Operator("op-hydra", "HYDRA proxy network", 0.44, 0.46, 0.30, CAMPAIGN_START, 6.0, 8.0, 3.0, True),
    Operator("op-dcfarm", "CloudCheap datacenter farm", 0.20, 0.20, 0.10, CAMPAIGN_START + 2 * 86400, 3.0, 12.0, 1.5, True),
    Operator("op-edufarm", "Polytechnic education-path farm", 0.16, 0.16, 0.15, CAMPAIGN_START + 4 * 86400, 20.0, 24.0, 4.0, True),
    Operator("op-reseller", "Grey-market relay reseller", 0.12, 0.12, 0.25, epoch("2025-05-02T03:00:00Z"), 11.0, 6.0, 2.0, True),
    Operator("op-startup", "Startup-credit farm on ExampleVPN", 0.08, 0.06, 0.20, epoch("2025-05-06T09:00:00Z"), 15.0, 24.0, 5.0, False),
)
OPERATOR_IDS = tuple(o.operator_id for o in OPERATORS)

# Operators only scenario worlds have (loaders/synthetic_scenarios.py). The two SwarmNet buyers
# share one rotating residential proxy network but differ in payment, templates and hours.
SWARM_OPERATORS: tuple[Operator, ...] = (
    Operator("op-swarm-night", "SwarmNet night-shift agent farm", 0.08, 0.08, 0.20, epoch("2025-04-24T01:00:00Z"), 4.0, 24.0, 4.0, True, 1.0),
    Operator("op-swarm-day", "SwarmNet day-shift prepaid-card farm", 0.08, 0.08, 0.15, epoch("2025-04-25T13:00:00Z"), 9.0, 24.0, 5.0, True, 1.0),
)
TAKEOVER_DAY = epoch("2025-05-20T00:00:00Z")  # every taken-over account's onset falls on this day
TAKEOVER_OPERATOR = Operator("op-takeover", "Account-takeover resale ring", 0.08, 0.07, 0.05, TAKEOVER_DAY, 0.0, 24.0, 24.0, False)
# takeover-same-network: a second ring that relays through its victims' own machines (an
# infostealer's reverse proxy), so each account keeps its owner's home address after the theft
TAKEOVER_HOME_DAY = epoch("2025-05-27T00:00:00Z")
TAKEOVER_HOME_OPERATOR = Operator("op-takeover-home", "Account-takeover ring through the victims' own networks", 0.08, 0.07,
                                  0.05, TAKEOVER_HOME_DAY, 0.0, 24.0, 24.0, False)

# Share of benign accounts in each hard-negative kind (the rest are "ordinary").
HARD_NEGATIVE_SHARES: dict[str, float] = {
    "university": 0.06,
    "company": 0.05,
    "family": 0.06,
    "vpn": 0.04,
    "carrier_nat": 0.06,
    "viral_prompt": 0.03,
    "resproxy_benign": 0.015,
}
VPN_NAME = "ExampleVPN"
PROXY_NAME = "PeerMesh Residential Proxies"


@dataclass(frozen=True)
class Net:
    """A network of the world: its CIDR and ip_intel attributes (``listed``: in ip_intel)."""

    cidr: str
    asn: int
    as_org: str
    kind: str
    country: str
    provider: str = ""
    listed: bool = True

    @property
    def first(self) -> int:
        return int(ipaddress.ip_network(self.cidr).network_address)

    @property
    def size(self) -> int:
        return int(ipaddress.ip_network(self.cidr).num_addresses)


# Benign home addresses come from the lower half of each ISP range; proxy exits live in the
# upper half, so an ordinary user never lands on a proxy exit by accident.
ISPS = (
    Net("73.0.0.0/12", 64601, "Meridian Broadband", "residential", "US"),
    Net("84.208.0.0/12", 64602, "Nordlys Fiber", "residential", "NO"),
    Net("181.16.0.0/12", 64603, "Pampa Cable", "residential", "AR", listed=False),
    Net("126.0.0.0/12", 64604, "Sakura Hikari", "residential", "JP", listed=False),
    Net("91.32.0.0/12", 64605, "Rheinnetz DSL", "residential", "DE"),
    Net("117.192.0.0/12", 64606, "Ganges Net", "residential", "IN", listed=False),
)
ISP_TZ = (-5, 1, -3, 9, 1, 5)
PROXY_NETS = (
    Net("73.8.0.0/18", 64601, "Meridian Broadband", "proxy", "US", PROXY_NAME),
    Net("91.40.0.0/18", 64605, "Rheinnetz DSL", "proxy", "DE", PROXY_NAME),
    Net("181.24.0.0/18", 64603, "Pampa Cable", "proxy", "AR", PROXY_NAME),
)
CARRIER_NAT = Net("37.152.0.0/26", 64610, "Vela Mobile", "mobile", "US")
VPN_NET = Net("185.220.64.0/26", 64620, "ExampleVPN Ltd", "vpn", "NL", VPN_NAME)
HOSTING_NET = Net("45.140.0.0/20", 64630, "CloudCheap Hosting", "hosting", "US", "CloudCheap")
EDU_FARM_NET = Net("193.170.0.0/24", 64640, "Polytechnic Open Research Network", "education", "SG")
RELAY_NET = Net("5.188.10.0/29", 64650, "Bulletproof Relay SRL", "hosting", "RO", listed=False)
# Scenario networks: SwarmNet exits sit in the upper halves of three more ISPs (rotated per
# request); the takeover ring drives its accounts through one small hosting range.
SWARM_NAME = "SwarmNet Residential"
SWARM_NETS = (
    Net("84.216.0.0/14", 64602, "Nordlys Fiber", "proxy", "NO", SWARM_NAME),
    Net("126.8.0.0/14", 64604, "Sakura Hikari", "proxy", "JP", SWARM_NAME),
    Net("117.200.0.0/14", 64606, "Ganges Net", "proxy", "IN", SWARM_NAME),
)
TAKEOVER_NET = Net("103.151.44.0/28", 64660, "Nimbus VPS Ltd", "hosting", "HK", "Nimbus VPS")


def university_net(i: int) -> Net:
    return Net(f"141.{20 + i}.0.0/16", 64700 + i, f"University u{i:02d}", "education", "US")


def company_net(i: int) -> Net:
    return Net(f"212.{10 + i // 200}.{i % 200}.0/28", 65000 + i, f"Company c{i:02d} GmbH", "corporate", "DE")


# (user_agent, client_fingerprint) pairs. Benign ones are shared defaults; each operator has its own.
BENIGN_CLIENTS = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36", "t13d1516h2_8daaf6152771_02713d6af862"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15", "t13d2014h2_a09f3c656075_14788d8d241b"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148", "t13d2014h2_a09f3c656075_e42f34c56612"),
    ("atlas-python/1.24.0", "t13d1812h1_85036bcba153_b26ce05bbdd6"),
    ("atlas-node/4.2.1", "t13d1011h1_6f7e6b3f6e0c_f8e0d8a5b1c2"),
)
OPERATOR_CLIENTS: dict[str, tuple[tuple[str, str], ...]] = {
    # the hydra hides behind the default Python SDK user agent but its TLS stack gives it away
    "op-hydra": (("atlas-python/1.24.0", "t13d0910h1_c1a7e2f0b9d3_7f1e2a9c4b11"), ("atlas-python/1.23.2", "t13d0910h1_c1a7e2f0b9d3_7f1e2a9c4b11")),
    "op-dcfarm": (("Go-http-client/2.0", "t13d1310h2_4f2c9a8e1d77_90ab12cd34ef"),),
    "op-edufarm": (("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/123.0.6312.58", "t13d1516h2_8daaf6152771_5e3b1c0a9f21"),),
    "op-reseller": (("relay-gw/0.9 (+compat; atlas-python/1.24.0)", "t12d0707h1_77aa01bc9e3f_0c0c0c0c0c0c"),),
    "op-startup": (("atlas-node/4.2.1", "t13d1011h1_6f7e6b3f6e0c_aa19c7e4d0b3"),),
}
# The clients scenario operators use: the SwarmNet buyers hide behind benign SDK defaults
# (indices into BENIGN_CLIENTS); the takeover ring's relay is one client of its own.
SWARM_CLIENTS = {"op-swarm-night": (3,), "op-swarm-day": (4,)}
TAKEOVER_CLIENT = ("okhttp/4.12.0", "t13d1715h2_5b57614c22b0_93c746dc12af")
TAKEOVER_HOME_CLIENT = ("python-httpx/0.27.0", "t13d1812h2_e8a01c9f2b44_61d0b7a3e5c2")
WEBMAIL = ("gmail.com", "outlook.com", "yahoo.com", "proton.me", "gmx.de", "icloud.com")
FIRST_NAMES = ["anna", "ben", "carla", "david", "emma", "felix", "gina", "hugo", "ines", "jonas", "kira", "liam", "mia", "noah", "olga", "paul", "rita", "sam", "tara", "umar", "vera", "will", "xena", "yuki", "zane", "aisha", "bruno", "chloe", "diego", "elena", "farid"]
LAST_NAMES = ["smith", "garcia", "muller", "rossi", "nowak", "silva", "tanaka", "kim", "novak", "petrov", "haddad", "okafor", "larsen", "dubois", "santos", "fischer", "horvat", "yilmaz", "khan", "chen", "sato", "iyer", "cruz", "demir", "carter"]
