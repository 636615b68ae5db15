"""The prompt templates' properties, column-wise: what detection reads of millions of templates.

At the seed scale with real text the staging area holds about two million readable templates
(each with an example of up to 2,000 characters) and the graph a few million withheld ones
(``h:<hash>`` ids, no text). One Python dict of properties per template costs several GiB
(a dict and its strings per row); here the text stays in Arrow columns, capability and
chain-of-thought in NumPy, and the only per-template Python object is the id index. A
template's property dict is built when asked for (a reason's text, an indicator match); the
bulk readers (``profile_columns``, ``containing``) stay column-wise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graph.staging import WITHHELD_PREFIX

TEXT_COLUMNS = ("template", "example")


class TemplateProps(Mapping[str, dict[str, Any]]):
    """template id -> properties, over ``staged`` (templates.parquet's template_id, template,
    example, capability, cot) and ``extra`` (the graph's nodes staging lacks). A withheld id
    (``WITHHELD_PREFIX``) that neither holds reads as ``{"hashed": True}``: its text was never
    seen, so it says nothing of capability.

    >>> table = pa.table({"template_id": ["t1"], "template": ["fix <*>"], "example": ["fix this"],
    ...                   "capability": ["coding"], "cot": [False]})
    >>> props = TemplateProps(table, {"t9": {"template": "x"}})
    >>> props["t1"]["capability"], props.get("h:ab"), sorted(props.containing("FIX"))
    ('coding', {'hashed': True}, ['t1'])
    """

    def __init__(self, staged: pa.Table | None = None, extra: Mapping[str, dict[str, Any]] | None = None) -> None:
        staged = staged if staged is not None else pa.table({"template_id": pa.array([], pa.string())})
        ids = [str(t) for t in staged.column("template_id").to_pylist()]
        self._ids = ids  # row -> id, for column-wise answers
        self._row = {t: i for i, t in enumerate(ids)}
        self._text = {c: staged.column(c).combine_chunks() if c in staged.column_names else pa.nulls(len(ids), pa.string())
                      for c in TEXT_COLUMNS}
        capability = staged.column("capability") if "capability" in staged.column_names else pa.nulls(len(ids), pa.string())
        encoded = pc.fill_null(capability.cast(pa.string()), "other").combine_chunks().dictionary_encode()
        self._capabilities = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
        self._capability = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        cot = staged.column("cot") if "cot" in staged.column_names else pa.nulls(len(ids), pa.bool_())
        self._cot = pc.fill_null(cot.cast(pa.bool_()), False).to_numpy(zero_copy_only=False).astype(bool)
        self._extra: dict[str, dict[str, Any]] = {}
        self.add_missing(extra or {})

    def add_missing(self, extra: Mapping[str, dict[str, Any]]) -> None:
        """Take the properties of ``extra``'s templates that staging does not hold."""
        self._extra.update((k, v) for k, v in extra.items() if k not in self._row)

    def __getitem__(self, key: str) -> dict[str, Any]:
        row = self._row.get(key)
        if row is not None:
            return {"template": self._text["template"][row].as_py(), "example": self._text["example"][row].as_py(),
                    "capability": str(self._capabilities[self._capability[row]]), "cot": bool(self._cot[row])}
        found = self._extra.get(key)
        if found is not None:
            return found
        if key.startswith(WITHHELD_PREFIX):
            return {"hashed": True}
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in self._row or key in self._extra or (isinstance(key, str) and key.startswith(WITHHELD_PREFIX))

    def __iter__(self) -> Iterator[str]:
        yield from self._row
        yield from self._extra

    def __len__(self) -> int:
        return len(self._row) + len(self._extra)

    def profile_columns(self, keys: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """For ``keys``: the capability names, then per key its capability's index into them,
        whether it elicits chain of thought, and whether its text was read (not withheld)."""
        rows = np.fromiter((self._row.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        staged = rows >= 0
        names = [str(c) for c in self._capabilities]
        extra_caps = {str(self.get(k, {}).get("capability") or "other") for k, s in zip(keys, staged.tolist(), strict=True) if not s}
        names = sorted(set(names) | extra_caps)
        remap = np.asarray([names.index(str(c)) for c in self._capabilities], dtype=np.int64)
        capability = np.zeros(len(keys), dtype=np.int64)
        cot = np.zeros(len(keys), dtype=bool)
        read = np.ones(len(keys), dtype=bool)
        capability[staged] = remap[self._capability[rows[staged]]] if remap.size else 0
        cot[staged] = self._cot[rows[staged]]
        for i in np.flatnonzero(~staged).tolist():
            props = self.get(keys[i], {})
            capability[i] = names.index(str(props.get("capability") or "other"))
            cot[i] = bool(props.get("cot"))
            read[i] = not props.get("hashed")
        return names, capability, cot, read

    def containing(self, needle: str) -> set[str]:
        """Ids whose template or example contains ``needle`` (case-insensitive)."""
        found = np.zeros(len(self._row), dtype=bool)
        for column in self._text.values():
            if len(column):
                hit = pc.match_substring(column, needle, ignore_case=True)
                found |= pc.fill_null(hit, False).to_numpy(zero_copy_only=False).astype(bool)
        out = {self._ids[i] for i in np.flatnonzero(found).tolist()}
        low = needle.lower()
        out.update(k for k, v in self._extra.items()
                   if low in f"{v.get('template') or ''}\n{v.get('example') or ''}".lower())
        return out
