"""Template mining: the wrappers an operator wrote, found across the filled-in prompts.

``loaders.prompts`` reduces each prompt to a *fine* template (fills such as numbers, quotes and
names abstracted). A wrapper filled with thousands of different tasks still gives thousands of
fine templates, one per task. This module finds the fixed part they share, a prefix and/or a
suffix around one varying slot, and maps every fine template of the wrapper to one *wrapper*
template whose text marks the slot with ``SLOT`` (``<*>``).

How a wrapper is found (``mine_group``), over the tokens of the fine templates' text (a token is
a run of non-blank characters with the blanks after it, so joining tokens gives the text back):

1. Candidates: fine templates grouped by an anchor, their first ``ANCHOR_CHARS`` characters
   extended to the end of the token (prefix wrappers), else their last ones (suffix wrappers);
   a group needs ``MIN_VARIANTS`` distinct fine templates. At most ``SAMPLE_MEMBERS`` of a group
   (the first by template id, so the same set gives the same sample) are read into Python.
2. A prefix trie walk: at each token position, the members agreeing on the most common token
   stay the core while they are at least ``CORE_SHARE`` of it (the others are outliers; those
   that agree among themselves in ``MIN_VARIANTS`` or more are walked on their own). Where the
   members no longer agree the slot begins; the suffix is then the longest run of last tokens
   ``CORE_SHARE`` of the core share (all of it, when the prefix alone is fixed enough).
3. The wrapper stands when its fixed part (prefix + suffix, placeholders such as ``<N>`` not
   counted) has at least ``MIN_FIXED_CHARS`` literal characters: two people whose prompts both
   open with "Can you help me write a" have not used one wrapper, an operator pasting the same
   two sentences around every task has. Otherwise the walk goes on into each branch of at
   least ``MIN_VARIANTS`` members (two wrappers with a common opening).

Membership is then decided in SQL over every fine template (``match_sql``): a fine template
belongs to a wrapper when its text starts with the prefix and ends with the suffix (and is at
least as long as both), the longest fixed part winning, then the smallest id. The wrapper's id
is ``prompts.template_id`` of its text, and wrappers are kept in templates.parquet (``kind``,
``prefix``, ``suffix``), so a later bundle maps the same wrapper to the same id before mining
its own. Everything is a function of the set of fine templates, not of their order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from loaders import prompts

SLOT = "<*>"
ANCHOR_CHARS = 24
MIN_VARIANTS = 3
MIN_FIXED_CHARS = 32
CORE_SHARE = 0.8
SAMPLE_MEMBERS = 2000
MAX_TOKENS = 120  # no fine template is longer than TEMPLATE_CHARS anyway; bounds the walk
PREFIX, SUFFIX = "prefix", "suffix"

_TOKEN = re.compile(r"[^ \n]+[ \n]*|[ \n]+")
_PLACEHOLDER = re.compile(r"<(?:N|Q|NAME|CODE|EMAIL|URL|BODY|\*)>")
# The anchors as RE2 patterns (DuckDB's regexp_extract), matching ``anchor`` below.
PREFIX_ANCHOR_RE = "^(?s:.{" + str(ANCHOR_CHARS) + r"}[^ \n]*)"
SUFFIX_ANCHOR_RE = r"(?s:[^ \n]*.{" + str(ANCHOR_CHARS) + "})$"


@dataclass(frozen=True)
class Wrapper:
    """A mined wrapper: the fixed text before and after the slot."""

    kind: str  # PREFIX or SUFFIX: which anchor found it (and which join finds its members)
    prefix: str
    suffix: str
    capability: str
    cot: bool
    example_of: str  # the member template id whose example the wrapper shows

    @property
    def template(self) -> str:
        """The wrapper's text, the slot marked with ``SLOT``."""
        return self.prefix + SLOT + (" " + self.suffix if self.suffix else "")

    @property
    def template_id(self) -> str:
        return prompts.template_id(self.template)


