"""SQL over the lake's Delta tables without a JVM: delta-rs reads, DuckDB plans and runs.

Each lake table that exists is a DuckDB view named after its asset, so analysts write
`SELECT ... FROM gold_title_daily` whatever the storage. Once the tables are registered the
connection loses file and network access and its settings are locked, so a query reads the lake
tables and nothing else: no `read_csv('/etc/passwd')`, no `COPY ... TO` a path, no ATTACH or
extension install (the tables are Arrow datasets opened before the lock, read by Arrow).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from netflix_assets.clients.object_store import ObjectStore, ObjectStoreOps
from schema import tables


class LakeQueryError(ValueError):
    """SQL the lake cannot answer: DuckDB's reason plus the tables (and columns) there are, so
    an analyst sees what to write instead of a traceback."""


def query(sql: str, root: ObjectStoreOps | None = None) -> pa.Table:
    store = root or ObjectStore.from_env()
    connection = duckdb.connect()
    present: dict[str, list[str]] = {}
    for table in tables.ALL:
        name, uri = table.name, store.table_location(table)
        if not DeltaTable.is_deltatable(uri):
            continue
        dataset = DeltaTable(uri).to_pyarrow_dataset()
        connection.register(name, dataset)
        present[name] = dataset.schema.names
    _lock_down(connection)
    try:
        return connection.sql(sql).to_arrow_table()
    except duckdb.PermissionException as exc:
        reason = str(exc).splitlines()[0]
        raise LakeQueryError(
            f"{reason}\nlake queries read only the lake's tables: files, URLs, COPY ... TO, "
            "ATTACH and extensions are disabled (query the tables by name)"
        ) from exc
    except duckdb.Error as exc:
        raise LakeQueryError(_explain(exc, present, store.uri("lake"))) from exc


def _lock_down(connection: duckdb.DuckDBPyConnection) -> None:
    """No file system or network from SQL from here on, and no SET that could undo it."""
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")


def _explain(exc: duckdb.Error, present: dict[str, list[str]], lake: str) -> str:
    reason = str(exc).splitlines()[0]
    if not present:
        return f"{reason}\nthe lake at {lake} has no tables yet (materialize the lake assets first)"
    tables = "\n".join(f"  {name}({', '.join(columns)})" for name, columns in present.items())
    return f"{reason}\ntables in the lake at {lake}:\n{tables}"
