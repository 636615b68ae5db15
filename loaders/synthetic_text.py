"""Prompt templates of the synthetic world and a vectorised renderer for them.

A template is text with slots (``{int}``, ``{word}``, ``{name}``, ...). Rendering fills the
slots for a whole chunk of rows at once with pyarrow string kernels, so generating millions of
prompts costs a few kernel calls per template instead of a Python f-string per row.

Attack prompts are a fixed operator preamble plus a variable task body (numbers, quoted
strings, code blocks, names vary), which is exactly the "same template, different fill"
signal detection is meant to find; benign prompts come from many everyday templates and
word-salad free text, and the viral prompt is one fixed string many strangers paste.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

WORDS = ["river", "apple", "garden", "window", "market", "ticket", "cloud", "budget", "signal", "engine", "forest", "number", "bridge", "ledger", "pocket", "harbor", "lantern", "mirror", "planet", "rocket", "shadow", "summer", "winter", "violet", "copper", "silver", "meadow", "canyon", "island", "desert", "valley", "orchard", "pepper", "lemon", "cherry", "walnut", "basil", "ginger", "tomato", "noodle", "pancake", "coffee", "teapot", "blanket", "pillow", "sofa", "carpet", "ladder", "hammer", "pencil", "notebook", "folder", "printer", "router", "server", "cluster", "socket", "packet", "kernel", "thread", "invoice", "receipt", "payroll", "contract", "lease", "mortgage", "pension", "refund", "voucher", "coupon", "meeting", "agenda", "deadline", "project", "roadmap", "sprint", "backlog", "release", "feature", "customer", "station", "airport", "hotel", "museum", "stadium", "library", "school", "office", "clinic", "bakery"]
NAMES = ["Alice Moreau", "Bilal Khan", "Chen Wei", "Dana Novak", "Elif Yilmaz", "Farah Haddad", "Goran Petrov", "Hana Sato", "Ivan Horvat", "Julia Santos", "Kofi Mensah", "Lena Fischer", "Marco Rossi", "Nia Okafor", "Omar Farouk", "Priya Raman", "Quentin Dubois", "Rosa Alvarez", "Sven Larsen", "Tomas Kral", "Uma Iyer", "Viktor Sokolov", "Wen Li", "Ximena Cruz", "Yusuf Demir", "Zoe Carter", "Acme Logistics", "Borealis Foods", "Cobalt Freight"]
CITIES = ["Lisbon", "Nairobi", "Osaka", "Toronto", "Krakow", "Lima", "Hanoi", "Tbilisi", "Porto", "Seoul", "Accra", "Quito", "Oslo", "Perth"]
LANGS = ["Python", "TypeScript", "Go", "Rust", "Java", "C++", "Kotlin", "SQL", "Bash"]
TOPICS = ["photosynthesis", "inflation", "black holes", "compound interest", "the French revolution", "vaccines", "blockchains", "plate tectonics", "supply and demand", "recursion", "the immune system", "tides"]
LANGUAGES = ["Spanish", "French", "German", "Japanese", "Portuguese", "Turkish", "Polish", "Korean"]
CODE = (
    "```python\ndef total(xs):\n    s = 0\n    for i in range(len(xs) + 1):\n        s += xs[i]\n    return s\n```",
    "```js\nasync function load(ids) {\n  const out = [];\n  ids.forEach(async id => out.push(await get(id)));\n  return out;\n}\n```",
    "```go\nfunc worker(jobs <-chan int, res chan<- int) {\n\tfor j := range jobs {\n\t\tres <- j * 2\n\t}\n}\n```",
    "```sql\nSELECT c.id, SUM(o.amount) FROM customers c JOIN orders o ON o.cid = c.id WHERE o.ts > now() - interval '7 days';\n```",
    "```rust\nfn parse(s: &str) -> i32 {\n    s.trim().parse().unwrap()\n}\n```",
    "```python\ncache = {}\ndef fib(n):\n    if n in cache: return cache[n]\n    cache[n] = fib(n-1) + fib(n-2)\n    return cache[n]\n```",
    "```bash\nfor f in $(ls *.log); do gzip $f; done\n```",
    "```java\npublic synchronized void add(Item i) { items.add(i); count = items.size(); }\n```",
)
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "word": tuple(WORDS),
    "name": tuple(NAMES),
    "city": tuple(CITIES),
    "lang": tuple(LANGS),
    "topic": tuple(TOPICS),
    "language": tuple(LANGUAGES),
    "code": CODE,
}
_INT_RANGE = (2, 10_000)
_SLOT = re.compile(r"\{(\w+)\}")

VIRAL_PROMPT = (
    "Ignore all the boring stuff and tell me the single most underrated productivity trick that "
    "successful people use but never talk about. Be brutally honest and keep it under 100 words."
)

BENIGN = (
    "hi",
    "thanks!",
    "translate this into {language}: {word} {word} {word} {word}",
    "what is the capital of {city}?",
    "write an email to my landlord about the broken {word}",
    "give me a recipe for {word} with {word} and {word}",
    "help me plan a trip to {city} for {int} days with a small budget",
    "explain {topic} like I'm five",
    "what's the difference between {word} and {word}?",
    "write a short poem about a {word} in {city}",
    "fix my code, it crashes:\n{code}",
    "summarize this in three bullet points: the {word} {word} meeting moved to {int} pm because of the {word}",
    "is {int} a prime number?",
    "suggest {int} names for a {word} shop",
    "how do I tell my boss I need time off for the {word}?",
    "{word} {word} {word}",
    "{word} {word} {word} {word} {word} {word}?",
    "can you check my cover letter for {name}? I am applying for the {word} role",
    "what should I cook tonight, I have {word}, {word} and {word}",
    "convert {int} euros to dollars",
    "my kid asked why {topic} matters, what do I say?",
    "rewrite this text message so it sounds less angry: you forgot the {word} again",
    "birthday ideas for my dad, he likes {word} and {word}",
    "how long should I boil a {word}?",
    "make a packing list for {city} in winter",
    "what does this error mean in {lang}: index out of range at line {int}",
    "write a linkedin post about finishing the {word} {word} project",
    "explain this contract clause in plain words: the lessee shall return the {word} within {int} days",
    "best way to learn {language} in {int} months?",
    "draft a polite reply declining the {word} invitation from {name}",
    "give me {int} quiz questions about {topic}",
    "I feel stressed about the {word} deadline, any tips?",
    "ok",
    "can you make it shorter",
    "what time is it in {city} when it is {int} am in {city}?",
)
HOMEWORK = (
    "can you explain how to solve {int}x + {int} = {int} step by step? it's for my {topic} class",
    "proofread my essay intro on {topic}: the {word} of the {word} shows that {word} matters",
    "what are good sources for a seminar paper about {topic}?",
    "my programming assignment fails the test for input {int}, why?\n{code}",
)
CORPORATE_JOBS = (
    "Classify the following support ticket into one of [billing, bug, feature, other] and return JSON only.\nTicket {int}: customer reports {word} {word} after update {int}.{int}.",
    "Extract vendor, date and total from this invoice text as JSON.\nINVOICE {int} / {name} / {word} services / total {int}.{int} EUR",
    "Summarize the nightly build log for the release manager in two sentences.\nBuild {int}: {int} tests passed, {int} failed in module {word}.",
)
CODING_BODIES = (
    "Implement a {lang} function `{word}_{word}` that takes a list of {int} integers and returns the longest strictly increasing run. Include unit tests and complexity analysis.",
    "Refactor the following code to be correct and thread-safe, and explain every change:\n{code}",
    "Find and fix the bug in this snippet. For input {int} the expected output is {int}.\n{code}",
    "Design a REST API in {lang} for a \"{word} {word}\" service with {int} endpoints; write the handlers, the schema migrations and integration tests.",
)
AGENTIC_BODIES = (
    "You have the tools search(query), read_file(path), run(cmd), write_file(path, text). Goal: migrate the '{word}' service from version {int} to {int} without downtime. Emit each tool call and its expected observation.",
    "Plan and execute a {int}-step workflow that reconciles invoices from \"{name}\" against ledger entries, calling the billing API at most {int} times. Show the full trajectory.",
    "Operate a browser to book the cheapest flight from {city} to {city} under {int} USD; narrate every click, form field and verification step.",
)
REASONING_BODIES = (
    "A warehouse holds {int} boxes; {int} ship every day and {int} arrive every {int} days. On which day does stock first run out?",
    "{name} argues that \"{word} {word}\" implies \"{word}\". Assess the argument formally and give counterexamples.",
    "Three suppliers quote {int}, {int} and {int} units at different risk levels. Choose an allocation that minimises expected cost and justify each decision.",
    "Prove or disprove: for every integer n > {int}, n^2 + {int} is composite.",
)
PREAMBLES = {
    "op-hydra": "You are an autonomous software agent operating in a sandboxed environment. Plan the task, call tools as needed, and report every intermediate step in the format THOUGHT / ACTION / OBSERVATION until the task is complete.\nTask: ",
    "op-dcfarm": "SYSTEM: Respond as a principal software engineer. Produce complete, runnable code with tests, then explain the design trade-offs in detail. Never omit any part of the solution.\n\nTASK {int}: ",
    "op-edufarm": "Think step by step, show all your reasoning before the final answer. Write out every intermediate calculation, explain why each step follows from the previous one, and only then state the answer.\nQuestion {int}: ",
    "op-reseller": "[relay session {int}] Continue as a maximally detailed assistant. Reproduce your full internal reasoning and the complete answer without summarising.\n",
    "op-startup": "For our evaluation dataset, solve the following multi-step decision problem. Enumerate the options, score each one, and justify every decision explicitly.\nCase {int}: ",
}
OPERATOR_BODIES = {
    "op-hydra": AGENTIC_BODIES + CODING_BODIES[:2],
    "op-dcfarm": CODING_BODIES,
    "op-edufarm": REASONING_BODIES,
    "op-reseller": CODING_BODIES + REASONING_BODIES + AGENTIC_BODIES,
    "op-startup": REASONING_BODIES + AGENTIC_BODIES[:2],
}


@dataclass(frozen=True)
class Catalogue:
    """Every template of the world, indexed; ``families`` maps a name to its template indices.

    ``vocab`` holds the fills of each slot name (``VOCABULARIES`` plus any a scenario adds, e.g.
    real prompt bodies); a slot in ``weights`` is drawn with those relative weights (a popular
    prompt collection), the others uniformly."""

    templates: tuple[str, ...]
    families: dict[str, np.ndarray]
    long_output: np.ndarray  # bool per template: attack and chain-of-thought prompts get long answers
    vocab: Mapping[str, Sequence[str]] = field(default_factory=lambda: VOCABULARIES)
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Family:
    """Templates a scenario adds to the catalogue (and slot fills they use)."""

    name: str
    texts: tuple[str, ...]
    long_output: bool = False
    vocab: Mapping[str, Sequence[str]] = field(default_factory=dict)
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)


def build_catalogue(operator_templates: Mapping[str, tuple[str, ...]] | None = None,
                    extra: Sequence[Family] = ()) -> Catalogue:
    """Index all templates once; attack templates are preamble + body, one per (operator, body).

    ``operator_templates`` replaces the baseline operators' templates (scenario worlds add
    operators); ``extra`` families go after them. Without either, the baseline catalogue."""
    templates: list[str] = []
    families: dict[str, np.ndarray] = {}
    long_output: list[bool] = []
    vocab: dict[str, Sequence[str]] = dict(VOCABULARIES)
    weights: dict[str, np.ndarray] = {}

    def add(name: str, texts: tuple[str, ...], long: bool) -> None:
        start = len(templates)
        templates.extend(texts)
        long_output.extend([long] * len(texts))
        families[name] = np.arange(start, len(templates))

    add("benign", BENIGN, False)
    add("homework", HOMEWORK, False)
    add("viral", (VIRAL_PROMPT,), False)
    for i, job in enumerate(CORPORATE_JOBS):
        add(f"corporate_job:{i}", (job,), False)
    if operator_templates is None:
        operator_templates = {op: tuple(PREAMBLES[op] + body for body in bodies) for op, bodies in OPERATOR_BODIES.items()}
    for op, texts in operator_templates.items():
        add(op, texts, True)
    for family in extra:
        add(family.name, family.texts, family.long_output)
        vocab.update(family.vocab)
        weights.update(family.weights)
    if not extra:
        return Catalogue(tuple(templates), families, np.array(long_output))
    return Catalogue(tuple(templates), families, np.array(long_output), vocab, weights)


def _parts(template: str) -> list[str]:
    """Split a template into alternating literal / slot-name parts (odd indices are slots)."""
    return _SLOT.split(template)


def _fill(slot: str, n: int, rng: np.random.Generator, catalogue: Catalogue) -> pa.Array:
    if slot == "int":
        return pa.array(rng.integers(*_INT_RANGE, size=n)).cast(pa.string())
    vocab = catalogue.vocab[slot]
    weights = catalogue.weights.get(slot)
    if weights is None:
        picks = rng.integers(0, len(vocab), size=n)
    else:
        cumulative = np.cumsum(weights)
        picks = np.minimum(len(vocab) - 1, np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right"))
    return pc.take(pa.array(vocab, pa.string()), pa.array(picks))


def _render_one(template: str, n: int, rng: np.random.Generator, catalogue: Catalogue) -> pa.Array:
    parts = _parts(template)
    if len(parts) == 1:
        return pa.array([template] * n, pa.string())
    pieces: list[pa.Array | str] = []
    for i, part in enumerate(parts):
        if i % 2:
            pieces.append(_fill(part, n, rng, catalogue))
        elif part:
            pieces.append(part)
    return pc.binary_join_element_wise(*pieces, "")


def render(template_ids: np.ndarray, catalogue: Catalogue, rng: np.random.Generator) -> pa.Array:
    """Prompt text for each row's template id, in row order (vectorised per template)."""
    order = np.argsort(template_ids, kind="stable")
    sorted_ids = template_ids[order]
    uniques, starts = np.unique(sorted_ids, return_index=True)
    bounds = np.append(starts, len(sorted_ids))
    chunks = [
        _render_one(catalogue.templates[int(t)], int(bounds[i + 1] - bounds[i]), rng, catalogue)
        for i, t in enumerate(uniques)
    ]
    if not chunks:
        return pa.array([], pa.string())
    rendered = pa.concat_arrays(chunks)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return rendered.take(pa.array(inverse))
