"""Synthetic world generation throughput: exchanges/s, wall time, peak RSS and bundle size per scale.

Run by hand; each scale runs in its own process so its peak RSS is its own:

    .venv/bin/python bench/generate.py --scale small --scale medium
    .venv/bin/python bench/generate.py --scale seed --out /data/seed-bundle --keep

Prints one JSON line per scale, plus (when small or medium ran) a linear extrapolation of the
seed scale's wall time from the measured exchanges/s.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_one(scale: str, seed: int, out: Path, chunk_rows: int) -> dict[str, Any]:
    """Generate one bundle in this process and measure it."""
    from loaders.synthetic import generate

    t0 = time.perf_counter()
    summary = generate(out, scale, seed, chunk_rows=chunk_rows)
    seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rows = summary["counts"]["exchanges"]
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {
        "scale": scale,
        "accounts": summary["counts"]["accounts"],
        "exchanges": rows,
        "seconds": round(seconds, 2),
        "exchanges_per_s": round(rows / seconds),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),  # wall time is noisy on a shared machine
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "bundle_mib": round(size / 2**20, 1),
        "chunk_rows": chunk_rows,
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", action="append", choices=["tiny", "small", "medium", "seed"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--out", type=Path, default=None, help="Bundle directory (default: a temporary one per scale).")
    parser.add_argument("--keep", action="store_true", help="Keep the generated bundle.")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    scales = args.scale or ["small", "medium"]
    if args.one:
        out = args.out or Path(tempfile.mkdtemp(prefix=f"sybilscope-gen-{scales[0]}-"))
        try:
            print(json.dumps(run_one(scales[0], args.seed, out, args.chunk_rows)))
        finally:
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
        return
    results = []
    for scale in scales:
        command = [sys.executable, __file__, "--one", "--scale", scale, "--seed", str(args.seed), "--chunk-rows", str(args.chunk_rows)]
        if args.out:
            command += ["--out", str(args.out / scale)]
        if args.keep:
            command.append("--keep")
        line = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        print(line, flush=True)
        results.append(json.loads(line))
    measured = [r for r in results if r["scale"] in ("small", "medium")]
    if measured and "seed" not in scales:
        from loaders.synthetic_spec import SCALES

        seed = SCALES["seed"]
        rows = seed.attack_exchanges + seed.benign_accounts * seed.benign_mean_exchanges * 1.05
        last = measured[-1]
        print(json.dumps({
            "extrapolated": "seed", "exchanges": round(rows), "from": last["scale"],
            "seconds": round(rows / last["exchanges_per_s"]), "cpu_s": round(rows / last["exchanges"] * last["cpu_s"]),
        }))


if __name__ == "__main__":
    main()
