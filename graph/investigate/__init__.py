"""Investigation questions over a store and a workspace, as plain functions.

What an investigator asks of a loaded and detected workspace, answered the same way for the UI,
the command line and the benchmarks: which clusters to look at first (``triage``), why two
accounts are linked and which input rows say so (``evidence``, ``sources``), what a search string
matches (``search``), how two accounts connect hop by hop (``paths``) and how a set of accounts
behaved over time (``timeline``). Graph questions go to the ``GraphStore``; questions about raw
rows go to the staging Parquet through DuckDB (``graph.staging``), aggregated there so only small
results come back. Nothing here knows about drawing: the UI's canvas lives in ``app/``.
"""
