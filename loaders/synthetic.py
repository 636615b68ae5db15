"""The synthetic world generator: writes an input bundle (input-bundle.md) plus labels and groups.

``generate(out_dir, scale, seed)`` invents the accounts (benign, hard negatives, operators),
writes the account-level tables as CSV, then streams exchanges chunk by chunk into Parquet
part files (one row group per chunk) so memory never depends on the number of exchanges.
Same seed, same bytes: every random draw comes from a numpy generator seeded by
``(seed, stream, chunk)``; nothing depends on time, uuids or hash randomisation.

Scenarios (``generate(..., scenarios="shared-proxy,takeover")``, ``--scenario`` on the CLI;
the library and what each adds are in loaders/synthetic_world.py) combine freely, at every
scale and seed, and are deterministic too. Without one (or with ``baseline``) the bundle is
byte for byte the baseline world. ``shared-proxy`` adds op-swarm-night and op-swarm-day (one
rotating residential proxy network, SwarmNet, also used by benign ``resproxy_benign:swarmnet``
accounts); ``takeover`` adds op-takeover and writes ``takeovers.csv`` (account_id, operator_id,
onset); ``takeover-same-network`` adds op-takeover-home (its accounts keep their home address) to it; ``prompt-commons`` adds the benign groups ``prompt_oneliners``, ``prompt_collection:…``
and ``popular_app:…``; ``no-indicators`` leaves operators.csv empty; ``real-text`` draws the
prompts from the ShareGPT human turns (loaders/synthetic_corpus.py: bundled sample, or the full
corpus fetched once into the cache) and plants hostile strings; ``withheld`` / ``withhold_text``
keeps the text on one exchange in N. labels.csv keeps exactly ``account_id,operator_id``.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from loaders.synthetic_accounts import (
    ACCOUNT_COLUMNS,
    PROFILE_JOB,
    PROFILE_OPERATOR,
    AccountBook,
    Plan,
    freeze,
    iso,
)
from loaders.synthetic_attack import build_attack, proxy_pool
from loaders.synthetic_benign import build_benign
from loaders.synthetic_corpus import Corpus, RealText, TextPlan, choose_corpus, partition, text_plan
from loaders.synthetic_scenarios import ScenarioAccounts, takeover_rows
from loaders.synthetic_spec import (
    CAMPAIGN_END,
    CAMPAIGN_START,
    CARRIER_NAT,
    DEFAULT_CHUNK_ROWS,
    DEFAULT_PART_ROWS,
    EDU_FARM_NET,
    HOSTING_NET,
    ISPS,
    OPERATORS,
    PROXY_NETS,
    SCALES,
    SWARM_NETS,
    TAKEOVER_NET,
    VPN_NET,
    Net,
    company_net,
    university_net,
)
from loaders.synthetic_text import Catalogue, build_catalogue
from loaders.synthetic_traffic import (
    account_blocks,
    burst_schedule,
    exchange_table,
    profile_probabilities,
    rebatch,
)
from loaders.synthetic_world import (
    OPERATOR_CAPABILITIES,
    PERSONAL_FAMILIES,
    WITHHELD_EVERY,
    World,
    make_world,
    mixes,
    parse_scenarios,
)
from loaders.synthetic_world import (
    catalogue as world_catalogue,
)

CSV_TABLES = ("accounts", "payments", "devices", "ip_intel", "operators", "labels", "groups")
SCENARIO_TABLES = ("takeovers",)  # written only by the scenarios that have them
PAYMENT_COLUMNS = ("payment_id", "card_bin", "card_last4", "billing_country", "billing_name", "billing_postal", "first_seen")
OPERATOR_COLUMNS = ("operator_id", "name", "indicator_type", "indicator_value", "source", "confidence")
IP_INTEL_COLUMNS = ("network", "asn", "as_org", "kind", "country", "provider")


def _write_csv(path: Path, columns: dict[str, list[Any]]) -> int:
    """Write one table as CSV (quoted only where needed); returns the row count."""
    table = pa.table({k: pa.array(v, pa.string()) if not v or isinstance(v[0], str) else pa.array(v) for k, v in columns.items()})
    pcsv.write_csv(table, path, pcsv.WriteOptions(quoting_style="needed"))
    return table.num_rows


def _column_dict(rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    return {name: [row.get(name, "") for row in rows] for name in names}


def ip_intel_rows(scale_universities: int, scale_companies: int) -> list[dict[str, Any]]:
    """Enrichment for the networks an analyst's feed would know; some residential ISPs are absent."""
    nets: list[Net] = [n for n in ISPS if n.listed]
    nets += [*PROXY_NETS, CARRIER_NAT, VPN_NET, HOSTING_NET, EDU_FARM_NET]
    nets += [university_net(i) for i in range(scale_universities)]
    nets += [company_net(i) for i in range(scale_companies)]
    return [{"network": n.cidr, "asn": n.asn, "as_org": n.as_org, "kind": n.kind, "country": n.country, "provider": n.provider} for n in nets]


