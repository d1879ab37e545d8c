"""The caching edge: Debian's nginx with proxy_cache on loopback, in front of the web app.

Optional, like monitoring: `netflix-assets stack up web edge` starts the app and the edge,
`stack down` stops them when they run. The config is deploy/nginx/edge.conf.template rendered
into <state>/edge/nginx.conf at each start. The app it fronts (`netflix-assets web`) listens on
NETFLIX_ASSETS_WEB_PORT; the edge authorizes each request with the app and caches the media of
its origin. Hit ratio: `stats()` reads the access log's cache field.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from netflix_assets import settings
from netflix_assets.stack import secrets
from netflix_assets.stack.errors import StackError
from netflix_assets.stack.process import run, spawn
from netflix_assets.stack.services import Service, _searchable_by_others
from netflix_assets.web import config as web_config
from netflix_assets.web.tokens import origin_key

NAME = "edge"
TEMPLATE = settings.REPO_ROOT / "deploy" / "nginx" / "edge.conf.template"
GRANT_CACHE_S = 10
"""How long the edge reuses the app's "yes" for one token and title version: an expired URL
may be served this much longer, in exchange for one authorization call per title version
instead of one per segment."""
CACHE_FIELD = re.compile(r" cache=(\S+) ")
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def _nginx() -> str:
    path = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if path is None:
        raise StackError("nginx not found: run `make bootstrap` (apt-get install nginx)")
    return path


def render(
    home: Path,
    listen_port: int,
    app_port: int,
    signing_key: bytes,
    workers: int = 1,
    cache_size: str = "2g",
) -> str:
    """The nginx.conf text; as root, workers run as nobody (they only read and write <home>)."""
    user_line = "user nobody nogroup;" if os.geteuid() == 0 else ""
    values = {
        "user_line": user_line,
        "workers": workers,
        "home": home,
        "cache_size": cache_size,
        "app": f"{settings.HOST}:{app_port}",
        "listen": f"{settings.HOST}:{listen_port}",
        "origin_key": origin_key(signing_key),
        "grant_cache_s": GRANT_CACHE_S,
    }
    # {{name}} placeholders: nginx's own $variables would clash with string.Template's.
    text = PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), TEMPLATE.read_text())
    return text


class EdgeService(Service):
    def __init__(
        self,
        home: Path | None = None,
        port: int | None = None,
        app_port: int | None = None,
        signing_key: bytes | None = None,
    ) -> None:
        self._home = home or settings.state_dir() / NAME
        port = port or web_config.edge_port()
        super().__init__(
            name=NAME,
            port=port,
            port_env="NETFLIX_ASSETS_EDGE_PORT",
            marker=str(self._home / "nginx.conf"),
            endpoint=f"http://{settings.HOST}:{port}",
        )
        self.app_port = app_port or web_config.web_port()
        self._signing_key = signing_key

    @property
    def home(self) -> Path:
        return self._home

    @property
    def config(self) -> Path:
        return self._home / "nginx.conf"

    def prepare(self) -> None:
        key = self._signing_key or web_config.signing_key_from_env()
        key = key or secrets.ensure(web_config.SIGNING_KEY_SECRET).encode()
        if os.geteuid() == 0 and not _searchable_by_others(self._home):
            raise StackError(
                f"nginx's workers run as nobody and cannot reach {self._home}: a folder above "
                "it is private (mode 700); choose an edge folder others may pass through"
            )
        for sub in ("tmp", "cache", "auth-cache"):
            (self._home / sub).mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(self._home / sub, "nobody", "nogroup")
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(render(self._home, self.port, self.app_port, key))
        check = run([*self._command(), "-t", "-q"], "nginx -t (the edge's config)", 30.0)
        if check.returncode != 0:
            raise StackError(f"nginx refused {self.config}:\n{check.stderr or check.stdout}")

    def _command(self) -> list[str]:
        home = str(self._home)
        return [_nginx(), "-c", str(self.config), "-p", home, "-e", f"{home}/error.log"]

    def start(self) -> int:
        return spawn(self._command(), self.log)


@dataclass(frozen=True)
class EdgeStats:
    requests: int
    hits: int
    misses: int
    by_status: dict[str, int]

    @property
    def hit_ratio(self) -> float:
        looked_up = self.hits + self.misses
        return self.hits / looked_up if looked_up else 0.0


def stats(home: Path | None = None) -> EdgeStats:
    """Cache outcomes of the media requests in the edge's access log (HIT, MISS, EXPIRED, ...);
    the hit ratio counts HIT against HIT plus MISS/EXPIRED."""
    log = (home or settings.state_dir() / NAME) / "access.log"
    counts: Counter[str] = Counter()
    if log.exists():
        with log.open() as lines:
            for line in lines:
                match = CACHE_FIELD.search(line)
                if match and match.group(1) != "-":
                    counts[match.group(1)] += 1
    misses = counts["MISS"] + counts["EXPIRED"]
    return EdgeStats(sum(counts.values()), counts["HIT"], misses, dict(counts))


class WebAppService(Service):
    """`netflix-assets web` as a stack service (`stack up web edge`), so the demo and a
    developer get the app and its edge with one command and `stack down` stops both."""

    def __init__(self) -> None:
        port = web_config.web_port()
        super().__init__(
            name="web",
            port=port,
            port_env="NETFLIX_ASSETS_WEB_PORT",
            marker="netflix_assets.cli web",
            start_timeout_s=120.0,
            endpoint=f"http://{settings.HOST}:{port}/",
        )

    def start(self) -> int:
        command = [sys.executable, "-m", "netflix_assets.cli", "web", f"--port={self.port}"]
        return spawn(command, self.log, cwd=settings.REPO_ROOT)


def services() -> list[Service]:
    """In start order: the app the edge authorizes with and fetches from, then the edge."""
    return [WebAppService(), EdgeService()]
