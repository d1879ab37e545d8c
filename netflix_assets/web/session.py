"""The session cookie: signed (itsdangerous, HMAC-SHA1 over a key derived from the app's
signing key), HttpOnly, SameSite=Lax, Secure when the app is served over HTTPS.

It carries who is signed in and, once picked, the profile with the two fields every request
needs (country, maturity level), so the event path checks ownership without a database trip.
A profile's changed maturity level takes effect when the profile is picked again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from netflix_assets.web.viewers import Profile

COOKIE = "na_session"
MAX_AGE_S = 12 * 3600


@dataclass(frozen=True)
class Session:
    account_id: str
    profile: Profile | None = None


class Sessions:
    def __init__(self, key: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt="netflix-assets/web-session/v1")

    def dump(self, session: Session) -> str:
        profile = asdict(session.profile) if session.profile else None
        return self._serializer.dumps({"account_id": session.account_id, "profile": profile})

    def load(self, cookie: str | None) -> Session | None:
        """The session of a cookie, or None when it is missing, forged, altered or too old."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=MAX_AGE_S)
            profile = Profile(**data["profile"]) if data.get("profile") else None
            return Session(data["account_id"], profile)
        except (BadSignature, KeyError, TypeError):
            return None
