"""Checks of the host before a benchmark: what else on it would skew the figures."""

from __future__ import annotations

import redis

LARGE_REDIS_BYTES = 256 * 2**20


def redis_snapshot_warning(url: str) -> str | None:
    """A warning when the stack's Redis holds a large dataset (e.g. serving_bench --keep-redis's
    1.4 GB fill of db 15). The stack's snapshot policy (60 s / 1,000 changes, counted over every
    db) then forks and writes all of it about once a minute while anything writes to Redis, as
    train's online features and the Flink job's sink do: 6-9 s of a core each time on a 2-core
    host, and the measured process runs slower for it (`train` at 100k: 73-76 s of CPU with
    the fill against 56 s without)."""
    try:
        with redis.Redis.from_url(url) as client:
            used = int(client.info("memory")["used_memory"])
            keyspace = client.info("keyspace")
    except redis.RedisError:
        return None
    if used < LARGE_REDIS_BYTES:
        return None
    dbs = ", ".join(f"{db} {v['keys']:,} keys" for db, v in keyspace.items())
    return (
        f"warning: Redis holds {used / 2**30:.2f} GB ({dbs}); every minute with writes it "
        "snapshots all of it on these cores, which skews this benchmark. Flush the db that "
        "holds a benchmark's fill (serving_bench --keep-redis leaves db 15 filled)."
    )
