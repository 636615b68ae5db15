"""The staging area: every accepted input row, normalised and enriched, as Parquet in the workspace.

Loaders write it; detection, evidence export and the UI read it (with DuckDB) to trace any graph
edge back to its source rows. The graph holds aggregates; the rows stay here.

Layout (``<workspace>/staging/``; the paths are built in ``graph.workspace``)::

    <table>/<bundle_id>-<part>.parquet   one set of files per loaded bundle and table
    templates.parquet                    one row per prompt template (all bundles)
    bundles.json                         the bundles loaded: id, path, loaded_at, counts; and
                                         hash_scheme, key_check (of the hashing key)

(Also ``.tmp-<bundle_id>/`` while a load stages, ``.graph-pending.json`` from the staging
commit until the graph write succeeded, and ``.load.lock``; quarantined rows go to
``<workspace>/quarantine/<bundle_id>.jsonl``, one JSON object per row: table, file, row, reason,
raw, with e-mail, phone and billing name as ``<column>_hash``. Directories are 0700 and files
0600: ``graph.private_files``.)

``bundle_id`` is a fingerprint of the bundle's files (names, sizes, content hashes), so loading
the same bundle again replaces its own files instead of adding copies, and a second bundle adds
files of its own. Every table's rows carry their provenance: ``_file`` (the file's path relative
to the bundle), ``_row`` (1-based data-row number in that file; for JSONL, the line number) and
``_bundle`` (the bundle_id). Staged rows passed every row and table rule; duplicates are staged
once. Timestamps are naive ``TIMESTAMP`` values in UTC.

Columns beyond the contract's (input-bundle.md) that loaders add:

- accounts: ``email_domain``, ``email_hash``, ``email_shape``, ``phone_hash`` (raw e-mail and
  phone are never staged); ``created_at`` as a UTC timestamp.
- exchanges: ``ts`` as a UTC timestamp; ``ip`` normalised (compressed form); ``network`` (CIDR
  of the most specific ip_intel network known when the bundle was staged, else the derived /24
  or /48); ``template_id`` (``h:<prompt_hash>``, ``WITHHELD_PREFIX`` then the hash, when only
  the hash is given; such ids have no templates.parquet row and become PromptTemplate nodes
  only when two accounts share one); ``capability`` (coding, agentic, reasoning, math, other)
  and ``cot`` (bool: chain-of-thought elicitation), both of the template, null when the text is
  withheld; ``prompt_chars``. The prompt text itself is not kept in exchanges; one example per
  template lives in templates.parquet.
- payments: ``billing_name_hash`` instead of ``billing_name``.
- templates.parquet: ``template_id``, ``template`` (normalised text), ``example`` (one raw prompt,
  truncated to 2,000 characters), ``capability``, ``cot``, ``minhash`` (list<uint32>, 64 values:
  datasketch ``MinHash(64, seed=1, hashfunc=zlib.crc32)``, scheme ``affine32``, over
  ``loaders.prompts.shingles``).
- ip_intel: ``network`` normalised to its CIDR (host bits masked).
"""

from __future__ import annotations

from pathlib import Path

from graph.workspace import staged_table_dir

TABLES = ("accounts", "exchanges", "payments", "devices", "ip_intel", "operators", "labels")
MINHASH_PERMUTATIONS = 64
# A template id made from a withheld prompt's hash (the bundle's prompt_hash) starts with this.
WITHHELD_PREFIX = "h:"


def table_dir(workspace: Path, table: str) -> Path:
    """The directory of a staged table's files; ValueError for a name that is not a table."""
    if table not in TABLES:
        raise ValueError(f"unknown staged table {table!r}")
    return staged_table_dir(workspace, table)


def table_glob(workspace: Path, table: str) -> str:
    """A DuckDB ``read_parquet`` glob for every staged file of ``table``."""
    return str(table_dir(workspace, table) / "*.parquet")


def has_table(workspace: Path, table: str) -> bool:
    """Whether any file of ``table`` is staged."""
    directory = table_dir(workspace, table)
    return directory.is_dir() and any(directory.glob("*.parquet"))


def staged_files(workspace: Path, table: str, *, exclude_bundle: str | None = None) -> list[Path]:
    """Every staged Parquet of ``table``, optionally without one bundle's own files."""
    directory = table_dir(workspace, table)
    if not directory.is_dir():
        return []
    files = sorted(directory.glob("*.parquet"))
    if exclude_bundle:
        files = [f for f in files if not f.name.startswith(exclude_bundle + "-")]
    return files