def tokens(text: str) -> list[str]:
    """The tokens of a template text (each with its trailing blanks; they join back to it)."""
    return _TOKEN.findall(text)


def literal_chars(text: str) -> int:
    """Characters of a fixed part that are really fixed: placeholders and blanks not counted."""
    return len(_PLACEHOLDER.sub("", text).replace(" ", "").replace("\n", ""))


def anchor(text: str, kind: str) -> str:
    """The grouping key of a text (see the module docstring, step 1); '' when too short."""
    if len(text) < ANCHOR_CHARS:
        return ""
    if kind == PREFIX:
        end = ANCHOR_CHARS
        while end < len(text) and text[end] not in " \n":
            end += 1
        return text[:end]
    start = len(text) - ANCHOR_CHARS
    while start > 0 and text[start - 1] not in " \n":
        start -= 1
    return text[start:]


def _agree(forms: list[list[str]], active: list[int], depth: int) -> Counter[str]:
    """How many of the ``active`` members have each token at position ``depth``."""
    return Counter(forms[m][depth] for m in active if depth < len(forms[m]))


def _top(votes: Counter[str]) -> tuple[str, int]:
    """The most common token (ties: the smallest), so the walk does not depend on order."""
    return min(votes.items(), key=lambda kv: (-kv[1], kv[0]))


