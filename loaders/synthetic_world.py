"""The scenario library: which world ``generate`` builds, and what each scenario adds to it.

A *world* is the baseline world (synthetic.py's docstring) plus any combination of scenarios,
each a failure mode detection met on a world it had never seen:

- ``shared-proxy``: two more operators buy from one residential proxy network whose exits
  rotate per request (benign customers use it too); they differ in payment, templates, hours.
- ``takeover``: old accounts with a long benign history, taken over on one day and from then
  on driven around the clock through one small hosting range by one client; no indicators,
  no shared device. ``takeovers.csv`` records each account's onset.
- ``takeover-same-network``: the same kind of ring, but relaying through each victim's own
  machine, so the account keeps its owner's home address; from the onset on its client, hours,
  volume and capability mix change (op-takeover-home, in ``takeovers.csv`` too).
- ``prompt-commons``: benign people share exact prompts as real people do (common one-liners,
  a popular prompt collection, a popular app's system prompt), and nothing else.
- ``no-indicators``: operators.csv lists no indicator at all (labels still name operators).
- ``real-text``: prompts come from a real corpus (synthetic_corpus.py), each person their own,
  plus a few hostile strings (control characters, escapes, bidi override, a ~1 MB paste).
- ``withheld``: prompt text only on one exchange in N (default 20), ``prompt_hash`` on all.

``World`` carries what the generator needs to know about the chosen scenarios: the operators
(baseline ones first, so their random draws come first), the client profiles, and the extra
prompt families and profiles; ``catalogue`` and ``mixes`` turn it into templates and per-profile
template probabilities. The baseline world is built exactly as before any scenario existed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa

from loaders.synthetic_accounts import PROFILE_OPERATOR
from loaders.synthetic_spec import (
    BENIGN_CLIENTS,
    OPERATOR_CLIENTS,
    OPERATORS,
    SWARM_CLIENTS,
    SWARM_OPERATORS,
    TAKEOVER_CLIENT,
    TAKEOVER_HOME_CLIENT,
    TAKEOVER_HOME_OPERATOR,
    TAKEOVER_OPERATOR,
    Operator,
)
from loaders.synthetic_text import (
    AGENTIC_BODIES,
    BENIGN,
    CODING_BODIES,
    HOMEWORK,
    OPERATOR_BODIES,
    PREAMBLES,
    REASONING_BODIES,
    Catalogue,
    Family,
    build_catalogue,
)
from loaders.synthetic_traffic import baseline_mixes

BASELINE = "baseline"
SCENARIOS: dict[str, str] = {
    BASELINE: "the generator's own world (five operators, the hard negatives); the default",
    "shared-proxy": "two more operators behind one residential proxy network (exits rotated per request, "
                    "benign customers too), differing in cards, templates and hours",
    "takeover": "old benign accounts taken over on one day and driven through one hosting range by one "
                "client around the clock; no indicators, no shared device; onsets in takeovers.csv",
    "takeover-same-network": "old benign accounts taken over through their owners' own networks (same home "
                             "address before and after); the client, hours, volume and capability mix change",
    "prompt-commons": "benign people sharing exact prompts: common one-liners, a popular prompt collection, "
                      "a popular app's system prompt; nothing else shared",
    "no-indicators": "operators.csv lists no indicators (labels still name the operators)",
    "real-text": "prompts from a real corpus (ShareGPT human turns; bundled sample or the full corpus), "
                 "each person their own, plus hostile strings (control characters, ESC, U+202E, ~1 MB paste)",
    "withheld": "prompt text on one exchange in N only (prompt_hash on all); N from --withhold-text, else 20",
}
WITHHELD_EVERY = 20
TEXT_ONLY = {"withheld"}  # scenarios that change nothing but how much prompt text is kept

# Benign accounts per scenario group, as shares of all benign accounts (taken from "ordinary").
SCENARIO_GROUP_SHARES: dict[str, dict[str, float]] = {
    "shared-proxy": {"resproxy_benign:swarmnet": 0.01},
    "prompt-commons": {"prompt_oneliners": 0.10, "prompt_collection:awesome-prompts": 0.12, "popular_app:quillpal": 0.08},
}

SWARM_PREAMBLES = {
    "op-swarm-night": "You are a fully autonomous agent with shell, browser and file tools. Think out loud, "
                      "list every tool call with its exact arguments and the observation you expect, and never stop "
                      "before the goal is reached.\n\nJOB {int}: ",
    "op-swarm-day": "Answer as a staff engineer writing internal training material: a complete solution, every edge "
                    "case covered, then a long worked explanation of each design choice.\n\nItem {int} - ",
}
RESALE_TASK_STARTS = ("fix my code", "what does this error", "explain", "give me {int}", "is {int} a prime",
                      "what's the difference", "summarize", "can you explain", "my programming", "proofread")
SCENARIO_BODIES = {
    "op-swarm-night": AGENTIC_BODIES + REASONING_BODIES[:2],
    "op-swarm-day": CODING_BODIES,
    # resold access: the ring's many customers send the everyday coding and how-to tasks benign
    # people send too (so no template of the ring's own), just far more of them, with long answers
    "op-takeover": tuple(t for t in BENIGN + HOMEWORK if t.startswith(RESALE_TASK_STARTS)),
    "op-takeover-home": tuple(t for t in BENIGN + HOMEWORK if t.startswith(RESALE_TASK_STARTS)),
}
# Which capabilities (loaders.prompts.capability) each operator's real-text task bodies have.
OPERATOR_CAPABILITIES: dict[str, tuple[str, ...]] = {
    "op-hydra": ("agentic", "coding"),
    "op-dcfarm": ("coding",),
    "op-edufarm": ("reasoning", "math"),
    "op-reseller": ("coding", "reasoning", "agentic"),
    "op-startup": ("reasoning", "agentic"),
    "op-swarm-night": ("agentic", "reasoning"),
    "op-swarm-day": ("coding",),
    "op-takeover": ("coding", "math", "reasoning", "agentic"),
    "op-takeover-home": ("coding", "math", "reasoning", "agentic"),
}

# Prompts that real people share (prompt-commons). One-liners as people really type them (the
# first ones are the most repeated human turns of the ShareGPT corpus).
ONELINERS = (
    "continue", "Continue", "Please continue", "more", "Continue writing please", "hi", "go on",
    "Explain quantum computing in simple terms", "hello", "Elaborate", "keep going", "thanks", "thank you",
    "ok", "yes", "no", "why?", "more examples", "make it shorter", "rewrite it", "translate to English",
    "summarize", "tell me a joke", "write a poem about love", "what can you do?", "who are you?",
    "what is the meaning of life?", "Hello, how are you?", "give me 10 ideas", "shorter please",
    "in bullet points", "Write a haiku about autumn", "explain like I'm 5", "what day is it today?",
    "can you help me?", "write it in a table", "go deeper", "anything else?", "regenerate", "fix the grammar",
)
_ROLES = ("Linux terminal", "English translator and improver", "travel guide", "stand-up comedian",
          "motivational coach", "storyteller", "football commentator", "poet", "rapper", "debate coach",
          "screenwriter", "novelist", "relationship coach", "math teacher", "career counselor",
          "personal trainer", "mental health adviser", "real estate agent", "tech reviewer", "chef",
          "interviewer for a software engineer position", "JavaScript console", "Excel sheet", "life coach",
          "etymologist", "historian", "philosopher", "SQL terminal", "dream interpreter", "fortune teller")
_REQUESTS = ("I need help getting started", "my first question is about motivation",
             "tell me what you can do", "give me a plan for this week", "explain it to a beginner",
             "I want something funny", "be honest and direct", "keep answers under 100 words",
             "ask me questions before answering", "start with an example")
APP_NAME = "QuillPal"
APP_SYSTEM_PROMPT = (
    "You are QuillPal, the friendly writing assistant inside the QuillPal browser extension. Rewrite or answer "
    "the user's text so it reads clearly and kindly. Keep the user's language and meaning, fix grammar and "
    "spelling, never invent facts, never mention that you are an AI model, and answer in plain text without "
    "markdown unless the user asks for a list."
)
APP_PREFIX = APP_SYSTEM_PROMPT + "\n\nUser text:\n"


def collection_prompts() -> tuple[str, ...]:
    """The popular prompt collection: a finite pool of "act as" prompts many people paste."""
    return tuple(f"I want you to act as a {role}. I will tell you what I need and you will reply only as the "
                 f"{role} would, without explanations unless I ask. {request}."
                 for role in _ROLES for request in _REQUESTS)


def popularity(n: int, exponent: float = 1.1) -> np.ndarray:
    """Zipf weights: a few prompts of a collection are pasted by many people, most by few."""
    return 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent


def parse_scenarios(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """Scenario names from ``a,b`` text or a list, checked, deduplicated, in library order;
    ``()`` for the baseline world (``baseline`` alone or nothing)."""
    if spec is None:
        return ()
    names = spec.split(",") if isinstance(spec, str) else [n for item in spec for n in str(item).split(",")]
    chosen = {n.strip().lower() for n in names if n.strip()}
    unknown = sorted(chosen - set(SCENARIOS))
    if unknown:
        raise ValueError(f"unknown scenario {', '.join(map(repr, unknown))}; choose from {', '.join(SCENARIOS)}")
    return tuple(n for n in SCENARIOS if n in chosen and n != BASELINE)


@dataclass(frozen=True)
class World:
    """The chosen scenarios and what follows from them for the generator."""

    scenarios: tuple[str, ...]
    operators: tuple[Operator, ...]
    clients: tuple[tuple[str, str], ...]
    operator_clients: Mapping[str, tuple[int, ...]]  # operator -> its client indices in ``clients``
    extra_profiles: tuple[str, ...] = ()
    real: object | None = None  # a synthetic_corpus.RealText when real-text is on
    text_every: int = 1
    group_shares: Mapping[str, float] = field(default_factory=dict)

    def has(self, scenario: str) -> bool:
        return scenario in self.scenarios

    @property
    def baseline(self) -> bool:
        """True when the accounts and templates are the baseline's (only how much text is
        withheld may differ)."""
        return not set(self.scenarios) - TEXT_ONLY

    def profile(self, name: str) -> int:
        """Prompt-profile index of an extra (scenario) profile: after the operators' profiles."""
        return PROFILE_OPERATOR + len(self.operators) + self.extra_profiles.index(name)

    def operator_index(self, operator_id: str) -> int:
        return next(i for i, op in enumerate(self.operators) if op.operator_id == operator_id)

    @cached_property
    def user_agents(self) -> pa.Array:
        return pa.array([c[0] for c in self.clients], pa.string())

    @cached_property
    def fingerprints(self) -> pa.Array:
        return pa.array([c[1] for c in self.clients], pa.string())


