"""Robustness: detection on every world of the scenario library, worst case over seeds.

For each scenario alone, plus the baseline and one combined world, at each seed: generate →
load → detect → evaluate on the embedded store in a temporary workspace. Prints a per-scenario
table (each figure the worst over the seeds) and, per metric, the worst case over all scenarios
and seeds with where it happened:

    .venv/bin/python bench/robustness.py                      # medium, seeds 1 2 3
    .venv/bin/python bench/robustness.py --scale small --seeds 1 2
    .venv/bin/python bench/robustness.py --scenario takeover --scenario shared-proxy,real-text --json out.json

Metrics: precision, recall, recall per operator (the worst operator, takeover campaigns
included), operator cohesion (the share of an operator's flagged accounts in its largest
flagged cluster; the least cohesive operator), false-positive rate per hard-negative group (the worst group), mixed flagged
clusters and their accounts, misattributed accounts (another operator's, and benign ones, in a
cluster attributed or suggested to an operator), attribution accuracy (worlds with known
operators only), and the share of taken-over accounts flagged with the best score of a cluster
holding one. Settings come from the environment (SYBILSCOPE_*), as for ``sybilscope detect``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMBINED = "shared-proxy,takeover,takeover-same-network,prompt-commons,no-indicators,real-text"
# (key, title, worse is "min" or "max")
METRICS: tuple[tuple[str, str, str], ...] = (
    ("precision", "precision", "min"),
    ("recall", "recall", "min"),
    ("worst_operator_recall", "worst op recall", "min"),
    ("worst_operator_cohesion", "worst op cohesion", "min"),
    ("worst_group_fp_rate", "worst group FP", "max"),
    ("mixed_clusters", "mixed clusters", "max"),
    ("mixed_accounts", "mixed accts", "max"),
    ("misattributed", "misattributed", "max"),
    ("benign_attributed", "benign attrib.", "max"),
    ("attribution", "attribution", "min"),
    ("takeover_recall", "takeover flagged", "min"),
    ("takeover_best_score", "takeover score", "min"),
)


def default_scenarios() -> list[str]:
    from loaders.synthetic_world import SCENARIOS

    return [*SCENARIOS, COMBINED]


def run_one(scenario: str, scale: str, seed: int, root: Path, corpus: str, fallback: bool) -> dict[str, Any]:
    """One world: generate, load, detect, evaluate; returns the figures of this run."""
    from graph.detection import run_detection
    from graph.evaluation import evaluate
    from graph.settings import Settings
    from graph.stores.embedded import EmbeddedStore
    from loaders.load import load_bundle
    from loaders.synthetic import generate

    bundle, ws = root / "bundle", root / "ws"
    started = time.perf_counter()
    summary = generate(bundle, scale, seed, scenarios=scenario, corpus=corpus, allow_sample_fallback=fallback)
    settings = Settings({"workspace": str(ws)})
    store = EmbeddedStore(ws / "embedded")
    try:
        report = load_bundle(bundle, settings, store)
        detected = run_detection(store, settings)
        evaluation = evaluate(store, bundle / "labels.csv")
    finally:
        store.close()
    det = evaluation["detection"]
    per_op = det["recall_per_operator"]
    per_group = det["fp_rate_per_group"]
    worst_op = min(per_op.items(), key=lambda kv: kv[1]["recall"]) if per_op else ("-", {"recall": 1.0})
    least_cohesive = min(((op, v) for op, v in per_op.items() if v["recall"] > 0), key=lambda kv: kv[1]["cohesion"],
                         default=("-", {"cohesion": 1.0, "clusters": 0}))
    worst_group = max(per_group.items(), key=lambda kv: kv[1]["fp_rate"]) if per_group else ("-", {"fp_rate": 0.0})
    takeover = det.get("takeover")
    known = bool(summary["known_operators"]) and bool(det["attribution"]["per_operator"])
    return {
        "scenario": scenario,
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 1),
        "accounts": summary["counts"]["accounts"],
        "exchanges": summary["counts"]["exchanges"],
        "quarantined_exchanges": report.tables["exchanges"]["quarantined"],
        "flagged_clusters": detected["flagged"],
        "precision": det["precision"],
        "recall": det["recall"],
        "recall_per_operator": {op: v["recall"] for op, v in per_op.items()},
        "worst_operator_recall": worst_op[1]["recall"],
        "worst_operator": worst_op[0],
        "operator_clusters": {op: v["clusters"] for op, v in per_op.items()},
        "worst_operator_cohesion": least_cohesive[1]["cohesion"],
        "least_cohesive_operator": least_cohesive[0],
        "fp_rate_per_group": {g: v["fp_rate"] for g, v in per_group.items()},
        "worst_group_fp_rate": worst_group[1]["fp_rate"],
        "worst_group": worst_group[0],
        "mixed_clusters": det["mixed_clusters"]["count"],
        "mixed_accounts": det["mixed_clusters"]["accounts"],
        "misattributed": det["misattribution"]["accounts"],
        "benign_attributed": det["misattribution"]["benign_accounts"],
        "misattribution_per_operator": det["misattribution"]["per_operator"],
        "attribution": det["attribution"]["accuracy"] if known else None,
        "takeover_recall": takeover["recall"] if takeover else None,
        "takeover_best_score": max((e["best_cluster_score"] or 0.0 for e in takeover["per_operator"].values()), default=None)
        if takeover else None,
    }


def worst(values: list[Any], direction: str) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return min(present) if direction == "min" else max(present)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _short(scenario: str) -> str:
    return "combined" if scenario == COMBINED else scenario


def table(runs: list[dict[str, Any]], scenarios: list[str]) -> str:
    """Per scenario, the worst figure over its seeds."""
    widths = [16, *(max(len(title), 7) for _, title, _ in METRICS)]
    lines = ["  ".join(t.ljust(w) for t, w in zip(["scenario", *(m[1] for m in METRICS)], widths, strict=True))]
    for scenario in scenarios:
        mine = [r for r in runs if r["scenario"] == scenario]
        cells = [_short(scenario), *(_cell(worst([r[k] for r in mine], d)) for k, _, d in METRICS)]
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    return "\n".join(lines)


def worst_cases(runs: list[dict[str, Any]]) -> str:
    """Per metric, the worst case over scenarios and seeds, and where it happened."""
    lines = []
    for key, title, direction in METRICS:
        present = [r for r in runs if r[key] is not None]
        if not present:
            continue
        pick = min if direction == "min" else max
        bad = pick(present, key=lambda r: r[key])
        where = f"{_short(bad['scenario'])} seed {bad['seed']}"
        if key == "worst_operator_recall":
            where += f" ({bad['worst_operator']})"
        if key == "worst_operator_cohesion":
            where += f" ({bad['least_cohesive_operator']})"
        if key == "worst_group_fp_rate":
            where += f" ({bad['worst_group']})"
        lines.append(f"{title:<18} {_cell(bad[key]):>8}   {where}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="medium", choices=["tiny", "small", "medium", "seed"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--scenario", action="append", default=None,
                        help="a scenario or comma-joined combination (repeatable); default: each alone, baseline, combined")
    parser.add_argument("--corpus", default="auto", choices=["auto", "sample", "full"])
    parser.add_argument("--allow-sample-fallback", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write every run's figures here")
    args = parser.parse_args()
    scenarios = args.scenario or default_scenarios()
    runs: list[dict[str, Any]] = []
    for scenario in scenarios:
        for seed in args.seeds:
            root = Path(tempfile.mkdtemp(prefix="sybilscope-robustness-"))
            try:
                run = run_one(scenario, args.scale, seed, root, args.corpus, args.allow_sample_fallback)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            runs.append(run)
            print(f"{_short(scenario)} seed {seed}: {run['seconds']} s, precision {run['precision']}, recall {run['recall']}, "
                  f"mixed {run['mixed_clusters']}, misattributed {run['misattributed']}", file=sys.stderr, flush=True)
    print(f"Robustness at scale {args.scale}, seeds {' '.join(map(str, args.seeds))} (worst over seeds)\n")
    print(table(runs, scenarios))
    print("\nWorst case per metric over scenarios and seeds\n")
    print(worst_cases(runs))
    if args.json:
        args.json.write_text(json.dumps({"scale": args.scale, "seeds": args.seeds, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
