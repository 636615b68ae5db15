"""Where the graph writer's rows go: the store (batched MERGEs) or a bulk sink (import files).

``GraphWriter`` computes every node and relationship row from staging once and hands them to a
``GraphSink``; the sink decides how they reach the graph, so the fresh-database import path
(loaders/graph_csv.py) takes exactly the rows the batched path writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import pyarrow as pa

from graph.schema import Label, Rel
from graph.store import GraphStore, chunked

BATCH_ROWS = 20_000


class ArrowRows:
    """The rows of one query, read when iterated: as dicts (what every sink takes) or, for a sink
    that writes whole columns (the import files), as the record batches those dicts come from,
    so the same rows reach both without a Python object per value on the bulk path."""

    def __init__(self, open_reader: Callable[[], pa.RecordBatchReader]) -> None:
        self._open_reader = open_reader

    def batches(self) -> Iterator[pa.RecordBatch]:
        yield from self._open_reader()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.batches():
            yield from batch.to_pylist()


class GraphSink(Protocol):
    """What the graph writer writes into."""

    def session(self) -> AbstractContextManager[Any]:
        """The boundary around one whole graph write."""
        ...

    def nodes(self, label: Label, rows: Iterable[dict[str, Any]]) -> int:
        """Write node rows (the key property and the other properties); the number written."""
        ...

    def relationships(self, rel: Rel, start: Label, end: Label, rows: Iterable[dict[str, Any]]) -> int:
        """Write relationship rows (``start``, ``end`` keys and properties); the number written."""
        ...


class StoreSink:
    """The batched path: rows MERGEd into ``store`` in chunks inside its ``bulk()`` boundary."""

    def __init__(self, store: GraphStore, batch_rows: int = BATCH_ROWS) -> None:
        self.store = store
        self.batch_rows = batch_rows

    @contextmanager
    def session(self) -> Iterator[GraphStore]:
        with self.store.bulk() as store:
            yield store

    def nodes(self, label: Label, rows: Iterable[dict[str, Any]]) -> int:
        return sum(self.store.upsert_nodes(label, chunk) for chunk in chunked(rows, self.batch_rows))

    def relationships(self, rel: Rel, start: Label, end: Label, rows: Iterable[dict[str, Any]]) -> int:
        return sum(
            self.store.upsert_relationships(rel, start, end, chunk) for chunk in chunked(rows, self.batch_rows)
        )