def make_world(scenarios: Sequence[str], text_every: int, real: object | None = None) -> World:
    """The world of ``scenarios`` (already parsed): operators, clients, profiles, group sizes."""
    operators = list(OPERATORS)
    clients = list(BENIGN_CLIENTS)
    operator_clients: dict[str, tuple[int, ...]] = {}
    for op, profiles in OPERATOR_CLIENTS.items():
        operator_clients[op] = tuple(range(len(clients), len(clients) + len(profiles)))
        clients.extend(profiles)
    if "shared-proxy" in scenarios:
        operators.extend(SWARM_OPERATORS)
        operator_clients.update(SWARM_CLIENTS)
    if "takeover" in scenarios:
        operators.append(TAKEOVER_OPERATOR)
        operator_clients[TAKEOVER_OPERATOR.operator_id] = (len(clients),)
        clients.append(TAKEOVER_CLIENT)
    if "takeover-same-network" in scenarios:
        operators.append(TAKEOVER_HOME_OPERATOR)
        operator_clients[TAKEOVER_HOME_OPERATOR.operator_id] = (len(clients),)
        clients.append(TAKEOVER_HOME_CLIENT)
    extra_profiles = ("oneliners", "collection", "app") if "prompt-commons" in scenarios else ()
    shares = {group: share for s in scenarios for group, share in SCENARIO_GROUP_SHARES.get(s, {}).items()}
    return World(tuple(scenarios), tuple(operators), tuple(clients), operator_clients, extra_profiles, real,
                 text_every, shares)


