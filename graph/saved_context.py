"""The figure context of the last detection run, saved in the workspace so that an analyst's merge
or split refigures the clusters it touches with detection's own inputs, in a second, instead of
re-reading the store and re-linking every account.

``<workspace>/detection/figures.npz`` is one file, replaced atomically at the end of every run
with a workspace. For every account detection placed in a cluster it holds the scoring profile
(graph/scoring.py ``AccountProfile``), and every linked pair of two such accounts with its
per-family misses, float64 exactly as detection held them (a family scoring 0.1 must stay on
the same side of the 0.1 threshold); plus the benign baseline, each template's user count, the
flag threshold, the operator indicators with the clustered accounts using each, the analyst
attributions detection saw, the clustered accounts' behaviour-change onsets (graph/takeover.py),
the provider evidence of each pair of them (graph/figures.py ``ProviderPairs``, for
SHARES_INFRASTRUCTURE), and the run's ``detected_at``. Merges and splits only move accounts
between clusters, so every account they touch is in it. Its size is about 56 bytes per pair
(the seed world's 9M linked pairs: about half a gigabyte), written in a second or two.

Arrays only (no pickle): a tampered file can give wrong figures, never run code.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graph import scoring, takeover
from graph.attribution import EntityRef, Indicator
from graph.figures import FigureContext, PairTable, ProviderPairs
from graph.linkage import FAMILIES
from graph.workspace import figures_path

FORMAT = 2  # 2: onsets and provider pairs
INT_FIELDS = ("exchanges", "tokens", "input_tokens", "output_tokens", "cot", "ip_uses", "minute_top", "minute_total")
TIME_FIELDS = ("created", "first", "last", "model_onset")


@dataclass
class SavedContext:
    """A detection run's figure context as read back: ``accounts`` are the clustered accounts."""

    detected_at: str
    context: FigureContext
    pairs: PairTable
    providers: ProviderPairs


class SavedUsage:
    """``accounts_using`` over the saved indicators: the clustered accounts using each one's
    entities (coverage only ever counts a cluster's members, so that is all it needs)."""

    def __init__(self, users: Mapping[frozenset[EntityRef], frozenset[str]]) -> None:
        self.users = dict(users)

    def accounts_using(self, entities: frozenset[EntityRef]) -> frozenset[str]:
        return self.users.get(entities, frozenset())


