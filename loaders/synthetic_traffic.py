"""Exchanges of the synthetic world, generated one chunk of accounts at a time.

Every per-row quantity is drawn with numpy over the whole chunk (repeat each account's plan
by its exchange count, then sample), and strings are built with pyarrow kernels, so memory is
bounded by the chunk size and not by the total number of exchanges.

Timing carries the signals: benign humans follow a daily rhythm in their time zone, a
company's automated job fires on a schedule, and each operator's accounts act in lock-step
bursts shared by all of them, switching to the newly released model within 24 hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graph.staging import connect
from loaders.synthetic_accounts import (
    PROFILE_JOB,
    PROFILE_OPERATOR,
    PROFILE_ORDINARY,
    TIMING_ATTACK,
    TIMING_CRON,
    TIMING_TAKEOVER,
    Plan,
)
from loaders.synthetic_spec import (
    BENIGN_CLIENTS,
    CAMPAIGN_END,
    MODEL_RELEASE,
    MODELS,
    OPERATOR_CLIENTS,
    OPERATORS,
    WORLD_END,
    WORLD_START,
    Operator,
)
from loaders.synthetic_text import Catalogue, render

if TYPE_CHECKING:
    from loaders.synthetic_corpus import TextPlan
    from loaders.synthetic_world import World

DAY = 86400
ACCOUNT_BLOCK = 64  # accounts per random stream (at most ~100k exchanges at the seed scale)
# Share of a person's requests in each local hour: quiet nights, a morning and an evening peak.
_DIURNAL = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3.5, 5, 6, 6, 5, 5, 5.5, 5.5, 5, 4.5, 4.5, 5, 5.5, 5, 3.5, 2])
DIURNAL = _DIURNAL / _DIURNAL.sum()
_CLIENTS = (*BENIGN_CLIENTS, *(c for clients in OPERATOR_CLIENTS.values() for c in clients))
USER_AGENTS = pa.array([c[0] for c in _CLIENTS], pa.string())
FINGERPRINTS = pa.array([c[1] for c in _CLIENTS], pa.string())


@dataclass(frozen=True)
class Bursts:
    """One operator's shared burst windows (epoch seconds); every account of it uses these."""

    starts: np.ndarray
    length: int


