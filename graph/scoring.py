"""Explainable cluster scores: named indicators, each with its value and its contribution.

A cluster's score is the sum of its indicators' contributions, each ``weight * strength`` with
strength in [0, 1] (and two penalties subtracted the same way), clipped to [0, 1], so an analyst
reads exactly why a cluster ranks where it does. The weights are not set by hand: they are
fitted by bench/fit_weights.py (a non-negative logistic regression over these same strengths,
on clusters of several scenario worlds and seeds, scaled so that the flag threshold is the
fitted decision boundary) and read from graph/data/weights.json, which records how it was
made; ``read_weights`` refuses a file with a missing, unknown, negative or non-finite weight. Indicators compare the cluster with the *benign
baseline*: the average account (most accounts are benign, and averaging per account keeps a
few heavy attackers from defining normal).

Being related is not being malicious: a family on one card or colleagues behind one egress are
real clusters, but humans do not act in lock-step, target the valuable capabilities at volume,
or send the same templates only among themselves, so their scores stay low.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graph.linkage.facts import Facts
from graph.linkage.template_props import TemplateProps
from graph.props import epoch, loads
from graph.schema import Label

HIGH_VALUE = ("coding", "agentic", "reasoning", "math")
ANONYMISING = {"proxy": 1.0, "hosting": 1.0, "tor": 1.0, "vpn": 0.5}
# The named indicators (their strengths are computed in ``score_cluster``; the last one by
# graph.takeover) and the two penalties, in the order the weights file lists them.
INDICATORS = (
    "lockstep_activity", "synchronised_onset", "model_switch", "capability_targeting", "cot_share",
    "template_concentration", "proxy_hosting_share", "exchanges_per_account", "tokens_per_account",
    "volume_evenness", "size", "payment_reuse", "young_accounts", "synchronised_takeover",
)
PENALTIES = ("behaviour_only", "clockwork_schedule")
WEIGHTS_FILE = Path(__file__).resolve().parent / "data" / "weights.json"
WEIGHTS_VERSION = 1


class WeightsError(ValueError):
    """The weights file is missing, malformed, or does not name every indicator once."""


@dataclass(frozen=True)
class FittedWeights:
    """What graph/data/weights.json holds: indicator weights, penalty weights (both >= 0) and
    how they were fitted (scenarios, seeds, command, threshold, fit statistics)."""

    weights: dict[str, float]
    penalties: dict[str, float]
    provenance: dict[str, Any]


def _checked(kind: str, given: Any, names: Sequence[str], path: Path) -> dict[str, float]:
    if not isinstance(given, dict):
        raise WeightsError(f"{path}: {kind!r} must be an object of name: weight")
    missing = [n for n in names if n not in given]
    unknown = sorted(set(given) - set(names))
    if missing or unknown:
        raise WeightsError(f"{path}: {kind} missing {missing or 'none'}, unknown {unknown or 'none'}")
    out = {}
    for name in names:
        value = given[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise WeightsError(f"{path}: {kind} {name!r} must be a finite number >= 0, got {value!r}")
        out[name] = float(value)
    return out


def read_weights(path: Path = WEIGHTS_FILE) -> FittedWeights:
    """The fitted weights from ``path``, validated (see ``WeightsError``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"cannot read the scoring weights {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != WEIGHTS_VERSION:
        raise WeightsError(f"{path}: expected an object with version {WEIGHTS_VERSION}")
    weights = _checked("weights", data.get("weights"), INDICATORS, path)
    penalties = _checked("penalties", data.get("penalties"), PENALTIES, path)
    if not any(weights.values()):
        raise WeightsError(f"{path}: every indicator weight is 0; nothing could ever be flagged")
    provenance = {k: v for k, v in data.items() if k not in ("weights", "penalties")}
    return FittedWeights(weights, penalties, provenance)


FITTED = read_weights()
WEIGHTS: dict[str, float] = FITTED.weights
# Families that show who runs the accounts (shared infrastructure), as opposed to behaviour
# (same prompts, same timing) that unrelated automations can share.
INFRASTRUCTURE_FAMILIES = frozenset({"network", "payment", "device", "email"})
BEHAVIOUR_ONLY_PENALTY = FITTED.penalties["behaviour_only"]
# Scheduled automation (a job at a fixed minute of the hour) is lock-step but benign; it is
# named as a negative contribution of up to this much.
CLOCKWORK_PENALTY = FITTED.penalties["clockwork_schedule"]
ONSET_WINDOW_S = 24 * 3600
YOUNG_S = 3 * 86400


@dataclass
class AccountProfile:
    """What scoring needs of one account, from the store (and staging when present)."""

    exchanges: int = 0
    tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    created: float | None = None
    first: float | None = None
    last: float | None = None
    first_iso: str = ""
    last_iso: str = ""
    capabilities: dict[str, int] = field(default_factory=dict)
    cot: int = 0
    templates: InitVar[Mapping[str, int] | None] = None
    anonymised: float = 0.0
    ip_uses: int = 0
    payments: set[str] = field(default_factory=set)
    model_onset: float | None = None
    minute_top: int = 0
    minute_total: int = 0
    # the templates it sent and how often: ids (template positions in detection, any hashable
    # in hand-made profiles) and counts, as arrays because accounts send tens of millions
    template_ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    template_counts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __post_init__(self, templates: Mapping[str, int] | None) -> None:
        if templates:
            self.template_ids = np.asarray(list(templates), dtype=object)
            self.template_counts = np.asarray(list(templates.values()), dtype=np.int64)


@dataclass
class Baseline:
    capability: dict[str, float]
    cot: float
    exchanges: float
    tokens: float


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def account_profiles(
    facts: Facts,
    model_onsets: Mapping[str, float] | None = None,
    minute_regularity: Mapping[str, tuple[int, int]] | None = None,
) -> dict[str, AccountProfile]:
    """A profile per account from the facts; ``model_onsets`` is each account's first use of
    the newest model and ``minute_regularity`` its (busiest minute-of-hour, all) exchange
    counts (both from staging; optional)."""
    out: dict[str, AccountProfile] = {}
    for account, p in facts.accounts.items():
        inp, outp = _int(p.get("input_tokens")), _int(p.get("output_tokens"))
        out[account] = AccountProfile(
            exchanges=_int(p.get("exchanges")), input_tokens=inp, output_tokens=outp, tokens=inp + outp,
            created=epoch(p.get("created_at")), first=epoch(p.get("first_seen")), last=epoch(p.get("last_seen")),
            first_iso=str(p.get("first_seen") or ""), last_iso=str(p.get("last_seen") or ""),
            model_onset=(model_onsets or {}).get(account),
        )
        top, total = (minute_regularity or {}).get(account, (0, 0))
        out[account].minute_top, out[account].minute_total = top, total
    _template_profiles(facts, out)
    # The graph holds only the IPs that link accounts; the loader leaves each account's IP
    # uses by network kind on the account, which counts the IPs it alone used too.
    summed = _ip_uses_from_accounts(facts, out)
    for ip, users in facts.users(Label.IP.value).items():
        from graph.linkage.network import network_props

        share = ANONYMISING.get(str(network_props(facts, Label.IP.value, ip).get("kind") or "").lower(), 0.0)
        for account, use in users.items():
            if account in out and account not in summed:
                out[account].ip_uses += use.count
                out[account].anonymised += share * use.count
    for pid, users in facts.users(Label.PAYMENT_METHOD.value).items():
        for account in users:
            if account in out:
                out[account].payments.add(pid)
    for prof in out.values():
        if not prof.exchanges:
            prof.exchanges = int(prof.template_counts.sum())
    return out


def _ip_uses_from_accounts(facts: Facts, out: Mapping[str, AccountProfile]) -> set[str]:
    """Each account's IP uses and their anonymised share from its ``ip_uses_by_kind`` property
    (JSON {network kind: uses}, written by the loader); returns the accounts that had it (the
    others, from a workspace loaded before it existed, are counted from the graph's IPs)."""
    done: set[str] = set()
    for account, p in facts.accounts.items():
        by_kind = loads(p.get("ip_uses_by_kind"), None)
        prof = out.get(account)
        if not isinstance(by_kind, dict) or prof is None:
            continue
        for kind, uses in sorted(by_kind.items()):
            prof.ip_uses += int(uses)
            prof.anonymised += ANONYMISING.get(str(kind or "").lower(), 0.0) * int(uses)
        done.add(account)
    return done


def _template_profiles(facts: Facts, out: Mapping[str, AccountProfile]) -> None:
    """Each account's capability and CoT counts and its templates, column-wise from the
    template table (tens of millions of uses at the seed scale). A withheld prompt (its hash,
    ``hashed`` on the template) says nothing about capability or chain of thought, so it is
    left out of those counts rather than counted as "other": when 95% of the texts are
    withheld, the shares come from the 5% that can be read."""
    table = facts.template_table()
    if not table.rows():
        return
    label = Label.PROMPT_TEMPLATE.value
    props = facts.entities.get(label)
    if isinstance(props, TemplateProps):
        capabilities, key_cap, key_cot, key_read = props.profile_columns(table.values_sorted)
    else:
        capability_of = [str(facts.props(label, k).get("capability") or "other") for k in table.values_sorted]
        capabilities = sorted(set(capability_of))
        cap_index = {c: i for i, c in enumerate(capabilities)}
        key_cap = np.asarray([cap_index[c] for c in capability_of], dtype=np.int64)
        key_cot = np.asarray([bool(facts.props(label, k).get("cot")) for k in table.values_sorted], dtype=bool)
        key_read = np.asarray([not facts.props(label, k).get("hashed") for k in table.values_sorted], dtype=bool)
    key_of_row = table.key_of_rows()
    accounts, counts = table.account.astype(np.int64), table.count
    n_acc, n_cap = len(table.names), len(capabilities)
    read = counts * key_read[key_of_row]
    per_cap = np.bincount(accounts * n_cap + key_cap[key_of_row], weights=read, minlength=n_acc * n_cap)
    per_cap = per_cap.reshape(n_acc, n_cap).astype(np.int64)
    cot = np.bincount(accounts, weights=counts * key_cot[key_of_row], minlength=n_acc).astype(np.int64)
    by_account = np.argsort(accounts, kind="stable")
    ids, sent = key_of_row[by_account], counts[by_account]
    bounds = np.r_[0, np.cumsum(np.bincount(accounts, minlength=n_acc))]
    for i, name in enumerate(table.names):
        prof = out.get(name)
        if prof is None:
            continue
        prof.capabilities = {capabilities[c]: int(v) for c, v in enumerate(per_cap[i].tolist()) if v}
        prof.cot = int(cot[i])
        prof.template_ids, prof.template_counts = ids[bounds[i] : bounds[i + 1]], sent[bounds[i] : bounds[i + 1]]


def _shares(counts: Mapping[str, int | float]) -> dict[str, float]:
    total = float(sum(counts.values()))
    return {k: v / total for k, v in sorted(counts.items())} if total else {}


def baseline(profiles: Iterable[AccountProfile]) -> Baseline:
    """The average account: capability shares and CoT share averaged per account, medians of
    exchanges and tokens."""
    caps: dict[str, float] = {}
    cots, exchanges, tokens = [], [], []
    n = 0
    for prof in profiles:
        shares = _shares(prof.capabilities)
        if shares:
            n += 1
            for k, v in shares.items():
                caps[k] = caps.get(k, 0.0) + v
            cots.append(prof.cot / max(1, sum(prof.capabilities.values())))
        exchanges.append(prof.exchanges)
        tokens.append(prof.tokens)
    return Baseline(
        capability={k: v / n for k, v in sorted(caps.items())} if n else {},
        cot=statistics.fmean(cots) if cots else 0.0,
        exchanges=max(1.0, statistics.median(exchanges)) if exchanges else 1.0,
        tokens=max(1.0, statistics.median(tokens)) if tokens else 1.0,
    )


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def _log_ratio(value: float, base: float, full: float = 1.5) -> float:
    """0 at or below the baseline, 1 at ``10**full`` times it."""
    if value <= 0 or base <= 0:
        return 0.0
    return _clip(math.log10(value / base) / full)


def densest_window_share(times: Sequence[float | None], window: float) -> float:
    """(k - 1) / (n - 1) where k accounts fall in the densest window: 0 when the times are
    spread out, 1 when all fall in one window (n counts the accounts with a time)."""
    known = sorted(t for t in times if t is not None)
    if len(known) < 2:
        return 0.0
    best, j = 1, 0
    for i, t in enumerate(known):
        while t - known[j] > window:
            j += 1
        best = max(best, i - j + 1)
    return (best - 1) / (len(known) - 1)


def template_concentration(members: Sequence[str], profiles: Mapping[str, AccountProfile],
                           template_users: Mapping[Any, int] | np.ndarray) -> float:
    """Share of the cluster's exchanges on templates that many members send and that are sent
    mostly inside the cluster (an operator's script, not a popular one-liner).
    ``template_users``: each template's users overall, by id (an array when ids are positions)."""
    ids = np.concatenate([profiles[a].template_ids for a in members]) if members else np.empty(0)
    if ids.size == 0:
        return 0.0
    counts = np.concatenate([profiles[a].template_counts for a in members])
    unique, inverse = np.unique(ids, return_inverse=True)
    inside = np.bincount(inverse)
    volume = np.bincount(inverse, weights=counts)
    if isinstance(template_users, np.ndarray):
        users = template_users[unique.astype(np.int64)]
    else:
        users = np.asarray([template_users.get(t, 0) for t in unique.tolist()], dtype=np.int64)
    need = max(2, math.ceil(0.3 * len(members)))
    own = volume[(inside >= need) & (users <= 2 * inside)].sum()
    total = counts.sum()
    return float(own / total) if total else 0.0


def volume_evenness(volumes: Sequence[int]) -> float:
    """1 - coefficient of variation of per-account volumes (round-robin load balancing makes
    them equal); 0 for fewer than three accounts."""
    if len(volumes) < 3:
        return 0.0
    mean = statistics.fmean(volumes)
    if mean <= 0:
        return 0.0
    return _clip(1.0 - statistics.pstdev(volumes) / mean)


@dataclass
class ClusterScore:
    score: float
    indicators: list[dict[str, Any]]
    capability_profile: dict[str, float]
    exchanges: int
    input_tokens: int
    output_tokens: int
    first_seen: str
    last_seen: str
    # every indicator's and penalty's strength in [0, 1] (what the weights multiply), for the fit
    strengths: dict[str, float] = field(default_factory=dict)


def score_cluster(
    members: Sequence[str],
    profiles: Mapping[str, AccountProfile],
    base: Baseline,
    template_users: Mapping[Any, int] | np.ndarray,
    lockstep_members: int,
    families: Iterable[str] | None = None,
) -> ClusterScore:
    """Score one cluster. ``template_users`` counts each template's users overall;
    ``lockstep_members`` is how many members have a timing link to another member;
    ``families`` are the signal families of its internal links: a cluster tied together by
    behaviour alone (prompts, timing) and no shared infrastructure gets a negative
    ``behaviour_only`` contribution, because unrelated scheduled jobs running one template
    look lock-step too (the companies' automated jobs of the synthetic world). Likewise a
    cluster whose exchanges mostly fall in one minute of the hour (cron jobs) gets a negative
    ``clockwork_schedule`` contribution: operators' bursts spread over the whole hour."""
    profs = [profiles[a] for a in members]
    n = len(profs)
    exchanges = sum(p.exchanges for p in profs)
    caps: dict[str, int] = {}
    for p in profs:
        for k, v in p.capabilities.items():
            caps[k] = caps.get(k, 0) + v
    profile = _shares(caps)
    targeting = sum(max(0.0, profile.get(c, 0.0) - base.capability.get(c, 0.0)) for c in HIGH_VALUE)
    cot_share = sum(p.cot for p in profs) / max(1, sum(caps.values()))
    ip_uses = sum(p.ip_uses for p in profs)
    anon = sum(p.anonymised for p in profs) / ip_uses if ip_uses else 0.0
    pay_count: dict[str, int] = {}
    for p in profs:
        for pid in p.payments:
            pay_count[pid] = pay_count.get(pid, 0) + 1
    reused = sum(1 for p in profs if any(pay_count[pid] > 1 for pid in p.payments))
    ages = [p.first - p.created for p in profs if p.created is not None and p.first is not None]
    young_share = sum(1 for age in ages if age <= YOUNG_S) / len(ages) if ages else 0.0
    values: dict[str, tuple[float, float]] = {
        # name: (value shown to the analyst, strength in [0, 1])
        "lockstep_activity": (lockstep_members / n, lockstep_members / n),
        "synchronised_onset": (s := densest_window_share([p.first for p in profs], ONSET_WINDOW_S), s),
        "model_switch": (m := densest_window_share([p.model_onset for p in profs], ONSET_WINDOW_S), m),
        "capability_targeting": (targeting, _clip(targeting / 0.4)),
        "cot_share": (cot_share, _clip((cot_share - base.cot) / 0.3)),
        "template_concentration": (t := template_concentration(members, profiles, template_users), _clip(t / 0.6)),
        "proxy_hosting_share": (anon, anon),
        "exchanges_per_account": (exchanges / n, _log_ratio(exchanges / n, base.exchanges)),
        "tokens_per_account": (sum(p.tokens for p in profs) / n, _log_ratio(sum(p.tokens for p in profs) / n, base.tokens)),
        "volume_evenness": (e := volume_evenness([p.exchanges for p in profs]), e),
        "size": (float(n), _clip(math.log10(n) / 2.0)),
        "payment_reuse": (reused / n, reused / n),
        "young_accounts": (young_share, young_share),
    }
    scored = sorted(
        ((round(WEIGHTS[name] * strength, 4), name, round(value, 4)) for name, (value, strength) in values.items()),
        key=lambda t: (-t[0], t[1]),
    )
    strengths = {name: strength for name, (_, strength) in values.items()}
    strengths.update(synchronised_takeover=0.0, clockwork_schedule=0.0, behaviour_only=0.0)
    minutes = sum(p.minute_total for p in profs)
    clockwork = sum(p.minute_top for p in profs) / minutes if minutes else 0.0
    if clockwork > 0.2:
        strengths["clockwork_schedule"] = _clip((clockwork - 0.2) / 0.6)
        scored.append((-round(CLOCKWORK_PENALTY * strengths["clockwork_schedule"], 4), "clockwork_schedule", round(clockwork, 4)))
    fams = set(families) if families is not None else None
    if fams is not None and not fams & INFRASTRUCTURE_FAMILIES:
        strengths["behaviour_only"] = 1.0
        scored.append((-round(BEHAVIOUR_ONLY_PENALTY, 4), "behaviour_only", 1.0))
    indicators: list[dict[str, Any]] = [{"name": n, "value": v, "contribution": c} for c, n, v in scored]
    firsts = [p.first_iso for p in profs if p.first_iso]
    lasts = [p.last_iso for p in profs if p.last_iso]
    return ClusterScore(
        score=round(_clip(sum(c for c, _, _ in scored)), 4),
        indicators=indicators,
        capability_profile={k: round(v, 4) for k, v in profile.items()},
        exchanges=exchanges,
        input_tokens=sum(p.input_tokens for p in profs),
        output_tokens=sum(p.output_tokens for p in profs),
        first_seen=min(firsts) if firsts else "",
        last_seen=max(lasts) if lasts else "",
        strengths=strengths,
    )


def score_of(strengths: Mapping[str, float], weights: Mapping[str, float], penalties: Mapping[str, float]) -> float:
    """The score ``score_cluster`` gives (unrounded) for ``strengths`` under other weights:
    what the fit and leave-one-scenario-out evaluate."""
    total = sum(weights[n] * strengths.get(n, 0.0) for n in INDICATORS)
    return _clip(total - sum(penalties[n] * strengths.get(n, 0.0) for n in PENALTIES))