def _times(values: Iterable[float | None]) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def _ragged(parts: Sequence[np.ndarray], dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated parts and their offsets (len(parts) + 1)."""
    offsets = np.r_[0, np.cumsum([len(p) for p in parts])].astype(np.int64)
    flat = np.concatenate([np.asarray(p, dtype=dtype) for p in parts]) if parts else np.zeros(0, dtype=dtype)
    return flat.astype(dtype), offsets


def _onset_rows(onsets: Mapping[str, takeover.Onset], accounts: Iterable[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for a in accounts:
        o = onsets.get(a)
        if o is not None:
            out[a] = [o.at, o.exchanges, o.input_tokens, o.output_tokens, o.last, o.cot, dict(sorted(o.capabilities.items())),
                      sorted(o.networks), o.client_changed]
    return out


def _onsets(rows: Mapping[str, list[Any]]) -> dict[str, takeover.Onset]:
    return {a: takeover.Onset(at=float(at), exchanges=int(n), input_tokens=int(i), output_tokens=int(o), last=float(last),
                              cot=int(cot), capabilities={str(k): int(v) for k, v in caps.items()},
                              networks=frozenset(map(str, nets)), client_changed=bool(changed))
            for a, (at, n, i, o, last, cot, caps, nets, changed) in rows.items()}


def _provider_arrays(providers: ProviderPairs, index: Mapping[str, int]) -> dict[str, np.ndarray]:
    """``providers`` re-indexed onto the saved accounts (pairs with an account not saved are
    left out: they can hold no cluster relation)."""
    a = np.asarray([index.get(n, -1) for n in providers.names], dtype=np.int64)
    pa, pb = a[providers.a] if len(providers.a) else a[:0], a[providers.b] if len(providers.b) else a[:0]
    keep = np.flatnonzero((pa >= 0) & (pb >= 0))
    codes, offsets = _ragged([providers.codes[providers.offsets[k] : providers.offsets[k + 1]] for k in keep.tolist()], np.int64)
    return {"provider_a": pa[keep].astype(np.int32), "provider_b": pb[keep].astype(np.int32),
            "provider_weight": providers.weight[keep].astype(np.float64), "provider_codes": codes, "provider_offsets": offsets}


def save(workspace: Path, detected_at: str, ctx: FigureContext, pairs: PairTable, providers: ProviderPairs) -> Path:
    """Write the context for the accounts of ``pairs.names`` (the clustered accounts)."""
    accounts = pairs.names
    profiles = [ctx.profiles[a] for a in accounts]
    capabilities = sorted({c for p in profiles for c in p.capabilities})
    payments = sorted({pid for p in profiles for pid in p.payments})
    pay_index = {pid: i for i, pid in enumerate(payments)}
    index = {a: i for i, a in enumerate(accounts)}
    indicators = []
    for ind in ctx.indicators:
        users = sorted(index[a] for a in ctx.usage.accounts_using(ind.entities) if a in index)
        indicators.append({
            "operator_id": ind.operator_id, "indicator_id": ind.indicator_id, "type": ind.type, "value": ind.value,
            "confidence": ind.confidence, "source": ind.source, "entities": sorted(map(list, ind.entities)), "users": users,
            "shared": ind.shared,
        })
    meta = {
        "format": FORMAT, "families": list(FAMILIES), "detected_at": detected_at, "threshold": ctx.threshold,
        "accounts": accounts, "capabilities": capabilities, "payments": payments,
        "first_iso": [p.first_iso for p in profiles], "last_iso": [p.last_iso for p in profiles],
        "baseline": {"capability": ctx.baseline.capability, "cot": ctx.baseline.cot, "exchanges": ctx.baseline.exchanges,
                     "tokens": ctx.baseline.tokens},
        "indicators": indicators,
        "prior": {cid: [op, conf, sorted(members)] for cid, (op, conf, members) in ctx.prior.items()},
        "onsets": _onset_rows(ctx.onsets, accounts),
        "provider_values": [list(v) for v in providers.values],
    }
    template_ids, template_offsets = _ragged([p.template_ids for p in profiles], np.int64)
    template_counts, _ = _ragged([p.template_counts for p in profiles], np.int64)
    pay_codes, pay_offsets = _ragged([np.asarray(sorted(pay_index[x] for x in p.payments), dtype=np.int64) for p in profiles], np.int64)
    caps = np.asarray([[p.capabilities.get(c, 0) for c in capabilities] for p in profiles], dtype=np.int64).reshape(len(profiles), len(capabilities))
    if not isinstance(ctx.template_users, np.ndarray):
        raise ValueError("the saved context takes template user counts by template position, as detection has them")
    arrays: dict[str, np.ndarray] = {
        "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
        **{f: np.asarray([getattr(p, f) for p in profiles], dtype=np.int64) for f in INT_FIELDS},
        **{f: _times(getattr(p, f) for p in profiles) for f in TIME_FIELDS},
        "anonymised": np.asarray([p.anonymised for p in profiles], dtype=np.float64),
        "capabilities": caps, "template_ids": template_ids, "template_offsets": template_offsets,
        "template_counts": template_counts, "payment_codes": pay_codes, "payment_offsets": pay_offsets,
        "template_users": ctx.template_users.astype(np.int64),
        "pair_a": pairs.a.astype(np.int32), "pair_b": pairs.b.astype(np.int32), "pair_misses": pairs.misses.astype(np.float64),
        **_provider_arrays(providers, index),
    }
    path = figures_path(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as out:
        np.savez(out, **arrays)  # type: ignore[arg-type]
    os.replace(partial, path)
    return path


def _time(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _consistent(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> bool:
    """Whether the pair and provider tables index only saved accounts and values, with one
    row of misses per pair: a file that does not is refused (rebuilt from the store), never
    half used."""
    n = len(meta.get("accounts") or [])
    try:
        pairs = [arrays[k] for k in ("pair_a", "pair_b", "provider_a", "provider_b")]
        misses, weight = arrays["pair_misses"], arrays["provider_weight"]
        codes, offsets = arrays["provider_codes"], arrays["provider_offsets"]
    except KeyError:
        return False
    in_range = all(p.size == 0 or (int(p.min()) >= 0 and int(p.max()) < n) for p in pairs)
    values = len(meta.get("provider_values") or [])
    return (in_range and len(pairs[0]) == len(pairs[1]) == len(misses) and len(pairs[2]) == len(pairs[3]) == len(weight)
            and misses.shape[1:] == (len(FAMILIES),) and len(offsets) == len(weight) + 1
            and (codes.size == 0 or (int(codes.min()) >= 0 and int(codes.max()) < values))
            and (offsets.size == 0 or int(offsets[-1]) == len(codes)))


def load(workspace: Path | None) -> SavedContext | None:
    """The saved context, or None when there is none (or it is of another format)."""
    if workspace is None or not figures_path(workspace).exists():
        return None
    try:
        with np.load(figures_path(workspace), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(bytes(arrays["meta"]).decode("utf-8"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if meta.get("format") != FORMAT or meta.get("families") != list(FAMILIES) or not _consistent(arrays, meta):
        return None
    accounts: list[str] = meta["accounts"]
    capabilities: list[str] = meta["capabilities"]
    payments: list[str] = meta["payments"]
    t_ids, t_counts, t_off = arrays["template_ids"], arrays["template_counts"], arrays["template_offsets"]
    p_codes, p_off = arrays["payment_codes"], arrays["payment_offsets"]
    profiles: dict[str, scoring.AccountProfile] = {}
    for i, name in enumerate(accounts):
        prof = scoring.AccountProfile(
            anonymised=float(arrays["anonymised"][i]),
            first_iso=meta["first_iso"][i], last_iso=meta["last_iso"][i],
            capabilities={c: int(v) for c, v in zip(capabilities, arrays["capabilities"][i].tolist(), strict=True) if v},
            payments={payments[c] for c in p_codes[p_off[i] : p_off[i + 1]].tolist()},
        )
        for f in INT_FIELDS:
            setattr(prof, f, int(arrays[f][i]))
        for f in TIME_FIELDS:
            setattr(prof, f, _time(float(arrays[f][i])))
        prof.template_ids, prof.template_counts = t_ids[t_off[i] : t_off[i + 1]], t_counts[t_off[i] : t_off[i + 1]]
        profiles[name] = prof
    indicators: list[Indicator] = []
    users: dict[frozenset[EntityRef], frozenset[str]] = {}
    for ind in meta["indicators"]:
        entities = frozenset((str(label), str(key)) for label, key in ind["entities"])
        indicators.append(Indicator(ind["operator_id"], ind["indicator_id"], ind["type"], ind["value"],
                                    float(ind["confidence"]), ind["source"], entities, bool(ind.get("shared", False))))
        users[entities] = frozenset(accounts[i] for i in ind["users"])
    base = meta["baseline"]
    ctx = FigureContext(
        profiles=profiles,
        baseline=scoring.Baseline(capability=dict(base["capability"]), cot=float(base["cot"]),
                                  exchanges=float(base["exchanges"]), tokens=float(base["tokens"])),
        template_users=arrays["template_users"],
        threshold=float(meta["threshold"]),
        indicators=indicators,
        usage=SavedUsage(users),
        prior={cid: (str(op), float(conf), frozenset(members)) for cid, (op, conf, members) in meta["prior"].items()},
        onsets=_onsets(meta["onsets"]),
    )
    pairs = PairTable(accounts, arrays["pair_a"], arrays["pair_b"], arrays["pair_misses"])
    providers = ProviderPairs(accounts, arrays["provider_a"], arrays["provider_b"], arrays["provider_weight"],
                              [(str(label), str(key)) for label, key in meta["provider_values"]],
                              arrays["provider_codes"], arrays["provider_offsets"])
    return SavedContext(str(meta["detected_at"]), ctx, pairs, providers)
