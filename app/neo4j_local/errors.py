"""The one exception the local Neo4j code raises to its callers."""

from __future__ import annotations


class LocalNeo4jError(Exception):
    """A user-facing failure of the local server, with a one-line message.

    ``log_tail`` holds the last lines of the server's console log when there is one.
    """

    def __init__(self, message: str, *, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail
