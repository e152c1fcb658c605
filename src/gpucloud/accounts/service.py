"""`Accounts`: sign-in, refresh, sign-out, and the access-token check of every `/api` call.

The check is made to cost no I/O on the dashboard's hot path: the signature and expiry are CPU
work, and what else it needs of the user (token version, disabled, admin) is kept per gateway in a
small cache, dropped when a change to the user is announced (`UserService`) and re-read after the
same TTL as API keys (`key_cache_ttl_s`) in case an announcement was lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from gpucloud.accounts.audit import AuditLog
from gpucloud.accounts.invitations import InvitationService
from gpucloud.accounts.orgs import OrgService
from gpucloud.accounts.passwords import Passwords
from gpucloud.accounts.sso import SingleSignOn
from gpucloud.accounts.throttle import FailureLog, LoginThrottle, MemoryFailureLog
from gpucloud.accounts.tokens import Claims, TokenSigner, signing_secret
from gpucloud.accounts.users import UserService
from gpucloud.db import Database, User
from gpucloud.errors import AuthenticationFailed
from gpucloud.keycache import KeyChanges
from gpucloud.keys import Principal
from gpucloud.queue.protocol import Priority
from gpucloud.settings import AccountSettings, OidcSettings

_WRONG = "Incorrect email or password."
_REVOKED = "Invalid or expired access token. Sign in again."


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    expires_in: int
    user_id: str


@dataclass(frozen=True, slots=True)
class UserState:
    """What the token check needs of a user, as read at `loaded_at` (time.monotonic())."""

    version: int
    disabled: bool
    principal: Principal
    loaded_at: float


def user_principal(user_id: str, email: str, is_admin: bool) -> Principal:
    """A signed-in user as a caller of the management API. It may use no model: inference takes
    API keys only."""
    return Principal(
        key_id=user_id,
        name=email,
        role="admin" if is_admin else "user",
        allowed_models=(),
        default_priority=Priority.NORMAL,
        max_priority=Priority.NORMAL,
    )


class Accounts:
    """See the module docstring. Built and started by the gateway's lifespan."""

    def __init__(
        self,
        db: Database,
        settings: AccountSettings,
        changes: KeyChanges,
        *,
        cache_ttl_s: float,
        passwords: Passwords | None = None,
        oidc: OidcSettings | None = None,
        failures: FailureLog | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._changes = changes
        self._cache_ttl_s = cache_ttl_s
        self._cache: dict[str, UserState] = {}
        self._signer: TokenSigner | None = None
        self.users = UserService(db, changes, passwords)
        self.orgs = OrgService(db, changes)
        self.audit = AuditLog(db)
        self.invitations = InvitationService(db, self.users, self.orgs, ttl_s=settings.invitation_ttl_s)
        # Single sign-on through an OpenID Connect provider, when one is configured.
        self.sso = SingleSignOn(db, oidc, self.users) if oidc is not None and oidc.enabled() else None
        self._throttle = LoginThrottle(
            failures or MemoryFailureLog(),
            account_limit=settings.login_max_failures,
            ip_limit=settings.login_ip_max_failures,
            window_s=settings.login_window_s,
        )

    async def start(self) -> None:
        secret = await signing_secret(self._db, self._settings.jwt_secret)
        self._signer = TokenSigner(
            secret, ttl_s=self._settings.access_token_ttl_s, session_max_s=self._settings.session_max_s
        )
        await self._changes.start(self._forget)

    async def close(self) -> None:
        await self._changes.close()
        await self._throttle.close()

    @property
    def signer(self) -> TokenSigner:
        if self._signer is None:
            raise RuntimeError("Accounts.start() was not awaited")
        return self._signer

    async def login(self, email: str, password: str, client_ip: str) -> TokenGrant:
        email = email.strip().lower()
        await self._throttle.check(email, client_ip)
        user = await self.users.find(email)
        matches = await self.users.passwords.verify(user.password_hash if user else None, password)
        if user is None or not matches or user.disabled_at is not None:
            await self._throttle.failed(email, client_ip)
            raise AuthenticationFailed(_WRONG, code="invalid_credentials")
        await self._throttle.succeeded(email)
        return self._grant(user.id, user.token_version, None)

    def grant(self, user: User) -> TokenGrant:
        """A sign-in for a user whose identity another way proved (an invitation, single sign-on)."""
        if user.disabled_at is not None:
            raise AuthenticationFailed("This account is disabled.", code="account_disabled")
        return self._grant(user.id, user.token_version, None)

    async def refresh(self, token: str) -> TokenGrant:
        """A new token for a valid one, until `session_max_s` after the password sign-in."""
        claims, _ = await self._check(token)
        if not self.signer.may_refresh(claims):
            raise AuthenticationFailed("The session is over. Sign in again.", code="session_expired")
        return self._grant(claims.user_id, claims.version, claims.auth_time)

    async def logout(self, token: str) -> str:
        """Revoke every token of the token's user (sign-out everywhere); returns the user's id."""
        claims, _ = await self._check(token)
        await self.users.revoke_tokens(claims.user_id)
        return claims.user_id

    async def authenticate(self, token: str) -> Principal:
        _, state = await self._check(token)
        return state.principal

    async def _check(self, token: str) -> tuple[Claims, UserState]:
        claims = self.signer.verify(token)
        state = await self._state(claims.user_id)
        if state is None or state.disabled or state.version != claims.version:
            raise AuthenticationFailed(_REVOKED, code="invalid_token")
        return claims, state

    def _grant(self, user_id: str, version: int, auth_time: int | None) -> TokenGrant:
        return TokenGrant(self.signer.issue(user_id, version, auth_time), self.signer.ttl_s, user_id)

    async def _state(self, user_id: str) -> UserState | None:
        state = self._cache.get(user_id)
        if state is not None and time.monotonic() - state.loaded_at <= self._cache_ttl_s:
            return state
        columns = (User.email, User.is_admin, User.token_version, User.disabled_at)
        async with self._db.read() as connection:
            row = (await connection.execute(select(*columns).where(User.id == user_id))).first()
        if row is None:
            self._cache.pop(user_id, None)
            return None
        state = UserState(
            version=row.token_version,
            disabled=row.disabled_at is not None,
            principal=user_principal(user_id, row.email, row.is_admin),
            loaded_at=time.monotonic(),
        )
        if len(self._cache) >= 100_000:
            self._cache.clear()
        self._cache[user_id] = state
        return state

    def _forget(self, changed_id: str | None) -> None:
        if changed_id is None:
            self._cache.clear()
        else:
            self._cache.pop(changed_id, None)
