"""Memory of the templates' properties as detection holds them: one dict per template (the
layout before ``graph.linkage.template_props``) against ``TemplateProps`` (Arrow text columns,
NumPy codes, an id index), in one process on the same templates.parquet.

The seed world with real text stages about two million readable templates with examples of up
to 2,000 characters and its graph holds 3.5 million withheld ``h:`` templates (``--withheld``);
``--templates`` sets how many readable ones are written (texts drawn from the bundled
ShareGPT sample, each made distinct). Memory is what ``tracemalloc`` sees of Python objects plus
what Arrow has allocated, after the structure is built and the reader's garbage is gone. Prints
figures and their ratio; asserts nothing::

    .venv/bin/python bench/template_props.py --templates 2000000 --withheld 3500000
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from graph.linkage.template_props import TemplateProps  # noqa: E402
from graph.staging import connect, read_template_table  # noqa: E402
from graph.workspace import templates_path  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "loaders" / "data" / "sharegpt_sample.jsonl"
CAPABILITIES = ("coding", "agentic", "reasoning", "math", "other")


def write_templates(workspace: Path, n: int) -> None:
    texts = [json.loads(line)["text"] for line in SAMPLE.read_text().splitlines() if line.strip()]
    rng = np.random.default_rng(1)
    pick = rng.integers(0, len(texts), n)
    ids = [f"t{i:012d}" for i in range(n)]
    examples = [f"{texts[p][:1990]} #{i}" for i, p in enumerate(pick.tolist())]
    path = templates_path(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "template_id": ids, "template": examples, "example": examples,
        "capability": pa.array([CAPABILITIES[c] for c in rng.integers(0, 5, n).tolist()]),
        "cot": pa.array(rng.random(n) < 0.1),
    }), path)


def dict_layout(workspace: Path, withheld: int) -> dict[str, dict[str, Any]]:
    """What ``read_facts`` held before: one dict of properties per staged template, and one per
    withheld ``h:`` node of the graph with the properties the graph writer gives it."""
    with connect() as con:
        rows = con.execute("SELECT template_id, template, left(example, 2000) AS example, capability, cot "
                           "FROM read_parquet($p) ORDER BY template_id", {"p": str(templates_path(workspace))}).fetchall()
    out = {str(t): {"template": tpl, "example": ex, "capability": cap, "cot": cot} for t, tpl, ex, cap, cot in rows}
    for i in range(withheld):
        out[f"h:{i:032x}"] = {"template_id": f"h:{i:032x}", "template": "", "example": "", "capability": "other",
                              "cot": False, "hashed": True, "accounts": 3, "exchanges": 3 + i % 7,
                              "first_seen": f"2026-0{1 + i % 9}-01T00:00:{i % 60:02d}Z",
                              "last_seen": f"2026-0{1 + i % 9}-02T00:00:{i % 60:02d}Z", "uses_staged": False}
    return out


def measure(build: Any) -> tuple[Any, float, float]:
    gc.collect()
    arrow_before = pa.total_allocated_bytes()
    tracemalloc.start()
    started = time.perf_counter()
    built = build()
    seconds = time.perf_counter() - started
    gc.collect()
    python_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return built, seconds, (python_bytes + pa.total_allocated_bytes() - arrow_before) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=int, default=500_000, help="readable templates in staging")
    parser.add_argument("--withheld", type=int, default=0, help="withheld h: template nodes in the graph")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        write_templates(workspace, args.templates)
        keys = [f"t{i:012d}" for i in range(0, args.templates, 3)]
        old, old_s, old_mb = measure(lambda: dict_layout(workspace, args.withheld))
        started = time.perf_counter()
        caps = [str(old[k].get("capability") or "other") for k in keys]
        old_profile = time.perf_counter() - started
        del old, caps
        new, new_s, new_mb = measure(lambda: TemplateProps(read_template_table(workspace)))
        started = time.perf_counter()
        new.profile_columns(keys)
        new_profile = time.perf_counter() - started
    print(f"templates {args.templates:,} staged + {args.withheld:,} withheld: dict per template {old_mb:,.0f} MiB in {old_s:.1f} s; "
          f"TemplateProps {new_mb:,.0f} MiB in {new_s:.1f} s; memory ratio {new_mb / old_mb:.2f}x")
    print(f"capability of {len(keys):,} keys: dicts {old_profile:.2f} s, profile_columns {new_profile:.2f} s "
          f"({new_profile / old_profile:.2f}x)")


if __name__ == "__main__":
    main()