def group_profile(world: World, group: str) -> str | None:
    """The extra prompt profile a scenario benign group uses, if any."""
    return {"prompt_oneliners": "oneliners", "prompt_collection": "collection", "popular_app": "app"}.get(group.split(":")[0])


# ---- templates and their probabilities ---------------------------------------------------------

# Families whose rows take the account's own real prompts under real-text (with this prefix);
# the takeover rings' customers write their own prompts too.
PERSONAL_FAMILIES = {"benign": "", "homework": "", "app_prefixed": APP_PREFIX, "op-takeover": "", "op-takeover-home": ""}


def catalogue(world: World) -> Catalogue:
    """Templates of the world. Baseline: the baseline catalogue, untouched. Real text: every
    operator's task body is a slot filled from its own slice of real prompts."""
    if world.baseline:
        return build_catalogue()
    real = world.real
    templates: dict[str, tuple[str, ...]] = {}
    extra: list[Family] = []
    vocab: dict[str, Sequence[str]] = {}
    for i, op in enumerate(world.operators):
        preamble = PREAMBLES.get(op.operator_id, SWARM_PREAMBLES.get(op.operator_id, ""))
        if real is not None and op.operator_id not in PERSONAL_FAMILIES:
            slot = f"realbody{i}"
            vocab[slot] = real.bodies[op.operator_id]  # type: ignore[attr-defined]
            templates[op.operator_id] = (preamble + "{" + slot + "}",)
        else:
            bodies = OPERATOR_BODIES.get(op.operator_id, SCENARIO_BODIES.get(op.operator_id, ()))
            templates[op.operator_id] = tuple(preamble + body for body in bodies)
    if vocab:
        extra.append(Family("real_vocabulary", (), vocab=vocab))
    if world.has("prompt-commons"):
        pool = real.collection if real is not None else collection_prompts()  # type: ignore[attr-defined]
        extra += [
            Family("oneliners", ONELINERS),
            Family("collection", ("{collection}",), vocab={"collection": pool}, weights={"collection": popularity(len(pool))}),
            Family("app_bare", (APP_SYSTEM_PROMPT,)),
            Family("app_prefixed", tuple(APP_PREFIX + b for b in BENIGN)),
        ]
    return build_catalogue(templates, extra)


def mixes(world: World) -> list[dict[str, float]]:
    """Template-family shares of every prompt profile, in profile-index order (see
    synthetic_accounts: ordinary, university, viral, three jobs, operators, extras)."""
    rows = baseline_mixes(world.operators)
    extras = {
        "oneliners": {"benign": 0.55, "oneliners": 0.45},
        "collection": {"benign": 0.5, "collection": 0.5},
        "app": {"benign": 0.35, "app_bare": 0.15, "app_prefixed": 0.5},
    }
    rows.extend(extras[name] for name in world.extra_profiles)
    return rows
