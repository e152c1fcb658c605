"""Access tokens: short-lived HS256 JWTs (PyJWT) naming a user and its token version.

A token carries `sub` (the user id), `ver` (the user's token version when it was issued: a bump
revokes every older token), `auth_time` (when the password sign-in happened: refreshing stops
`session_max_s` after it), `jti`, `iat` and `exp`. The signing key comes from settings or, unset,
is generated once and kept in the database, so every gateway of a cluster shares it.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass

import jwt
from pydantic import SecretStr
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from gpucloud.db import Database, SigningKey
from gpucloud.db.models import utcnow
from gpucloud.errors import AuthenticationFailed

ALGORITHM = "HS256"
ISSUER = "gpucloud"
AUDIENCE = "gpucloud-api"  # what the token is good for: the management API, never /v1
_SIGNING_KEY_ID = "jwt"
_INVALID = "Invalid or expired access token. Sign in again."


def looks_like_jwt(token: str) -> bool:
    """Cheap shape test: three base64url parts, the header a JSON object (`eyJ` = '{"')."""
    return token.startswith("eyJ") and token.count(".") == 2


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: str
    version: int
    auth_time: int
    expires_at: int


async def signing_secret(db: Database, configured: SecretStr | None) -> str:
    """The configured key, or the one stored in the database (created on first start; when two
    gateways start together, the first insert wins and both read it)."""
    if configured is not None:
        return configured.get_secret_value()
    async with db.read() as connection:
        found = (
            await connection.execute(select(SigningKey.secret).where(SigningKey.id == _SIGNING_KEY_ID))
        ).first()
    if found is not None:
        return str(found[0])
    try:
        async with db.transaction() as connection:
            row = {"id": _SIGNING_KEY_ID, "secret": secrets.token_urlsafe(48), "created_at": utcnow()}
            await connection.execute(insert(SigningKey).values(row))
    except IntegrityError:
        pass  # another gateway stored one first
    return await signing_secret(db, None)


class TokenSigner:
    """Issues and checks access tokens; pure CPU, no I/O."""

    def __init__(self, secret: str, *, ttl_s: int, session_max_s: int) -> None:
        self._secret = secret
        self.ttl_s = ttl_s
        self._session_max_s = session_max_s

    def issue(self, user_id: str, version: int, auth_time: int | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user_id,
            "ver": version,
            "auth_time": auth_time if auth_time is not None else now,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + self.ttl_s,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Claims:
        """The token's claims, or `AuthenticationFailed` (bad signature, expired, wrong audience)."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "ver", "auth_time"]},
            )
        except jwt.PyJWTError:
            raise AuthenticationFailed(_INVALID, code="invalid_token") from None
        if not isinstance(claims["ver"], int) or not isinstance(claims["auth_time"], int):
            raise AuthenticationFailed(_INVALID, code="invalid_token")
        return Claims(str(claims["sub"]), claims["ver"], claims["auth_time"], int(claims["exp"]))

    def may_refresh(self, claims: Claims) -> bool:
        return time.time() < claims.auth_time + self._session_max_s