def _tail_depth(forms: list[list[str]], active: list[int], head: int, share: float) -> tuple[int, list[int]]:
    """The longest run of last tokens (after each member's first ``head``) shared by at least
    ``share`` of ``active``: its length and the members that share it."""
    core = list(active)
    need = max(1, -(-round(share * 1000) * len(active) // 1000))
    depth = 0
    while depth < MAX_TOKENS:
        votes = Counter(forms[m][-1 - depth] for m in core if len(forms[m]) - depth > head)
        if not votes:
            break
        token, count = _top(votes)
        if count < need:
            break
        core = [m for m in core if len(forms[m]) - depth > head and forms[m][-1 - depth] == token]
        depth += 1
    return depth, core


def _walk(forms: list[list[str]], fixed_chars: list[list[int]], active: list[int], depth: int,
          out: list[tuple[list[int], int, int]]) -> None:
    """Steps 2 and 3 of the module docstring on the ``active`` members, which share their first
    ``depth`` tokens; each wrapper found is added to ``out`` as (members, head, tail)."""
    while depth < MAX_TOKENS and len(active) >= MIN_VARIANTS:
        votes = _agree(forms, active, depth)
        if not votes:
            return
        token, count = _top(votes)
        if count >= CORE_SHARE * len(active):
            for other, n in sorted(votes.items()):
                if other != token and n >= MIN_VARIANTS:
                    _walk(forms, fixed_chars, [m for m in active if depth < len(forms[m]) and forms[m][depth] == other],
                          depth + 1, out)
            active = [m for m in active if depth < len(forms[m]) and forms[m][depth] == token]
            depth += 1
            continue
        head_fixed = sum(fixed_chars[active[0]][:depth])
        tail, kept = _tail_depth(forms, active, depth, 1.0 if head_fixed >= MIN_FIXED_CHARS else CORE_SHARE)
        m0 = kept[0] if kept else active[0]
        tail_fixed = sum(fixed_chars[m0][len(forms[m0]) - tail:]) if tail else 0
        if len(kept) >= MIN_VARIANTS and head_fixed + tail_fixed >= MIN_FIXED_CHARS:
            out.append((kept, depth, tail))
            return
        for branch, n in sorted(votes.items()):
            if n >= MIN_VARIANTS:
                _walk(forms, fixed_chars, [m for m in active if depth < len(forms[m]) and forms[m][depth] == branch],
                      depth + 1, out)
        return


def _make(kind: str, prefix: str, suffix: str, ids: list[str], caps: list[str], cots: list[bool]) -> Wrapper:
    """A wrapper with its members' most common capability and chain-of-thought flag."""
    capability = _top(Counter(caps))[0]
    return Wrapper(kind, prefix, suffix, capability, sum(cots) * 2 > len(cots), min(ids))


def mine_group(texts: Sequence[str], ids: Sequence[str], caps: Sequence[str], cots: Sequence[bool],
               kind: str = PREFIX) -> list[Wrapper]:
    """The wrappers among fine templates that share an anchor (see the module docstring).
    ``kind`` SUFFIX walks the tokens from the end: the fixed part is found from there."""
    order = sorted(range(len(ids)), key=lambda i: ids[i])[:SAMPLE_MEMBERS]
    if len(order) < MIN_VARIANTS:
        return []
    originals = [tokens(texts[i]) for i in order]
    forms = [[t.rstrip(" \n") for t in toks] for toks in originals]  # compared without blanks
    if kind == SUFFIX:
        forms = [list(reversed(f)) for f in forms]
    fixed_chars = [[literal_chars(t) for t in f] for f in forms]
    found: list[tuple[list[int], int, int]] = []
    _walk(forms, fixed_chars, list(range(len(order))), 0, found)
    out = []
    for kept, head, tail in found:
        toks = originals[kept[0]]
        if kind == SUFFIX:
            head, tail = tail, head
        prefix = "".join(toks[:head])
        suffix = "".join(toks[len(toks) - tail:]).rstrip(" \n") if tail else ""
        out.append(_make(kind, prefix, suffix, [ids[order[k]] for k in kept], [caps[order[k]] for k in kept],
                         [bool(cots[order[k]]) for k in kept]))
    return out


def usable(wrapper: Wrapper) -> bool:
    """A wrapper the SQL join can find members for: its anchored side is long enough."""
    side = wrapper.prefix if wrapper.kind == PREFIX else wrapper.suffix
    return len(side) >= ANCHOR_CHARS


def rows(wrappers: Iterable[Wrapper]) -> list[dict[str, object]]:
    """Wrappers as rows (deduplicated by id, first wins)."""
    out: dict[str, dict[str, object]] = {}
    for w in wrappers:
        if usable(w) and w.template_id not in out:
            out[w.template_id] = {"template_id": w.template_id, "template": w.template, "kind": w.kind,
                                  "prefix": w.prefix, "suffix": w.suffix, "capability": w.capability,
                                  "cot": w.cot, "example_of": w.example_of}
    return [out[k] for k in sorted(out)]


def match_sql(fine: str, wrappers: str) -> str:
    """SQL giving ``template_id -> wrapper_id`` for the fine templates (relation ``fine``:
    template_id, template) that belong to a wrapper (relation ``wrappers``: template_id, kind,
    prefix, suffix); the longest fixed part wins, then the smallest wrapper id."""
    anchor = ANCHOR_CHARS
    return f"""
        WITH hits AS (
            SELECT f.template_id, w.template_id AS wrapper_id, length(w.prefix) + length(w.suffix) AS fixed
            FROM {fine} f JOIN {wrappers} w ON w.kind = '{PREFIX}' AND left(f.template, {anchor}) = left(w.prefix, {anchor})
            WHERE starts_with(f.template, w.prefix) AND ends_with(f.template, w.suffix)
              AND length(f.template) >= length(w.prefix) + length(w.suffix) AND f.template_id <> w.template_id
            UNION ALL
            SELECT f.template_id, w.template_id, length(w.prefix) + length(w.suffix)
            FROM {fine} f JOIN {wrappers} w ON w.kind = '{SUFFIX}' AND right(f.template, {anchor}) = right(w.suffix, {anchor})
            WHERE starts_with(f.template, w.prefix) AND ends_with(f.template, w.suffix)
              AND length(f.template) >= length(w.prefix) + length(w.suffix) AND f.template_id <> w.template_id)
        SELECT template_id, arg_min(wrapper_id, (-fixed, wrapper_id)) AS wrapper_id FROM hits GROUP BY template_id"""  # noqa: S608 - relation names from the caller
