"""Every resource against its real service: a round trip each."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import boto3
import imageio_ffmpeg
import pytest

from resources.kafka import KafkaResource
from resources.object_store import ObjectNotFound, ObjectStoreResource
from resources.postgres import PostgresResource
from resources.redis import RedisResource

pytestmark = pytest.mark.stack


def consume(kafka: KafkaResource, topic: str, count: int, timeout_s: float = 20.0) -> list:
    consumer = kafka.consumer(group_id=f"test-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([topic])
    got = []
    try:
        import time

        deadline = time.monotonic() + timeout_s
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg)
    finally:
        consumer.close()
    return got


def test_kafka_produce_consume(kafka_resource: KafkaResource, unique_topic: str) -> None:
    producer = kafka_resource.producer()
    for i in range(10):
        producer.produce(unique_topic, key=str(i), value=json.dumps({"n": i}))
    assert producer.flush(15) == 0
    messages = consume(kafka_resource, unique_topic, 10)
    assert sorted(json.loads(m.value())["n"] for m in messages) == list(range(10))
    marks = kafka_resource.watermarks(unique_topic)
    assert sum(high - low for low, high in marks.values()) == 10


def test_ensure_topics_is_idempotent(kafka_resource: KafkaResource, unique_topic: str) -> None:
    assert kafka_resource.ensure_topics([unique_topic]) == []


def test_redis_round_trip(redis_resource: RedisResource) -> None:
    client = redis_resource.client()
    key = f"test:{uuid.uuid4().hex}"
    client.hset(key, mapping={"a": "1", "b": "2"})
    client.expire(key, 30)
    assert client.hgetall(key) == {b"a": b"1", b"b": b"2"}
    assert 0 < client.ttl(key) <= 30


def test_postgres_round_trip_and_schema(postgres_resource: PostgresResource) -> None:
    assert "0001_catalog.sql" in postgres_resource.apply_schema()
    assert "0001_catalog.sql" in postgres_resource.apply_schema()  # idempotent
    title_id = f"t-{uuid.uuid4().hex[:8]}"
    with postgres_resource.connect() as conn:
        conn.execute(
            "INSERT INTO catalog.titles (title_id, title) VALUES (%s, %s)", (title_id, "Test")
        )
    with postgres_resource.connect() as conn:
        row = conn.execute(
            "SELECT title FROM catalog.titles WHERE title_id = %s", (title_id,)
        ).fetchone()
        conn.execute("DELETE FROM catalog.titles WHERE title_id = %s", (title_id,))
    assert row == ("Test",)


def test_postgres_rolls_back_on_error(postgres_resource: PostgresResource) -> None:
    title_id = f"t-{uuid.uuid4().hex[:8]}"
    with pytest.raises(RuntimeError), postgres_resource.connect() as conn:
        conn.execute("INSERT INTO catalog.titles (title_id, title) VALUES (%s, 'x')", (title_id,))
        raise RuntimeError("publish failed half-way")
    with postgres_resource.connect() as conn:
        count = conn.execute(
            "SELECT count(*) FROM catalog.titles WHERE title_id = %s", (title_id,)
        ).fetchone()
    assert count == (0,)


def exercise_store(store: ObjectStoreResource, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"\x00\x01payload")
    uri = store.put_file(src, "a/b/in.bin", content_type="video/mp4", cache_control="max-age=60")
    assert uri.endswith("a/b/in.bin")
    store.put_bytes(b"hello", "a/c.txt")
    assert store.get_bytes("a/c.txt") == b"hello"
    assert store.exists("a/b/in.bin") and not store.exists("a/b/missing")
    assert store.list_keys("a") == ["a/b/in.bin", "a/c.txt"]
    store.copy("a/c.txt", "z/c.txt")
    assert store.download("z/c.txt", tmp_path / "out.txt").read_bytes() == b"hello"
    store.delete("z/c.txt")
    assert not store.exists("z/c.txt")
    with pytest.raises(ObjectNotFound, match=r"z/c\.txt"):
        store.get_bytes("z/c.txt")


def test_object_store_local(object_store: ObjectStoreResource, tmp_path: Path) -> None:
    exercise_store(object_store, tmp_path)


def test_object_store_s3(s3_endpoint: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    store = ObjectStoreResource(root=f"s3://{bucket}/prefix", endpoint_url=s3_endpoint)
    exercise_store(store, tmp_path)
    head = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").head_object(
        Bucket=bucket, Key="prefix/a/b/in.bin"
    )
    assert head["ContentType"] == "video/mp4"
    assert head["CacheControl"] == "max-age=60"


def test_ffmpeg_has_libvmaf_and_encodes_lavfi(tmp_path: Path) -> None:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    filters = subprocess.run([ffmpeg, "-hide_banner", "-filters"], capture_output=True, text=True)
    assert "libvmaf" in filters.stdout
    out = tmp_path / "clip.mp4"
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25:duration=1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            str(out),
        ],
        check=True,
    )
    import av

    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 180)
        assert sum(1 for _ in container.decode(stream)) == 25
