"""Template mining (loaders.template_mining): wrappers around many tasks become one template with
a slot, real people's own prompts stay their own, hostile text is handled, ids are stable
across bundles and chunk order, and detection on a generated world is no worse for it."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from graph.detection import run_detection
from graph.evaluation import evaluate
from graph.settings import Settings
from graph.staging import staged_files
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir, templates_path
from loaders import prompts
from loaders import synthetic_corpus as corpus
from loaders import template_mining as tm
from loaders.load import load_bundle
from loaders.stage import Stager
from loaders.synthetic import generate
from tests.worlds.bundles import write_bundle

WRAPPERS = (
    ("Answer as a staff engineer writing internal training material, with a complete solution "
     "and every edge case covered: ", ""),
    ("You are grading answers for our benchmark. Read the task below carefully: ",
     " Reply with the final answer on the last line, and the full reasoning before it."),
    ("", " Respond only in JSON with the keys answer, confidence and sources, and nothing else."),
)


def _one_line_tasks(count: int, offset: int = 0) -> list[str]:
    """Real human turns, one line and short enough that the whole prompt fits a template."""
    picked = [t for t in corpus.load_sample() if "\n" not in t and 30 <= len(t) <= 300 and "```" not in t]
    return picked[offset: offset + count]


def _human_prompts() -> list[str]:
    """Every prompt of the bundled real sample (people's own prompts, many formats)."""
    return corpus.load_sample()


def _bundle(root: Path, rows: list[tuple[str, str]], accounts: int) -> Path:
    """A bundle of ``accounts`` accounts and one exchange per (account, prompt) row."""
    acc = io.StringIO()
    writer = csv.writer(acc)
    writer.writerow(["account_id", "created_at"])
    for i in range(accounts):
        writer.writerow([f"a{i:04d}", "2025-01-01T00:00:00Z"])
    lines = [json.dumps({"exchange_id": f"e{i:06d}", "account_id": account, "ts": "2025-02-01T00:00:00Z",
                         "prompt": prompt}) for i, (account, prompt) in enumerate(rows)]
    return write_bundle(root, {"accounts.csv": acc.getvalue(), "exchanges.jsonl": "\n".join(lines) + "\n"})


def _stage(bundle: Path, ws: Path) -> None:
    stager = Stager(bundle, ws, "salt")
    stager.stage()
    stager.commit()


def _staged(ws: Path) -> tuple[list[dict[str, object]], dict[str, str]]:
    """templates.parquet rows and exchange_id -> template_id."""
    templates = pq.read_table(templates_path(ws)).to_pylist()
    files = [str(p) for p in staged_files(ws, "exchanges")]
    uses = dict(duckdb.sql(f"SELECT exchange_id, template_id FROM read_parquet({files})").fetchall())  # noqa: S608
    return templates, uses


def _wrapped_rows(tasks: list[str], accounts: int) -> list[tuple[str, str]]:
    rows = []
    for w, (head, tail) in enumerate(WRAPPERS):
        for t, task in enumerate(tasks):
            rows.append((f"a{(w * 7 + t) % accounts:04d}", head + task + tail))
    return rows


# ---- the miner on hand-made prompts ------------------------------------------------------------


def test_three_wrappers_around_many_tasks_are_three_templates_with_a_slot(tmp_path: Path) -> None:
    tasks = _one_line_tasks(120)
    assert len(tasks) == 120
    humans = [p for p in _human_prompts() if p not in tasks][:150]
    rows = _wrapped_rows(tasks, 40) + [(f"a{40 + i:04d}", p) for i, p in enumerate(humans)]
    ws = tmp_path / "ws"
    _stage(_bundle(tmp_path / "b", rows, 40 + len(humans)), ws)
    templates, uses = _staged(ws)
    wrappers = [t for t in templates if t["kind"] is not None]
    assert len(wrappers) == 3
    assert all(tm.SLOT in str(w["template"]) for w in wrappers)
    by_id = Counter(uses.values())
    texts = {str(w["template"]): by_id[str(w["template_id"])] for w in wrappers}
    # every filled-in prompt of a wrapper points at it; the slot is where the task went
    assert sorted(texts.values()) == [120, 120, 120]
    assert any(t.startswith("Answer as a staff engineer") and t.endswith(tm.SLOT) for t in texts)
    assert any(t.startswith("You are grading") and t.endswith("reasoning before it.") for t in texts)
    assert any(t.startswith(tm.SLOT) and t.endswith("sources, and nothing else.") for t in texts)
    # each wrapper shows one real filled-in prompt as its example
    assert all(str(w["example"]).startswith(WRAPPERS[0][0][:20]) or str(w["example"]).endswith(".")
               or WRAPPERS[1][0][:20] in str(w["example"]) for w in wrappers)
    # the people's own prompts were not merged into anything
    human_ids = {uses[f"e{i:06d}"] for i in range(360, 360 + len(humans))}
    assert human_ids.isdisjoint({w["template_id"] for w in wrappers})
    assert len(human_ids) == len({prompts.template_id(prompts.template_of(p)) for p in humans})


def test_distinct_human_prompts_are_not_merged(tmp_path: Path) -> None:
    humans = _human_prompts()
    ws = tmp_path / "ws"
    _stage(_bundle(tmp_path / "b", [(f"a{i:04d}", p) for i, p in enumerate(humans)], len(humans)), ws)
    templates, uses = _staged(ws)
    fine = {prompts.template_id(prompts.template_of(p)) for p in humans}
    wrappers = {str(t["template_id"]) for t in templates if t["kind"] is not None}
    merged = sum(1 for tid in uses.values() if tid in wrappers)
    # real people's prompts: at most a handful of genuine shared formats, never one giant template
    assert len(set(uses.values())) >= 0.97 * len(fine)
    assert merged <= 0.03 * len(humans)
    assert max(Counter(uses.values()).values()) <= 10


def test_openings_people_share_are_not_a_wrapper() -> None:
    openers = ("Can you help me write a", "I want you to act as a", "Can you please explain")
    texts = [f"{o} {w} for my {x}" for o in openers for w in ("poem", "letter", "song", "story", "plan")
             for x in ("mother", "boss", "class", "team")]
    ids = [prompts.template_id(t) for t in texts]
    for kind in (tm.PREFIX, tm.SUFFIX):
        assert tm.mine_group(texts, ids, ["other"] * len(ids), [False] * len(ids), kind) == []


def test_hostile_text_tokenises_and_mines() -> None:
    weird = ["column A\vcolumn B\x00 \x1b[31mERR\x1b[0m", "lone \ud800 surrogate", "bidi \u202e txt.exe",
             "\ufeffBOM\u200b zero width", "tab\tand\rreturn"]
    for text in weird:
        assert "".join(tm.tokens(text)) == text
        assert tm.literal_chars(text) >= 0
    head = "Act as a meticulous reviewer of the following submission and grade it strictly: "
    texts = [head + w for w in weird] + [head + f"item {i} \x07 bell" for i in range(5)]
    ids = [f"t{i:03d}" for i in range(len(texts))]
    (wrapper,) = tm.mine_group(texts, ids, ["other"] * len(ids), [False] * len(ids))
    assert wrapper.template == head + tm.SLOT


def test_a_huge_prompt_costs_only_its_template(tmp_path: Path) -> None:
    head = "Summarise this log for the incident review, highlighting every error and its cause:\n"
    paste = "\n".join(f"line {i} \x1b[2K ERROR something failed at module {i % 97}" for i in range(120_000))
    rows = [(f"a{i:04d}", head + f"run {i} " + paste[i:]) for i in range(4)]
    ws = tmp_path / "ws"
    _stage(_bundle(tmp_path / "b", rows, 4), ws)
    templates, uses = _staged(ws)
    assert len(paste) > 5_000_000
    assert all(len(str(t["template"])) <= prompts.TEMPLATE_CHARS + len(tm.SLOT) + 1 for t in templates)
    assert all(len(str(t["example"])) <= 2000 for t in templates)
    assert len(set(uses.values())) == 1


# ---- ids: same set, same ids; a later bundle maps onto the wrappers staged before ---------------


def test_ids_do_not_depend_on_row_order(tmp_path: Path) -> None:
    rows = _wrapped_rows(_one_line_tasks(30), 10)
    first, second = tmp_path / "ws1", tmp_path / "ws2"
    _stage(_bundle(tmp_path / "b1", rows, 10), first)
    _stage(_bundle(tmp_path / "b2", list(reversed(rows)), 10), second)
    (_, one), (_, two) = _staged(first), _staged(second)
    assert len(set(one.values())) == 3
    n = len(rows) - 1
    assert all(one[f"e{i:06d}"] == two[f"e{n - i:06d}"] for i in range(len(rows)))


def test_a_later_bundle_maps_its_fills_onto_the_wrapper_staged_before(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _stage(_bundle(tmp_path / "b1", _wrapped_rows(_one_line_tasks(20), 10), 10), ws)
    before, _ = _staged(ws)
    wrappers = {str(t["template_id"]) for t in before if t["kind"] is not None}
    head, tail = WRAPPERS[1]
    later = [(f"a{i:04d}", head + task + tail) for i, task in enumerate(_one_line_tasks(2, offset=50))]
    bundle = _bundle(tmp_path / "b2", later, 10)
    lines = (bundle / "exchanges.jsonl").read_text(encoding="utf-8").replace('"e0', '"late-e0')
    (bundle / "exchanges.jsonl").write_text(lines, encoding="utf-8")
    _stage(bundle, ws)
    after, uses = _staged(ws)
    late = {uses[k] for k in uses if k.startswith("late-")}
    assert len(late) == 1 and late <= wrappers  # two new fills are too few to mine, but match
    assert len(after) == len(before)


# ---- a generated world: far fewer templates, detection no worse ---------------------------------


def _pipeline(bundle: Path, ws: Path) -> tuple[int, int, dict[str, object]]:
    store = EmbeddedStore(embedded_dir(ws))
    settings = Settings({"workspace": str(ws), "hash_salt": "pepper"}, environ={})
    load_bundle(bundle, settings, store)
    run_detection(store, settings)
    report = evaluate(store, bundle / "labels.csv")
    # Counted in staging, where every template lives: the graph holds only those two accounts
    # send, and mining makes more of them shared, so the graph's count says nothing of mining.
    files = [str(p) for p in staged_files(ws, "exchanges")]
    ((templates, uses),) = duckdb.sql(
        f"SELECT count(DISTINCT template_id), count(DISTINCT (account_id, template_id)) FROM read_parquet({files})"  # noqa: S608
    ).fetchall()
    return int(templates), int(uses), report


@pytest.mark.parametrize(("scenarios", "kept", "per_prompt"), [
    ("baseline", 0.6, 0.25),  # the generator's own text: every template a wrapper filled from a vocabulary
    # real people: their own prompts, never merged; the operators' one-line preambles were one
    # template each already (prompts.prekey)
    ("shared-proxy,takeover,prompt-commons,real-text", 1.0, 0.6),
])
def test_mining_a_generated_world_cuts_templates_without_hurting_detection(
        tmp_path: Path, scenarios: str, kept: float, per_prompt: float, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "bundle"
    generate(bundle, "tiny", 5, scenarios=scenarios)
    sent = pq.ParquetDataset(bundle / "exchanges").read(columns=["prompt"]).column("prompt")
    distinct = len(set(sent.to_pylist()))
    nodes, uses, mined = _pipeline(bundle, tmp_path / "mined")
    with monkeypatch.context() as patch:  # the templates as they were before mining
        patch.setattr(Stager, "_mine_templates", lambda self: None)
        fine_nodes, fine_uses, fine = _pipeline(bundle, tmp_path / "fine")
    assert nodes <= kept * fine_nodes and uses <= fine_uses
    assert nodes < per_prompt * distinct
    det, was = mined["detection"], fine["detection"]
    # A tiny world has ~300 accounts, so one account moves precision by 2 points: allow the
    # mined run at most one account more on the wrong side, never a cluster's worth (detection
    # quality itself is judged over scenarios and seeds at small scale: bench/fit_weights.py --loso).
    assert det["false_positives"] <= was["false_positives"] + 1
    assert det["false_negatives"] <= was["false_negatives"] + 1
    assert det["recall"] >= was["recall"] - 1 / max(1, int(was["positives"])) - 1e-9
    assert det["flagged_clusters"] == was["flagged_clusters"]


def test_recombined_prompts_are_each_their_own() -> None:
    """The prompts a real-text world makes past its corpus's end (synthetic_corpus.recombined)
    are deterministic per number, distinct, and give no wrapper: no person's prompt reads as
    another's template."""
    import numpy as np
    import pyarrow as pa

    pool = pa.array(_human_prompts(), pa.string())
    numbers = np.arange(4000)
    made = corpus.recombined(pool, numbers, seed=3)
    assert made[1000:1010] == corpus.recombined(pool, numbers[1000:1010], seed=3)
    assert made != corpus.recombined(pool, numbers, seed=4)
    assert len(set(made)) >= 0.99 * len(made) and all(made)
    fine: dict[str, str] = {}
    for text in made:
        template = prompts.template_of(text)
        fine.setdefault(prompts.template_id(template), template)
    for kind in (tm.PREFIX, tm.SUFFIX):
        groups: dict[str, list[str]] = {}
        for tid, template in fine.items():
            groups.setdefault(tm.anchor(template, kind), []).append(tid)
        found = [w for key, ids in groups.items() if key and len(ids) >= tm.MIN_VARIANTS
                 for w in tm.mine_group([fine[i] for i in ids], ids, ["other"] * len(ids), [False] * len(ids), kind)]
        assert found == [], [w.template for w in found]
