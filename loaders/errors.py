"""The loader's failures: file-level faults of a bundle, and workspaces a load must not touch."""

from __future__ import annotations

from graph.staging.pending import LoadIncomplete

__all__ = ["BundleError", "LoadIncomplete", "WorkspaceError"]


class BundleError(Exception):
    """A file-level problem with an input bundle (bad extension, two files for a table, missing
    column, undecodable bytes, truncated gzip, no accounts): one line naming file and fault."""


class WorkspaceError(Exception):
    """The workspace cannot take this load as it is (e.g. its staged hashes were made with
    another scheme or key): raised before anything is written; one line saying what to do."""
