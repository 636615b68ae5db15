"""Takeovers: the moment an account's behaviour changes, and campaigns that change together.

An account taken over keeps its past (its rightful owner's home network, card, device, hours)
and from one moment on is driven by someone else. ``read_onsets`` finds that moment from the
staged exchanges, on two kinds of value an account's requests carry, its network and its
client fingerprint: the earliest time ``t`` at which the account starts using a value it never
used before and from which (nearly) every later exchange carries values first seen at ``t`` or
later, with enough activity on both sides. A new network alone is such a change (the ring's
relay). A new client alone is not (people update their browsers): it counts only together
with a shift in how the accounts are used, their active hours or their capability mix,
because whoever buys an account works on their own schedule and for their own ends, whatever
address they come from. One owner's history is often too short to show that on its own, so it
is tested where the evidence adds up: over the accounts that moved onto one new client
together (``campaign_shifted``). So a ring that relays through its victims' own machines (the
home address stays) is still found.

A single account that moves house or changes tools looks the same; what no benign population
does is many accounts changing within days of each other onto the same new value
(``campaign``). ``link_campaigns`` links such accounts wherever clustering put them (a ring
without shared infrastructure has nothing else to hold it together); inside a cluster, the
campaign's members are marked compromised, only their post-onset activity is scored (the
owner's years of normal use say nothing about the ring), and the cluster gets the
``synchronised_takeover`` indicator, weighted like every indicator (graph/data/weights.json).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from graph import scoring
from graph.linkage.evidence import Evidence, Reason, pair_of
from graph.linkage.hubs import SYNC_WINDOW_S
from graph.schema import Label
from graph.staging import connect, has_table, table_glob

MIN_SIDE = 5  # exchanges before and after an onset, at least: fewer say nothing of a change
NEW_SHARE = 0.95  # of the post-onset exchanges on values first seen at the onset or later
CAMPAIGN_MIN = 3  # accounts changing together, at least
CAMPAIGN_WINDOW_S = SYNC_WINDOW_S  # the same "moved together" window the hub rules use
SHARED_AFTER = 0.5  # of a campaign's accounts on one post-onset network or client, at least
# A client change counts when the use changes too: each account's before and after counts over
# the day's six four-hour slots, and over the capabilities, are compared (chi-square tests of
# the two count tables, the smaller p-value Bonferroni-corrected for the two), and the accounts
# that moved onto one client together combine their p-values (Fisher): the campaign's use
# changed when the combined p-value is this or under. Accounts whose owners merely updated a
# client give uniform p-values, which never combine to that.
SHIFT_P = 1e-4
HOUR_SLOT_S = 4 * 3600
# A campaign link is a conjunction of independent facts (one same new value, onsets within the
# window, a change in each account): as strong as a strong link, so a campaign is one cluster.
CAMPAIGN_LINK = 0.5
CAMPAIGN_NEIGHBOURS = 10  # each member linked to its next few in onset order: linear, connected


def weight() -> float:
    """The ``synchronised_takeover`` indicator's weight (fitted with the others)."""
    return scoring.WEIGHTS["synchronised_takeover"]


@dataclass
class Onset:
    """One account's behaviour change and what it did from then on."""

    at: float
    exchanges: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    last: float = 0.0
    cot: int = 0
    capabilities: dict[str, int] = field(default_factory=dict)
    networks: frozenset[str] = frozenset()
    clients: frozenset[str] = frozenset()  # post-onset client fingerprints
    client_changed: bool = False
    signals: tuple[str, ...] = ("network",)  # what changed: network, client
    shift_p: float = 1.0  # p-value that its use (hours, capabilities) did not change (``use_shift_p``)

    @property
    def iso(self) -> str:
        return iso(self.at)

    def new_values(self) -> list[str]:
        """The post-onset values (``network:…``, ``client:…``) the account moved onto."""
        out = [f"network:{n}" for n in sorted(self.networks)] if "network" in self.signals else []
        if self.client_changed:
            out += [f"client:{c}" for c in sorted(self.clients)]
        return out


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# For each candidate onset t (the first time of some value): ``before`` = exchanges earlier than
# t, ``after`` = the rest, ``after_new`` = exchanges whose value was first seen at t or later
# (those are all at t or later). Ranks and a running sum give all three in two sorts; counting
# them by joining every candidate with every exchange of its account grew as candidates x
# exchanges, quadratic for an account rotating through proxies: twice the memory at medium
# scale, and past the machine's at seed.
ONSET_SQL = """
WITH x0 AS (SELECT account_id, ts, network, client_fingerprint FROM read_parquet($g) WHERE ts IS NOT NULL),
busy AS (SELECT account_id FROM x0 GROUP BY 1 HAVING count(*) >= 2 * $k),
x AS (SELECT account_id, ts, 'network' AS dim, network AS value FROM x0
      WHERE network IS NOT NULL AND account_id IN (SELECT account_id FROM busy)
      UNION ALL
      SELECT account_id, ts, 'client' AS dim, client_fingerprint AS value FROM x0
      WHERE client_fingerprint IS NOT NULL AND account_id IN (SELECT account_id FROM busy)),
r AS (SELECT account_id, dim, value, ts,
             rank() OVER (PARTITION BY account_id, dim ORDER BY ts) - 1 AS earlier,
             count(*) OVER (PARTITION BY account_id, dim) AS n
      FROM x),
f AS (SELECT account_id, dim, value, min(ts) AS first, count(*) AS uses, min(earlier) AS before, any_value(n) AS n
      FROM r GROUP BY 1, 2, 3),
s AS (SELECT account_id, dim, first AS t, before, n - before AS after,
             sum(uses) OVER (PARTITION BY account_id, dim ORDER BY first DESC) AS after_new
      FROM f)
SELECT account_id, dim, epoch(min(t)) FROM s
WHERE before >= $k AND after >= $k AND after_new >= $share * after
GROUP BY 1, 2
"""

