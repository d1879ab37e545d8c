"""Object-store keys: what a key may be, checked wherever one arrives from outside.

Plain Python (no client, no Dagster) so event parsers can refuse a key before any resource
sees it; the object-store resource checks every key again before touching a path or a bucket.
"""

from __future__ import annotations


class InvalidKey(ValueError):
    """A key that could name something outside the store (or nothing): '..', an absolute path."""


def check_key(key: str, prefix: bool = False) -> str:
    """`key` itself when it is a plain relative '/'-separated path, else InvalidKey naming why.

    Keys come from events and CLI arguments; joined to a folder unchecked, 'raw/../../etc/passwd'
    reads or writes outside the store. A prefix (for list_keys) may be empty or end in '/'."""
    if not isinstance(key, str):
        raise InvalidKey(f"object key {key!r} is not a string")
    text = key[:-1] if prefix and key.endswith("/") else key
    if prefix and not text:
        return key
    if not text:
        raise InvalidKey(f"object key {key!r} is empty; keys are paths like 'raw/title/file.mp4'")
    if any(ord(c) < 32 or c == "\\" for c in text):
        raise InvalidKey(f"object key {key!r} holds a control character or a backslash")
    if text.startswith("/"):
        raise InvalidKey(f"object key {key!r} is absolute; keys are relative to the store root")
    for part in text.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKey(
                f"object key {key!r} has an empty, '.' or '..' segment; a key must stay "
                "inside the store"
            )
    return key
