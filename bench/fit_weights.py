"""Fitted scoring weights: a non-negative logistic regression over the named indicators.

Detection's cluster score is ``sum(weight * strength)`` over named indicators minus two named
penalties (graph/scoring.py). This bench fits those weights instead of setting them by hand:

1. For each world of the scenario library (each scenario alone at each seed), generate → load
   → link → cluster → score on the embedded store in a temporary workspace, and keep every
   cluster's indicator strengths, members, suggested operator, and its label: an operator's
   cluster when most members belong to an operator (labels.csv), benign otherwise. Clustering,
   takeover campaigns and attribution do not depend on the weights, so one detection run per
   world serves every fit (the rows are cached under ``--cache``).
2. Fit ``P(operator) = sigmoid(a . s - c . q + b)`` with ``a, c >= 0`` (s: indicator strengths,
   q: penalty strengths), each cluster weighted by its accounts (the metrics count accounts),
   with a small L2 penalty (``--l2``), by L-BFGS-B (scipy; no scikit-learn dependency). The
   signs are the model's contract: an indicator can only raise a score, a penalty only lower it,
   so each contribution stays readable.
3. Scale to the flag threshold ``T`` (setting ``flag_threshold``): ``weight = a * T / -b``, so a
   cluster is flagged (score >= T) exactly where the model says P >= 0.5, and write
   graph/data/weights.json with the scenarios, seeds, scale, command and fit statistics.

``--loso``: leave one scenario out. For each scenario, fit on every other scenario's worlds and
score the held-out scenario's worlds with those weights; print precision, recall, the worst
operator's recall, mixed flagged clusters (and their accounts), misattributed accounts (another
operator's, and benign ones, in flagged clusters suggested to an operator), each the worst over
the seeds, beside the in-sample figure (fit on all), and the worst case over scenarios.

    .venv/bin/python bench/fit_weights.py --scale small --seeds 1 2 3            # fit and write
    .venv/bin/python bench/fit_weights.py --scale small --seeds 1 2 3 --loso     # LOSO table only

Analyst decisions can join later as more rows (a confirmed cluster a positive, a dismissed one
a negative) through ``design``.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graph.scoring import INDICATORS, PENALTIES, WEIGHTS_FILE, WEIGHTS_VERSION, score_of  # noqa: E402

FEATURES = (*INDICATORS, *PENALTIES)
DEFAULT_L2 = 1e-3
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "sybilscope-fit-weights"
ROW_FORMAT = 1  # bump when the cached rows change meaning


@dataclass
class World:
    """One generated world's clusters as the fit needs them."""

    scenario: str
    seed: int
    labels: dict[str, str]  # every account -> operator ('' benign)
    groups: dict[str, str]  # benign account -> hard-negative kind
    clusters: list[dict[str, Any]]  # {members, strengths, operator (suggested, '' none)}

    def to_json(self) -> dict[str, Any]:
        return {"format": ROW_FORMAT, "scenario": self.scenario, "seed": self.seed, "labels": self.labels,
                "groups": self.groups, "clusters": self.clusters}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> World:
        return cls(str(data["scenario"]), int(data["seed"]), dict(data["labels"]), dict(data["groups"]),
                   list(data["clusters"]))


# ---- the rows: one detection run per world ---------------------------------------------------------


def detect_world(scenario: str, scale: str, seed: int, root: Path) -> World:
    """Generate, load, link, cluster and score one world; no detection outputs are written."""
    from graph import detection
    from graph.clustering import MIN_WEIGHT
    from graph.evaluation import read_groups, read_labels
    from graph.linkage import link_accounts, read_facts
    from graph.settings import Settings
    from graph.stores.embedded import EmbeddedStore
    from loaders.load import load_bundle
    from loaders.synthetic import generate

    bundle, ws = root / "bundle", root / "ws"
    generate(bundle, scale, seed, scenarios=scenario, corpus="sample", allow_sample_fallback=True)
    settings = Settings({"workspace": str(ws)})
    store = EmbeddedStore(ws / "embedded")
    try:
        load_bundle(bundle, settings, store)
        facts = read_facts(store, ws)
        cap = int(settings["hub_max_accounts"])
        evidence = link_accounts(facts, cap, {}, keep_floor=MIN_WEIGHT)
        results = detection.analyse(facts, evidence, settings, detection.Previous(), store, {}).results
    finally:
        store.close()
    clusters = [{"members": sorted(c.members), "strengths": {k: round(float(v), 6) for k, v in c.score.strengths.items()},
                 "operator": c.suggestion.operator_id if c.suggestion else ""} for c in results]
    return World(scenario, seed, read_labels(bundle / "labels.csv"), read_groups(bundle / "groups.csv"), clusters)