SHIFT_SQL = """
WITH x AS (SELECT e.account_id, epoch(e.ts) >= o.t AS after, e.capability,
                  (CAST(epoch(e.ts) AS BIGINT) % 86400) // $slot AS slot
           FROM read_parquet($g) e JOIN onsets o USING (account_id) WHERE e.ts IS NOT NULL)
SELECT account_id, 'hours' AS what, CAST(slot AS VARCHAR), after, count(*) FROM x GROUP BY 1, 2, 3, 4
UNION ALL
SELECT account_id, 'capabilities', capability, after, count(*) FROM x WHERE capability IS NOT NULL GROUP BY 1, 2, 3, 4
"""

AFTER_SQL = """
WITH x AS (SELECT e.*, epoch(e.ts) AS et, o.t FROM read_parquet($g) e JOIN onsets o USING (account_id) WHERE e.ts IS NOT NULL)
SELECT account_id,
       count(*) FILTER (WHERE et >= t),
       coalesce(sum(input_tokens) FILTER (WHERE et >= t), 0),
       coalesce(sum(output_tokens) FILTER (WHERE et >= t), 0),
       max(et),
       count(*) FILTER (WHERE et >= t AND cot),
       list(DISTINCT network) FILTER (WHERE et >= t AND network IS NOT NULL),
       list(DISTINCT client_fingerprint) FILTER (WHERE et >= t AND client_fingerprint IS NOT NULL),
       list(DISTINCT client_fingerprint) FILTER (WHERE et < t AND client_fingerprint IS NOT NULL)
FROM x GROUP BY 1
"""

CAPABILITY_SQL = """
SELECT account_id, capability, count(*) FROM read_parquet($g) e JOIN onsets o USING (account_id)
WHERE e.ts IS NOT NULL AND epoch(e.ts) >= o.t AND capability IS NOT NULL GROUP BY 1, 2
"""


def shift_p(before: Mapping[str, int], after: Mapping[str, int]) -> float:
    """The chi-square test's p-value that two count tables (before and after an onset) come
    from one distribution: small when the mix changed; 1 when either side is empty or only one
    value occurs."""
    keys = sorted(k for k in set(before) | set(after) if before.get(k, 0) + after.get(k, 0))
    if len(keys) < 2 or not sum(before.values()) or not sum(after.values()):
        return 1.0
    table = np.asarray([[before.get(k, 0) for k in keys], [after.get(k, 0) for k in keys]], dtype=np.float64)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return chi2_sf(statistic, len(keys) - 1)


