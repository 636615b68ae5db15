"""Per-chunk derived columns: the enrichment that needs Python, done once per distinct value.

Each function takes a chunk (string columns, see ``loaders.reader``) and returns it with the
``_d_<name>`` columns ``loaders.validate.row_check_sql`` expects. Values are dictionary-encoded
first, so a column of a million rows with ten thousand distinct IPs costs ten thousand Python
calls, and the answers are spread back with one ``take``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from graph.staging import WITHHELD_PREFIX
from loaders import prompts
from loaders.enrich import (
    IpResolver,
    normalise_name,
    normalise_phone,
    parse_email,
    parse_network,
    salted_hash,
)
from loaders.validate import TableSpec

EXAMPLE_CHARS = 2000


def ensure_columns(chunk: pa.Table, spec: TableSpec) -> pa.Table:
    """Add every contract column the file lacks, as nulls, so one SQL fits every file."""
    for col in spec.columns:
        if col not in chunk.column_names:
            chunk = chunk.append_column(col, pa.nulls(chunk.num_rows, pa.string()))
    return chunk


def map_distinct(column: pa.ChunkedArray | pa.Array, fn: Callable[[str], Sequence[Any] | None],
                 types: Sequence[pa.DataType]) -> list[pa.Array]:
    """Apply ``fn`` to each distinct non-null value; nulls (and ``fn`` returning None) give
    nulls. Returns one array per output type, aligned with ``column``."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = column.dictionary_encode()
    answers = [fn(v) if v is not None else None for v in encoded.dictionary.to_pylist()]
    out = []
    for j, typ in enumerate(types):
        values = pa.array([a[j] if a is not None else None for a in answers], typ)
        out.append(values.take(encoded.indices))
    return out


