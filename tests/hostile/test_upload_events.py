"""Hostile upload events and `upload` arguments: each is refused with its reason (quarantined when
it came from the topic), the sensor's cursor moves past it, the valid upload behind it still
runs, and nothing outside the object store is read or written."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from assets import video
from netflix_assets.video.testmedia import make_clip
from netflix_assets.video.upload import check_title_id, parse_upload_message, upload_title
from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from resources.records import RecordIOManager
from schema import topics

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]


def event(**fields: object) -> dict:
    base = {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "event_type": "title_uploaded",
        "title_id": "evil",
        "title": "Evil",
        "filename": "passwd",
        "object_key": "raw/../../../../etc/passwd",
        "uri": "/etc/passwd",
        "size_bytes": 1,
        "sha256": "0" * 64,
        "uploaded_at": "2026-12-01T00:00:00+00:00",
    }
    return base | fields


HOSTILE = {
    "deep": b"[" * 20_000 + b"]" * 20_000,  # under the size bound: the depth must catch it
    "deep object": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "traversal": json.dumps(event()).encode(),
    "other title's area": json.dumps(event(object_key="raw/victim/abc/film.mp4")).encode(),
    "filename with a slash": json.dumps(
        event(object_key="raw/evil/abc/x.mp4", filename="../x.mp4")
    ).encode(),
    "huge": json.dumps(event(title="x" * 300_000)).encode(),
    "not an object": b'"just a string"',
    # The schema's pattern is searched with '$', which matches before a final newline.
    "newline in title_id": json.dumps(
        event(title_id="evil\n", object_key="raw/evil\n/abc/x.mp4", filename="x.mp4")
    ).encode(),
}


def test_parse_names_each_hostile_event() -> None:
    reasons = {name: parse_upload_message(raw) for name, raw in HOSTILE.items()}
    assert all(found is None for found, _ in reasons.values())
    assert "depth limit" in reasons["deep"][1] and "depth limit" in reasons["deep object"][1]
    assert "'..' segment" in reasons["traversal"][1]
    assert "not under raw/evil/" in reasons["other title's area"][1]
    assert "file name '../x.mp4'" in reasons["filename with a slash"][1]
    assert reasons["huge"][1].startswith("too large")
    assert "breaks schema" in reasons["not an object"][1]
    assert "title id 'evil\\n' is not allowed" in reasons["newline in title_id"][1]


def test_sensor_quarantines_hostile_events_and_runs_the_valid_one(
    kafka_resource: KafkaResource, tmp_path: Path, upload_sensor_tick
) -> None:
    """A deeply nested event raised RecursionError in the sensor, so no later upload ever ran;
    the traversal event became a run request."""
    tick = upload_sensor_tick
    kafka_resource.ensure_topics([topics.UPLOADS])
    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    with DagsterInstance.ephemeral() as instance:
        cursor, previous = tick(instance, kafka_resource, store, None).cursor, None
        while cursor != previous:  # skip what earlier runs left on the shared test topic
            previous, cursor = cursor, tick(instance, kafka_resource, store, cursor).cursor
        earlier = set(store.list_keys("quarantine/upload-events"))
        producer = kafka_resource.producer()
        for raw in HOSTILE.values():
            producer.produce(topics.UPLOADS, value=raw)
        assert producer.flush(15) == 0
        clip = make_clip(tmp_path / "good.mp4", "silent")
        good = upload_title(clip, store, kafka_resource, title_id=f"good-{uuid.uuid4().hex[:6]}")

        result = tick(instance, kafka_resource, store, cursor)
        assert [r.partition_key for r in result.run_requests] == [good["title_id"]]
        quarantined = set(store.list_keys("quarantine/upload-events")) - earlier
        assert len(quarantined) == len(HOSTILE)
        records = [json.loads(store.get_bytes(k)) for k in quarantined]
        assert all(r["reason"] for r in records)
        assert sum("depth limit" in r["reason"] for r in records) == 2
        assert sum("'..' segment" in r["reason"] for r in records) == 1
        # Past every message: the next tick has nothing left to do.
        assert not tick(instance, kafka_resource, store, result.cursor).run_requests


def test_raw_upload_refuses_a_traversal_key_and_copies_nothing(tmp_path: Path) -> None:
    """A run configured with such a key (an old event, a manual run) used to read the file and,
    its checksum differing, copy it into quarantine/ (a possibly shared bucket)."""
    store = ObjectStoreResource(root=str(tmp_path / "a" / "b" / "objects"))
    (tmp_path / "secret.txt").write_text("private")  # objects/raw/../../../.. is tmp_path
    title_id = f"t-{uuid.uuid4().hex[:8]}"
    store.put_bytes(b"an earlier upload", f"raw/{title_id}/abc/film.mp4")  # raw/ exists
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("titles", [title_id])
        result = materialize(
            [video.raw_upload],
            partition_key=title_id,
            instance=instance,
            resources={"object_store": store, "video_records": RecordIOManager(object_store=store)},
            run_config={
                "ops": {
                    "raw_upload": {
                        "config": {"object_key": "raw/../../../../secret.txt", "sha256": "0" * 64}
                    }
                }
            },
            raise_on_error=False,
        )
    assert not result.success
    error = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error
    assert error.cause.cls_name == "InvalidKey"
    assert "object key 'raw/../../../../secret.txt' has an empty, '.' or '..' segment" in (
        error.cause.message
    )
    assert store.list_keys("") == [f"raw/{title_id}/abc/film.mp4"]  # nothing copied in


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "netflix-assets"), *args],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_upload_cli_refuses_a_hostile_title_id(tmp_path: Path) -> None:
    """`upload --title-id ../../x` wrote outside the store before the id was checked, and every
    error was a traceback."""
    clip = make_clip(tmp_path / "clip.mp4", "silent")
    sandbox = tmp_path / "sandbox"
    env = {"NETFLIX_ASSETS_OBJECT_STORE": str(sandbox / "a" / "b" / "objects")}
    for title_id in ("../../x", ""):  # the rule itself: test_title_ids_follow_the_schema
        done = cli("upload", str(clip), "--title-id", title_id, env=env)
        assert done.returncode == 1, done.stderr
        assert f"title id {title_id!r} is not allowed" in done.stderr
        assert "Traceback" not in done.stderr
    assert not sandbox.exists()  # nothing written anywhere

    unreachable = env | {"NETFLIX_ASSETS_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    done = cli("upload", str(clip), "--title-id", "fine", env=unreachable)
    assert done.returncode == 1
    assert "error: upload of clip.mp4 failed: Kafka at 127.0.0.1:1 did not answer" in done.stderr
    assert "Traceback" not in done.stderr


def test_title_ids_follow_the_schema() -> None:
    for bad in ("../../x", "/abs", "UPPER case", "a" * 65, "", "-lead", "x/y", "x\n"):
        with pytest.raises(ValueError, match="is not allowed"):
            check_title_id(bad)
    assert check_title_id("big-buck-bunny-2") == "big-buck-bunny-2"
