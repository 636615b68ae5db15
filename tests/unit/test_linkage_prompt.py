"""Prompt evidence: shared templates with examples, popular prompts suppressed, near-duplicates."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datasketch import MinHash

from graph.linkage.evidence import Evidence
from graph.linkage.facts import Facts, Use
from graph.linkage.prompt import link_prompt, near_duplicate_families, read_minhashes
from graph.schema import Label
from graph.workspace import templates_path

OP_TEXT = "You are an expert agent. Think step by step and show all reasoning before the final answer about"


def _minhash(text: str) -> list[int]:
    mh = MinHash(num_perm=64, seed=1)
    words = text.split()
    for i in range(len(words) - 2):
        mh.update(" ".join(words[i : i + 3]).encode())
    return [int(v) for v in mh.hashvalues]


def test_shared_template_links_with_an_example_and_popular_prompt_is_a_hub() -> None:
    facts = Facts()
    facts.uses[Label.PROMPT_TEMPLATE.value] = {
        "t-op": {"a": Use(50), "b": Use(40)},
        "t-viral": {f"v{i}": Use(2) for i in range(60)},
    }
    facts.entities[Label.PROMPT_TEMPLATE.value] = {"t-op": {"template": "tpl", "example": OP_TEXT}}
    ev = Evidence()
    link_prompt(ev, facts, cap=50)
    (reason,) = ev.reasons(("a", "b"))
    assert reason.kind == "shared_template" and reason.detail["example"].startswith("You are an expert agent")
    assert ev.weight(("v1", "v2")) == 0.0
    assert [(h.key, h.why) for h in ev.hubs] == [("t-viral", "over_cap")]


def test_near_duplicate_templates_link_their_users(tmp_path: Path) -> None:
    texts = {
        "t1": OP_TEXT + " sorting algorithms in the kernel scheduler",
        "t2": OP_TEXT + " sorting algorithms in the kernel schedulers",
        "t3": "give me a recipe for pancakes with lemon and ginger please thanks a lot",
    }
    templates_path(tmp_path).parent.mkdir(parents=True)
    pq.write_table(
        pa.table({"template_id": list(texts), "minhash": pa.array([_minhash(t) for t in texts.values()], pa.list_(pa.uint32()))}),
        templates_path(tmp_path),
    )
    sigs = read_minhashes(tmp_path)
    assert near_duplicate_families(sigs) == [["t1", "t2"]]
    facts = Facts(workspace=tmp_path)
    facts.uses[Label.PROMPT_TEMPLATE.value] = {"t1": {"a": Use(5)}, "t2": {"b": Use(5)}, "t3": {"c": Use(5)}}
    ev = Evidence()
    link_prompt(ev, facts, cap=50)
    (reason,) = ev.reasons(("a", "b"))
    assert reason.kind == "near_duplicate_template" and reason.detail["templates"] == ["t1", "t2"]
    assert ev.weight(("a", "c")) == 0.0


def test_no_staging_means_exact_templates_only(tmp_path: Path) -> None:
    assert read_minhashes(tmp_path) == {} and read_minhashes(None) == {}
