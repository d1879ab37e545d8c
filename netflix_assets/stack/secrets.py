"""The local stack's generated passwords: created once by `stack up` under <state>/secrets/
(folder 0700, files 0600), read back by settings.py so every client finds them with no flag.

Production never reads these files: its passwords arrive in the environment variables that
settings.py prefers (docs/SECURITY.md).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from netflix_assets import settings
from netflix_assets.clients import kafka as kafka_client
from netflix_assets.stack.errors import StackError

POSTGRES_PASSWORD = settings.POSTGRES_PASSWORD_SECRET
REDIS_PASSWORD = settings.REDIS_PASSWORD_SECRET
KAFKA_PASSWORD = kafka_client.PASSWORD_SECRET


def ensure(name: str) -> str:
    """The secret `name`, generated (32 random bytes, URL-safe) if it does not exist yet.
    Written to a private temporary file and hard-linked into place, so the file appears whole
    and two `stack up` at once agree on one value."""
    folder = settings.secrets_dir()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / name
    if path.exists():
        return _read(path)
    # The draft's name is unique to this call: a process id alone collided between threads.
    draft = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return _read(path)


def _read(path: Path) -> str:
    path.chmod(0o600)
    value = path.read_text().strip()
    if not value:
        raise StackError(f"{path} is empty: delete it and run `netflix-assets stack up` again")
    return value
