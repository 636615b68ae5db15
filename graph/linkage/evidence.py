"""Reason records and the pair-evidence accumulator every signal family writes into.

A *reason* says why two accounts are linked: the signal family and kind, the shared entity
(label, key), how many accounts share it, the weight it contributed and details (counts,
first/last time, example prompts). The UI shows these verbatim under "why are these two linked?",
so they are plain JSON-able data.

Weights combine by noisy-OR: inside a family, ``1 - prod(1 - w)`` over its reasons (several
shared IPs are stronger than one, but never above 1), and across families the same way, so a
pair's weight stays in [0, 1] and one very strong reason is enough for a strong link.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FAMILIES = ("network", "payment", "device", "email", "prompt", "timing")

Pair = tuple[str, str]


def pair_of(a: str, b: str) -> Pair:
    """The canonical (smaller, larger) key of an unordered account pair."""
    return (a, b) if a < b else (b, a)


@dataclass(frozen=True, slots=True)
class Reason:
    """One piece of evidence linking a pair of accounts."""

    family: str
    kind: str
    label: str
    key: str
    accounts: int
    weight: float
    detail: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "kind": self.kind,
            "entity": {"label": self.label, "key": self.key},
            "accounts": self.accounts,
            "weight": round(self.weight, 4),
            **self.detail,
        }


@dataclass(frozen=True, slots=True)
class Hub:
    """A shared value left out as evidence, and why (``why`` names the rule)."""

    family: str
    label: str
    key: str
    accounts: int
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"family": self.family, "label": self.label, "key": self.key, "accounts": self.accounts, "why": self.why}


def rarity(n: int) -> float:
    """How much a value shared by ``n`` accounts says about any pair of them: 1 for up to four
    sharers, falling as 2/sqrt(n) so a value shared by 50 counts about a quarter."""
    return 1.0 if n <= 4 else 2.0 / math.sqrt(n)


def volume_factor(count_a: int, count_b: int, full: int = 5) -> float:
    """How much two accounts' use of a shared value counts, by the lighter user's volume:
    a one-off use (a stranger on a proxy exit once, a prompt pasted once) counts a fifth of
    sustained use by both."""
    return min(1.0, max(1, min(count_a, count_b)) / full)


def noisy_or(weights: Iterable[float]) -> float:
    """Combine independent evidence: 1 - prod(1 - w)."""
    miss = 1.0
    for w in weights:
        miss *= 1.0 - min(max(w, 0.0), 1.0)
    return 1.0 - miss


class Evidence:
    """Pairwise evidence: per pair, each family's combined score and the strongest reasons."""

    def __init__(self, max_reasons_per_pair: int = 8) -> None:
        self.max_reasons = max_reasons_per_pair
        self._miss: dict[Pair, dict[str, float]] = {}
        self._reasons: dict[Pair, list[Reason]] = {}
        self.hubs: list[Hub] = []

    def __len__(self) -> int:
        return len(self._miss)

    def add(self, a: str, b: str, reason: Reason) -> None:
        """Record ``reason`` for the pair (a, b); a self-pair is ignored."""
        if a == b or reason.weight <= 0:
            return
        pair = pair_of(a, b)
        fams = self._miss.setdefault(pair, {})
        fams[reason.family] = fams.get(reason.family, 1.0) * (1.0 - min(reason.weight, 1.0))
        kept = self._reasons.setdefault(pair, [])
        kept.append(reason)
        if len(kept) > self.max_reasons * 2:
            kept.sort(key=lambda r: -r.weight)
            del kept[self.max_reasons :]

    def add_group(self, members: Sequence[str], reason_for: Callable[[str, str], Reason | None]) -> int:
        """Add a reason for every pair of ``members`` (the caller caps the group size first).
        Returns the number of pairs that got a reason."""
        ordered = sorted(set(members))
        added = 0
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                reason = reason_for(a, b)
                if reason is not None:
                    self.add(a, b, reason)
                    added += 1
        return added

    def suppress(self, hub: Hub) -> None:
        self.hubs.append(hub)

    def pairs(self) -> list[Pair]:
        return sorted(self._miss)

    def family_scores(self, pair: Pair) -> dict[str, float]:
        return {f: 1.0 - miss for f, miss in sorted(self._miss.get(pair, {}).items())}

    def weight(self, pair: Pair, exclude: frozenset[str] = frozenset()) -> float:
        """The pair's combined weight, optionally without some families (for stability)."""
        miss = 1.0
        for fam, m in self._miss.get(pair, {}).items():
            if fam not in exclude:
                miss *= m
        return 1.0 - miss

    def weights(self, exclude: frozenset[str] = frozenset(), minimum: float = 0.0) -> dict[Pair, float]:
        """Every pair's weight (without ``exclude``d families) that is at least ``minimum``."""
        out = {}
        for pair in self._miss:
            w = self.weight(pair, exclude)
            if w > 0 and w >= minimum:
                out[pair] = w
        return out

    def families(self, pair: Pair, minimum: float = 0.0) -> list[str]:
        return [f for f, s in self.family_scores(pair).items() if s > minimum]

    def reasons(self, pair: Pair) -> list[Reason]:
        kept = sorted(self._reasons.get(pair, []), key=lambda r: (-r.weight, r.family, r.kind, r.key))
        return kept[: self.max_reasons]
