"""Who may ask, and for whom.

Two credentials, both from the environment so they never sit in a config file:
- an API key (header X-API-Key) held by the service's own back-end callers, which may ask for
  any profile; compared in constant time;
- a JWT bearer token (HS256, shared secret) held by one viewer's client: it must name this
  service as its audience (`aud`) and our identity provider as its issuer (`iss`), carry
  `sub`, `iat` and `exp`, live no longer than the maximum lifetime, and it reads only the
  profile its `sub` names. A token with the service role claim (`role: service`) is a
  back-end caller and may ask for any profile.
A secret shorter than 32 bytes is refused when the server starts: HS256 with a short secret can
be brute-forced offline from one captured token.
"""

from __future__ import annotations

import hmac
import os
import time
from dataclasses import dataclass

import jwt

API_KEY_ENV = "NETFLIX_ASSETS_API_KEY"
JWT_SECRET_ENV = "NETFLIX_ASSETS_JWT_SECRET"
JWT_AUDIENCE_ENV = "NETFLIX_ASSETS_JWT_AUDIENCE"
JWT_ISSUER_ENV = "NETFLIX_ASSETS_JWT_ISSUER"
JWT_MAX_LIFETIME_ENV = "NETFLIX_ASSETS_JWT_MAX_LIFETIME_S"

DEFAULT_AUDIENCE = "netflix-assets-recs"
DEFAULT_ISSUER = "netflix-assets"
DEFAULT_MAX_LIFETIME_S = 3600
MIN_SECRET_BYTES = 32
SERVICE_ROLE = "service"
# Clock skew tolerated between the issuer and this server.
LEEWAY_S = 30


class Unauthorized(Exception):
    """The request carries no valid credential; the message says which part was wrong."""


class Forbidden(Exception):
    """A valid credential that may not read the profile asked for."""


class AuthConfigError(ValueError):
    """The server's own auth settings are unsafe; the message names the variable to fix."""


@dataclass(frozen=True)
class Caller:
    """Who asked: `subject` is the token's `sub` (or "api-key"); `service` callers may ask for
    any profile, the others only for their own."""

    subject: str
    service: bool

    def may_read(self, user_id: str) -> bool:
        return self.service or hmac.compare_digest(self.subject.encode(), user_id.encode())


@dataclass(frozen=True)
class AuthConfig:
    api_key: str | None = None
    jwt_secret: str | None = None
    audience: str = DEFAULT_AUDIENCE
    issuer: str = DEFAULT_ISSUER
    max_lifetime_s: int = DEFAULT_MAX_LIFETIME_S

    def __post_init__(self) -> None:
        if self.jwt_secret is not None and len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise AuthConfigError(
                f"{JWT_SECRET_ENV} is {len(self.jwt_secret.encode())} bytes; HS256 needs at "
                f"least {MIN_SECRET_BYTES} random bytes (e.g. `openssl rand -hex 32`)"
            )
        if self.max_lifetime_s <= 0:
            raise AuthConfigError(f"{JWT_MAX_LIFETIME_ENV} must be a positive number of seconds")

    @classmethod
    def from_env(cls) -> AuthConfig:
        env = os.environ.get
        try:
            lifetime = int(env(JWT_MAX_LIFETIME_ENV) or DEFAULT_MAX_LIFETIME_S)
        except ValueError as exc:
            raise AuthConfigError(f"{JWT_MAX_LIFETIME_ENV} must be whole seconds") from exc
        return cls(
            api_key=env(API_KEY_ENV) or None,
            jwt_secret=env(JWT_SECRET_ENV) or None,
            audience=env(JWT_AUDIENCE_ENV) or DEFAULT_AUDIENCE,
            issuer=env(JWT_ISSUER_ENV) or DEFAULT_ISSUER,
            max_lifetime_s=lifetime,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.api_key or self.jwt_secret)

    def check(self, api_key: str | None, authorization: str | None) -> Caller:
        """Who is asking, or Unauthorized naming what was wrong with the credential."""
        if api_key is not None:
            if self.api_key and hmac.compare_digest(api_key.encode(), self.api_key.encode()):
                return Caller("api-key", service=True)
            raise Unauthorized("invalid X-API-Key")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise Unauthorized("Authorization must be 'Bearer <token>'")
            if not self.jwt_secret:
                raise Unauthorized("bearer tokens are not accepted by this server")
            return self._token_caller(token)
        raise Unauthorized("missing credentials: send X-API-Key or Authorization: Bearer <JWT>")

    def authorize(self, api_key: str | None, authorization: str | None, user_id: str) -> Caller:
        """check(), then Forbidden unless the caller may read user_id's recommendations."""
        caller = self.check(api_key, authorization)
        if not caller.may_read(user_id):
            raise Forbidden("this token may read only its own subject's recommendations")
        return caller

    def _token_caller(self, token: str) -> Caller:
        try:
            claims = jwt.decode(
                token,
                self.jwt_secret,
                algorithms=["HS256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        lifetime = float(claims["exp"]) - float(claims["iat"])
        if lifetime > self.max_lifetime_s or float(claims["exp"]) - time.time() > (
            self.max_lifetime_s + LEEWAY_S
        ):
            raise Unauthorized(
                f"invalid token: lives longer than the {self.max_lifetime_s}s maximum"
            )
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise Unauthorized("invalid token: 'sub' must be a non-empty string")
        return Caller(subject, service=claims.get("role") == SERVICE_ROLE)
