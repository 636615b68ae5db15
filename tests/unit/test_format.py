"""Numbers shortened for narrow cells (app/format.py)."""

from __future__ import annotations

import pytest

from app.format import short_number


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (256_821_004, "257M"), (1_234, "1.2k"), (1_000, "1k"), (999, "999"), (0, "0"), (12_345, "12k"),
        (9_950, "10k"), (999_499, "999k"), (999_950, "1M"), (1_500_000_000, "1.5B"), (2_000_000_000_000, "2T"),
        (-2_500, "-2.5k"), (0.5, "0.5"), (None, "—"), ("", "—"), ("n/a", "n/a"),
    ],
)
def test_short_number(value: object, text: str) -> None:
    assert short_number(value) == text
