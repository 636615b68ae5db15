"""Prompt reduction: same template -> same id, vectorised twins agree, tags, MinHash."""

from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash

from loaders import prompts
from loaders.derive import TemplateCollector, template_columns

PREAMBLE = (
    "Think step by step, show all your reasoning before the final answer. Write out every "
    "intermediate calculation, explain why each step follows from the previous one, and only "
    "then state the answer.\nQuestion {n}: "
)

CORPUS = [
    "hi",
    "",
    "   ",
    "what is the capital of Lisbon?",
    "translate this into French: apple river cloud",
    'Design a REST API in Go for a "river market" service with 12 endpoints',
    "fix my Python code, it crashes:\n```python\ndef f(x):\n    return x['a']\n```\nthanks",
    "unclosed code ```python\nprint(1)\n",
    "mail me at john.doe@example.com or see https://example.com/a?b=1 now",
    "Migrate the 'billing' service from version 3 to 4 without downtime.",
    "can you check my cover letter for Alice Moreau? I am applying for the ledger role",
    "Ünïcödé prompt with Größe 12 and “smart quotes” and «guillemets» 😀",
    "Grüße aus Köln und Łódź, 12 Äpfel für Émile Zoë",
    "tabs\tand\r\nwindows\r\nline endings   and   spaces",
    "Prove or disprove: for every integer n > 7, n^2 + 3 is composite.",
    PREAMBLE.format(n=12) + "A warehouse holds 40 boxes; 3 ship every day.",
    "word " * 80,
    "x" * 5000,
    "a\n" * 50,
]


def test_same_template_different_fills_share_a_template_id() -> None:
    a = prompts.template_of(PREAMBLE.format(n=12) + "A warehouse holds 400 boxes; 12 ship every day.")
    b = prompts.template_of(PREAMBLE.format(n=907) + "Alice Moreau argues that \"x y\" implies \"z\".")
    assert a == b
    assert prompts.template_id(a) == prompts.template_id(b)
    assert a.endswith("<BODY>")


def test_fills_are_abstracted_in_short_prompts() -> None:
    one = prompts.template_of("help me plan a trip to Lisbon for 3 days with a small budget")
    two = prompts.template_of("help me plan a trip to Osaka for 12 days with a small budget")
    assert one == two == "help me plan a trip to <NAME> for <N> days with a small budget"
    code = prompts.template_of("fix my Go code, it crashes:\n```go\nfunc f() {}\n```")
    assert code == "fix my <NAME> code, it crashes:\n<CODE>"
    quoted = prompts.template_of("Implement a Rust function `river_apple` that takes 12 integers")
    assert quoted == "Implement a <NAME> function <Q> that takes <N> integers"


def test_different_templates_differ() -> None:
    assert prompts.template_of("what is the capital of Lisbon?") != prompts.template_of("is 7 a prime number?")
    other = "SYSTEM: Respond as a principal software engineer. Produce complete, runnable code with tests.\n\nTASK 5: x"
    assert prompts.template_of(other) != prompts.template_of(PREAMBLE.format(n=1) + "x")


@pytest.mark.parametrize("text", CORPUS)
def test_prekey_matches_its_vectorised_twin(text: str) -> None:
    assert prompts.prekeys(pa.array([text])).to_pylist() == [prompts.prekey(text)]


def test_vectorised_normalise_capability_and_cot_match_python() -> None:
    keys = [prompts.prekey(t) for t in CORPUS]
    many = prompts.normalise_many(pa.array(keys, pa.string())).to_pylist()
    assert many == [prompts.normalise(k) for k in keys]
    assert prompts.capability_many(pa.array(many)).to_pylist() == [prompts.capability(t) for t in many]
    assert prompts.is_cot_many(pa.array(many)).to_pylist() == [prompts.is_cot(t) for t in many]


def test_synthetic_world_templates_reduce_consistently() -> None:
    """Every synthetic template rendered with different fills gives one template id."""
    from loaders.synthetic_text import build_catalogue, render

    catalogue = build_catalogue()
    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(len(catalogue.templates)), 6)
    rendered = render(ids, catalogue, rng).to_pylist()
    by_template: dict[int, set[str]] = {}
    for tid, text in zip(ids.tolist(), rendered, strict=True):
        by_template.setdefault(tid, set()).add(prompts.template_id(prompts.template_of(text)))
    attack = [i for name, idx in catalogue.families.items() if name.startswith("op-") for i in idx.tolist()]
    assert attack
    for i in attack:
        assert len(by_template[i]) == 1, catalogue.templates[i]
    # the attack preambles of different operators never collide
    per_operator = {
        name: {next(iter(by_template[i])) for i in idx.tolist()}
        for name, idx in catalogue.families.items() if name.startswith("op-")
    }
    values = [v for ids_ in per_operator.values() for v in ids_]
    assert len(values) == len(set(values))


def test_capability_and_cot_rules() -> None:
    assert prompts.capability("You have the tools search(query) and run(cmd); plan the workflow") == "agentic"
    assert prompts.capability("Refactor this <CODE>") == "coding"
    assert prompts.capability("Prove that the sum of two odd numbers is even") == "math"
    assert prompts.capability("Assess the argument and justify each decision") == "reasoning"
    assert prompts.capability("give me a recipe for lemon cake") == "other"
    assert prompts.is_cot("Think step by step and show your reasoning")
    assert prompts.is_cot("Reproduce your full internal reasoning")
    assert not prompts.is_cot("what is the capital of France?")


def test_minhash_equals_datasketch_and_similar_templates_are_close() -> None:
    texts = ["Think step by step <N>", "hi", "", "fix my <NAME> code, it crashes:\n<CODE>"]
    matrix = prompts.minhash_matrix(texts)
    assert matrix.shape == (4, 64)
    for text, row in zip(texts, matrix, strict=True):
        reference = MinHash(num_perm=64, seed=1, hashfunc=zlib.crc32)
        reference.update_batch(prompts.shingles(text))
        assert row.tolist() == [int(v) for v in reference.hashvalues]
    a, b, c = prompts.minhash_matrix([
        "plan the task call tools and report every step in the format thought action observation",
        "plan the task call tools and report every step in the format thought action result",
        "give me a recipe for lemon cake with ginger",
    ])
    assert float(np.mean(a == b)) > 0.6
    assert float(np.mean(a == c)) < 0.2


def test_template_columns_per_row_and_first_example() -> None:
    collector = TemplateCollector()
    column = pa.array(["is 7 a prime number?", None, "is 11 a prime number?", "  ", "hi"], pa.string())
    tid, cap, cot, _ = template_columns(column, collector)
    ids = tid.to_pylist()
    assert ids[0] == ids[2] and ids[0] is not None
    assert ids[1] is None and ids[3] is None
    assert cap.to_pylist()[0] == "math"
    assert cot.to_pylist()[4] is False
    table = collector.drain()
    assert table is not None
    rows = {r["template_id"]: r for r in table.to_pylist()}
    assert rows[ids[0]]["example"] == "is 7 a prime number?"
    assert rows[ids[0]]["template"] == "is <N> a prime number?"
    assert len(rows) == 2
