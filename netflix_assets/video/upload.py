"""Studio side of ingest: store a source file and announce it on the uploads topic.

The event is validated against schema/upload_event.schema.json before it is sent, so the upload
sensor can trust every message a producer built here; it still skips malformed ones from others.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from jsonschema import Draft202012Validator, ValidationError

from netflix_assets.object_keys import check_key
from netflix_assets.offsets import check_offsets
from netflix_assets.video.probe import file_sha256
from schema import SCHEMA_DIR, topics

SCHEMA_PATH = SCHEMA_DIR / "upload_event.schema.json"
TITLE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
"""The schema's title_id pattern: a safe partition key, object-store prefix and Kafka key."""
MAX_EVENT_BYTES = 64 * 1024
"""An upload event is well under 2 KiB; anything far larger is not one, and is not parsed."""


@cache
def upload_event_validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def validate_upload_event(event: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError naming the first field that breaks the contract."""
    upload_event_validator().validate(event)


def slugify(text: str) -> str:
    """A title id that is a safe partition key, object-store prefix and Kafka key."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64].strip("-")
    if not slug:
        raise ValueError(f"cannot derive a title id from {text!r}; pass title_id explicitly")
    return slug


def check_title_id(title_id: str) -> str:
    """`title_id` itself, or ValueError naming the rule, before anything is written under it."""
    # fullmatch: with match, '$' also matches before a final newline, so 'x\n' passed.
    if not isinstance(title_id, str) or not TITLE_ID.fullmatch(title_id):
        raise ValueError(
            f"title id {title_id!r} is not allowed: use 1-64 lowercase letters, digits and '-', "
            "starting with a letter or digit (e.g. 'big-buck-bunny')"
        )
    return title_id


def check_filename(filename: str) -> str:
    """A file name that is one object-key segment (no '/', not '.' or '..', no control chars)."""
    if (
        not filename
        or filename in (".", "..")
        or any(c in filename for c in "/\\")
        or any(ord(c) < 32 for c in filename)
    ):
        raise ValueError(f"file name {filename!r} cannot be stored; rename the file")
    return filename


def raw_key(title_id: str, sha256: str, filename: str) -> str:
    """Versioned by content, so a re-upload never overwrites a file a pending run still reads."""
    return f"raw/{title_id}/{sha256[:12]}/{filename}"


def upload_record_key(title_id: str) -> str:
    """The title's latest upload event, beside the file; a manual run in the UI reads it."""
    return f"raw/{title_id}/upload.json"


def build_upload_event(
    title_id: str, title: str, filename: str, key: str, uri: str, size: int, sha256: str
) -> dict[str, Any]:
    event = {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "event_type": "title_uploaded",
        "title_id": title_id,
        "title": title,
        "filename": filename,
        "object_key": key,
        "uri": uri,
        "size_bytes": size,
        "sha256": sha256,
        "uploaded_at": datetime.now(UTC).isoformat(),
    }
    validate_upload_event(event)
    return event


def upload_title(
    path: str | Path,
    object_store: Any,
    kafka: Any,
    title_id: str | None = None,
    title: str | None = None,
    topic: str = topics.UPLOADS,
) -> dict[str, Any]:
    """Copy `path` to raw/{title_id}/{filename} and publish the upload event keyed by title_id.

    `object_store` is an ObjectStoreResource and `kafka` a KafkaResource; returns the event."""
    path = Path(path)
    title_id = check_title_id(slugify(path.stem) if title_id is None else title_id)
    check_filename(path.name)
    title = title or path.stem.replace("_", " ").replace("-", " ").strip() or title_id
    sha256 = file_sha256(path)
    key = raw_key(title_id, sha256, path.name)
    uri = object_store.put_file(path, key)
    event = build_upload_event(title_id, title, path.name, key, uri, path.stat().st_size, sha256)
    object_store.put_bytes(
        json.dumps(event, indent=2).encode(), upload_record_key(title_id), "application/json"
    )
    producer = kafka.producer()
    errors: list[Any] = []
    producer.produce(
        topic,
        key=title_id.encode(),
        value=json.dumps(event).encode(),
        on_delivery=lambda err, _msg: errors.append(err) if err else None,
    )
    remaining = producer.flush(kafka.request_timeout_s)
    if errors or remaining:
        raise RuntimeError(
            f"upload event for {title_id} was not delivered to {topic}: {errors or 'timeout'}; "
            "the file is stored, re-run upload_title to announce it"
        )
    return event


@dataclass(frozen=True)
class UploadMessage:
    """One message read from the uploads topic: a valid event, or the reason it is not one."""

    partition: int
    offset: int
    raw: bytes
    event: dict[str, Any] | None
    error: str | None


def parse_upload_message(raw: bytes | None) -> tuple[dict[str, Any] | None, str | None]:
    """(event, None) for a valid upload event, (None, reason) for anything else.

    Never raises on content: one message the sensor cannot handle would block every upload
    behind it. Size is bounded before parsing, and orjson stops at 1024 levels of nesting
    (the standard library's parser recursed until RecursionError)."""
    if raw is None:
        return None, "empty message (tombstone)"
    if len(raw) > MAX_EVENT_BYTES:
        return None, f"too large: {len(raw)} bytes, an upload event is at most {MAX_EVENT_BYTES}"
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON: {exc}"
    try:
        validate_upload_event(event)
    except ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(event)"
        return None, f"breaks schema/upload_event.schema.json at {where}: {exc.message[:300]}"
    key = event["object_key"]
    try:
        check_title_id(event["title_id"])
        check_key(key)
        check_filename(event["filename"])
    except ValueError as exc:
        return None, f"unsafe title_id, object_key or filename: {exc}"
    if not key.startswith(f"raw/{event['title_id']}/"):
        return None, f"object_key {key!r} is not under raw/{event['title_id']}/ (its title's area)"
    return event, None


def read_upload_messages(
    kafka: Any,
    topic: str,
    start: dict[int, int],
    max_messages: int = 200,
    timeout_s: float = 5.0,
) -> tuple[list[UploadMessage], dict[int, int]]:
    """Read from `start` offsets (partition -> next offset; absent: the earliest) up to the end
    offsets seen when the call began. Returns the messages and the next offsets. No consumer
    group commit: the caller keeps the offsets (the sensor cursor). Raises OffsetsLost when the
    topic no longer holds an offset in `start` (deleted, or the topic re-created)."""
    watermarks = kafka.watermarks(topic)
    check_offsets(
        topic,
        "the upload sensor",
        start,
        watermarks,
        "Re-upload the titles announced in that range if any, then reset the sensor cursor "
        "(`dagster sensor cursor title_upload_sensor --delete`) to read from the log start.",
    )
    next_offsets = {p: max(start.get(p, low), low) for p, (low, _high) in watermarks.items()}
    pending = {p for p, (_low, high) in watermarks.items() if next_offsets[p] < high}
    messages: list[UploadMessage] = []
    if not pending:
        return messages, next_offsets
    consumer = kafka.consumer(group_id="netflix-assets-upload-sensor")
    try:
        consumer.assign([TopicPartition(topic, p, next_offsets[p]) for p in sorted(pending)])
        deadline = time.monotonic() + timeout_s
        while pending and len(messages) < max_messages and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(msg.error())
            event, error = parse_upload_message(msg.value())
            messages.append(
                UploadMessage(msg.partition(), msg.offset(), msg.value() or b"", event, error)
            )
            next_offsets[msg.partition()] = msg.offset() + 1
            if next_offsets[msg.partition()] >= watermarks[msg.partition()][1]:
                pending.discard(msg.partition())
    finally:
        consumer.close()
    return messages, next_offsets