def load_worlds(scenarios: Sequence[str], scale: str, seeds: Sequence[int], cache: Path, fresh: bool) -> list[World]:
    """Every (scenario, seed) world's rows, from ``cache`` when there (unless ``fresh``)."""
    cache.mkdir(parents=True, exist_ok=True)
    worlds = []
    for scenario in scenarios:
        for seed in seeds:
            path = cache / f"{scenario.replace(',', '+')}-{scale}-{seed}.json"
            if path.exists() and not fresh:
                data = json.loads(path.read_text())
                if data.get("format") == ROW_FORMAT:
                    worlds.append(World.from_json(data))
                    continue
            root = Path(tempfile.mkdtemp(prefix="sybilscope-fit-"))
            started = time.perf_counter()
            try:
                world = detect_world(scenario, scale, seed, root)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            path.write_text(json.dumps(world.to_json()))
            print(f"{scenario} seed {seed}: {len(world.clusters)} clusters, {time.perf_counter() - started:.0f} s",
                  file=sys.stderr, flush=True)
            worlds.append(world)
    return worlds


# ---- the model ----------------------------------------------------------------------------------------


def cluster_label(members: Iterable[str], labels: Mapping[str, str]) -> int:
    """1 when most members belong to an operator, else 0."""
    counts = Counter(bool(labels.get(a, "")) for a in members)
    return int(counts[True] > counts[False])


def design(worlds: Sequence[World]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, w): a row per cluster of every world, columns ``FEATURES`` (penalty columns
    negated, so every coefficient is >= 0), its label and its accounts as the row weight."""
    rows, ys, ws = [], [], []
    for world in worlds:
        for c in world.clusters:
            s = c["strengths"]
            rows.append([float(s.get(n, 0.0)) for n in INDICATORS] + [-float(s.get(n, 0.0)) for n in PENALTIES])
            ys.append(cluster_label(c["members"], world.labels))
            ws.append(len(c["members"]))
    return (np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURES)), np.asarray(ys, dtype=np.float64),
            np.asarray(ws, dtype=np.float64))


def fit_nonnegative_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = DEFAULT_L2) -> tuple[np.ndarray, float]:
    """Coefficients (all >= 0) and a free intercept minimising the weighted mean log-loss
    plus ``l2 / 2 * |coef|^2``."""
    from scipy.optimize import minimize

    if not len(y) or y.min() == y.max():
        raise ValueError("the fit needs clusters of both kinds (operator and benign)")
    sw = w / w.sum()
    sign = 2.0 * y - 1.0

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        coef, b = theta[:-1], theta[-1]
        z = sign * (x @ coef + b)
        value = float(np.sum(sw * np.logaddexp(0.0, -z)) + 0.5 * l2 * coef @ coef)
        g = -sw * sign * (1.0 / (1.0 + np.exp(z)))  # d loss / d (x.coef + b)
        return value, np.r_[x.T @ g + l2 * coef, g.sum()]

    start = np.r_[np.full(x.shape[1], 0.1), 0.0]
    bounds = [(0.0, None)] * x.shape[1] + [(None, None)]
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 5000})
    return np.maximum(result.x[:-1], 0.0), float(result.x[-1])


def to_weights(coef: np.ndarray, intercept: float, threshold: float) -> tuple[dict[str, float], dict[str, float]]:
    """(indicator weights, penalty weights) scaled so that score >= ``threshold`` exactly where
    the model's probability is >= 0.5."""
    if intercept >= 0:
        raise ValueError("the fitted intercept is not negative: the model would flag a cluster with no indicator")
    scale = threshold / -intercept
    values = [round(float(v) * scale, 4) for v in coef]
    return dict(zip(INDICATORS, values[: len(INDICATORS)], strict=True)), dict(zip(PENALTIES, values[len(INDICATORS):], strict=True))


