"""Numbers and times as an investigator reads them in a narrow cell: 257M tokens, 1.2k accounts."""

from __future__ import annotations

from typing import Any

_UNITS = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))


def short_number(value: Any) -> str:
    """``256_821_004`` -> ``257M``, ``1_234`` -> ``1.2k``, ``999`` -> ``999``: three significant
    figures at most, so a column of token counts stays readable; ``—`` for a missing value."""
    if value is None or value == "":
        return "—"
    try:
        n = float(value)
    except (TypeError, ValueError):
        return str(value)
    sign = "-" if n < 0 else ""
    n = abs(n)
    for size, unit in _UNITS:
        if n >= size * 0.9995:
            scaled = n / size
            text = f"{scaled:.1f}" if scaled < 9.95 else f"{scaled:.0f}"
            return f"{sign}{text.removesuffix('.0')}{unit}"
    return f"{sign}{n:.0f}" if n == int(n) else f"{sign}{n:.2g}"
