"""Prompt reduction: template keys, capability tags, chain-of-thought flag and MinHash signatures.

Small pure functions (``prekey``, ``normalise``, ``template_of``, ``template_id``,
``capability``, ``is_cot``, ``shingles``, ``minhashes``), shared by the loader and detection,
each with a vectorised twin the loader uses on whole columns (``prekeys``, ``normalise_many``,
``capability_many``, ``is_cot_many``, ``minhash_matrix``); the unit tests hold each pair to the
same answers. A template must be the same for two prompts built from one template with
different fills, so the reduction abstracts what varies:

1. ``prekey``: the first 1,000 characters; when the first line is a long preamble (at least
   ``PREAMBLE_MIN_WORDS - 1`` spaces) followed by more text, the rest is the task body and
   becomes ``<BODY>`` (attack prompts are a fixed operator preamble plus a variable task). A
   one-line prompt of more than ``LONG_WORDS`` spaces keeps its first ``HEAD_WORDS`` words and
   its last ``TAIL_WORDS`` (from its last ``TAIL_CHARS``) around ``<BODY>``, so a fixed
   closing instruction stays visible to template mining (loaders.template_mining).
2. ``normalise``: code blocks, quoted spans, numbers, e-mail addresses, URLs and mid-sentence
   capitalised words (names, places) become placeholders; whitespace collapses.

Capability and chain-of-thought are judged on the template text, so a template has one of each
(transparent keyword rules, first match wins: agentic, coding, math, reasoning, else other).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEAD_CHARS = 1000
PREAMBLE_MIN_WORDS = 8
LONG_WORDS = 60
HEAD_WORDS = 40
TAIL_WORDS = 24
TAIL_CHARS = 300
TEMPLATE_CHARS = 600
BODY = "<BODY>"

_WS = re.compile(r"[ \t\r\n\f\v]+")

# (pattern, replacement), applied in order by ``normalise`` (Python ``re``) and ``normalise_many``
# (RE2 via pyarrow): so the patterns use only syntax both engines read alike (explicit ASCII
# classes, no look-around); ``(?s)`` lets code blocks span lines. Order matters: code before
# quotes (code has quotes), e-mail/URL before numbers, numbers before names.
RULES: tuple[tuple[str, str], ...] = (
    (r"(?s)```.*?(```|$)", "<CODE>"),
    (r"`[^`\n]*`", "<Q>"),
    (r"\"[^\"\n]*\"|“[^”\n]*”|«[^»\n]*»", "<Q>"),
    (r"(^|[ \t\n(\[])'[^'\n]*'", r"\1<Q>"),
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "<EMAIL>"),
    (r"https?://[^ \t\n]+", "<URL>"),
    (r"[+-]?[0-9]+([.,:/][0-9]+)*", "<N>"),
    # A capitalised word after a word character and a space is mid-sentence: a name or a place.
    # Latin letters beyond ASCII are spelled out as ranges, which both engines read alike.
    (r"([A-Za-zÀ-ÖØ-öø-ž0-9,;>)] +)[A-ZÀ-ÖØ-Þ][A-Za-zÀ-ÖØ-öø-ž'&+-]*( [A-ZÀ-ÖØ-Þ][A-Za-zÀ-ÖØ-öø-ž'&+-]*)*",
     r"\1<NAME>"),
    # Whitespace: blank runs around a newline become one newline, other runs one space.
    (r"[ \t\r\f\v]*\n[ \t\r\n\f\v]*", "\n"),
    (r"[ \t\r\f\v]+", " "),
)
_COMPILED = tuple((re.compile(p, re.ASCII), r) for p, r in RULES)

# Capability rules: the first whose pattern matches (case-insensitive) names the capability.
# Evaluated on the template text (so one template has one capability), in Python and RE2.
CAPABILITIES: tuple[tuple[str, str], ...] = (
    ("agentic",
     r"(?i)\b(tools?|tool calls?|function call(ing)?|agent|autonomous|trajectory|browser|"
     r"observation|workflow|execute|action|api calls?|click)\b"),
    ("coding",
     r"(?i)<CODE>|\b(code|function|implement|refactor|bug|debug|compile|unit tests?|"
     r"python|javascript|typescript|java|rust|golang|sql|bash|api|endpoint|class|"
     r"software|runnable|program|programming|script|regex)\b"),
    ("math",
     r"(?i)\b(prove|proof|theorem|lemma|integral|derivative|equation|solve for|prime|"
     r"composite|algebra|calculus|probability|matrix|polynomial)\b"),
    ("reasoning",
     r"(?i)\b(reason|reasoning|step by step|justify|argument|logic|logical|decision|deduce|infer|"
     r"evaluate|assess|trade-offs?|multi-step|puzzle|counterexamples?)\b"),
)
_CAPABILITIES = tuple((name, re.compile(p, re.ASCII)) for name, p in CAPABILITIES)
CAPABILITY_NAMES = ("coding", "agentic", "reasoning", "math", "other")

# Chain-of-thought elicitation: asking for the reasoning itself, not just an answer.
COT = (
    r"(?i)\b(step[- ]by[- ]step|show (all )?(your|the) (work|reasoning|steps)|"
    r"(full|internal|complete) (internal )?reasoning|chain[- ]of[- ]thought|think (it )?through|"
    r"thought ?/ ?action|intermediate (steps?|calculations?)|explain (your|each|every) (reasoning|step))\b"
)
_COT = re.compile(COT, re.ASCII)


def prekey(prompt: str) -> str:
    """The part of a prompt its template depends on (see the module docstring, step 1)."""
    return _prekey(prompt[:HEAD_CHARS], prompt[-TAIL_CHARS:])


def _prekey(head: str, end: str) -> str:
    """``prekey`` from a prompt's first ``HEAD_CHARS`` and last ``TAIL_CHARS``."""
    first, sep, _rest = head.partition("\n")
    spaces = first.count(" ")
    if sep and spaces >= PREAMBLE_MIN_WORDS - 1:
        return first + "\n" + BODY
    if not sep and spaces > LONG_WORDS:
        return " ".join([*head.split(" ")[:HEAD_WORDS], BODY, *end.split(" ")[-TAIL_WORDS:]])
    return head


