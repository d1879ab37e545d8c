"""Hostile object-store keys: a key from an event or a CLI argument can name nothing outside the
store, locally or in S3 mode (where downloads go to a scratch folder), and concurrent writers of
one key never see or break each other's partial file."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import boto3
import pytest

from resources.object_store import InvalidKey, ObjectStoreResource

HOSTILE_KEYS = [
    "raw/../../../../etc/passwd",
    "raw/t/../../../outside.txt",
    "../outside.txt",
    "/etc/passwd",
    "raw//t/file.mp4",
    "raw/./t/file.mp4",
    "raw/t/..",
    "",
    "raw\\..\\..\\outside.txt",
    "raw/t/file\x00.mp4",
    "raw/t/file\n.mp4",
]


def tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def every_operation(store: ObjectStoreResource, key: str, tmp_path: Path) -> None:
    """Each call must raise InvalidKey; any that returns is a hole."""
    source = tmp_path / "payload.bin"
    source.write_bytes(b"attacker bytes")
    calls = {
        "put_bytes": lambda: store.put_bytes(b"attacker bytes", key),
        "put_file": lambda: store.put_file(source, key),
        "get_bytes": lambda: store.get_bytes(key),
        "download": lambda: store.download(key, tmp_path / "got.bin"),
        "local_path": lambda: store.local_path(key, tmp_path / "scratch"),
        "exists": lambda: store.exists(key),
        "copy from": lambda: store.copy(key, "quarantine/copied.bin"),
        "copy to": lambda: store.copy("raw/t/ok.bin", key),
        "delete": lambda: store.delete(key),
        "uri": lambda: store.uri(key),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidKey, match="object key"):
            call()
            pytest.fail(f"{name}({key!r}) was accepted")


def test_local_store_refuses_keys_that_leave_it(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    (sandbox / "etc").mkdir(parents=True)
    (sandbox / "etc" / "passwd").write_text("root:x:0:0")
    store = ObjectStoreResource(root=str(sandbox / "a" / "b" / "c" / "objects"))
    store.put_bytes(b"ok", "raw/t/ok.bin")
    before = tree(sandbox)
    for key in HOSTILE_KEYS:
        every_operation(store, key, tmp_path)
    with pytest.raises(InvalidKey):
        store.list_keys("../..")
    assert tree(sandbox) == before  # nothing written, copied or deleted anywhere
    assert store.list_keys("quarantine") == []


def test_symlink_inside_the_store_cannot_lead_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    store.put_bytes(b"x", "raw/t/x.bin")
    (tmp_path / "objects" / "raw" / "link").symlink_to(outside)
    with pytest.raises(InvalidKey, match="leads outside the store"):
        store.get_bytes("raw/link/secret.txt")
    with pytest.raises(InvalidKey, match="leads outside the store"):
        store.put_bytes(b"overwrite", "raw/link/secret.txt")
    assert (outside / "secret.txt").read_text() == "secret"


def test_s3_store_keeps_downloads_inside_scratch(
    s3_endpoint: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    # S3 itself accepts any key, '..' included: one put by someone else must not be a way out.
    client.put_object(Bucket=bucket, Key="prefix/raw/../../../outside.txt", Body=b"attacker")
    store = ObjectStoreResource(root=f"s3://{bucket}/prefix", endpoint_url=s3_endpoint)
    store.put_bytes(b"ok", "raw/t/ok.bin")
    scratch = tmp_path / "work" / "scratch"
    with pytest.raises(InvalidKey):  # scratch/raw/../../.. is tmp_path
        store.local_path("raw/../../../outside.txt", scratch)
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "work").exists()
    for key in HOSTILE_KEYS:
        every_operation(store, key, tmp_path)
    assert store.local_path("raw/t/ok.bin", scratch).read_bytes() == b"ok"


def test_concurrent_writers_of_one_key_never_collide(tmp_path: Path) -> None:
    """With one fixed '<key>.partial' name, a writer renamed another's half-written file into
    place or failed with FileNotFoundError when the other renamed it first."""
    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    payloads = [bytes([i]) * 200_000 for i in range(6)]
    errors: list[BaseException] = []

    def writer(data: bytes) -> None:
        try:
            for _ in range(30):
                store.put_bytes(data, "records/shared.bin")
                got = store.get_bytes("records/shared.bin")
                assert got in payloads, "a reader saw a mixed or partial file"
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.list_keys("records") == ["records/shared.bin"]
    assert [p.name for p in (tmp_path / "objects" / "records").iterdir()] == ["shared.bin"]


def test_failed_write_leaves_no_partial(tmp_path: Path) -> None:
    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    with pytest.raises(FileNotFoundError):
        store.put_file(tmp_path / "missing.mp4", "raw/t/missing.mp4")
    assert list((tmp_path / "objects" / "raw" / "t").iterdir()) == []


def test_stored_files_keep_the_permissions_of_the_umask(tmp_path: Path) -> None:
    """Written through a temporary file, an object must still be readable as any file the
    process writes (a web server serves delivery/); mkstemp's 0600 would hide it."""
    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    source = tmp_path / "seg.m4s"
    source.write_bytes(b"segment")
    old = os.umask(0o022)
    try:
        store.put_bytes(b"playlist", "delivery/t/v1/master.m3u8")
        store.put_file(source, "delivery/t/v1/seg.m4s")
    finally:
        os.umask(old)
    for name in ("master.m3u8", "seg.m4s"):
        mode = (tmp_path / "objects" / "delivery" / "t" / "v1" / name).stat().st_mode & 0o777
        assert mode == 0o644, f"{name} is {oct(mode)}"