def fit(worlds: Sequence[World], threshold: float, l2: float = DEFAULT_L2) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    """Weights, penalties and fit statistics over ``worlds``."""
    x, y, w = design(worlds)
    coef, b = fit_nonnegative_logistic(x, y, w, l2)
    weights, penalties = to_weights(coef, b, threshold)
    z = x @ coef + b
    loss = float(np.sum(w * np.logaddexp(0.0, -(2 * y - 1) * z)) / w.sum())
    stats = {"clusters": int(len(y)), "operator_clusters": int(y.sum()), "accounts": int(w.sum()),
             "intercept": round(b, 4), "l2": l2, "log_loss": round(loss, 5),
             "training_errors": int(np.sum((z >= 0) != (y > 0)))}
    return weights, penalties, stats


# ---- scoring a world with given weights -----------------------------------------------------------


def evaluate_world(world: World, weights: Mapping[str, float], penalties: Mapping[str, float], threshold: float) -> dict[str, Any]:
    """Account-level figures of ``world`` with its clusters flagged under these weights."""
    from graph.evaluation import misattribution, score_method

    flagged_idx = [i for i, c in enumerate(world.clusters) if score_of(c["strengths"], weights, penalties) >= threshold]
    flagged = [world.clusters[i]["members"] for i in flagged_idx]
    result = score_method(flagged, [c["members"] for c in world.clusters], world.labels, world.groups)
    members = {str(i): c["members"] for i, c in enumerate(world.clusters)}
    operator = {str(i): c["operator"] for i, c in enumerate(world.clusters)}
    mis = misattribution(world.labels, members, {str(i) for i in flagged_idx}, operator)["flagged"]
    per_op = result["recall_per_operator"]
    groups = result["fp_rate_per_group"]
    return {
        "precision": result["precision"],
        "recall": result["recall"],
        "worst_operator_recall": min((v["recall"] for v in per_op.values()), default=1.0),
        "worst_group_fp_rate": max((v["fp_rate"] for v in groups.values()), default=0.0),
        "mixed_clusters": result["mixed_clusters"]["count"],
        "mixed_accounts": result["mixed_clusters"]["accounts"],
        "misattributed": mis["accounts"],
        "benign_attributed": mis["benign_accounts"],
    }


# (key, title, worse is "min" or "max")
METRICS: tuple[tuple[str, str, str], ...] = (
    ("precision", "precision", "min"),
    ("recall", "recall", "min"),
    ("worst_operator_recall", "worst op recall", "min"),
    ("worst_group_fp_rate", "worst group FP", "max"),
    ("mixed_clusters", "mixed", "max"),
    ("mixed_accounts", "mixed accts", "max"),
    ("misattributed", "misattrib.", "max"),
    ("benign_attributed", "benign attrib.", "max"),
)