def prekeys(prompts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``prekey`` for a whole column with pyarrow kernels (nulls stay null)."""
    if isinstance(prompts, pa.ChunkedArray):
        prompts = prompts.combine_chunks()
    head = pc.utf8_slice_codeunits(prompts, 0, HEAD_CHARS)
    parts = pc.split_pattern(head, "\n", max_splits=1)
    first = pc.list_element(parts, 0)
    has_nl = pc.greater(pc.list_value_length(parts), 1)
    spaces = pc.count_substring(first, " ")
    preamble = pc.and_(has_nl, pc.greater_equal(spaces, PREAMBLE_MIN_WORDS - 1))
    out = pc.if_else(preamble, pc.binary_join_element_wise(first, "\n" + BODY, ""), head)
    long_single = pc.and_(pc.invert(has_nl), pc.greater(spaces, LONG_WORDS))
    if pc.any(long_single).as_py():
        # Rare (long one-line prompts): done in Python on just those rows.
        idx = np.flatnonzero(long_single.to_numpy(zero_copy_only=False))
        values = out.to_pylist()
        rows = pa.array(idx)
        raw = head.take(rows).to_pylist()
        ends = pc.utf8_slice_codeunits(prompts.take(rows), -TAIL_CHARS).to_pylist()
        for i, text, end in zip(idx, raw, ends, strict=True):
            values[i] = _prekey(text, end)
        out = pa.array(values, pa.string())
    return out


def normalise(text: str) -> str:
    """The template text of a pre-key: fills replaced by placeholders, whitespace collapsed."""
    for pattern, replacement in _COMPILED:
        text = pattern.sub(replacement, text)
    return text.strip(" \n")[:TEMPLATE_CHARS]


def normalise_many(texts: pa.Array) -> pa.Array:
    """``normalise`` for a whole string column, with RE2 kernels (the unit tests hold the two to
    the same answers)."""
    for pattern, replacement in RULES:
        texts = pc.replace_substring_regex(texts, pattern=pattern, replacement=replacement)
    texts = pc.utf8_trim(texts, characters=" \n")
    return pc.utf8_slice_codeunits(texts, 0, TEMPLATE_CHARS)


def template_of(prompt: str) -> str:
    """The normalised template of a raw prompt."""
    return normalise(prekey(prompt))


def template_id(template: str) -> str:
    """A stable id for a template: 16 hex digits of its SHA-1."""
    return "t" + hashlib.sha1(template.encode("utf-8")).hexdigest()[:16]  # noqa: S324 - an id, not security


def capability(text: str) -> str:
    """The capability a prompt (or template) targets, by the first matching keyword rule."""
    for name, pattern in _CAPABILITIES:
        if pattern.search(text):
            return name
    return "other"


def capability_many(texts: pa.Array) -> pa.Array:
    """``capability`` for a whole string column (first matching rule wins)."""
    out = pa.nulls(len(texts), pa.string())
    for name, pattern in reversed(CAPABILITIES):
        hit = pc.fill_null(pc.match_substring_regex(texts, pattern=pattern), False)
        out = pc.if_else(hit, pa.scalar(name), out)
    return pc.if_else(pc.is_null(texts), pa.scalar(None, pa.string()), pc.fill_null(out, "other"))


def is_cot_many(texts: pa.Array) -> pa.Array:
    """``is_cot`` for a whole string column."""
    return pc.fill_null(pc.match_substring_regex(texts, pattern=COT), False)


def is_cot(text: str) -> bool:
    """True when the text asks for chain-of-thought (the reasoning itself)."""
    return bool(_COT.search(text))


def shingles(template: str) -> list[bytes]:
    """Distinct word bigrams (and unigrams for very short texts) of a template, for MinHash."""
    words = template.lower().split()
    grams = {a + " " + b for a, b in zip(words, words[1:], strict=False)}
    if len(words) < 3:
        grams.update(words)
    return [g.encode("utf-8") for g in grams] or [b""]


def minhashes(templates: Sequence[str], num_perm: int = 64) -> list[list[int]]:
    """``minhash_matrix`` as lists of ints."""
    return [[int(v) for v in row] for row in minhash_matrix(templates, num_perm)]


def minhash_matrix(templates: Sequence[str], num_perm: int = 64) -> np.ndarray:
    """MinHash signatures of templates over their ``shingles``: exactly what datasketch's
    ``MinHash(num_perm, seed=1, hashfunc=zlib.crc32).update_batch(shingles)`` gives (the unit
    tests check), computed for many templates at once with numpy (CRC-32 instead of datasketch's
    default SHA-1 because it is ten times cheaper per shingle and as stable). The linkage reads
    them back with ``LeanMinHash(seed=1, hashvalues=...)``."""
    from datasketch import MinHash
    from datasketch import minhash as dm

    out: list[np.ndarray] = []
    proto = MinHash(num_perm=num_perm, seed=1, hashfunc=zlib.crc32)
    a, b = proto.permutations
    for start in range(0, len(templates), 20_000):
        tokens = [shingles(t) for t in templates[start : start + 20_000]]
        hashes = [zlib.crc32(s) for toks in tokens for s in toks]
        if proto.scheme == dm._SCHEME_LEGACY:
            hv = np.array(hashes, dtype=np.uint64, ndmin=2).T
            phv = np.bitwise_and((hv * a + b) % dm._mersenne_prime, dm._max_hash)
        else:
            hv = dm._fmix(proto._hash_input_array(hashes).reshape(-1, 1), dm._SCHEME_WIDTHS[proto.scheme])
            phv = hv * a + b
        offsets = np.cumsum([0] + [len(t) for t in tokens[:-1]])
        signatures = np.minimum(np.minimum.reduceat(phv, offsets, axis=0), proto.hashvalues)
        out.append(signatures.astype(np.uint32))
    return np.concatenate(out) if out else np.zeros((0, num_perm), np.uint32)


def describe(templates: Iterable[str]) -> list[tuple[str, str, bool]]:
    """(template_id, capability, cot) of each template."""
    return [(template_id(t), capability(t), is_cot(t)) for t in templates]
