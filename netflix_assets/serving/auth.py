"""Who may ask: an API key (header X-API-Key) or a JWT bearer token (HS256, signed with a shared
secret, `exp` required). Keys are compared in constant time; the secrets come from the
environment so they never sit in a config file."""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass

import jwt

API_KEY_ENV = "NETFLIX_ASSETS_API_KEY"
JWT_SECRET_ENV = "NETFLIX_ASSETS_JWT_SECRET"


class Unauthorized(Exception):
    """The request carries no valid credential; the message says which part was wrong."""


@dataclass(frozen=True)
class AuthConfig:
    api_key: str | None = None
    jwt_secret: str | None = None

    @classmethod
    def from_env(cls) -> AuthConfig:
        return cls(os.environ.get(API_KEY_ENV) or None, os.environ.get(JWT_SECRET_ENV) or None)

    @property
    def enabled(self) -> bool:
        return bool(self.api_key or self.jwt_secret)

    def check(self, api_key: str | None, authorization: str | None) -> str:
        """The caller's identity ("api-key" or the token's subject), or Unauthorized."""
        if api_key is not None:
            if self.api_key and hmac.compare_digest(api_key.encode(), self.api_key.encode()):
                return "api-key"
            raise Unauthorized("invalid X-API-Key")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise Unauthorized("Authorization must be 'Bearer <token>'")
            if not self.jwt_secret:
                raise Unauthorized("bearer tokens are not accepted by this server")
            try:
                claims = jwt.decode(
                    token, self.jwt_secret, algorithms=["HS256"], options={"require": ["exp"]}
                )
            except jwt.PyJWTError as exc:
                raise Unauthorized(f"invalid token: {exc}") from exc
            return str(claims.get("sub", "token"))
        raise Unauthorized("missing credentials: send X-API-Key or Authorization: Bearer <JWT>")