def chi2_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X chi-square with ``dof`` degrees of freedom: the regularised
    upper incomplete gamma function, as scipy.stats.chi2.sf computes it, from scipy.special
    (scipy.stats costs a detection run 1.7 s to import for two p-values).

    >>> round(chi2_sf(3.841458820694124, 1), 6)
    0.05
    """
    from scipy.special import gammaincc

    return float(gammaincc(dof / 2.0, statistic / 2.0))


def shifts(rows: Sequence[tuple[str, str, str, bool, int]]) -> dict[str, dict[str, float]]:
    """account -> {"hours": p, "capabilities": p} (``shift_p``) from (account, what, value,
    after, count) rows."""
    tables: dict[tuple[str, str], tuple[dict[str, int], dict[str, int]]] = {}
    for account, what, value, after, n in rows:
        before_t, after_t = tables.setdefault((str(account), str(what)), ({}, {}))
        (after_t if after else before_t)[str(value)] = int(n)
    out: dict[str, dict[str, float]] = {}
    for (account, what), (b, a) in tables.items():
        out.setdefault(account, {})[what] = shift_p(b, a)
    return out


def use_shift_p(shift: Mapping[str, float]) -> float:
    """One account's p-value that its use did not change: the smaller of its hours and
    capabilities p-values (``shifts``), Bonferroni-corrected for the two tests."""
    return min(1.0, 2.0 * min(shift.get("hours", 1.0), shift.get("capabilities", 1.0)))


def accepted_onset(network_at: float | None, client_at: float | None) -> tuple[float, tuple[str, ...]] | None:
    """The onset and what changed, from an account's network and client onsets: the earlier of
    the two (a client onset is confirmed only by its campaign, ``campaign_shifted``)."""
    if client_at is not None and (network_at is None or client_at < network_at):
        return client_at, ("client", *(("network",) if network_at is not None and network_at - client_at <= CAMPAIGN_WINDOW_S else ()))
    if network_at is not None:
        same_client = client_at is not None and abs(client_at - network_at) <= CAMPAIGN_WINDOW_S
        return network_at, ("network", *(("client",) if same_client else ()))
    return None


def campaign_shifted(accounts: Sequence[str], onsets: Mapping[str, Onset]) -> bool:
    """Whether the use of ``accounts`` (moved together onto one new client) changed: Fisher's
    combination of their ``shift_p`` at most ``SHIFT_P``."""
    ps = [max(onsets[a].shift_p, 1e-300) for a in accounts]
    return bool(ps) and chi2_sf(-2.0 * float(np.log(ps).sum()), 2 * len(ps)) <= SHIFT_P


def read_onsets(workspace: Path | None) -> dict[str, Onset]:
    """account -> its behaviour change (see the module doc), with its post-onset activity.
    Empty when no exchanges (or none with networks and clients) are staged."""
    if workspace is None or not has_table(workspace, "exchanges"):
        return {}
    con = connect(threads=2)
    try:
        glob = table_glob(workspace, "exchanges")
        columns = {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet($g)", {"g": glob}).fetchall()}
        if not {"account_id", "ts", "network", "client_fingerprint", "input_tokens", "output_tokens", "cot",
                "capability"} <= columns:
            return {}  # a hand-staged table without the loader's columns: nothing to compare
        found = con.execute(ONSET_SQL, {"g": glob, "k": MIN_SIDE, "share": NEW_SHARE}).fetchall()
        if not found:
            return {}
        by_dim: dict[str, dict[str, float]] = {}
        for a, dim, t in found:
            by_dim.setdefault(str(a), {})[str(dim)] = float(t)
        con.execute("CREATE TEMP TABLE onsets (account_id VARCHAR, t DOUBLE)")
        client_first = [(a, d["client"]) for a, d in sorted(by_dim.items()) if "client" in d]
        shift: dict[str, dict[str, float]] = {}
        if client_first:
            con.executemany("INSERT INTO onsets VALUES (?, ?)", client_first)
            shift = shifts(con.execute(SHIFT_SQL, {"g": glob, "slot": HOUR_SLOT_S}).fetchall())
            con.execute("DELETE FROM onsets")
        at: dict[str, tuple[float, tuple[str, ...]]] = {}
        for a, d in sorted(by_dim.items()):
            accepted = accepted_onset(d.get("network"), d.get("client"))
            if accepted is not None:
                at[a] = accepted
        if not at:
            return {}
        con.executemany("INSERT INTO onsets VALUES (?, ?)", [(a, t) for a, (t, _) in at.items()])
        after = con.execute(AFTER_SQL, {"g": glob}).fetchall()
        caps = con.execute(CAPABILITY_SQL, {"g": glob}).fetchall()
    finally:
        con.close()
    out: dict[str, Onset] = {}
    for a, n, inp, outp, last, cot, nets, clients_after, clients_before in after:
        t, signals = at[str(a)]
        out[str(a)] = Onset(
            at=t, exchanges=int(n), input_tokens=int(inp), output_tokens=int(outp), last=float(last or 0.0),
            cot=int(cot), networks=frozenset(map(str, nets or [])), clients=frozenset(map(str, clients_after or [])),
            client_changed=bool(clients_after) and not set(clients_after or []) & set(clients_before or []),
            signals=signals, shift_p=use_shift_p(shift.get(str(a), {})) if "client" in signals else 1.0,
        )
    for a, cap, n in caps:
        if str(a) in out:
            out[str(a)].capabilities[str(cap)] = int(n)
    return out


def _densest(changed: Sequence[tuple[float, str]]) -> list[str]:
    """The most accounts of (onset, account), sorted, within ``CAMPAIGN_WINDOW_S`` of the first."""
    best: list[str] = []
    lo = 0
    for hi in range(len(changed)):
        while changed[hi][0] - changed[lo][0] > CAMPAIGN_WINDOW_S:
            lo += 1
        if hi - lo + 1 > len(best):
            best = [a for _, a in changed[lo : hi + 1]]
    return best


def campaign(members: Sequence[str], onsets: Mapping[str, Onset]) -> list[str]:
    """The members that changed together: the most onsets within ``CAMPAIGN_WINDOW_S`` of the
    first of them (at least ``CAMPAIGN_MIN``), when at least ``SHARED_AFTER`` of them moved
    onto one same network. Empty when there is no such campaign."""
    best = _densest(sorted((onsets[a].at, a) for a in members if a in onsets))
    if len(best) < CAMPAIGN_MIN:
        return []
    on: dict[str, list[str]] = {}
    for a in best:
        for value in onsets[a].new_values():
            on.setdefault(value, []).append(a)
    if not any(len(users) >= SHARED_AFTER * len(best) and _confirmed(value, users, onsets) for value, users in on.items()):
        return []
    return sorted(best)


def _confirmed(value: str, accounts: Sequence[str], onsets: Mapping[str, Onset]) -> bool:
    """A move onto a new network stands; onto a new client only when the use changed too
    (``campaign_shifted``) or the accounts' networks changed with it."""
    if value.startswith("network:"):
        return True
    moved = [a for a in accounts if "network" not in onsets[a].signals]
    return len(moved) < CAMPAIGN_MIN or campaign_shifted(moved, onsets)


