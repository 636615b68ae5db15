"""The two GraphStore implementations and the one place that opens them from settings."""

from __future__ import annotations

from graph.settings import Settings
from graph.store import GraphStore, StoreUnavailable


def embedded_directory(settings: Settings):  # noqa: ANN201 - Path, kept import-light
    from graph.workspace import embedded_dir

    return embedded_dir(settings.workspace)


def make_driver(settings: Settings):  # noqa: ANN201 - neo4j.Driver
    """The Neo4j driver for the configured URI and credentials (not yet connected)."""
    import neo4j

    user, password = settings["neo4j_user"], settings["neo4j_password"]
    auth = neo4j.basic_auth(user, password) if password else None
    return neo4j.GraphDatabase.driver(
        settings["store"],
        auth=auth,
        connection_timeout=settings["neo4j_connect_timeout"],
        connection_acquisition_timeout=settings["neo4j_connect_timeout"] * 3,
        max_transaction_retry_time=15.0,
        notifications_min_severity="OFF",
    )


def open_store(settings: Settings, *, ensure_schema: bool = True) -> GraphStore:
    """Open the store the settings name: the embedded one in the workspace, or Neo4j.

    For Neo4j this is where the driver is made and injected; the store closes it on close().
    Raises StoreUnavailable, with the URI and the fix, when Neo4j cannot be reached.
    The embedded store's workspace must be this user's and writable by no one else
    (graph.trust.UntrustedPath names the path and the fix); a workspace holding only the old
    pickled graph raises LegacyGraphFile, pointing at ``sybilscope migrate``, without opening it.
    """
    if not settings.is_neo4j:
        if settings["store"] != "embedded":
            raise StoreUnavailable(
                "open",
                "graph",
                f"unknown store {settings['store']!r}: use 'embedded', bolt://HOST:PORT or neo4j://HOST:PORT",
            )
        from graph.stores.embedded import EmbeddedStore
        from graph.trust import check_workspace

        check_workspace(settings.workspace)
        return EmbeddedStore(embedded_directory(settings))

    from graph.stores.neo4j_store import Neo4jStore

    store = Neo4jStore(
        make_driver(settings),
        settings["neo4j_database"],
        uri=settings["store"],
        batch_size=settings["batch_size"],
        close_driver=True,
    )
    try:
        store.ping()
        if ensure_schema:
            store.ensure_schema()
    except BaseException:
        store.close()
        raise
    return store
