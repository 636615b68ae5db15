"""The driver's side of the Spark engine, without Spark: value factors and the pair-term guard."""

from __future__ import annotations

import numpy as np
import pytest

from graph.engine.spark import (
    check_pair_terms,
    factored_weights,
    local_cores,
    pair_terms,
    value_factors,
)
from graph.linkage.hubs import rarities, shared_weights, volume_factors
from graph.linkage.network import time_overlaps
from graph.linkage.uses import Use, UseTable


def _table() -> UseTable:
    return UseTable.from_mapping({
        "v1": {"a": Use(1, "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"), "b": Use(9, "2025-03-01T00:00:00Z", "2025-03-05T00:00:00Z")},
        "v2": {f"acc{i}": Use(i + 1, "2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z") for i in range(7)},
        "v3": {"c": Use(3), "d": Use(2)},
    })


def _ip_like(table: UseTable, rows_a: np.ndarray, rows_b: np.ndarray, key_pos: np.ndarray, n: np.ndarray) -> np.ndarray:
    """An IP's weight as linkage.network makes it: base x rarity x time overlap x volume."""
    base = np.asarray([0.5, 0.7, 0.5])[key_pos]
    return base * rarities(n) * time_overlaps(table, rows_a, rows_b) * volume_factors(table.count[rows_a], table.count[rows_b])


def test_value_factors_are_the_weight_of_a_neutral_pair() -> None:
    table = _table()
    positions = np.arange(len(table.values_sorted))
    factors = value_factors(table, positions, _ip_like)
    assert factors.tolist() == pytest.approx([0.5, 0.7 * 2 / np.sqrt(7), 0.5], rel=1e-15)
    assert value_factors(table, positions, shared_weights(0.9)).tolist() == pytest.approx([0.9, 0.9 * 2 / np.sqrt(7), 0.9], rel=1e-15)


def test_the_factored_form_gives_the_local_weights_to_the_bit() -> None:
    table = _table()
    positions = np.arange(len(table.values_sorted))
    factors = value_factors(table, positions, _ip_like)
    rows_a, rows_b = np.asarray([0, 2, 2, 9], dtype=np.int32), np.asarray([1, 3, 8, 10], dtype=np.int32)
    key_pos = np.asarray([0, 1, 1, 2], dtype=np.int32)
    local = _ip_like(table, rows_a, rows_b, key_pos, table.sizes()[key_pos])
    assert local[0] < 0.5 * 0.2  # the gap and the one-off use both count
    assert factored_weights(table, rows_a, rows_b, factors[key_pos], (True, True)).tolist() == local.tolist()
    check_pair_terms("IP", table, positions, factors, _ip_like, (True, True))


def test_a_weight_formula_that_no_longer_factors_as_declared_is_refused() -> None:
    table = _table()
    positions = np.arange(len(table.values_sorted))
    factors = value_factors(table, positions, _ip_like)
    with pytest.raises(ValueError, match="PAIR_TERMS"):
        check_pair_terms("IP", table, positions, factors, _ip_like, (True, False))
    with pytest.raises(ValueError, match="PAIR_TERMS"):
        pair_terms("Carrier pigeon")
    assert pair_terms("IP") == (True, True) and pair_terms("Device") == (False, False)


def test_local_cores_of_a_master() -> None:
    assert local_cores("local") == 1
    assert local_cores("local[2]") == 2
    assert local_cores("local[3, 4]") == 3
    assert local_cores("local[*]") >= 1
    assert local_cores("local[x]") == 1
