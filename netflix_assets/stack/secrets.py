"""The local stack's generated passwords: created once by `stack up` under <state>/secrets/
(folder 0700, files 0600), read back by settings.py so every client finds them with no flag.

Production never reads these files: its passwords arrive in the environment variables that
settings.py prefers (docs/SECURITY.md).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from netflix_assets import settings
from netflix_assets.clients import kafka as kafka_client
from netflix_assets.stack import process
from netflix_assets.stack.errors import StackError

POSTGRES_PASSWORD = settings.POSTGRES_PASSWORD_SECRET
REDIS_PASSWORD = settings.REDIS_PASSWORD_SECRET
KAFKA_PASSWORD = kafka_client.PASSWORD_SECRET


def ensure(name: str) -> str:
    """The secret `name`, generated (32 random bytes, URL-safe) if it does not exist yet;
    created whole and once (process.create_once), so two `stack up` at once agree on one value."""
    folder = settings.secrets_dir()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / name
    process.create_once(path, secrets.token_urlsafe(32) + "\n", mode=0o600)
    return _read(path)


def _read(path: Path) -> str:
    path.chmod(0o600)
    value = path.read_text().strip()
    if not value:
        raise StackError(f"{path} is empty: delete it and run `netflix-assets stack up` again")
    return value