def burst_schedule(rng: np.random.Generator, operators: Sequence[Operator] = OPERATORS) -> list[Bursts]:
    """Lock-step windows per operator; the first window opens exactly at the operator's onset
    (an operator with ``burst_jitter_h`` keeps its hours: each window opens that late at most)."""
    schedules = []
    for op in operators:
        every, length = int(op.burst_every_h * 3600), int(op.burst_len_h * 3600)
        k = max(1, (CAMPAIGN_END - length - op.start) // every)
        late = every - length if op.burst_jitter_h is None else int(op.burst_jitter_h * 3600)
        jitter = rng.integers(0, max(1, late), size=k)
        jitter[0] = 0
        schedules.append(Bursts(op.start + np.arange(k, dtype=np.int64) * every + jitter, length))
    return schedules


def baseline_mixes(operators: Sequence[Operator]) -> list[dict[str, float]]:
    """Template-family shares of the baseline's prompt profiles, in profile-index order
    (ordinary, university, viral, three jobs, then one per operator)."""
    return [
        {"benign": 0.97, "homework": 0.03},
        {"benign": 0.6, "homework": 0.4},
        {"benign": 0.7, "viral": 0.3},
        {"corporate_job:0": 1.0},
        {"corporate_job:1": 1.0},
        {"corporate_job:2": 1.0},
        *({op.operator_id: 1 - op.camouflage, "benign": op.camouflage} for op in operators),
    ]


def profile_probabilities(catalogue: Catalogue, profile_mixes: Sequence[dict[str, float]] | None = None) -> np.ndarray:
    """Row = prompt profile, column = template: the chance a row of that profile uses it
    (``profile_mixes``: a scenario world's family shares per profile; default the baseline's)."""
    fam = catalogue.families
    mixes: Sequence[dict[str, float]] = profile_mixes or baseline_mixes(OPERATORS)
    probs = np.zeros((len(mixes), len(catalogue.templates)))
    for row, mix in enumerate(mixes):
        for family, share in mix.items():
            probs[row, fam[family]] += share / len(fam[family])
    assert PROFILE_OPERATOR == 6 and PROFILE_JOB == 3
    return probs


def account_blocks(n_accounts: int, size: int = ACCOUNT_BLOCK) -> Iterator[slice]:
    """Fixed-size runs of accounts; each gets its own random stream, so the exchanges written do
    not depend on how they are later cut into row groups."""
    for start in range(0, n_accounts, size):
        yield slice(start, min(start + size, n_accounts))


def rebatch(tables: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """Re-cut a stream of tables into tables of exactly ``rows`` rows (the last may be shorter)."""
    pending: list[pa.Table] = []
    count = 0
    for table in tables:
        pending.append(table)
        count += table.num_rows
        while count >= rows:
            combined = pa.concat_tables(pending)
            yield combined.slice(0, rows)
            rest = combined.slice(rows)
            pending, count = [rest], rest.num_rows
    if count:
        yield pa.concat_tables(pending)


def _human_times(rng: np.random.Generator, created: np.ndarray, tz: np.ndarray, cron: np.ndarray,
                 last_day: np.ndarray) -> np.ndarray:
    first_day = np.maximum(created, WORLD_START) // DAY + 1
    day = first_day + (rng.random(len(created)) * np.maximum(1, last_day - first_day)).astype(np.int64)
    hour = rng.choice(24, size=len(created), p=DIURNAL)
    seconds = hour * 3600 + rng.integers(0, 3600, size=len(created))
    # the automated job: business hours, five past the hour, a few seconds of scheduler jitter
    job_hour = rng.integers(8, 19, size=len(created))
    seconds = np.where(cron, job_hour * 3600 + 300 + rng.integers(0, 20, size=len(created)), seconds)
    return np.maximum(day * DAY + seconds - (tz * 3600).astype(np.int64), created + 60)


def _attack_times(rng: np.random.Generator, op_index: np.ndarray, camo: np.ndarray, first: np.ndarray,
                  bursts: list[Bursts], operators: Sequence[Operator]) -> np.ndarray:
    """Rows in the operator's shared bursts (camouflage spread out); every account opens in burst 0."""
    ts = np.zeros(len(op_index), dtype=np.int64)
    for o, schedule in enumerate(bursts):
        rows = np.flatnonzero(op_index == o)
        pick = np.where(first[rows], 0, rng.integers(0, len(schedule.starts), size=len(rows)))
        in_burst = schedule.starts[pick] + rng.integers(0, schedule.length, size=len(rows))
        spread = rng.integers(operators[o].start, CAMPAIGN_END, size=len(rows))
        ts[rows] = np.where(camo[rows] & ~first[rows], spread, in_burst)
    return ts


def _models(rng: np.random.Generator, ts: np.ndarray, op_index: np.ndarray, operators: Sequence[Operator]) -> np.ndarray:
    """Model index per row: benign users drift to the new model; operators jump within hours."""
    delay = np.array([op.switch_delay_h * 3600 for op in operators])
    attack = op_index >= 0
    switched = ts >= MODEL_RELEASE + delay[np.where(attack, op_index, 0)]
    adoption = np.clip((ts - MODEL_RELEASE) / (21 * DAY), 0, 1) * 0.5
    benign = np.where(rng.random(len(ts)) < adoption, 2, np.where(rng.random(len(ts)) < 0.3, 1, 0))
    return np.where(attack, np.where(switched, 2, 0), benign)


def _ip_strings(values: np.ndarray) -> pa.Array:
    octets = [pa.array((values >> shift) & 255).cast(pa.string()) for shift in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*octets, ".")


@dataclass(frozen=True)
class Rows:
    """The numeric draws of one block of exchanges, each account's rows in time order."""

    acc: np.ndarray
    ts: np.ndarray
    template: np.ndarray
    op_index: np.ndarray
    ip: np.ndarray
    client: np.ndarray
    key: np.ndarray


def draw_rows(plan: Plan, accounts: slice, catalogue: Catalogue, probs: np.ndarray, bursts: list[Bursts],
              rng: np.random.Generator, operators: Sequence[Operator] = OPERATORS) -> Rows:
    """Who, when, from where and which template, for every exchange of a block of accounts.

    A taken-over account (timing ``TIMING_TAKEOVER``) is used around the clock, at an even rate,
    from its onset to the campaign's end; its history before the onset is its owner's."""
    idx = np.arange(accounts.start, accounts.stop)
    counts = plan.n_exchanges[accounts] + plan.history_n[accounts]
    acc = np.repeat(idx, counts)
    n = len(acc)
    rank = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    past = rank < plan.history_n[acc]  # a stolen account's rightful owner, before the theft
    profile = np.where(past, PROFILE_ORDINARY, plan.profile[acc])
    template = np.zeros(n, dtype=np.int64)
    for p in np.unique(profile):
        rows = np.flatnonzero(profile == p)
        template[rows] = rng.choice(len(catalogue.templates), size=len(rows), p=probs[p])
    op_index = np.where(past, -1, plan.op_index[acc])
    attack = (plan.timing[acc] == TIMING_ATTACK) & ~past
    camo = ~catalogue.long_output[template]
    first = rank == plan.history_n[acc]
    last_day = np.where(past, plan.history_last_day[acc], WORLD_END // DAY)  # local time may run a day late
    tz = np.where(past, plan.history_tz[acc], plan.tz[acc])
    ts = np.where(attack, _attack_times(rng, np.where(attack, op_index, -1), camo, first, bursts, operators),
                  _human_times(rng, plan.created[acc], tz, plan.timing[acc] == TIMING_CRON, last_day))
    takeover = (plan.timing[acc] == TIMING_TAKEOVER) & ~past
    if takeover.any():
        onset = plan.onset[acc]
        ts = np.where(takeover, onset + (rng.random(n) * (CAMPAIGN_END - onset)).astype(np.int64), ts)
    order = np.lexsort((ts, acc))
    acc, ts, template, op_index, past = acc[order], ts[order], template[order], op_index[order], past[order]
    ip = plan.ip_table[plan.ip_off[acc] + (rng.random(n) * plan.ip_k[acc]).astype(np.int64)].astype(np.int64)
    return Rows(
        acc=acc, ts=ts, template=template, op_index=op_index,
        ip=np.where(past, plan.history_ip[acc], ip),
        client=np.where(past, plan.history_client[acc], plan.client[acc]),
        key=plan.key_off[acc] + (rng.random(n) * plan.key_k[acc]).astype(np.int64),
    )


def exchange_table(plan: Plan, accounts: slice, first_id: int, catalogue: Catalogue, probs: np.ndarray,
                   bursts: list[Bursts], rng: np.random.Generator, text_every: int,
                   world: World | None = None, text: TextPlan | None = None) -> pa.Table:
    """All exchanges of one block of accounts as the bundle's columns (ids from ``first_id``).
    ``world``: a scenario world's operators and clients; ``text``: real prompt text per person."""
    operators = world.operators if world is not None else OPERATORS
    r = draw_rows(plan, accounts, catalogue, probs, bursts, rng, operators)
    acc, ts, template, n = r.acc, r.ts, r.template, len(r.acc)
    prompt = render(template, catalogue, rng)
    if text is not None:
        prompt = text.apply(prompt, acc, template)
    user_agents = world.user_agents if world is not None else USER_AGENTS
    fingerprints = world.fingerprints if world is not None else FINGERPRINTS
    long_out = catalogue.long_output[template]
    context = np.where(long_out, rng.integers(20, 400, size=n), rng.lognormal(3.0, 1.5, size=n).astype(np.int64))
    output = np.where(long_out, rng.lognormal(7.4, 0.5, size=n), rng.lognormal(5.3, 0.8, size=n)).astype(np.int64)
    numbers = pa.array(first_id + np.arange(n, dtype=np.int64)).cast(pa.string())
    columns = {
        "exchange_id": pc.binary_join_element_wise("ex-", pc.utf8_lpad(numbers, width=11, padding="0"), ""),
        "account_id": plan.account_ids.take(pa.array(acc)),
        "ts": pc.strftime(pa.array(ts.astype("datetime64[s]")), format="%Y-%m-%dT%H:%M:%SZ"),
        "ip": _ip_strings(r.ip),
        "api_key_id": plan.api_keys.take(pa.array(r.key)),
        "user_agent": user_agents.take(pa.array(r.client)),
        "client_fingerprint": fingerprints.take(pa.array(r.client)),
        "model": pa.array(MODELS, pa.string()).take(pa.array(_models(rng, ts, r.op_index, operators))),
        "input_tokens": pc.add(pc.divide(pc.utf8_length(prompt), 4), pa.array(context)).cast(pa.int64()),
        "output_tokens": pa.array(np.maximum(output, 1)),
        "prompt": prompt,
    }
    if text_every > 1:
        columns["prompt_hash"] = _md5(prompt)
        keep = pa.array((first_id + np.arange(n)) % text_every == 0)
        columns["prompt"] = pc.if_else(keep, prompt, pa.scalar(None, pa.string()))
    return pa.table(columns)


def _md5(prompt: pa.Array) -> pa.Array:
    """Hex MD5 of each prompt (DuckDB's vectorised md5; order of a plain projection is kept)."""
    con = connect()
    try:
        con.register("prompts", pa.table({"p": prompt}))
        return con.sql("SELECT md5(p) AS h FROM prompts").to_arrow_table().column("h").combine_chunks()
    finally:
        con.close()

