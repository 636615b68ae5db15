"""The staging area, the ground floor every other floor reads: its layout (``layout``), the one
DuckDB connection factory with the SQL-literal helpers (``db``), and the reads the graph writer
and detection share (``read``). Loaders write it through these; nothing here imports loaders.
"""

from graph.staging.db import INTERACTIVE_THREADS, connect, sql_list, sql_str
from graph.staging.layout import (
    MINHASH_PERMUTATIONS,
    TABLES,
    WITHHELD_PREFIX,
    has_table,
    staged_files,
    table_dir,
    table_glob,
)
from graph.staging.pending import (
    LoadIncomplete,
    finish_graph,
    mark_graph_pending,
    require_finished_load,
    unfinished_load,
)
from graph.staging.read import (
    SENT_TEMPLATES,
    create_bundles_table,
    create_exchange_view,
    create_staged_view,
    glob_columns,
    read_bundles,
    read_template_table,
    read_template_uses,
)
from graph.workspace import staging_dir, templates_path

__all__ = [
    "LoadIncomplete",
    "finish_graph",
    "mark_graph_pending",
    "require_finished_load",
    "unfinished_load",
    "INTERACTIVE_THREADS",
    "MINHASH_PERMUTATIONS",
    "SENT_TEMPLATES",
    "TABLES",
    "WITHHELD_PREFIX",
    "connect",
    "create_bundles_table",
    "create_exchange_view",
    "create_staged_view",
    "glob_columns",
    "has_table",
    "read_bundles",
    "read_template_table",
    "read_template_uses",
    "sql_list",
    "sql_str",
    "staged_files",
    "staging_dir",
    "table_dir",
    "table_glob",
    "templates_path",
]
