"""Who uses each value of one label, column-wise: the form detection keeps the big tables in.

At the seed scale accounts send tens of millions of (account, template) pairs; one Python
object per use would need several GiB. ``UseTable`` keeps them as NumPy columns (value,
account, count, first and last use as epoch seconds) sorted by value then account, and still
reads as the ``{value: {account: Use}}`` mapping the linkers and scoring were written against:
``table[value]`` builds that value's small dict on demand. Code that walks every use works on
the columns instead (``rows_of``, ``counts``, ``account_rows``).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graph.props import epoch

NO_TIME = int(np.iinfo(np.int64).min)
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(slots=True)
class Use:
    """One account's use of one shared value."""

    count: int = 0
    first: str = ""
    last: str = ""

    def merge(self, other: Use) -> None:
        self.count += other.count
        if other.first and (not self.first or other.first < self.first):
            self.first = other.first
        if other.last and other.last > self.last:
            self.last = other.last


def to_epoch(text: str) -> int:
    """Whole epoch seconds of an ISO-8601 UTC time, ``NO_TIME`` when empty or unparseable."""
    value = epoch(text)
    return NO_TIME if value is None else int(value // 1)


def to_iso(seconds: int) -> str:
    """The loader's ISO text of epoch seconds; '' for ``NO_TIME``."""
    if seconds == NO_TIME:
        return ""
    return time.strftime(ISO_FORMAT, time.gmtime(seconds))


class UseTable(Mapping[str, Mapping[str, Use]]):
    """Uses of one label's values; rows sorted by (value, account).

    ``values_sorted``: the distinct values, sorted; ``offsets[i]:offsets[i + 1]`` are the rows of
    ``values_sorted[i]``; ``account`` indexes ``names`` (sorted account ids), so comparing indices
    compares ids; ``count``, ``first``, ``last`` per row (times in epoch seconds)."""

    def __init__(self, keys: Sequence[str], offsets: np.ndarray, names: Sequence[str], account: np.ndarray,
                 count: np.ndarray, first: np.ndarray, last: np.ndarray) -> None:
        self.values_sorted = list(keys)
        self.offsets = offsets.astype(np.int64, copy=False)
        self.names = list(names)
        self.account = account.astype(np.int32, copy=False)
        self.count = count.astype(np.int64, copy=False)
        self.first = first.astype(np.int64, copy=False)
        self.last = last.astype(np.int64, copy=False)

    # ---- construction ---------------------------------------------------------------------------

    @classmethod
    def from_columns(cls, keys: np.ndarray | Sequence[str], accounts: np.ndarray | Sequence[str], count: Any,
                     first: Any, last: Any) -> UseTable:
        """From one entry per use (any order; a repeated (value, account) keeps the last)."""
        key_arr = np.asarray(keys, dtype=object)
        acc_arr = np.asarray(accounts, dtype=object)
        uniq_keys, key_idx = np.unique(key_arr, return_inverse=True) if key_arr.size else (np.empty(0, object), np.empty(0, np.int64))
        names, acc_idx = np.unique(acc_arr, return_inverse=True) if acc_arr.size else (np.empty(0, object), np.empty(0, np.int64))
        order = np.lexsort((acc_idx, key_idx))
        key_idx, acc_idx = key_idx[order], acc_idx[order]
        keep = np.ones(order.size, dtype=bool)
        if order.size > 1:
            same = (key_idx[1:] == key_idx[:-1]) & (acc_idx[1:] == acc_idx[:-1])
            keep[:-1] = ~same
        order, key_idx, acc_idx = order[keep], key_idx[keep], acc_idx[keep]
        offsets = np.searchsorted(key_idx, np.arange(len(uniq_keys) + 1), side="left")
        return cls(
            [str(k) for k in uniq_keys], offsets, [str(n) for n in names], acc_idx,
            np.asarray(count, dtype=np.int64)[order], np.asarray(first, dtype=np.int64)[order],
            np.asarray(last, dtype=np.int64)[order],
        )

    @classmethod
    def from_arrow(cls, table: Any, known_accounts: Mapping[str, Any] | None = None) -> UseTable:
        """From an Arrow table of (value, account, count, first, last) columns in that order,
        sorted by value then account, times in epoch seconds (null: unknown). Rows of accounts
        not in ``known_accounts`` (when given) are left out."""
        import pyarrow as pa
        import pyarrow.compute as pc

        key_col, acc_col, count_col, first_col, last_col = (table.column(i) for i in range(5))
        accounts = acc_col.combine_chunks().dictionary_encode()
        dictionary = np.asarray(accounts.dictionary.to_pylist(), dtype=object)
        acc_idx = accounts.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        rank = np.argsort(dictionary, kind="stable")
        position = np.empty_like(rank)
        position[rank] = np.arange(rank.size)
        names = [str(n) for n in dictionary[rank]]
        acc_idx = position[acc_idx]
        keep = None
        if known_accounts is not None:
            known = np.fromiter((n in known_accounts for n in names), dtype=bool, count=len(names))
            if not known.all():
                keep = known[acc_idx]
        keys = key_col.combine_chunks().dictionary_encode()
        key_idx = keys.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        key_names = [str(k) for k in keys.dictionary.to_pylist()]

        def ints(col: Any, fill: int) -> np.ndarray:
            return pc.fill_null(col, fill).cast(pa.int64()).to_numpy()

        count, first, last = ints(count_col, 1), ints(first_col, NO_TIME), ints(last_col, NO_TIME)
        if keep is not None:
            key_idx, acc_idx, count, first, last = key_idx[keep], acc_idx[keep], count[keep], first[keep], last[keep]
            present = np.unique(key_idx)
            remap = np.full(len(key_names), -1, dtype=np.int64)
            remap[present] = np.arange(present.size)
            key_idx = remap[key_idx]
            key_names = [key_names[i] for i in present.tolist()]
        offsets = np.searchsorted(key_idx, np.arange(len(key_names) + 1), side="left")
        return cls(key_names, offsets, names, acc_idx, count, first, last)

    @classmethod
    def from_uses(cls, entries: Iterable[tuple[str, str, Use]]) -> UseTable:
        """From (value, account, Use) entries."""
        keys: list[str] = []
        accounts: list[str] = []
        count: list[int] = []
        first: list[int] = []
        last: list[int] = []
        for key, account, use in entries:
            keys.append(key)
            accounts.append(account)
            count.append(use.count)
            first.append(to_epoch(use.first))
            last.append(to_epoch(use.last))
        return cls.from_columns(keys, accounts, count, first, last)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Mapping[str, Use]]) -> UseTable:
        if isinstance(values, UseTable):
            return values
        return cls.from_uses((key, account, use) for key, users in values.items() for account, use in users.items())

    # ---- the mapping view ---------------------------------------------------------------------------

    def _position(self, key: str) -> int:
        i = bisect.bisect_left(self.values_sorted, key)
        if i == len(self.values_sorted) or self.values_sorted[i] != key:
            raise KeyError(key)
        return i

    def use(self, row: int) -> Use:
        return Use(int(self.count[row]), to_iso(int(self.first[row])), to_iso(int(self.last[row])))

    def users_at(self, position: int) -> dict[str, Use]:
        lo, hi = int(self.offsets[position]), int(self.offsets[position + 1])
        return {self.names[int(self.account[r])]: self.use(r) for r in range(lo, hi)}

    def accounts_of(self, key: str) -> list[str]:
        """The accounts using ``key`` (none when it is unknown), without building their uses."""
        if key not in self:
            return []
        i = self._position(key)
        return [self.names[a] for a in self.account[int(self.offsets[i]) : int(self.offsets[i + 1])].tolist()]

    def __getitem__(self, key: str) -> dict[str, Use]:
        return self.users_at(self._position(key))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        i = bisect.bisect_left(self.values_sorted, key)
        return i < len(self.values_sorted) and self.values_sorted[i] == key

    def __iter__(self) -> Iterator[str]:
        return iter(self.values_sorted)

    def __len__(self) -> int:
        return len(self.values_sorted)

    # ---- columns -------------------------------------------------------------------------------------

    def sizes(self) -> np.ndarray:
        """How many accounts use each value (aligned with ``values_sorted``)."""
        return np.diff(self.offsets)

    def user_counts(self) -> dict[str, int]:
        return dict(zip(self.values_sorted, self.sizes().tolist(), strict=True))

    def key_of_rows(self) -> np.ndarray:
        """The value position of every row."""
        return np.repeat(np.arange(len(self.values_sorted), dtype=np.int64), self.sizes())

    def rows(self) -> int:
        return int(self.account.size)

    def pairs_of(self, accounts: set[str] | None = None) -> Iterator[tuple[str, str]]:
        """(value, account) of every row, or only of ``accounts``' rows."""
        rows = np.arange(self.rows())
        if accounts is not None:
            wanted = np.fromiter((n in accounts for n in self.names), dtype=bool, count=len(self.names))
            rows = rows[wanted[self.account]] if self.names else rows[:0]
        key_of = self.key_of_rows()
        for r in rows.tolist():
            yield self.values_sorted[int(key_of[r])], self.names[int(self.account[r])]
