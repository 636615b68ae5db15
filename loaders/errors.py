"""The loader's file-level failure: raised before the graph is touched."""

from __future__ import annotations


class BundleError(Exception):
    """A file-level problem with an input bundle (bad extension, two files for a table, missing
    column, undecodable bytes, truncated gzip, no accounts): one line naming file and fault."""