def _append(chunk: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return chunk.append_column("_d_" + name, values)


def _nonblank(column: pa.ChunkedArray) -> pa.Array:
    """The column with blank strings as nulls."""
    col = column.combine_chunks()
    blank = pc.equal(pc.utf8_trim_whitespace(col), "")
    return pc.if_else(blank, pa.scalar(None, pa.string()), col)


def derive_accounts(chunk: pa.Table, resolver: IpResolver, salt: str) -> pa.Table:
    encoded = _nonblank(chunk["signup_ip"]).dictionary_encode()
    chunk = _append(chunk, "signup_ip", resolver.resolve_many(encoded.dictionary)[0].take(encoded.indices))

    def email(v: str) -> tuple[str, str | None, str] | None:
        parsed = parse_email(v)
        if parsed is None:
            return None
        return parsed.domain, salted_hash(salt, parsed.normalised), parsed.shape

    domain, ehash, shape = map_distinct(_nonblank(chunk["email"]), email, [pa.string()] * 3)
    chunk = _append(chunk, "email_domain", domain)
    chunk = _append(chunk, "email_hash", ehash)
    chunk = _append(chunk, "email_shape", shape)
    (phone,) = map_distinct(_nonblank(chunk["phone"]),
                            lambda v: (salted_hash(salt, normalise_phone(v)),), [pa.string()])
    return _append(chunk, "phone_hash", phone)


def derive_payments(chunk: pa.Table, salt: str) -> pa.Table:
    (name,) = map_distinct(_nonblank(chunk["billing_name"]),
                           lambda v: (salted_hash(salt, normalise_name(v)),), [pa.string()])
    return _append(chunk, "billing_name_hash", name)


def derive_ip_intel(chunk: pa.Table) -> pa.Table:
    def network(v: str) -> tuple[str] | None:
        net = parse_network(v)
        return None if net is None else (str(net),)

    (net,) = map_distinct(_nonblank(chunk["network"]), network, [pa.string()])
    return _append(chunk, "network", net)


@dataclass
class TemplateCollector:
    """The templates met while staging exchanges: id -> (template, example, capability, cot),
    first occurrence wins. ``drain`` hands over the new ones so memory stays bounded."""

    seen: set[str] = field(default_factory=set)
    pending: dict[str, tuple[str, str, str, bool]] = field(default_factory=dict)
    max_seen: int = 2_000_000

    def add(self, template_id: str, template: str, example: str, capability: str, cot: bool) -> None:
        if template_id in self.seen or template_id in self.pending:
            return
        self.pending[template_id] = (template, example[:EXAMPLE_CHARS], capability, cot)

    def drain(self) -> pa.Table | None:
        if not self.pending:
            return None
        ids = list(self.pending)
        rows = [self.pending[i] for i in ids]
        if len(self.seen) > self.max_seen:
            self.seen.clear()  # re-sent templates are deduplicated again when merged
        self.seen.update(ids)
        self.pending.clear()
        return pa.table({
            "template_id": pa.array(ids, pa.string()),
            "template": pa.array([r[0] for r in rows], pa.string()),
            "example": pa.array([r[1] for r in rows], pa.string()),
            "capability": pa.array([r[2] for r in rows], pa.string()),
            "cot": pa.array([r[3] for r in rows], pa.bool_()),
        })


def derive_exchanges(chunk: pa.Table, resolver: IpResolver, templates: TemplateCollector) -> pa.Table:
    encoded = _nonblank(chunk["ip"]).dictionary_encode()
    ips, nets = resolver.resolve_many(encoded.dictionary)
    addr, network = ips.take(encoded.indices), nets.take(encoded.indices)
    chunk = _append(chunk, "ip", addr)
    chunk = _append(chunk, "network", network)

    prompt = chunk["prompt"].combine_chunks()
    tid, cap, cot, row_template = template_columns(prompt, templates)
    hashed = _nonblank(chunk["prompt_hash"])
    hash_tid = pc.binary_join_element_wise(WITHHELD_PREFIX, hashed, "")
    use_hash = pc.and_(pc.is_null(tid), pc.is_valid(hash_tid))
    if pc.any(use_hash).as_py():
        # Text withheld: the hash still says "same prompt", but nothing about capability, and
        # such templates get no templates.parquet row (no text to show or MinHash).
        tid = pc.if_else(use_hash, hash_tid, tid)
    chunk = _append(chunk, "template_id", tid)
    chunk = _append(chunk, "capability", cap)
    chunk = _append(chunk, "cot", cot)
    return _append(chunk, "prompt_chars", pc.utf8_length(prompt).cast(pa.int64()))


def template_columns(prompt: pa.Array, templates: TemplateCollector) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """template_id, capability and cot per row of a prompt column (null for a missing or blank
    prompt), registering new templates with ``templates``. The regexes run once per distinct
    pre-key and the hashing once per distinct template."""
    by_key = prompts.prekeys(prompt).dictionary_encode()
    normalised = prompts.normalise_many(by_key.dictionary)
    normalised = pc.if_else(pc.equal(normalised, ""), pa.scalar(None, pa.string()), normalised)
    by_template = normalised.dictionary_encode()
    distinct = by_template.dictionary
    texts = distinct.to_pylist()
    ids = pa.array([prompts.template_id(t) for t in texts], pa.string())
    caps = prompts.capability_many(distinct)
    cots = prompts.is_cot_many(distinct)
    row_template = by_template.indices.take(by_key.indices)
    _register(prompt, row_template, texts, ids.to_pylist(), caps.to_pylist(), cots.to_pylist(), templates)
    return ids.take(row_template), caps.take(row_template), cots.take(row_template), row_template


def _register(prompt: pa.Array, row_template: pa.Array, texts: list[str], ids: list[str],
              caps: list[str], cots: list[bool], templates: TemplateCollector) -> None:
    """Register each new template with the first raw prompt of the chunk that produced it."""
    import numpy as np

    wanted = [i for i, tid in enumerate(ids) if tid not in templates.seen and tid not in templates.pending]
    if not wanted:
        return
    idx = pc.fill_null(row_template, -1).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(np.isin(idx, np.array(wanted)))
    values, first = np.unique(idx[rows], return_index=True)
    positions = rows[first]
    examples = prompt.take(pa.array(positions, pa.int64())).to_pylist()
    for d, example in zip(values.tolist(), examples, strict=True):
        templates.add(ids[d], texts[d], example or "", caps[d], bool(cots[d]))
