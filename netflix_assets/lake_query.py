"""SQL over the lake's Delta tables without a JVM: delta-rs reads, DuckDB plans and runs.

Each lake table that exists is a DuckDB view named after its asset, so analysts write
`SELECT ... FROM gold_title_daily` whatever the storage.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from resources.object_store import ObjectStoreResource
from spark_jobs.paths import LAKE_TABLES, table_uri


def query(sql: str, root: ObjectStoreResource | None = None) -> pa.Table:
    store = root or ObjectStoreResource()
    connection = duckdb.connect()
    for name in LAKE_TABLES:
        uri = table_uri(store, name).replace("s3a://", "s3://")
        if not DeltaTable.is_deltatable(uri):
            continue
        connection.register(name, DeltaTable(uri).to_pyarrow_dataset())
    return connection.sql(sql).to_arrow_table()
