"""RecordIOManager: the small JSON record an asset hands downstream, kept in the object store.

The video assets produce files (renditions, segments) that they write to the object store
themselves; what flows along the lineage edge is a record of what was written and where. Keeping
that record as readable JSON next to the media (not a pickle on one machine's disk) means any
worker, a K8s pod included, can load it, and a person can read it.
"""

from __future__ import annotations

import json
from typing import Any

from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import Field

from resources.object_store import ObjectNotFound, ObjectStoreResource


class RecordIOManager(ConfigurableIOManager):
    """Stores dict outputs at `{prefix}/{asset key}/{partition}.json` in the object store."""

    object_store: ObjectStoreResource
    prefix: str = Field(default="records", description="Key prefix for the JSON records.")

    def _key(self, asset_path: list[str], partition: str | None) -> str:
        key = f"{self.prefix}/{'/'.join(asset_path)}"
        return f"{key}/{partition}.json" if partition else f"{key}.json"

    def handle_output(self, context: OutputContext, obj: dict[str, Any]) -> None:
        if not isinstance(obj, dict):
            raise TypeError(f"RecordIOManager stores dict records, got {type(obj).__name__}")
        partition = context.partition_key if context.has_partition_key else None
        key = self._key(list(context.asset_key.path), partition)
        body = json.dumps(obj, indent=2, sort_keys=True, default=str).encode()
        self.object_store.put_bytes(body, key, content_type="application/json")

    def load_input(self, context: InputContext) -> dict[str, Any]:
        partition = context.asset_partition_key if context.has_asset_partitions else None
        key = self._key(list(context.asset_key.path), partition)
        try:
            return json.loads(self.object_store.get_bytes(key))
        except ObjectNotFound as exc:
            raise ObjectNotFound(
                f"no record for {context.asset_key.to_user_string()} partition {partition}: "
                f"materialize it first ({exc})"
            ) from exc
