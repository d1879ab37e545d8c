"""Object storage for media, Delta tables and models: a local folder by default, S3 in production.

One interface for both so callers never branch on where bytes live. S3 goes through boto3 with an
endpoint_url, so MinIO or any S3-compatible server works the same. `ObjectStoreOps` is the
behaviour over three settings (root, endpoint_url, region_name); `ObjectStore` is the plain client
the serving process, the CLI and Spark programs use, and `resources.object_store` wraps the same
behaviour as a Dagster resource.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from netflix_assets import settings
from netflix_assets.object_keys import InvalidKey, check_key
from schema.tables import LakeTable

__all__ = ["InvalidKey", "ObjectNotFound", "ObjectStore", "ObjectStoreOps", "check_key"]


class ObjectNotFound(FileNotFoundError):
    """Raised with the full URI of a key that is not in the store."""


def _write_atomically(target: Path, write: Callable[[Path], object]) -> None:
    """Write beside the target under a name no other writer uses, then rename: a reader never
    sees half a file and two writers of one key never share (or delete) each other's partial."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # A random name rather than mkstemp: mkstemp makes the file 0600, and a stored object keeps
    # the permissions of the umask like any other file (a web server serves delivery/).
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    try:
        write(partial)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _s3_headers(content_type: str | None, cache_control: str | None) -> dict[str, str]:
    """The object's HTTP headers as S3 arguments (a CDN serves them as stored)."""
    headers = {"ContentType": content_type, "CacheControl": cache_control}
    return {name: value for name, value in headers.items() if value}