def worst(figures: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per metric, the worst of ``figures``."""
    return {k: (min if d == "min" else max)(f[k] for f in figures) for k, _, d in METRICS} if figures else {}


def loso(worlds: Sequence[World], threshold: float, l2: float = DEFAULT_L2) -> list[dict[str, Any]]:
    """Per scenario: fit on the other scenarios' worlds, evaluate its own (worst over seeds),
    beside the in-sample figures (fit on every world). Rows in first-seen scenario order."""
    scenarios = list(dict.fromkeys(w.scenario for w in worlds))
    all_w, all_p, _ = fit(worlds, threshold, l2)
    rows = []
    for held in scenarios:
        train = [w for w in worlds if w.scenario != held]
        test = [w for w in worlds if w.scenario == held]
        weights, penalties, _ = fit(train, threshold, l2)
        rows.append({
            "scenario": held,
            "seeds": [w.seed for w in test],
            "held_out": worst([evaluate_world(w, weights, penalties, threshold) for w in test]),
            "in_sample": worst([evaluate_world(w, all_w, all_p, threshold) for w in test]),
            "weights": weights,
            "penalties": penalties,
        })
    return rows


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def loso_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Held-out figures per scenario (in-sample in brackets where they differ), then the worst
    case over scenarios."""
    titles = ["held-out scenario", *(t for _, t, _ in METRICS)]
    widths = [22, *(max(len(t), 14) for t in titles[1:])]
    lines = ["  ".join(t.ljust(wd) for t, wd in zip(titles, widths, strict=True))]
    for row in rows:
        cells = [row["scenario"]]
        for key, _, _ in METRICS:
            out, ins = row["held_out"][key], row["in_sample"][key]
            cells.append(_cell(out) if out == ins else f"{_cell(out)} ({_cell(ins)})")
        lines.append("  ".join(c.ljust(wd) for c, wd in zip(cells, widths, strict=True)))
    lines.append("")
    lines.append("worst case over held-out scenarios (in-sample worst in brackets)")
    for key, title, direction in METRICS:
        pick = min if direction == "min" else max
        bad = pick(rows, key=lambda r: r["held_out"][key])
        ins = pick(r["in_sample"][key] for r in rows)
        lines.append(f"  {title:<16} {_cell(bad['held_out'][key]):>8} ({_cell(ins)})   held out: {bad['scenario']}")
    return "\n".join(lines)


def write_weights(path: Path, weights: Mapping[str, float], penalties: Mapping[str, float], stats: Mapping[str, Any],
                  scenarios: Sequence[str], seeds: Sequence[int], scale: str, threshold: float, command: str) -> None:
    data = {
        "version": WEIGHTS_VERSION,
        "fitted": True,
        "model": "non-negative logistic regression over cluster indicator strengths (bench/fit_weights.py), "
                 "scaled so that score >= threshold where P(operator) >= 0.5",
        "command": command,
        "scale": scale,
        "scenarios": list(scenarios),
        "seeds": list(seeds),
        "threshold": threshold,
        "fit": dict(stats),
        "weights": dict(weights),
        "penalties": dict(penalties),
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    from graph.settings import Settings
    from loaders.synthetic_world import SCENARIOS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", choices=["tiny", "small", "medium"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--scenario", action="append", default=None, help="a scenario (repeatable); default: every one")
    parser.add_argument("--l2", type=float, default=DEFAULT_L2)
    parser.add_argument("--loso", action="store_true", help="print the leave-one-scenario-out table; write nothing")
    parser.add_argument("--out", type=Path, default=WEIGHTS_FILE, help="where the fitted weights go")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="per-world cluster rows")
    parser.add_argument("--fresh", action="store_true", help="detect every world again, ignoring the cache")
    parser.add_argument("--json", type=Path, default=None, help="also write the LOSO rows here")
    args = parser.parse_args()
    scenarios = args.scenario or list(SCENARIOS)
    threshold = float(Settings({})["flag_threshold"])
    worlds = load_worlds(scenarios, args.scale, args.seeds, args.cache, args.fresh)
    if args.loso:
        rows = loso(worlds, threshold, args.l2)
        print(f"Leave-one-scenario-out at scale {args.scale}, seeds {' '.join(map(str, args.seeds))}, "
              f"threshold {threshold} (worst over seeds; in-sample in brackets where different)\n")
        print(loso_table(rows))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return
    weights, penalties, stats = fit(worlds, threshold, args.l2)
    command = "bench/fit_weights.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    write_weights(args.out, weights, penalties, stats, scenarios, args.seeds, args.scale, threshold, command)
    print(json.dumps({"weights": weights, "penalties": penalties, "fit": stats}, indent=2))
    for world in worlds:
        figures = evaluate_world(world, weights, penalties, threshold)
        print(f"{world.scenario} seed {world.seed}: " + ", ".join(f"{k} {_cell(figures[k])}" for k, _, _ in METRICS))
    if not math.isclose(threshold, 0.5):
        print(f"note: fitted for flag_threshold {threshold}", file=sys.stderr)


if __name__ == "__main__":
    main()