def _clear(out_dir: Path) -> None:
    """Remove our own previous outputs so a re-run never leaves stale part files behind."""
    for table in (*CSV_TABLES, *SCENARIO_TABLES):
        (out_dir / f"{table}.csv").unlink(missing_ok=True)
    shutil.rmtree(out_dir / "exchanges", ignore_errors=True)


def _write_account_tables(out_dir: Path, book: AccountBook, order: np.ndarray, ids: list[str], scale_name: str,
                          indicators: list[dict[str, Any]], extra_nets: Sequence[Net] = ()) -> dict[str, int]:
    scale = SCALES[scale_name]
    counts: dict[str, int] = {}
    rows = [dict(book.fields[i], account_id=ids[i]) for i in order]
    counts["accounts"] = _write_csv(out_dir / "accounts.csv", _column_dict(rows, ACCOUNT_COLUMNS))
    counts["labels"] = _write_csv(out_dir / "labels.csv", {"account_id": [ids[i] for i in order], "operator_id": [book.operators[i] for i in order]})
    counts["groups"] = _write_csv(out_dir / "groups.csv", {"account_id": [ids[i] for i in order], "group": [book.groups[i] for i in order]})
    payments = sorted(book.payments, key=lambda p: (ids[p["account"]], p["payment_id"]))
    for p in payments:
        p["account_id"] = ids[p["account"]]
    counts["payments"] = _write_csv(out_dir / "payments.csv", _column_dict(payments, ("account_id", *PAYMENT_COLUMNS)))
    devices = sorted(book.devices, key=lambda d: (ids[d[0]], d[1]))
    counts["devices"] = _write_csv(out_dir / "devices.csv", {
        "account_id": [ids[d[0]] for d in devices], "device_id": [d[1] for d in devices],
        "first_seen": [iso(d[2]) for d in devices], "last_seen": [iso(d[3]) for d in devices]})
    intel = ip_intel_rows(scale.universities, scale.companies)
    intel += [{"network": n.cidr, "asn": n.asn, "as_org": n.as_org, "kind": n.kind, "country": n.country, "provider": n.provider}
              for n in extra_nets]
    counts["ip_intel"] = _write_csv(out_dir / "ip_intel.csv", _column_dict(intel, IP_INTEL_COLUMNS))
    counts["operators"] = _write_csv(out_dir / "operators.csv", _column_dict(indicators, OPERATOR_COLUMNS))
    return counts


def _text_plan(world: World, plan: Plan, catalogue: Catalogue, ordinary: np.ndarray, seed: int) -> TextPlan | None:
    """Real prompts per account when the world has real text (see synthetic_corpus)."""
    if not isinstance(world.real, RealText):
        return None
    prefixes = sorted(set(PERSONAL_FAMILIES.values()))
    prefix_of = np.full(len(catalogue.templates), -1, dtype=np.int64)
    for family, prefix in PERSONAL_FAMILIES.items():
        if family in catalogue.families:
            prefix_of[catalogue.families[family]] = prefixes.index(prefix)
    jobs = (plan.profile >= PROFILE_JOB) & (plan.profile < PROFILE_OPERATOR)  # one template on a schedule
    return text_plan(world.real, plan.n_exchanges + plan.history_n, ordinary, seed, prefixes, prefix_of, ~jobs)