class ObjectStoreOps:
    """Keys are '/'-separated paths below `root`; `root` is a folder or `s3://bucket/prefix`."""

    root: str
    endpoint_url: str | None
    region_name: str

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def _bucket_prefix(self) -> tuple[str, str]:
        parsed = urlparse(self.root)
        return parsed.netloc, parsed.path.strip("/")

    def _s3_key(self, key: str, prefix: bool = False) -> str:
        check_key(key, prefix=prefix)
        _, prefix = self._bucket_prefix()
        return f"{prefix}/{key}" if prefix else key

    def _client(self) -> Any:
        import boto3  # only S3 deployments need it at call time

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region_name)

    def _local(self, key: str, prefix: bool = False) -> Path:
        check_key(key, prefix=prefix)
        root = Path(self.root)
        path = root / key
        # A symlink inside the store must not lead out of it either.
        if not path.resolve().is_relative_to(root.resolve()):
            raise InvalidKey(f"object key {key!r} leads outside the store {self.root}")
        return path

    def uri(self, key: str) -> str:
        """Where a key lives: an s3:// URI or an absolute local path, as Spark and FFmpeg see it."""
        if self.is_s3:
            bucket, _ = self._bucket_prefix()
            return f"s3://{bucket}/{self._s3_key(key)}"
        return str(self._local(key).resolve())

    def put_file(
        self,
        local_path: str | Path,
        key: str,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> str:
        check_key(key)
        if self.is_s3:
            extra = _s3_headers(content_type, cache_control)
            bucket, _ = self._bucket_prefix()
            self._client().upload_file(
                str(local_path), bucket, self._s3_key(key), ExtraArgs=extra or None
            )
        else:
            _write_atomically(self._local(key), lambda p: shutil.copyfile(local_path, p))
        return self.uri(key)

    def put_bytes(
        self,
        data: bytes,
        key: str,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> str:
        check_key(key)
        if self.is_s3:
            bucket, _ = self._bucket_prefix()
            extra = _s3_headers(content_type, cache_control)
            self._client().put_object(Bucket=bucket, Key=self._s3_key(key), Body=data, **extra)
        else:
            _write_atomically(self._local(key), lambda p: p.write_bytes(data))
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        check_key(key)
        if self.is_s3:
            bucket, _ = self._bucket_prefix()
            client = self._client()
            try:
                return client.get_object(Bucket=bucket, Key=self._s3_key(key))["Body"].read()
            except client.exceptions.NoSuchKey as exc:
                raise ObjectNotFound(self.uri(key)) from exc
        path = self._local(key)
        if not path.is_file():
            raise ObjectNotFound(self.uri(key))
        return path.read_bytes()

    def download(self, key: str, local_path: str | Path) -> Path:
        check_key(key)
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        if self.is_s3:
            bucket, _ = self._bucket_prefix()
            self._client().download_file(bucket, self._s3_key(key), str(local_path))
        else:
            source = self._local(key)
            if not source.is_file():
                raise ObjectNotFound(self.uri(key))
            shutil.copyfile(source, local_path)
        return local_path

    def local_path(self, key: str, scratch: str | Path) -> Path:
        """A path FFmpeg and PyAV can open: the stored file itself when the store is a local
        folder (no copy), otherwise a download into `scratch` (at `scratch/<key>`, which a
        checked key keeps inside it)."""
        check_key(key)
        if not self.is_s3:
            path = self._local(key)
            if not path.is_file():
                raise ObjectNotFound(self.uri(key))
            return path.resolve()
        return self.download(key, Path(scratch) / key)

    def exists(self, key: str) -> bool:
        check_key(key)
        if self.is_s3:
            bucket, _ = self._bucket_prefix()
            listed = self._client().list_objects_v2(Bucket=bucket, Prefix=self._s3_key(key))
            return any(o["Key"] == self._s3_key(key) for o in listed.get("Contents", []))
        return self._local(key).is_file()

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every key under a prefix, sorted."""
        if self.is_s3:
            bucket, root_prefix = self._bucket_prefix()
            paginator = self._client().get_paginator("list_objects_v2")
            strip = len(root_prefix) + 1 if root_prefix else 0
            keys = [
                obj["Key"][strip:]
                for page in paginator.paginate(
                    Bucket=bucket, Prefix=self._s3_key(prefix, prefix=True)
                )
                for obj in page.get("Contents", [])
            ]
            return sorted(keys)
        base = Path(self.root)
        start = self._local(prefix, prefix=True)
        if start.is_file():
            return [prefix]
        if not start.exists():
            return []
        return sorted(
            p.relative_to(base).as_posix()
            for p in start.rglob("*")
            if p.is_file() and not p.name.endswith(".partial")
        )

    def copy(self, src_key: str, dst_key: str, **put_args: str | None) -> str:
        check_key(src_key)
        check_key(dst_key)
        if self.is_s3:
            bucket, _ = self._bucket_prefix()
            extra = _s3_headers(put_args.get("content_type"), put_args.get("cache_control"))
            self._client().copy_object(
                Bucket=bucket,
                Key=self._s3_key(dst_key),
                CopySource={"Bucket": bucket, "Key": self._s3_key(src_key)},
                MetadataDirective="REPLACE" if extra else "COPY",
                **extra,
            )
            return self.uri(dst_key)
        return self.put_file(self._local(src_key), dst_key)

    def delete(self, key: str) -> None:
        check_key(key)
        if self.is_s3:
            bucket, _ = self._bucket_prefix()
            self._client().delete_object(Bucket=bucket, Key=self._s3_key(key))
        else:
            self._local(key).unlink(missing_ok=True)

    def client(self) -> ObjectStore:
        """The plain, picklable client with these settings (for a worker process, a thread)."""
        return ObjectStore(self.root, self.endpoint_url, self.region_name)

    def table_uri(self, table: LakeTable) -> str:
        """A lake table's URI as Spark reads it: s3:// becomes s3a://, Hadoop's S3 client."""
        uri = self.uri(table.key)
        return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri

    def table_location(self, table: LakeTable) -> str:
        """A lake table's URI as delta-rs and DuckDB read it (s3:// or a local path)."""
        return self.uri(table.key)


@dataclass(frozen=True)
class ObjectStore(ObjectStoreOps):
    root: str
    endpoint_url: str | None = None
    region_name: str = "us-east-1"

    @classmethod
    def from_env(cls) -> ObjectStore:
        """The store named by NETFLIX_ASSETS_OBJECT_STORE, else the local stack's folder."""
        return cls(root=settings.object_store_root())
