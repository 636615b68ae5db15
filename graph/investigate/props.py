"""Reading stored properties: detection stores lists and maps (reasons, indicators, profiles) as
JSON text, because a Neo4j property cannot hold a map; readers want the value, whether it comes
as text, already decoded, or not at all."""

from __future__ import annotations

import json
from typing import Any


def loads(raw: Any, default: Any) -> Any:
    """Parse a JSON property, tolerating values already decoded or missing."""
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return default
