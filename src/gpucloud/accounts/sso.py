"""`SingleSignOn`: the server side of a sign-in through an OpenID Connect provider (`oidc`).

`begin` makes a state, a nonce and a PKCE verifier and keeps them in the database (`sso_logins`,
by the state's digest, for ten minutes), so that the provider's redirect may come back to any
gateway replica. `finish` takes that row — deleting it, so a state is good once — redeems the
code, and finds the user by the verified email or creates it (no password; a member of the
configured organisation with the configured role). The dashboard then gets a one-time code
(`sso_codes`, by digest, good once within a minute) rather than a token in a URL, and exchanges
it (`redeem`) for the same token response as a password sign-in.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from authlib.common.security import generate_token
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from gpucloud.accounts.oidc import Identity, OidcClient, SsoFailed
from gpucloud.accounts.users import UserService
from gpucloud.db import Database, Organization, OrgMember, SsoCode, SsoLogin, User
from gpucloud.db.models import utcnow
from gpucloud.errors import InvalidRequest
from gpucloud.settings import OidcSettings

LOGIN_TTL_S = 600  # from the redirect to the provider until its redirect back
CODE_TTL_S = 60  # from the redirect to the dashboard until it exchanges the code


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SingleSignOn:
    """See the module docstring."""

    def __init__(self, db: Database, settings: OidcSettings, users: UserService) -> None:
        self._db = db
        self._settings = settings
        self._users = users
        self.client = OidcClient(settings)
        self.display_name = settings.display_name or "single sign-on"

    async def begin(self, redirect_uri: str) -> tuple[str, str]:
        """The provider's authorize URL and the state it carries."""
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), generate_token(64)
        url = await self.client.authorize_url(redirect_uri, state=state, nonce=nonce, verifier=verifier)
        now = utcnow()
        row = {
            "state_digest": digest(state),
            "nonce": nonce,
            "code_verifier": verifier,
            "expires_at": now + timedelta(seconds=LOGIN_TTL_S),
        }
        async with self._db.transaction() as connection:
            await connection.execute(delete(SsoLogin).where(SsoLogin.expires_at <= now))  # abandoned ones
            await connection.execute(delete(SsoCode).where(SsoCode.expires_at <= now))
            await connection.execute(insert(SsoLogin).values(row))
        return url, state

    async def finish(self, state: str, code: str, redirect_uri: str) -> tuple[User, Identity]:
        """The signed-in user (see the module docstring), or `SsoFailed`."""
        nonce, verifier = await self._take(state)
        identity = await self.client.identity(code, redirect_uri, verifier=verifier, nonce=nonce)
        return await self._user(identity), identity

    async def issue_code(self, user_id: str) -> str:
        code = secrets.token_urlsafe(32)
        row = {
            "code_digest": digest(code),
            "user_id": user_id,
            "expires_at": utcnow() + timedelta(seconds=CODE_TTL_S),
        }
        async with self._db.transaction() as connection:
            await connection.execute(insert(SsoCode).values(row))
        return code

    async def redeem(self, code: str) -> User:
        """The user a one-time code was issued to; the code is spent in the same step."""
        now = utcnow()
        spend = update(SsoCode).where(
            SsoCode.code_digest == digest(code), SsoCode.used_at.is_(None), SsoCode.expires_at > now
        )
        async with self._db.transaction() as connection:
            result = await connection.execute(spend.values(used_at=now))
            found = (
                await connection.execute(select(SsoCode.user_id).where(SsoCode.code_digest == digest(code)))
            ).first()
        if result.rowcount != 1 or found is None:
            raise InvalidRequest(
                "The sign-in code is not valid (used, expired or unknown). Sign in again.",
                param="code",
                code="invalid_sso_code",
            )
        return await self._users.get(str(found[0]))

    async def _take(self, state: str) -> tuple[str, str]:
        """The nonce and verifier kept for `state`, deleting them (a state is good once)."""
        key = digest(state)
        async with self._db.transaction() as connection:
            query = select(SsoLogin.nonce, SsoLogin.code_verifier, SsoLogin.expires_at)
            found = (await connection.execute(query.where(SsoLogin.state_digest == key))).first()
            gone = await connection.execute(delete(SsoLogin).where(SsoLogin.state_digest == key))
        if found is None or gone.rowcount != 1 or found.expires_at <= utcnow():
            raise SsoFailed("invalid_state", "The sign-in expired or was not started here. Try again.")
        return str(found.nonce), str(found.code_verifier)

    async def _user(self, identity: Identity) -> User:
        user = await self._users.find(identity.email)
        if user is None:
            try:
                user = await self._create(identity.email)
            except IntegrityError:  # the same person's first sign-in on two gateways at once
                user = await self._users.find(identity.email)
        if user is None or user.disabled_at is not None:
            raise SsoFailed("account_disabled", "This account is disabled.")
        return user

    async def _create(self, email: str) -> User:
        """A user without a password, in the configured organisation with the configured role."""
        row = User(
            id=f"usr_{uuid.uuid4().hex[:24]}",
            email=email,
            password_hash=None,
            is_admin=False,
            token_version=0,
            created_at=utcnow(),
        )
        role, org_id = self._settings.default_role, self._settings.default_org
        async with self._db.transaction() as connection:
            await connection.execute(insert(User).values(row.column_values()))
            org = (await connection.execute(select(Organization.id).where(Organization.id == org_id))).first()
            if role is not None and org is not None:
                member = {"org_id": org_id, "user_id": row.id, "role": role, "created_at": utcnow()}
                await connection.execute(insert(OrgMember).values(member))
        return row
