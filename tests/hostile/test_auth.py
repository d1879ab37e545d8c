"""Hostile callers of the recommendation service's auth: a token for one viewer reading another,
tokens minted for another service or issuer, tokens that never expire, and a server configured
with a guessable secret."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from netflix_assets.serving.auth import (
    JWT_SECRET_ENV,
    AuthConfig,
    AuthConfigError,
    Forbidden,
    Unauthorized,
)

SECRET = "hostile-suite-secret-of-at-least-32-bytes!"
AUTH = AuthConfig(api_key="backend-key-0123456789", jwt_secret=SECRET)


def bearer(secret: str = SECRET, lifetime: timedelta = timedelta(minutes=5), **claims) -> str:
    now = datetime.now(UTC)
    payload = {
        "sub": "viewer-1",
        "iat": now,
        "exp": now + lifetime,
        "aud": "netflix-assets-recs",
        "iss": "netflix-assets",
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return "Bearer " + jwt.encode(payload, secret, "HS256")


def test_a_token_reads_only_its_own_subject() -> None:
    assert AUTH.authorize(None, bearer(), "viewer-1").subject == "viewer-1"
    with pytest.raises(Forbidden, match="own subject"):
        AUTH.authorize(None, bearer(), "viewer-2")
    # The service's own callers: the API key, or a token with the service role.
    assert AUTH.authorize("backend-key-0123456789", None, "viewer-2").service
    assert AUTH.authorize(None, bearer(sub="gateway", role="service"), "viewer-2").service
    # A role claim of any other value grants nothing.
    with pytest.raises(Forbidden):
        AUTH.authorize(None, bearer(role="admin"), "viewer-2")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "some-other-service"}, "(?i)audience"),
        ({"aud": None}, "aud"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"iss": None}, "iss"),
        ({"sub": None}, "sub"),
        ({"iat": None}, "iat"),
        ({"lifetime": timedelta(days=365)}, "maximum"),
    ],
)
def test_tokens_for_another_audience_issuer_or_lifetime_are_refused(claims, reason) -> None:
    lifetime = claims.pop("lifetime", timedelta(minutes=5))
    with pytest.raises(Unauthorized, match=reason):
        AUTH.check(None, bearer(lifetime=lifetime, **claims))


def test_a_backdated_iat_does_not_stretch_the_lifetime() -> None:
    """iat an hour ago and exp a year ahead: the lifetime check must look at exp, not iat."""
    now = datetime.now(UTC)
    with pytest.raises(Unauthorized, match="maximum"):
        AUTH.check(None, bearer(iat=now - timedelta(minutes=1), exp=now + timedelta(days=365)))


def test_algorithm_none_and_a_foreign_secret_are_refused() -> None:
    unsigned = jwt.encode(
        {"sub": "viewer-1", "aud": "netflix-assets-recs", "iss": "netflix-assets"},
        None,
        algorithm="none",
    )
    with pytest.raises(Unauthorized):
        AUTH.check(None, f"Bearer {unsigned}")
    with pytest.raises(Unauthorized, match="Signature"):
        AUTH.check(None, bearer(secret="x" * 40))


@pytest.mark.parametrize("secret", ["k", "short-but-not-32-bytes-long!"])
def test_a_short_secret_is_refused_at_startup(secret, monkeypatch) -> None:
    with pytest.raises(AuthConfigError, match="at least 32"):
        AuthConfig(jwt_secret=secret)
    monkeypatch.setenv(JWT_SECRET_ENV, secret)
    with pytest.raises(AuthConfigError, match=JWT_SECRET_ENV):
        AuthConfig.from_env()


def test_serve_refuses_to_start_with_a_short_secret(tmp_path) -> None:
    env = {**os.environ, JWT_SECRET_ENV: "changeme"}
    env.pop("NETFLIX_ASSETS_API_KEY", None)
    cli = str(Path(sys.executable).with_name("netflix-assets"))
    manifest, releases = str(tmp_path / "release.json"), str(tmp_path / "releases")
    result = subprocess.run(
        [cli, "serve", "--manifest", manifest, "--release-dir", releases],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert JWT_SECRET_ENV in result.stderr and "at least 32" in result.stderr
    assert "Traceback" not in result.stderr