def _exchange_stream(plan: Plan, seed: int, text_every: int, world: World | None = None,
                     text: TextPlan | None = None) -> Iterator[pa.Table]:
    """Exchanges block of accounts by block, numbered consecutively across the whole bundle."""
    if world is None:
        catalogue = build_catalogue()
        probs = profile_probabilities(catalogue)
        bursts = burst_schedule(np.random.default_rng([seed, 2]))
    else:
        catalogue = world_catalogue(world)
        probs = profile_probabilities(catalogue, mixes(world))
        bursts = burst_schedule(np.random.default_rng([seed, 2]), world.operators)
    written = 0
    for number, accounts in enumerate(account_blocks(len(plan.n_exchanges))):
        rng = np.random.default_rng([seed, 1, number])
        table = exchange_table(plan, accounts, written + 1, catalogue, probs, bursts, rng, text_every, world, text)
        written += table.num_rows
        yield table


def _write_exchanges(out_dir: Path, plan: Plan, seed: int, text_every: int, chunk_rows: int, part_rows: int,
                     progress: Callable[[int], None] | None, world: World | None = None,
                     text: TextPlan | None = None) -> tuple[int, int]:
    """Stream every exchange into ``exchanges/part-NNNNN.parquet``, one row group per ``chunk_rows``."""
    directory = out_dir / "exchanges"
    directory.mkdir()
    writer: pq.ParquetWriter | None = None
    written, in_part, parts = 0, 0, 0
    try:
        for table in rebatch(_exchange_stream(plan, seed, text_every, world, text), chunk_rows):
            if writer is None or in_part >= part_rows:
                if writer is not None:
                    writer.close()
                writer = pq.ParquetWriter(directory / f"part-{parts:05d}.parquet", table.schema, compression="zstd")
                parts, in_part = parts + 1, 0
            writer.write_table(table, row_group_size=chunk_rows)
            written += table.num_rows
            in_part += table.num_rows
            if progress:
                progress(table.num_rows)
    finally:
        if writer is not None:
            writer.close()
    return written, parts


def _stderr_note(message: str) -> None:
    import sys

    print(f"sybilscope: {message}", file=sys.stderr, flush=True)


