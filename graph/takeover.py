"""Takeovers: the moment an account's behaviour changes, and campaigns that change together.

An account taken over keeps its past (its rightful owner's home network, card, device, hours)
and from one moment on is driven from somewhere else. ``read_onsets`` finds that moment from
the staged exchanges: the earliest time ``t`` at which the account starts using a network it
never used before and from which (nearly) every later exchange comes from networks first seen
at ``t`` or later, with enough activity on both sides. A single account that moves house looks
the same; what no benign population does is many accounts of one cluster changing within days
of each other onto the same new infrastructure (``campaign``). Such members are marked
compromised, only their post-onset activity is scored (the owner's years of normal use say
nothing about the ring), and the cluster gets the ``synchronised_takeover`` indicator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from graph import scoring
from graph.linkage.hubs import SYNC_WINDOW_S
from graph.staging import connect, has_table, table_glob

MIN_SIDE = 5  # exchanges before and after an onset, at least: fewer say nothing of a change
NEW_SHARE = 0.95  # of the post-onset exchanges on networks first seen at the onset or later
CAMPAIGN_MIN = 3  # accounts changing together, at least
CAMPAIGN_WINDOW_S = SYNC_WINDOW_S  # the same "moved together" window the hub rules use
SHARED_AFTER = 0.5  # of a campaign's accounts on one post-onset network, at least
# As strong as the strongest behaviour indicator (lock-step activity): accounts changing hands
# together is behaviour of one operator, like acting in lock-step.
WEIGHT = scoring.WEIGHTS["lockstep_activity"]


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
    client_changed: bool = False

    @property
    def iso(self) -> str:
        return iso(self.at)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


ONSET_SQL = """
WITH x AS (SELECT account_id, ts, network, client_fingerprint FROM read_parquet($g)
           WHERE ts IS NOT NULL AND network IS NOT NULL),
busy AS (SELECT account_id FROM x GROUP BY 1 HAVING count(*) >= 2 * $k),
f AS (SELECT account_id, network, min(ts) AS first FROM x WHERE account_id IN (SELECT account_id FROM busy) GROUP BY 1, 2),
r AS (SELECT x.account_id, x.ts, f.first AS net_first FROM x JOIN f USING (account_id, network)),
c AS (SELECT DISTINCT account_id, first AS t FROM f),
s AS (SELECT c.account_id, c.t,
             count(*) FILTER (WHERE r.ts < c.t) AS before,
             count(*) FILTER (WHERE r.ts >= c.t) AS after,
             count(*) FILTER (WHERE r.ts >= c.t AND r.net_first >= c.t) AS after_new
      FROM c JOIN r USING (account_id) GROUP BY 1, 2)
SELECT account_id, epoch(min(t)) FROM s
WHERE before >= $k AND after >= $k AND after_new >= $share * after
GROUP BY 1
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
        con.execute("CREATE TEMP TABLE onsets (account_id VARCHAR, t DOUBLE)")
        con.executemany("INSERT INTO onsets VALUES (?, ?)", [(str(a), float(t)) for a, t in found])
        after = con.execute(AFTER_SQL, {"g": glob}).fetchall()
        caps = con.execute(CAPABILITY_SQL, {"g": glob}).fetchall()
    finally:
        con.close()
    at = {str(a): float(t) for a, t in found}
    out: dict[str, Onset] = {}
    for a, n, inp, outp, last, cot, nets, clients_after, clients_before in after:
        out[str(a)] = Onset(
            at=at[str(a)], exchanges=int(n), input_tokens=int(inp), output_tokens=int(outp), last=float(last or 0.0),
            cot=int(cot), networks=frozenset(map(str, nets or [])),
            client_changed=bool(clients_after) and not set(clients_after or []) & set(clients_before or []),
        )
    for a, cap, n in caps:
        if str(a) in out:
            out[str(a)].capabilities[str(cap)] = int(n)
    return out


def campaign(members: Sequence[str], onsets: Mapping[str, Onset]) -> list[str]:
    """The members that changed together: the most onsets within ``CAMPAIGN_WINDOW_S`` of the
    first of them (at least ``CAMPAIGN_MIN``), when at least ``SHARED_AFTER`` of them moved
    onto one same network. Empty when there is no such campaign."""
    changed = sorted((onsets[a].at, a) for a in members if a in onsets)
    best: list[str] = []
    lo = 0
    for hi in range(len(changed)):
        while changed[hi][0] - changed[lo][0] > CAMPAIGN_WINDOW_S:
            lo += 1
        if hi - lo + 1 > len(best):
            best = [a for _, a in changed[lo : hi + 1]]
    if len(best) < CAMPAIGN_MIN:
        return []
    on: dict[str, int] = {}
    for a in best:
        for net in onsets[a].networks:
            on[net] = on.get(net, 0) + 1
    if max(on.values(), default=0) < SHARED_AFTER * len(best):
        return []
    return sorted(best)


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
    contribution = round(WEIGHT * share, 4)
    indicators = sorted([*score.indicators, {"name": "synchronised_takeover", "value": round(share, 4),
                                             "contribution": contribution}], key=lambda i: (-i["contribution"], i["name"]))
    total = round(min(1.0, max(0.0, sum(i["contribution"] for i in indicators))), 4)
    return replace(score, score=total, indicators=indicators)