def campaigns(onsets: Mapping[str, Onset]) -> list[tuple[str, list[str]]]:
    """Over all accounts: (value, accounts) for each post-onset value that at least
    ``CAMPAIGN_MIN`` accounts moved onto within ``CAMPAIGN_WINDOW_S`` of each other (the
    densest such window per value; a client only when confirmed, ``_confirmed``), sorted."""
    on: dict[str, list[tuple[float, str]]] = {}
    for account, onset in onsets.items():
        for value in onset.new_values():
            on.setdefault(value, []).append((onset.at, account))
    out = []
    for value in sorted(on):
        best = _densest(sorted(on[value]))
        if len(best) >= CAMPAIGN_MIN and _confirmed(value, best, onsets):
            out.append((value, sorted(best)))
    return out


def link_campaigns(evidence: Evidence, onsets: Mapping[str, Onset]) -> int:
    """Link the accounts of every campaign (``campaigns``) with a ``synchronised_takeover``
    reason of weight ``CAMPAIGN_LINK`` (family device for a client, network for a network),
    each to its next ``CAMPAIGN_NEIGHBOURS`` in onset order. Returns the reasons added."""
    added = 0
    for value, accounts in campaigns(onsets):
        kind, key = value.split(":", 1)
        family, label = ("device", Label.CLIENT_FINGERPRINT.value) if kind == "client" else ("network", Label.NETWORK.value)
        order = sorted(accounts, key=lambda a: (onsets[a].at, a))
        first, last = onsets[order[0]].iso, onsets[order[-1]].iso
        for i, a in enumerate(order):
            for b in order[i + 1 : i + 1 + CAMPAIGN_NEIGHBOURS]:
                detail = {"onsets": [onsets[x].iso for x in pair_of(a, b)], "first_seen": first, "last_seen": last,
                          "synchronised": True}
                evidence.add(a, b, Reason(family, "synchronised_takeover", label, key, len(order), CAMPAIGN_LINK, detail))
                added += 1
    return added


def post_onset_profiles(profiles: Mapping[str, scoring.AccountProfile], onsets: Mapping[str, Onset],
                        members: Sequence[str], compromised: Sequence[str]) -> dict[str, scoring.AccountProfile]:
    """The ``members``' profiles, each ``compromised`` one described by its activity from its
    onset on."""
    out = {a: profiles[a] for a in members}
    for a in compromised:
        o, p = onsets[a], profiles[a]
        out[a] = replace(p, exchanges=o.exchanges, input_tokens=o.input_tokens, output_tokens=o.output_tokens,
                         tokens=o.input_tokens + o.output_tokens, first=o.at, first_iso=o.iso,
                         last=o.last or p.last, capabilities=dict(o.capabilities), cot=o.cot)
    return out


def with_takeover(score: scoring.ClusterScore, compromised: int, size: int) -> scoring.ClusterScore:
    """``score`` with the ``synchronised_takeover`` indicator (value: the share of members in
    the campaign) added to its contributions and its total."""
    share = compromised / size if size else 0.0
    contribution = round(weight() * share, 4)
    indicators = sorted([*score.indicators, {"name": "synchronised_takeover", "value": round(share, 4),
                                             "contribution": contribution}], key=lambda i: (-i["contribution"], i["name"]))
    total = round(min(1.0, max(0.0, sum(i["contribution"] for i in indicators))), 4)
    return replace(score, score=total, indicators=indicators, strengths={**score.strengths, "synchronised_takeover": share})