def generate(out_dir: Path, scale: str, seed: int, *, scenarios: str | Iterable[str] | None = None,
             withhold_text: int | None = None, corpus: str = "auto", allow_sample_fallback: bool = False,
             chunk_rows: int = DEFAULT_CHUNK_ROWS, part_rows: int = DEFAULT_PART_ROWS,
             progress: Callable[[int], None] | None = None, on_plan: Callable[[int], None] | None = None,
             notify: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write the whole bundle into ``out_dir``; returns the summary the CLI prints.

    ``scenarios``: names from synthetic_world.SCENARIOS (``"a,b"`` or a list; none or
    ``baseline``: the baseline world, byte for byte as before scenarios existed).
    ``withhold_text``: keep prompt text on one exchange in N (default: the scale's rule, or 20
    with the ``withheld`` scenario). ``corpus`` / ``allow_sample_fallback``: where real-text
    takes its prompts (synthetic_corpus.choose_corpus); ``notify`` gets its messages."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if withhold_text is not None and withhold_text < 1:
        raise ValueError(f"withhold_text must be at least 1, got {withhold_text}")
    chosen = parse_scenarios(scenarios)
    spec = SCALES[scale]
    text_every = withhold_text or (WITHHELD_EVERY if "withheld" in chosen else spec.prompt_text_every)
    world = make_world(chosen, text_every)
    source: Corpus | None = None
    if world.has("real-text"):
        source = choose_corpus(corpus, scale, allow_sample_fallback, notify or _stderr_note)
        bodied = [op.operator_id for op in world.operators if op.operator_id not in PERSONAL_FAMILIES]
        real = partition(source, bodied, seed, world.has("prompt-commons"),
                         OPERATOR_CAPABILITIES)
        world = dataclasses.replace(world, real=real)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)
    book = AccountBook(np.random.default_rng([seed, 0]))
    pool = proxy_pool(book.rng, spec)
    extra: ScenarioAccounts | None = None
    if world.baseline:
        build_benign(book, spec, pool)
        indicators = build_attack(book, spec, pool)["indicators"]
    else:
        extra = ScenarioAccounts(world, book, spec, seed)
        build_benign(book, spec, pool, world.group_shares, extra.benign_group)
        indicators = build_attack(book, spec, pool, world, extra.builders())["indicators"]
    plan, order, ids = freeze(book)
    if on_plan:
        on_plan(int(plan.n_exchanges.sum() + plan.history_n.sum()))
    extra_nets = [*(SWARM_NETS if world.has("shared-proxy") else ()), *((TAKEOVER_NET,) if world.has("takeover") else ())]
    counts = _write_account_tables(out_dir, book, order, ids, scale, indicators, extra_nets)
    if extra is not None and extra.onsets:
        counts["takeovers"] = _write_csv(out_dir / "takeovers.csv", takeover_rows(extra.onsets, ids, extra.takers))
    ordinary = np.array([book.groups[i] == "ordinary" for i in order], dtype=bool)
    text = _text_plan(world, plan, world_catalogue(world), ordinary, seed) if world.real is not None else None
    counts["exchanges"], parts = _write_exchanges(out_dir, plan, seed, text_every, chunk_rows, part_rows, progress,
                                                  None if world.baseline else world, text)
    result = summary(out_dir, scale, seed, counts, parts, book, plan)
    result["prompt_text_every"] = text_every
    result["scenarios"] = list(chosen) or ["baseline"]
    if not world.baseline:
        listed = not world.has("no-indicators")
        result["known_operators"] = [o.operator_id for o in world.operators if o.known and listed]
    if "takeovers" in counts:
        result["counts"]["takeovers"] = counts["takeovers"]
    if source is not None and text is not None and isinstance(world.real, RealText):
        result["real_text"] = {"corpus": source.name, "prompts": len(source.prompts), "personal_pool": len(world.real.personal),
                               "accounts_with_real_text": text.accounts_with_text, "hostile_strings": len(world.real.hostile)}
    return result


def summary(out_dir: Path, scale: str, seed: int, counts: dict[str, int], parts: int, book: AccountBook, plan: Plan) -> dict[str, Any]:
    """Scale, seed, counts per table, accounts per operator, hard-negative group sizes, path."""
    attack_rows = int(plan.n_exchanges[plan.op_index >= 0].sum())
    kinds: dict[str, Counter[str]] = {}
    for group in book.groups:
        if group != "attack":
            kind = group.split(":", 1)[0]
            kinds.setdefault(kind, Counter())[group] += 1
    return {
        "scale": scale,
        "seed": seed,
        "output": str(out_dir.resolve()),
        "counts": {t: counts[t] for t in ("accounts", "exchanges", "payments", "devices", "ip_intel", "operators", "labels", "groups")},
        "exchange_parts": parts,
        "prompt_text_every": SCALES[scale].prompt_text_every,
        "attack_exchanges": attack_rows,
        "benign_exchanges": counts["exchanges"] - attack_rows,
        "stolen_account_history_exchanges": int(plan.history_n.sum()),
        "campaign_window": [iso(CAMPAIGN_START), iso(CAMPAIGN_END)],
        "accounts_per_operator": dict(sorted(Counter(o for o in book.operators if o).items())),
        "known_operators": [o.operator_id for o in OPERATORS if o.known],
        "hard_negative_groups": {
            kind: {"groups": len(c), "accounts": sum(c.values()), "largest": max(c.values())} for kind, c in sorted(kinds.items())
        },
    }
